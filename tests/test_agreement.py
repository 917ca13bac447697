"""Agreement statistics against independent implementations.

scikit-learn (Cohen's kappa, precision/recall/F1), NLTK's ``agreement`` module
(kappa, alpha, multi-pi = Fleiss' kappa) and the ``krippendorff`` package.
"""
from __future__ import annotations

import math
import warnings

import krippendorff
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nltk.metrics.agreement import AnnotationTask
from sklearn.metrics import cohen_kappa_score, f1_score, precision_score, recall_score

from pipeline import agreement as ag
from pipeline import columns as C
from pipeline.errors import InputError, UsageError


def _pair(rng, n=60, k=4, p=0.35, flip=0.2):
    a = pd.DataFrame(rng.random((n, k)) < p, columns=[f"c{i}" for i in range(k)],
                     index=pd.Index([f"d:{i}" for i in range(n)], name=C.SEGMENT_ID))
    b = a ^ (rng.random((n, k)) < flip)
    return a, b


def _row(result, code):
    return result.table.set_index(C.CODE_ID).loc[code]


def test_two_coders_match_sklearn_nltk_krippendorff():
    a, b = _pair(np.random.default_rng(3))
    res = ag.agreement({"A": a, "B": b}, reference="A", n_boot=0)
    for code in a.columns:
        x, y = a[code].astype(int).to_numpy(), b[code].astype(int).to_numpy()
        row = _row(res, code)
        assert row["cohen_kappa"] == pytest.approx(cohen_kappa_score(x, y))
        assert row["precision"] == pytest.approx(precision_score(x, y))
        assert row["recall"] == pytest.approx(recall_score(x, y))
        assert row["f1"] == pytest.approx(f1_score(x, y))
        assert row["alpha"] == pytest.approx(
            krippendorff.alpha(np.vstack([x, y]), level_of_measurement="nominal"))
        task = AnnotationTask(data=[(c, i, v) for c, vals in (("A", x), ("B", y))
                                    for i, v in enumerate(vals)])
        assert row["cohen_kappa"] == pytest.approx(task.kappa())
        assert row["alpha"] == pytest.approx(task.alpha())
        assert row["agreement"] == pytest.approx(task.avg_Ao())
        assert row["prevalence_A"] == pytest.approx(x.mean())


def test_macro_and_micro_match_sklearn():
    a, b = _pair(np.random.default_rng(5), k=5)
    res = ag.agreement({"gold": a, "rules": b}, reference="gold", n_boot=0)
    ya, yb = a.to_numpy().astype(int), b.to_numpy().astype(int)
    macro, micro = _row(res, ag.MACRO), _row(res, ag.MICRO)
    for fn, col in ((precision_score, "precision"), (recall_score, "recall"), (f1_score, "f1")):
        assert macro[col] == pytest.approx(fn(ya, yb, average="macro", zero_division=np.nan))
        assert micro[col] == pytest.approx(fn(ya, yb, average="micro"))
    assert micro["cohen_kappa"] == pytest.approx(cohen_kappa_score(ya.ravel(), yb.ravel()))
    assert macro["cohen_kappa"] == pytest.approx(
        np.mean([cohen_kappa_score(ya[:, j], yb[:, j]) for j in range(ya.shape[1])]))


def test_edge_cases_unused_and_always_used_codes():
    idx = pd.Index([f"s{i}" for i in range(10)], name=C.SEGMENT_ID)
    a = pd.DataFrame({"never": False, "always": True, "one_side": True}, index=idx)
    b = pd.DataFrame({"never": False, "always": True, "one_side": False}, index=idx)
    b.iloc[:3, 1] = False  # "always": A always, B 7 of 10
    res = ag.agreement({"A": a, "B": b}, reference="A", n_boot=50)
    # A code neither coder used: perfect raw agreement, kappa/alpha undefined.
    never = _row(res, "never")
    assert never["agreement"] == 1.0
    assert math.isnan(never["cohen_kappa"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert math.isnan(cohen_kappa_score(np.zeros(10), np.zeros(10)))
    with pytest.raises(ValueError, match="more than one value"):
        krippendorff.alpha(np.zeros((2, 10)), level_of_measurement="nominal")
    assert math.isnan(never["alpha"])
    assert math.isnan(never["recall"]) and math.isnan(never["precision"])
    assert never["landis_koch"] == "" and never["krippendorff"] == ""
    # A code one coder always used.
    x = np.ones(10, dtype=int)
    y = b["always"].astype(int).to_numpy()
    always = _row(res, "always")
    assert always["cohen_kappa"] == pytest.approx(cohen_kappa_score(x, y)) == 0.0
    assert always["alpha"] == pytest.approx(
        krippendorff.alpha(np.vstack([x, y]), level_of_measurement="nominal"))
    assert always["precision"] == 1.0 and always["recall"] == pytest.approx(0.7)
    one_side = _row(res, "one_side")
    assert one_side["f1"] == 0.0 and one_side["recall"] == 0.0
    assert math.isnan(one_side["precision"])


def test_fleiss_and_alpha_for_three_coders():
    rng = np.random.default_rng(11)
    a, b = _pair(rng, n=40, k=3)
    c = a ^ (rng.random(a.shape) < 0.3)
    res = ag.agreement({"A": a, "B": b, "C": c}, n_boot=100)
    assert "fleiss_kappa" in res.table.columns and "precision" not in res.table.columns
    for code in a.columns:
        vals = {"A": a[code], "B": b[code], "C": c[code]}
        task = AnnotationTask(data=[(cn, i, int(v)) for cn, s in vals.items()
                                    for i, v in enumerate(s)])
        row = _row(res, code)
        assert row["fleiss_kappa"] == pytest.approx(task.pi())  # multi-pi == Fleiss' kappa
        assert row["alpha"] == pytest.approx(task.alpha())
        assert row["alpha"] == pytest.approx(krippendorff.alpha(
            np.vstack([s.astype(int).to_numpy() for s in vals.values()]),
            level_of_measurement="nominal"))
        assert row["fleiss_kappa_ci_low"] <= row["fleiss_kappa"] <= row["fleiss_kappa_ci_high"]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.booleans()), min_size=2, max_size=40))
def test_kappa_and_alpha_property(pairs):
    x = np.array([p[0] for p in pairs], dtype=int)
    y = np.array([p[1] for p in pairs], dtype=int)
    idx = pd.Index([str(i) for i in range(len(x))], name=C.SEGMENT_ID)
    res = ag.agreement({"A": pd.DataFrame({"c": x == 1}, index=idx),
                        "B": pd.DataFrame({"c": y == 1}, index=idx)}, n_boot=0)
    row = _row(res, "c")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = cohen_kappa_score(x, y)
    assert (math.isnan(row["cohen_kappa"]) and math.isnan(expected)) or \
        row["cohen_kappa"] == pytest.approx(expected)
    if len(set(x) | set(y)) > 1:
        assert row["alpha"] == pytest.approx(
            krippendorff.alpha(np.vstack([x, y]), level_of_measurement="nominal"))
    else:
        assert math.isnan(row["alpha"])


def test_bootstrap_is_deterministic_and_brackets_the_estimate():
    a, b = _pair(np.random.default_rng(2), n=80)
    r1 = ag.agreement({"A": a, "B": b}, n_boot=300, seed=7)
    r2 = ag.agreement({"A": a, "B": b}, n_boot=300, seed=7)
    pd.testing.assert_frame_equal(r1.table, r2.table)
    t = r1.table
    assert (t["cohen_kappa_ci_low"] <= t["cohen_kappa"] + 1e-12).all()
    assert (t["cohen_kappa"] <= t["cohen_kappa_ci_high"] + 1e-12).all()
    assert (t["cohen_kappa_ci_high"] - t["cohen_kappa_ci_low"] > 0.05).all()


def test_long_and_wide_tables_and_coverage():
    long_a = pd.DataFrame({C.SEGMENT_ID: ["d:0", "d:0", "d:1", "d:2"],
                           C.CODE_ID: ["amo.ability", "agency", "ownership", ""],
                           C.SCORE: [1, 1, 1, 1]})
    wide_b = pd.DataFrame({"segment_id": ["d:0", "d:1", "d:2", "d:3"], "text": list("abcd"),
                           "agency": [1, 0, 0, 1], "amo": [1, 0, 0, 0], "ownership": [0, 1, 0, 0]})
    ma = ag.to_matrix(long_a, name="A")
    mb = ag.to_matrix(wide_b, name="B")
    assert not ma.complete and mb.complete
    assert list(mb.matrix.columns) == ["agency", "amo", "ownership"]  # text is not a code
    assert ma.matrix.loc["d:2"].sum() == 0  # an empty code_id row: seen, not coded
    ra = ag.CodingMatrix("A", ag.rollup_matrix(ma.matrix, "all"), ma.complete)
    assert ra.matrix.loc["d:0", "amo"] and ra.matrix.loc["d:0", "amo.ability"]
    top = ag.rollup_matrix(ma.matrix, "top", codes=["alignment"])
    assert list(top.columns) == ["agency", "alignment", "amo", "ownership"]
    # Long A with a segments list: d:3 was seen by A too; d:9 only by A.
    ma2 = ag.to_matrix(long_a, name="A", segments=["d:0", "d:1", "d:2", "d:3", "d:9"])
    mats, unmatched = ag.align([ma2, mb])
    assert list(mats[0].index) == ["d:0", "d:1", "d:2", "d:3"]
    assert unmatched.to_dict("records") == [
        {C.SEGMENT_ID: "d:9", "present_in": "A", "missing_from": "B"}]
    res = ag.agreement({"A": mats[0], "B": mats[1]}, unmatched=unmatched, n_boot=0)
    assert res.notes and "1 segment" in res.notes[0]


def test_input_errors_name_file_column_row():
    bad = pd.DataFrame({"segment_id": ["a", "b"], "agency": [1, 2]})
    with pytest.raises(InputError, match=r"gold.csv, row 3: column 'agency': expected 0 or 1"):
        ag.to_matrix(bad, name="g", source="gold.csv")
    with pytest.raises(InputError, match="x.csv: no 'segment_id' column"):
        ag.to_matrix(pd.DataFrame({"code_id": ["a"]}), name="x", source="x.csv")
    with pytest.raises(InputError, match="row 3: duplicate segment_id 'a'"):
        ag.to_matrix(pd.DataFrame({"segment_id": ["a", "a"], "c": [0, 1]}), name="x", source="x")
    with pytest.raises(InputError, match="row 2: column code_id: 'Not A Code'"):
        ag.to_matrix(pd.DataFrame({"segment_id": ["a"], "code_id": ["Not A Code"]}), name="x",
                     source="x")
    a, b = _pair(np.random.default_rng(0), n=5, k=1)
    with pytest.raises(UsageError, match="at least two"):
        ag.agreement({"A": a})
    with pytest.raises(UsageError, match="reference 'Z' is not one of the coders"):
        ag.agreement({"A": a, "B": b}, reference="Z")
    with pytest.raises(UsageError, match="not aligned"):
        ag.agreement({"A": a, "B": b.iloc[:3]})
    with pytest.raises(UsageError, match="--level"):
        ag.rollup_matrix(a, "middle")


def test_verdicts():
    assert [ag.landis_koch(v) for v in (-0.1, 0.1, 0.3, 0.5, 0.7, 0.9, float("nan"))] == [
        "poor", "slight", "fair", "moderate", "substantial", "almost perfect", ""]
    assert [ag.krippendorff_verdict(v) for v in (0.5, 0.667, 0.79, 0.8)] == [
        "unreliable", "tentative", "tentative", "reliable"]


def test_small_samples_and_undefined_kappa_are_flagged():
    idx = pd.Index([f"s{i}" for i in range(12)], name=C.SEGMENT_ID)
    a = pd.DataFrame({"agency": [True, False] * 6, "ownership": [False] * 12}, index=idx)
    b = pd.DataFrame({"agency": [True, True, False] * 4, "ownership": [False] * 12}, index=idx)
    res = ag.agreement({"a": a, "b": b}, n_boot=0)
    assert any("only 12 unit(s)" in n and "indicative only" in n for n in res.notes)
    assert any("undefined for 1 code(s) (ownership)" in n for n in res.notes)
    assert math.isnan(res.table.set_index(C.CODE_ID).loc["ownership", "cohen_kappa"])
    # Enough units and every kappa defined: no such notes.
    big_idx = pd.Index([f"s{i}" for i in range(40)], name=C.SEGMENT_ID)
    big_a = pd.DataFrame({"agency": [True, False] * 20}, index=big_idx)
    big_b = pd.DataFrame({"agency": [True, True, False, False] * 10}, index=big_idx)
    assert ag.agreement({"a": big_a, "b": big_b}, n_boot=0).notes == []


def test_small_sample_warning_on_the_command_line(tmp_path, capsys):
    from pipeline.cli import main
    pd.DataFrame({"segment_id": ["x:1", "x:2", "x:3"], "agency": [1, 0, 1]}).to_csv(
        tmp_path / "a.csv", index=False)
    pd.DataFrame({"segment_id": ["x:1", "x:2", "x:3"], "agency": [1, 0, 0]}).to_csv(
        tmp_path / "b.csv", index=False)
    assert main(["agreement", str(tmp_path / "a.csv"), str(tmp_path / "b.csv"), "--boot", "0"]) == 0
    err = capsys.readouterr().err
    assert "qcode: warning: only 3 unit(s)" in err
