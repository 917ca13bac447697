"""``qcode agreement`` and ``qcode evaluate`` end to end on tmp_path."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score, f1_score, precision_score, recall_score

from pipeline import columns as C
from pipeline.cli import main

GOLD_CODES = ["agency", "ownership", "alignment", "shared_leadership",
              "amo.ability", "amo.motivation", "amo.opportunity"]


def _gold_and_rules(n=40, seed=1):
    rng = np.random.default_rng(seed)
    ids = [f"int01:{i}" for i in range(n)]
    gold = pd.DataFrame(rng.random((n, len(GOLD_CODES))) < 0.3, columns=GOLD_CODES).astype(int)
    gold.insert(0, C.SEGMENT_ID, ids)
    pred = gold[GOLD_CODES].to_numpy() ^ (rng.random((n, len(GOLD_CODES))) < 0.15)
    pred[:, GOLD_CODES.index("alignment")] = 0   # the rule coder never finds alignment
    rows = []
    for i, sid in enumerate(ids):
        for j, code in enumerate(GOLD_CODES):
            if pred[i, j]:
                # Rule codings may be sub-codes: ownership.shaping rolls up to ownership.
                code_id = "ownership.shaping" if code == "ownership" else code
                rows.append({C.SEGMENT_ID: sid, C.DOC_ID: "int01", C.CODE_ID: code_id,
                             C.METHOD: "rules", C.SCORE: 1.0})
    return gold, pd.DataFrame(rows), pred


def test_evaluate_rules_against_gold(tmp_path, capsys):
    gold, codings, pred = _gold_and_rules()
    gold.to_csv(tmp_path / "gold.csv", index=False)
    codings = codings[codings[C.SEGMENT_ID] != "int01:39"]
    codings.to_parquet(tmp_path / "codings.parquet")
    # The coder saw every gold segment plus one the gold lacks, and missed one gold segment.
    segs = pd.DataFrame({C.SEGMENT_ID: [*gold[C.SEGMENT_ID].iloc[:-1], "int01:999"]})
    segs.to_csv(tmp_path / "segments.csv", index=False)
    out = tmp_path / "eval.csv"
    rc = main(["evaluate", str(tmp_path / "gold.csv"), "--codings", str(tmp_path / "codings.parquet"),
               "--segments", str(tmp_path / "segments.csv"), "--out", str(out), "--boot", "200"])
    assert rc == 0
    captured = capsys.readouterr()
    assert "amo.motivation" in captured.out and "(macro)" in captured.out
    assert "1 segment(s) not coded by every coder" in captured.err
    table = pd.read_csv(out, keep_default_na=False, na_values=[""])
    assert list(table[C.CODE_ID]) == GOLD_CODES + ["(macro)", "(micro)"]
    unmatched = pd.read_csv(tmp_path / "eval.unmatched.csv")
    assert unmatched[C.SEGMENT_ID].tolist() == ["int01:39"]
    y = gold[GOLD_CODES].to_numpy()[:-1]
    p = pred[:-1].astype(int)
    t = table.set_index(C.CODE_ID)
    for j, code in enumerate(GOLD_CODES):
        assert t.loc[code, "cohen_kappa"] == pytest.approx(cohen_kappa_score(y[:, j], p[:, j]))
        assert t.loc[code, "recall"] == pytest.approx(recall_score(y[:, j], p[:, j]))
    assert t.loc["alignment", "f1"] == 0.0
    assert t.loc["(macro)", "f1"] == pytest.approx(f1_score(y, p, average="macro"))
    assert t.loc["(micro)", "precision"] == pytest.approx(precision_score(y, p, average="micro"))
    assert t.loc["agency", "cohen_kappa_ci_low"] < t.loc["agency", "cohen_kappa"]


def test_agreement_two_coders_long_and_wide(tmp_path, capsys):
    gold, codings, _ = _gold_and_rules(n=20)
    gold.to_csv(tmp_path / "anna.csv", index=False)
    codings.to_csv(tmp_path / "ben.csv", index=False)
    rc = main(["agreement", str(tmp_path / "anna.csv"), str(tmp_path / "ben.csv"),
               "--level", "top", "--boot", "0", "--out", str(tmp_path / "agr.csv")])
    assert rc == 0
    out = capsys.readouterr().out
    assert "20 units coded by anna, ben" in out and "Landis&Koch" in out
    table = pd.read_csv(tmp_path / "agr.csv")
    # --level top: amo.* roll up into amo; ownership.shaping into ownership.
    assert set(table[C.CODE_ID]) == {"agency", "alignment", "amo", "ownership",
                                     "shared_leadership", "(macro)", "(micro)"}
    assert "precision" not in table.columns
    assert "prevalence_anna" in table.columns


def test_agreement_three_coders_and_reference_errors(tmp_path, capsys):
    rng = np.random.default_rng(4)
    ids = [f"s{i}" for i in range(30)]
    for name in ("a", "b", "c"):
        pd.DataFrame({C.SEGMENT_ID: ids, "agency": (rng.random(30) < 0.5).astype(int)}).to_csv(
            tmp_path / f"{name}.csv", index=False)
    files = [str(tmp_path / f"{n}.csv") for n in "abc"]
    assert main(["agreement", *files, "--boot", "50", "-q", "--out", str(tmp_path / "o.csv")]) == 0
    assert "fleiss_kappa" in pd.read_csv(tmp_path / "o.csv").columns
    assert main(["agreement", *files, "--reference", "a"]) == 1
    assert "exactly two coders" in capsys.readouterr().err
    assert main(["agreement", files[0], files[1], "--reference", "zed"]) == 1
    assert "--reference 'zed' is not one of: a, b" in capsys.readouterr().err
    assert main(["agreement", files[0]]) == 1
    assert "at least two" in capsys.readouterr().err


def test_agreement_bad_inputs(tmp_path, capsys):
    (tmp_path / "x.csv").write_text("segment_id,agency\ns1,1\ns2,yes\n")
    (tmp_path / "y.csv").write_text("segment_id,agency\ns1,1\ns2,0\n")
    assert main(["agreement", str(tmp_path / "x.csv"), str(tmp_path / "y.csv")]) == 1
    assert "x.csv, row 3: column 'agency': expected 0 or 1, got 'yes'" in capsys.readouterr().err
    assert main(["agreement", str(tmp_path / "nope.csv"), str(tmp_path / "y.csv")]) == 1
    assert "nope.csv: file not found" in capsys.readouterr().err
    (tmp_path / "z.json").write_text("{}")
    assert main(["agreement", str(tmp_path / "z.json"), str(tmp_path / "y.csv")]) == 1
    assert "unknown table format" in capsys.readouterr().err
    (tmp_path / "w.csv").write_text("segment_id,agency\nq1,1\n")
    assert main(["agreement", str(tmp_path / "w.csv"), str(tmp_path / "y.csv")]) == 1
    assert "no segment is shared" in capsys.readouterr().err
    long = pd.DataFrame({C.SEGMENT_ID: ["s1"], C.CODE_ID: ["agency"]})
    long.to_csv(tmp_path / "long.csv", index=False)
    assert main(["evaluate", str(tmp_path / "long.csv"), "--codings", str(tmp_path / "y.csv")]) == 1
    assert "must be a wide table" in capsys.readouterr().err
