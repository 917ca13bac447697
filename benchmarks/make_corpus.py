"""Generate synthetic corpora of a given number of segments from the sample data.

The text is realistic because every turn is a real turn of ``data/raw`` (interviews and
survey answers), re-shuffled with a fixed seed: vocabulary, turn lengths and the share
of interviewer turns follow the sample. Output: ``benchmarks/corpora/seg<N>/`` with
interview files of ``--turns-per-file`` turns (``I:``/``R:`` labels) and survey CSV files
of ``--answers-per-csv`` rows (one in ten segments is a survey answer), plus a
``metadata.csv``. Deterministic for a given N and seed.

Usage:
    python benchmarks/make_corpus.py 10000 100000 1000000
"""
from __future__ import annotations

import argparse
import csv
import random
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "corpora"


def sample_turns(raw: Path) -> tuple[list[tuple[str, str]], list[str]]:
    """Return (role, text) of every interview turn and the survey answers of ``raw``."""
    from pipeline import columns as C
    from pipeline import ingest, segment

    got = ingest.ingest([raw])
    seg = segment.segment(got.documents, got.turns)
    docs = dict(zip(got.documents[C.DOC_ID], got.documents[C.FORMAT]))
    turns, answers = [], []
    for doc_id, role, text in zip(seg[C.DOC_ID], seg[C.ROLE], seg[C.TEXT]):
        text = " ".join(str(text).split())  # one line per turn in the generated files
        if not text:
            continue
        if docs[doc_id] == "csv":
            answers.append(text)
        else:
            turns.append(("I" if role == C.INTERVIEWER else "R", text))
    return turns, answers


def make_corpus(n_segments: int, *, out: Path | None = None, seed: int = 7,
                turns_per_file: int = 100, answers_per_csv: int = 1000) -> Path:
    """Write a corpus of ``n_segments`` segments (turn units) and return its folder."""
    target = out or OUT / f"seg{n_segments}"
    if (target / ".complete").exists():
        return target
    target.mkdir(parents=True, exist_ok=True)
    turns, answers = sample_turns(ROOT / "data" / "raw")
    rng = random.Random(seed)
    n_answers = n_segments // 10
    n_turns = n_segments - n_answers
    meta = [("doc_id", "country", "sector", "language")]
    k = 0
    while n_turns > 0:
        size = min(turns_per_file, n_turns)
        lines = []
        for j in range(size):
            # Alternate interviewer/respondent like an interview, texts drawn at random.
            want = "I" if j % 2 == 0 else "R"
            role, text = rng.choice(turns)
            while role != want:
                role, text = rng.choice(turns)
            lines.append(f"{want}: {text}")
        doc_id = f"int{k:07d}"
        (target / f"{doc_id}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        meta.append((doc_id, rng.choice(["NL", "BE"]), rng.choice(["PO", "VO", "MBO"]), "nl"))
        n_turns -= size
        k += 1
    k = 0
    while n_answers > 0:
        size = min(answers_per_csv, n_answers)
        doc_id = f"survey{k:05d}"
        with open(target / f"{doc_id}.csv", "w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(["id", "text", "sector"])
            for j in range(size):
                writer.writerow([f"{doc_id}-{j:05d}", rng.choice(answers),
                                 rng.choice(["PO", "VO", "MBO"])])
        meta.append((doc_id, "NL", "", "nl"))
        n_answers -= size
        k += 1
    with open(target / "metadata.csv", "w", encoding="utf-8", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(meta)
    (target / ".complete").write_text("ok\n")
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="+", type=int, help="numbers of segments")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    for n in args.sizes:
        print(make_corpus(n, seed=args.seed))


if __name__ == "__main__":
    main()
