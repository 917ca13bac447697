"""Supervised coder: training, grouped CV, safe persistence, apply, hybrid, suggest."""
from __future__ import annotations

import pickle
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.metrics import cohen_kappa_score, f1_score

from pipeline import columns as C
from pipeline import ml
from pipeline.errors import ModelError, UsageError
from pipeline.ml.model import (
    COMBINERS, THRESHOLD_GRID, apply_combiner, choose_combiner, describe_combiner, group_folds,
)

# Cue words per code: the first ones are also "rule" terms, the others only the model
# can learn; "tijd" also appears in negatives, so the rules make false positives.
CUES = {
    "agency": (["bepalen", "kiezen"], ["beslissen", "zeggenschap", "initiatief"]),
    "ownership": (["eigenaar"], ["verantwoordelijk", "trots", "ons project"]),
    "alignment": ([], ["visie", "afstemmen", "samen lijn"]),
    "amo.opportunity": (["tijd", "uren"], ["werkdruk", "roosterruimte"]),
}
FILLER = ("de school het team was goed en we hadden veel lessen met de klas vandaag "
          "collega's leerlingen week maandag ouders gesprek").split()


def make_gold(n_docs=8, per_doc=20, seed=0):
    """Synthetic wide gold: id, doc_id, text, lang, one 0/1 column per code."""
    rng = np.random.default_rng(seed)
    rows = []
    for d in range(n_docs):
        for u in range(per_doc):
            labels = {c: bool(rng.random() < 0.3) for c in CUES}
            labels["amo.motivation"] = (d, u) in {(0, 1), (3, 2), (5, 3)}  # 3 positives only
            words = list(rng.choice(FILLER, 7))
            for code, (rule_terms, ml_terms) in CUES.items():
                if labels[code]:
                    pool = rule_terms + ml_terms if rng.random() < 0.5 else ml_terms
                    words.insert(int(rng.integers(0, len(words))), str(rng.choice(pool)))
            if not labels["amo.opportunity"] and rng.random() < 0.15:
                words.append("tijd")
            if labels["amo.motivation"]:
                words.append("zin")
            rows.append({"id": f"int{d:02d}:{u}", C.DOC_ID: f"int{d:02d}", "text": " ".join(words),
                         "lang": "nl", **{c: int(v) for c, v in labels.items()}})
    return pd.DataFrame(rows)


def _rule_codings(gold):
    """What a rule coder with the CUES rule terms would return (codings table)."""
    rows = []
    for r in gold.itertuples(index=False):
        tokens = r.text.split()
        for code, (rule_terms, _) in CUES.items():
            hit = [t for t in rule_terms if t in tokens]
            if hit:
                sub = code + ".sub" if code == "ownership" else code   # sub-codes roll up
                rows.append({C.SEGMENT_ID: r.id, C.DOC_ID: r.doc_id, C.CODE_ID: sub,
                             C.METHOD: "rules", C.SCORE: 1.0, C.RULE: f"rule:{code}.nl.1",
                             C.RULES: f"{code}.nl.1", C.EVIDENCE: hit[0], C.N_MATCHES: len(hit),
                             C.START: 0, C.END: len(hit[0])})
    return pd.DataFrame(rows, columns=C.CODING_COLUMNS)


def _segments(gold):
    segs = gold.rename(columns={"id": C.SEGMENT_ID})[[C.SEGMENT_ID, C.DOC_ID, C.TEXT, C.LANG]].copy()
    segs[C.START] = 100
    segs[C.END] = 100 + segs[C.TEXT].str.len()
    segs[C.CODED] = True
    return segs


LABELS = list(CUES) + ["amo.motivation"]


def _set(seed=0, prefix=""):
    """A make_gold() set (ids prefixed) with its segments, features, labels and rule scores."""
    gold = make_gold(seed=seed)
    gold["id"] = prefix + gold["id"]
    gold[C.DOC_ID] = prefix + gold[C.DOC_ID]
    segs = _segments(gold)
    feats = ml.analyze(segs)
    feats.index = pd.Index(segs[C.SEGMENT_ID], name=C.SEGMENT_ID)
    Y = gold.set_index("id")[LABELS].astype(bool)
    Y.index.name = C.SEGMENT_ID
    rs = ml.rule_score_matrix(_rule_codings(gold), Y.index, LABELS)
    return SimpleNamespace(gold=gold, segs=segs, feats=feats, Y=Y,
                           groups=gold[C.DOC_ID].to_numpy(), rs=rs)


@pytest.fixture(scope="module")
def trained():
    data = _set()
    data.model = ml.train_model(data.feats, data.Y, data.groups, rule_scores=data.rs, folds=4,
                                meta={"codebook_hash": "abc123"})
    return data


def test_features_have_lemmas_stems_and_text():
    segs = pd.DataFrame({C.TEXT: ["De leerlingen werkten samen."], C.LANG: ["nl"]})
    f = ml.analyze(segs)
    assert list(f.columns) == ml.FEATURE_COLUMNS
    assert "leerling" in f.loc[0, "lemmas"].split()  # lookup lemmatiser
    assert "leerling" in f.loc[0, "stems"].split()   # Snowball: leerlingen -> leerling
    assert "." not in f.loc[0, "lemmas"].split()


def test_train_learnable_thresholds_and_meta(trained):
    m = trained.model
    assert m.labels == LABELS
    assert m.learnable == list(CUES)
    assert "amo.motivation" in m.not_learnable and "3 positive" in m.not_learnable["amo.motivation"]
    assert set(m.thresholds) == set(CUES) and all(t in THRESHOLD_GRID for t in m.thresholds.values())
    assert m.meta["folds"] == 4 and m.meta["n_documents"] == 8
    assert len(m.meta["training_data_hash"]) == 64 and len(m.version) == 12
    # Cross-validated F1 of the model on learnable cues is far above chance.
    assert min(m.meta["cv_f1_ml"].values()) > 0.6
    # Every code has a chosen hybrid combiner, recorded in the metadata too.
    assert set(m.hybrid) == set(LABELS)
    assert all(h["combiner"] in COMBINERS for h in m.hybrid.values())
    assert set(m.meta["hybrid_combiners"]) == set(LABELS)
    # Not learnable: no model probability, so no OR/AND NOT candidate.
    assert set(m.hybrid["amo.motivation"]["inner_f1"]) <= {"rules", "stacker"}
    # alignment has no rules: only the model can find it, so the hybrid uses the model.
    assert m.hybrid["alignment"]["combiner"] in ("rules_or_model", "stacker")


def test_grouped_folds_never_split_a_document():
    groups = np.repeat(np.arange(6), 5)
    for train, test in group_folds(groups, 4):
        assert not set(groups[train]) & set(groups[test])
    with pytest.raises(UsageError, match="at least two documents"):
        group_folds(np.zeros(10), 5)


def test_training_is_deterministic(trained):
    t = trained
    again = ml.train_model(t.feats, t.Y, t.gold[C.DOC_ID].to_numpy(), rule_scores=t.rs, folds=4,
                           meta={"codebook_hash": "abc123"})
    pd.testing.assert_frame_equal(again.predict_proba(t.feats), t.model.predict_proba(t.feats))
    assert again.thresholds == t.model.thresholds and again.version == t.model.version


def test_misaligned_inputs():
    f = pd.DataFrame({c: ["a"] for c in ml.FEATURE_COLUMNS})
    with pytest.raises(UsageError, match="not aligned"):
        ml.train_model(f, pd.DataFrame({"x": [True, False]}), [0, 1])


def test_persistence_roundtrip_and_refusals(trained, tmp_path):
    m = trained.model
    data = ml.model_to_bytes(m)
    back = ml.model_from_bytes(data)
    pd.testing.assert_frame_equal(back.predict_proba(trained.feats), m.predict_proba(trained.feats))
    assert back.thresholds == m.thresholds and back.hybrid == m.hybrid
    assert back.meta["libraries"]["scikit-learn"]
    assert sio.get_untrusted_types(data=data) == []  # stock types only
    path = tmp_path / "m.skops"
    ml.save_model(m, path)
    good_cb = SimpleNamespace(hash="abc123", path="cb.yaml", ids=lambda: LABELS)
    assert ml.load_model(path, good_cb).labels == LABELS
    other_cb = SimpleNamespace(hash="fff999", path="other.yaml", ids=lambda: LABELS)
    with pytest.raises(ModelError, match=r"trained with another codebook.*other.yaml has hash fff999"):
        ml.load_model(path, other_cb)
    # A pickle is never loaded.
    (tmp_path / "evil.skops").write_bytes(pickle.dumps({"format": "qcode-model"}))
    with pytest.raises(ModelError, match="not a skops archive"):
        ml.load_model(tmp_path / "evil.skops")
    # A skops file with a type outside the trusted set is refused before loading.
    sio.dump({"format": "qcode-model", "x": SimpleNamespace(a=1)}, tmp_path / "odd.skops")
    with pytest.raises(ModelError, match="refusing to load: the file contains untrusted types"):
        ml.load_model(tmp_path / "odd.skops")
    with pytest.raises(ModelError, match="model file not found"):
        ml.load_model(tmp_path / "missing.skops")
    # Trained without a codebook: the label set must be in the codebook.
    no_cb = ml.CoderModel(None, ["agency", "zzz"], [], {}, {}, None, {})
    with pytest.raises(ModelError, match="not in cb.yaml: zzz"):
        ml.check_codebook(no_cb, good_cb)


def test_apply_ml_and_hybrid(trained):
    t = trained
    segs = t.segs.iloc[:40].reset_index(drop=True)
    codings = ml.apply_model(t.model, segs, None, None, "ml")
    assert list(codings.columns) == C.CODING_COLUMNS
    assert set(codings[C.METHOD]) == {"ml"}
    assert set(codings[C.RULE]) == {f"model:{t.model.version}"}
    assert set(codings[C.CODE_ID]) <= set(t.model.learnable)
    assert "alignment" in set(codings[C.CODE_ID])  # a code without rules is coded
    row = codings.iloc[0]
    seg = segs.set_index(C.SEGMENT_ID).loc[row[C.SEGMENT_ID]]
    assert (row[C.START], row[C.END]) == (seg[C.START], seg[C.END])
    assert (codings[C.SCORE] >= codings[C.CODE_ID].map(t.model.thresholds)).all()
    hyb = ml.apply_model(t.model, segs, segs[C.TEXT].tolist(), _rule_codings(t.gold), "hybrid")
    assert set(hyb[C.METHOD]) == {"hybrid"} and hyb[C.SCORE].between(0, 1).all()
    fired = hyb[hyb[C.RULES] != ""]
    assert len(fired) and (fired[C.N_MATCHES] >= 1).all()
    no_hybrid = ml.CoderModel(t.model.estimator, t.model.labels, t.model.learnable, {},
                              t.model.thresholds, None, {})
    with pytest.raises(ModelError, match="trained without a codebook"):
        ml.apply_model(no_hybrid, segs, None, None, "hybrid")
    with pytest.raises(UsageError, match="--method must be one of ml, hybrid"):
        ml.apply_model(t.model, segs, None, None, "rules")


def test_rule_score_matrix_rolls_up_sub_codes():
    codings = pd.DataFrame({C.SEGMENT_ID: ["a", "a", "b"], C.CODE_ID: ["amo.ability", "amo", "x"],
                            C.SCORE: [0.6, 0.9, 1.0]})
    rs = ml.rule_score_matrix(codings, ["a", "b", "c"], ["amo", "amo.ability", "x"])
    assert rs.loc["a"].tolist() == [0.9, 0.6, 0.0]
    assert rs.loc["b", "x"] == 1.0 and rs.loc["c"].sum() == 0


def test_suggest_uncertainty_sampling(trained):
    t = trained
    extra = _segments(make_gold(n_docs=2, per_doc=15, seed=9)).assign(
        segment_id=lambda d: "new" + d[C.SEGMENT_ID])
    segs = pd.concat([t.segs.iloc[:10], extra], ignore_index=True)
    feats = ml.analyze(segs)
    sheet = ml.suggest(t.model, segs, feats, n=5, exclude=["newint00:0"])
    assert len(sheet) == 5
    assert sheet[C.SEGMENT_ID].str.startswith("new").all()   # training segments skipped
    assert "newint00:0" not in set(sheet[C.SEGMENT_ID])
    assert list(sheet.columns) == [C.SEGMENT_ID, C.DOC_ID, C.TEXT, *LABELS, *ml.SUGGEST_COLUMNS]
    assert (sheet[LABELS] == "").all().all()
    assert sheet["uncertainty"].is_monotonic_decreasing
    # The chosen ones are the most uncertain of all candidates.
    cand = feats.iloc[10:].set_axis(segs[C.SEGMENT_ID].iloc[10:])
    unc = ml.uncertainty(t.model, t.model.predict_proba(cand))["uncertainty"].drop("newint00:0")
    assert sheet["uncertainty"].min() == pytest.approx(round(unc.nlargest(5).min(), 4))


def test_cross_validated_comparison(trained):
    t = trained
    table = ml.cross_validate_methods(t.feats, t.Y, t.gold[C.DOC_ID].to_numpy(),
                                      rule_scores=t.rs, folds=4)
    assert list(table[C.CODE_ID]) == LABELS + ["(macro)"]
    by = table.set_index(C.CODE_ID)
    y, p = t.Y["agency"].astype(int), (t.rs["agency"] > 0).astype(int)
    assert by.loc["agency", "f1_rules"] == pytest.approx(f1_score(y, p))
    assert by.loc["agency", "kappa_rules"] == pytest.approx(cohen_kappa_score(y, p))
    assert by.loc["alignment", "f1_rules"] == 0.0  # no rules
    # On this data the model sees cues the rules lack: hybrid beats rules (measured).
    assert by.loc["(macro)", "f1_hybrid"] > by.loc["(macro)", "f1_rules"] + 0.2
    # Which combiner each outer fold chose, with counts (4 folds per code).
    assert by.loc["(macro)", "hybrid_uses"] == ""
    for code in LABELS:
        parts = [p.rsplit(" ", 1) for p in by.loc[code, "hybrid_uses"].split(", ")]
        assert sum(int(n) for _, n in parts) == 4
    assert "rules" not in by.loc["alignment", "hybrid_uses"].replace("rules OR", "")
    md = ml.to_markdown(table)
    assert md.splitlines()[0].startswith("| code | positives | F1 rules")
    assert md.splitlines()[0].endswith("| hybrid uses |")
    readme = ml.replace_readme_block("# T\n", md)
    assert ml.replace_readme_block(readme, "new") .count("qcode:evaluation:start") == 1
    assert "new" in ml.replace_readme_block(readme, "new")


def _combiner_case(kind, seed=0, n_docs=10, per_doc=30):
    """Synthetic (p, r, y, groups) where the right hybrid combiner is known."""
    rng = np.random.default_rng(seed)
    n = n_docs * per_doc
    groups = np.repeat(np.arange(n_docs), per_doc)
    y = rng.random(n) < 0.3
    if kind == "noise":
        # Rules right on 90% of the units; the model is pure noise.
        r = np.where(rng.random(n) < 0.9, y, ~y).astype(float)
        p = rng.random(n)
    elif kind == "recall":
        # Rules find only the positives of one kind (half); the model finds all reliably.
        r = (y & (rng.random(n) < 0.5)).astype(float)
        p = np.where(y, rng.uniform(0.8, 1.0, n), rng.uniform(0.0, 0.4, n))
    else:  # "veto": rules also fire on many negatives the model reliably rules out
        r = (y | (rng.random(n) < 0.3)).astype(float)
        p = np.where(y, rng.uniform(0.4, 1.0, n), rng.uniform(0.0, 0.15, n))
    return p, r, y, groups


@pytest.mark.parametrize("kind, expected", [("noise", "rules"), ("recall", "rules_or_model"),
                                            ("veto", "rules_and_not_model")])
def test_choose_combiner_known_cases(kind, expected):
    p, r, y, groups = _combiner_case(kind)
    choice = choose_combiner(p, r, y, groups, group_folds(groups, 5))
    assert choice["combiner"] == expected, choice["inner_f1"]
    _, dec = apply_combiner(choice, p, r)
    f1 = f1_score(y, dec)
    if expected == "rules":
        assert (dec == (r > 0)).all()   # hybrid == rules
    else:
        assert f1 > f1_score(y, r > 0) + 0.1   # and the chosen combiner really helps
    if expected == "rules_or_model":
        assert 0.5 <= choice["t_high"] <= 0.8 and (dec >= (r > 0)).all()   # only adds
        assert describe_combiner(choice) == f"rules OR p>={choice['t_high']:.2f}"
    if expected == "rules_and_not_model":
        assert 0.15 <= choice["t_low"] <= 0.4 and (dec <= (r > 0)).all()   # only vetoes
        assert describe_combiner(choice).startswith("rules AND NOT p<=")


def test_choose_combiner_needs_a_clear_gain_and_handles_no_model():
    p, r, y, groups = _combiner_case("recall")
    splits = group_folds(groups, 5)
    # A required gain larger than any possible one keeps the rules.
    assert choose_combiner(p, r, y, groups, splits, min_gain=1.0)["combiner"] == "rules"
    # Not learnable (no model probability): only rules and the stacker compete.
    choice = choose_combiner(None, r, y, groups, splits)
    assert set(choice["inner_f1"]) == {"rules", "stacker"}
    score, dec = apply_combiner(choice, None, r)
    assert dec.dtype == bool and len(score) == len(r)


def test_apply_combiner_reads_old_model_entries():
    r = np.array([0.0, 1.0, 0.0, 0.5])
    p = np.array([0.9, 0.1, 0.2, 0.6])
    score, dec = apply_combiner({"fallback": "rules"}, p, r)
    assert dec.tolist() == [False, True, False, True] and score.tolist() == r.tolist()
    old_stacker = {"coef": [1.0, 0.0, 0.0], "intercept": 0.0, "threshold": 0.5}
    _, dec = apply_combiner(old_stacker, p, r)
    assert dec.tolist() == [True, False, False, True]   # logit(p) >= 0 <=> p >= 0.5
    assert describe_combiner(old_stacker) == "stacker"
    score, dec = apply_combiner({"combiner": "rules_or_model", "t_high": 0.8}, p, r)
    assert dec.tolist() == [True, True, False, True] and score[0] == 0.9
    _, dec = apply_combiner({"combiner": "rules_and_not_model", "t_low": 0.2}, p, r)
    assert dec.tolist() == [False, False, False, True]


def _macro_f1(Y, decision):
    return float(np.mean([f1_score(Y[c], decision[c], zero_division=0) for c in Y.columns]))


def test_calibration_gold_corrects_in_sample_rules():
    from pipeline.ml.calibrate import calibrate_hybrid
    train, cal, test = _set(0, "a"), _set(1, "b"), _set(2, "c")
    # Rules written from the training gold: perfect there (in-sample), so the inner
    # folds can only prefer them; on new data they find just their own cue words.
    model = ml.train_model(train.feats, train.Y, train.groups, rule_scores=train.Y.astype(float),
                           folds=4)
    assert {model.hybrid[c]["combiner"] for c in LABELS} == {"rules"}
    calibrated = calibrate_hybrid(model, cal.feats, cal.Y, cal.groups, cal.rs, folds=4,
                                  source="cal.csv")
    # alignment has no rules at all and agency's rules catch half of the positives:
    # on unseen data the model must be let in.
    assert calibrated.hybrid["alignment"]["combiner"] != "rules"
    assert calibrated.hybrid["agency"]["combiner"] != "rules"
    proba = model.predict_proba(test.feats)
    before = _macro_f1(test.Y, ml.hybrid_proba(model, proba, test.rs)[1])
    after = _macro_f1(test.Y, ml.hybrid_proba(calibrated, proba, test.rs)[1])
    assert after > before + 0.1
    info = calibrated.meta["hybrid_calibration"]
    assert info["gold"] == "cal.csv" and info["n_segments"] == len(cal.Y)
    assert info["n_documents"] == 8 and not info["thresholds_recalibrated"]
    assert calibrated.version != model.version
    assert calibrated.thresholds == model.thresholds          # estimator untouched
    assert model.hybrid["agency"]["combiner"] == "rules"      # the input is not modified
    re_t = calibrate_hybrid(model, cal.feats, cal.Y, cal.groups, cal.rs, folds=4, thresholds=True)
    assert re_t.meta["hybrid_calibration"]["thresholds_recalibrated"]
    assert set(re_t.thresholds) == set(model.thresholds)


def test_calibration_errors():
    from pipeline.ml.calibrate import calibrate_hybrid
    train, cal = _set(0, "a"), _set(1, "b")
    model = ml.train_model(train.feats, train.Y, train.groups, rule_scores=train.rs, folds=4)
    with pytest.raises(UsageError, match="no column for code.*amo.motivation"):
        calibrate_hybrid(model, cal.feats, cal.Y.drop(columns="amo.motivation"), cal.groups, cal.rs)
    with pytest.raises(UsageError, match="not aligned"):
        calibrate_hybrid(model, cal.feats.iloc[1:], cal.Y, cal.groups, cal.rs)
    one_doc = cal.groups.copy()
    one_doc[:] = "x"
    with pytest.raises(UsageError, match="at least two documents"):
        calibrate_hybrid(model, cal.feats, cal.Y, one_doc, cal.rs)
