"""How far a learned coder gets with more gold: macro kappa on a writer left out, by training size.

For each of the nine gold sets A-I (one writer each) the supervised coder (``pipeline.ml``,
char + word n-grams, one logistic regression per code, thresholds by grouped CV) is trained
on k other writers (k = 1, 2, 4: two random draws; k = 8: all others) and scored on the
writer left out (macro Cohen's kappa over the seven top-level codes). No rules are involved.
Run from the repository root (takes ~20 CPU minutes):

    .venv/bin/python docs/experiments/learning_curve.py /tmp/curve

Results of the run reported in docs/CODEBOOK.md are in ``learning_curve.csv`` next to this file.
"""
from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import cohen_kappa_score

from pipeline.cli.ml import load_training
from pipeline.ml import analyze
from pipeline.ml.model import train_model
from pipeline.nlp import parse_segments

SETS = {"A": "data/raw", "B": "data/heldout/raw", **{
    k: f"data/heldout{n}/raw" for k, n in zip("CDEFGHI", range(3, 10))}}
TOP = ["agency", "ownership", "alignment", "shared_leadership", "amo.ability",
       "amo.motivation", "amo.opportunity"]


def gold_path(raw: str) -> str:
    return "data/coded/gold/gold.csv" if raw == "data/raw" else raw.replace("/raw", "/gold/gold.csv")


def main(work: Path) -> None:
    data = {}
    for name, raw in SETS.items():
        out = work / name
        if not (out / "segments.parquet").exists():
            subprocess.run([sys.executable, "-m", "pipeline", "code", raw, "--out", str(out),
                            "--quiet", "--no-cache"], check=True)
        d = load_training(gold_path(raw), segments=str(out))
        feats = analyze(d.segments, parse_segments(d.segments))
        feats.index = d.labels.index
        data[name] = (feats, d.labels[TOP].astype(bool), np.array([f"{name}/{g}" for g in d.groups]))
    rows = []
    for held in SETS:
        others = [s for s in SETS if s != held]
        for k in (1, 2, 4, 8):
            for rep in range(1 if k == 8 else 2):
                train = random.Random(f"{held}{k}{rep}").sample(others, k)
                model = train_model(pd.concat([data[t][0] for t in train]),
                                    pd.concat([data[t][1] for t in train]),
                                    np.concatenate([data[t][2] for t in train]), folds=5, seed=0)
                proba = model.predict_proba(data[held][0])
                kappas = [cohen_kappa_score(
                    data[held][1][c].astype(int),
                    (proba[c] >= model.thresholds[c]).astype(int) if c in model.learnable
                    else np.zeros(len(proba), dtype=int)) for c in TOP]
                rows.append({"held_out": held, "k": k, "draw": rep, "train": "".join(train),
                             "n_train": sum(len(data[t][0]) for t in train),
                             "kappa": round(float(np.mean(kappas)), 4)})
                print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    table.to_csv(work / "learning_curve.csv", index=False)
    print(table.groupby("k")[["n_train", "kappa"]].mean())


if __name__ == "__main__":
    main(Path(sys.argv[1]))
