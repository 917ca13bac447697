"""Would the interviewer's question help the rule coder? (Measured on development sets A-G.)

Coders read each answer with the question before it; the rule coder reads the answer alone.
This adds the rule matches of the preceding interviewer turn to every answer, with their weight
multiplied by w, and scores the result against the gold (macro Cohen's kappa over the seven
top-level codes). w = 0 is the rule coder as it is. Run from the repository root:

    .venv/bin/python docs/experiments/question_context.py /tmp/qctx
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import cohen_kappa_score

from pipeline import columns as C
from pipeline.code import code_segments
from pipeline.code.aggregate import aggregate_rows
from pipeline.codebook import load_codebook
from pipeline.nlp import parse_segments

SETS = {"A": "data/raw", "B": "data/heldout/raw", **{
    k: f"data/heldout{n}/raw" for k, n in zip("CDEFG", range(3, 8))}}
TOP = ["agency", "ownership", "alignment", "shared_leadership", "amo.ability",
       "amo.motivation", "amo.opportunity"]
WEIGHTS = [0, 0.25, 0.5, 0.75, 1.0]


def top(code: str) -> str | None:
    return next((t for t in sorted(TOP, key=len, reverse=True)
                 if code == t or code.startswith(t + ".")), None)


def main(work: Path) -> None:
    book = load_codebook("codebook.yaml")
    kappa = {}
    for name, raw in SETS.items():
        out = work / name
        subprocess.run([sys.executable, "-m", "pipeline", "code", raw, "--out", str(out),
                        "--quiet", "--no-cache"], check=True)
        seg = pd.read_parquet(out / "segments.parquet")
        docs = parse_segments(seg)
        answers, _ = code_segments(seg, docs, book)
        questions, _ = code_segments(seg.assign(**{C.CODED: seg[C.ROLE].eq("interviewer")}),
                                     docs, book)
        asked = {}   # answer -> the interviewer turn before it
        last = {}
        for row in seg.itertuples():
            if row.speaker_role == "interviewer":
                last[row.doc_id] = row.segment_id
            elif row.coded and row.doc_id in last:
                asked[row.segment_id] = last[row.doc_id]
        gold_csv = "data/coded/gold/gold.csv" if raw == "data/raw" else raw.replace("/raw", "/gold/gold.csv")
        gold = pd.read_csv(gold_csv)
        for w in WEIGHTS:
            parts = [answers]
            if w:
                by_q = {q: g for q, g in questions.groupby(C.SEGMENT_ID)}
                parts += [by_q[q].assign(**{C.SEGMENT_ID: a, C.SCORE: by_q[q][C.SCORE] * w})
                          for a, q in asked.items() if q in by_q]
            cod = aggregate_rows(pd.concat(parts, ignore_index=True), threshold=book.settings.threshold)
            have = {(s, top(c)) for s, c in zip(cod[C.SEGMENT_ID], cod[C.CODE_ID])}
            kappa[name, w] = np.mean([cohen_kappa_score(
                gold[t], [int((s, t) in have) for s in gold[C.SEGMENT_ID]]) for t in TOP])
        print(name, " ".join(f"w={w}: {kappa[name, w]:.3f}" for w in WEIGHTS), flush=True)
    for label, names in (("mean A-G", list(SETS)), ("mean D-G", list("DEFG"))):
        print(label, " ".join(f"w={w}: {np.mean([kappa[n, w] for n in names]):.3f}" for w in WEIGHTS))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
