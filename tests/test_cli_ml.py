"""``qcode train``, ``qcode suggest`` and ``qcode evaluate --methods`` end to end."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from pipeline import columns as C
from pipeline.cli import main

CODEBOOK = """\
version: 1
name: test
description: test codebook
settings: {default_lang: nl, languages: [nl, en], threshold: 0.5}
codes:
  - id: agency
    label: {nl: Agency, en: Agency}
    definition: d
    rules:
      nl: [{kind: terms, terms: [bepalen, kiezen]}]
  - id: ownership
    label: {nl: Eigenaarschap, en: Ownership}
    definition: d
    rules:
      nl: [{kind: terms, terms: [eigenaar]}]
  - id: alignment
    label: {nl: Afstemming, en: Alignment}
    definition: d
  - id: shared_leadership
    label: {nl: Gedeeld leiderschap, en: Shared leadership}
    definition: d
  - id: amo
    label: {nl: AMO, en: AMO}
    definition: d
    children:
      - id: amo.ability
        label: {nl: Kunnen, en: Ability}
        definition: d
      - id: amo.motivation
        label: {nl: Willen, en: Motivation}
        definition: d
      - id: amo.opportunity
        label: {nl: Mogen, en: Opportunity}
        definition: d
        rules:
          nl: [{kind: terms, terms: [tijd, uren]}]
"""
CUES = {
    "agency": (["bepalen", "kiezen"], ["beslissen", "zeggenschap", "initiatief"]),
    "ownership": (["eigenaar"], ["verantwoordelijk", "trots"]),
    "alignment": ([], ["visie", "afstemmen"]),
    "amo.opportunity": (["tijd", "uren"], ["werkdruk", "roosterruimte"]),
}
FILLER = "de school het team was goed en we hadden veel lessen met de klas vandaag".split()


def _gold(n_docs=6, per_doc=15, seed=0, prefix="int"):
    rng = np.random.default_rng(seed)
    rows = []
    for d in range(n_docs):
        for u in range(per_doc):
            labels = {c: bool(rng.random() < 0.35) for c in CUES}
            words = list(rng.choice(FILLER, 6))
            for code, (rule_terms, ml_terms) in CUES.items():
                if labels[code]:
                    pool = rule_terms + ml_terms if rng.random() < 0.5 else ml_terms
                    words.insert(int(rng.integers(0, len(words))), str(rng.choice(pool)))
            rows.append({"id": f"{prefix}{d:02d}:{u}", "text": " ".join(words),
                         **{c: int(v) for c, v in labels.items()}})
    return pd.DataFrame(rows)


@pytest.fixture
def workspace(tmp_path):
    (tmp_path / "cb.yaml").write_text(CODEBOOK, encoding="utf-8")
    _gold().to_csv(tmp_path / "gold.csv", index=False)
    return tmp_path


def test_train_then_suggest(workspace, capsys):
    w = workspace
    rc = main(["train", str(w / "gold.csv"), "--codebook", str(w / "cb.yaml"),
               "--out", str(w / "model.skops"), "--folds", "3"])
    assert rc == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "on 90 segments from 6 documents (3-fold grouped CV)" in out
    assert "alignment" in out and "CV F1" in out
    assert out.count("hybrid uses ") == len(CUES)   # the chosen combiner of every code
    assert (w / "model.skops").stat().st_size > 1000

    new = _gold(n_docs=2, per_doc=10, seed=5, prefix="new")[["id", "text"]]
    new.to_csv(w / "new.csv", index=False)
    rc = main(["suggest", "--model", str(w / "model.skops"), "--segments", str(w / "new.csv"),
               "--n", "4", "--out", str(w / "next.csv"), "--codebook", str(w / "cb.yaml")])
    assert rc == 0, capsys.readouterr().err
    sheet = pd.read_csv(w / "next.csv", keep_default_na=False)
    assert len(sheet) == 4 and sheet[C.SEGMENT_ID].str.startswith("new").all()
    assert {"agency", "alignment", "uncertainty"} <= set(sheet.columns)
    assert (sheet["agency"] == "").all()

    # A changed codebook is refused with a clear message.
    (w / "cb2.yaml").write_text(CODEBOOK.replace("test codebook", "changed"), encoding="utf-8")
    rc = main(["suggest", "--model", str(w / "model.skops"), "--segments", str(w / "new.csv"),
               "--codebook", str(w / "cb2.yaml")])
    assert rc == 1
    assert "trained with another codebook" in capsys.readouterr().err


def test_train_without_codebook_and_label_errors(workspace, capsys):
    w = workspace
    rc = main(["train", str(w / "gold.csv"), "--out", str(w / "m.skops"), "-q", "--folds", "3"])
    assert rc == 0
    bad = _gold().rename(columns={"alignment": "Alignment!"})
    bad.to_csv(w / "bad.csv", index=False)
    rc = main(["train", str(w / "bad.csv"), "--codebook", str(w / "cb.yaml"), "--out", str(w / "x")])
    assert rc == 1
    err = capsys.readouterr().err
    assert "bad.csv: label column(s) 'Alignment!' are not code ids of" in err
    _gold()[["id", "agency"]].to_csv(w / "notext.csv", index=False)
    assert main(["train", str(w / "notext.csv"), "--out", str(w / "x")]) == 1
    assert "has no text column: give --segments" in capsys.readouterr().err
    one_doc = _gold(n_docs=1)
    one_doc.to_csv(w / "one.csv", index=False)
    assert main(["train", str(w / "one.csv"), "--out", str(w / "x")]) == 1
    assert "at least two documents" in capsys.readouterr().err


def test_evaluate_methods_side_by_side(workspace, capsys):
    w = workspace
    (w / "README.md").write_text("# Project\n\nIntro.\n", encoding="utf-8")
    rc = main(["evaluate", str(w / "gold.csv"), "--methods", "rules,ml,hybrid", "--codebook",
               str(w / "cb.yaml"), "--folds", "3", "--out", str(w / "cv.csv"),
               "--readme", str(w / "README.md")])
    assert rc == 0, capsys.readouterr().err
    table = pd.read_csv(w / "cv.csv").set_index(C.CODE_ID)
    assert {"f1_rules", "f1_ml", "f1_hybrid", "kappa_hybrid"} <= set(table.columns)
    assert table.loc["alignment", "f1_rules"] == 0.0   # no rules for alignment
    assert table.loc["(macro)", "f1_hybrid"] > table.loc["(macro)", "f1_rules"]
    assert table["hybrid_uses"].iloc[:-1].str.len().gt(0).all()
    readme = (w / "README.md").read_text(encoding="utf-8")
    assert readme.startswith("# Project") and "| code | positives | F1 rules" in readme
    assert "| hybrid uses |" in readme
    assert "grouped by document" in readme


def test_train_from_long_gold_with_segments_table(workspace, capsys):
    w = workspace
    wide = _gold(n_docs=4, per_doc=12)
    segs = wide[["id", "text"]].rename(columns={"id": C.SEGMENT_ID})
    segs.to_csv(w / "segments.csv", index=False)
    rows = [{C.SEGMENT_ID: r["id"], C.CODE_ID: c} for _, r in wide.iterrows()
            for c in CUES if r[c]]
    rows += [{C.SEGMENT_ID: r["id"], C.CODE_ID: ""} for _, r in wide.iterrows()
             if not any(r[c] for c in CUES)]  # hand-coded, no code
    pd.DataFrame(rows).to_csv(w / "long.csv", index=False)
    rc = main(["train", str(w / "long.csv"), "--segments", str(w / "segments.csv"),
               "--out", str(w / "m.skops"), "--folds", "2"])
    assert rc == 0, capsys.readouterr().err
    assert "on 48 segments from 4 documents" in capsys.readouterr().out
    pd.DataFrame({C.SEGMENT_ID: ["zz:1"], C.CODE_ID: ["agency"]}).to_csv(w / "orphan.csv", index=False)
    assert main(["train", str(w / "orphan.csv"), "--segments", str(w / "segments.csv"),
                 "--out", str(w / "x")]) == 1
    assert "1 gold segment(s) not in" in capsys.readouterr().err


def test_train_with_calibration_gold(workspace, capsys):
    w = workspace
    _gold(n_docs=4, per_doc=15, seed=3, prefix="cal").to_csv(w / "cal.csv", index=False)
    rc = main(["train", str(w / "gold.csv"), "--codebook", str(w / "cb.yaml"), "--folds", "3",
               "--calibration", str(w / "cal.csv"), "--out", str(w / "cal.skops")])
    assert rc == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "hybrid combiners chosen on" in out and "(60 segments from 4 documents" in out
    from pipeline.ml import load_model
    model = load_model(w / "cal.skops")
    assert model.meta["hybrid_calibration"]["n_segments"] == 60
    assert set(model.hybrid) == set(model.labels)

    rc = main(["train", str(w / "gold.csv"), "--codebook", str(w / "cb.yaml"), "--folds", "3",
               "--out", str(w / "plain.skops")])
    assert rc == 0
    assert "give --calibration GOLD2" in capsys.readouterr().out

    # The calibration gold must be separate from the training gold, and needs the codebook.
    rc = main(["train", str(w / "gold.csv"), "--codebook", str(w / "cb.yaml"), "--folds", "3",
               "--calibration", str(w / "gold.csv"), "--out", str(w / "x.skops")])
    assert rc == 1
    assert "are also in the training gold" in capsys.readouterr().err
    rc = main(["train", str(w / "gold.csv"), "--calibration", str(w / "cal.csv"),
               "--out", str(w / "x.skops")])
    assert rc == 1
    assert "--calibration needs --codebook" in capsys.readouterr().err
    assert not (w / "x.skops").exists()
    # Several calibration golds are pooled (units of both, ids must not repeat).
    _gold(n_docs=2, per_doc=15, seed=4, prefix="calb").to_csv(w / "cal_b.csv", index=False)
    rc = main(["train", str(w / "gold.csv"), "--codebook", str(w / "cb.yaml"), "--folds", "2",
               "--calibration", str(w / "cal.csv"), str(w / "cal_b.csv"),
               "--out", str(w / "cal2.skops")])
    assert rc == 0, capsys.readouterr().err
    assert "(90 segments from 6 documents" in capsys.readouterr().out
    assert load_model(w / "cal2.skops").meta["hybrid_calibration"]["n_segments"] == 90
    rc = main(["train", str(w / "gold.csv"), "--codebook", str(w / "cb.yaml"), "--folds", "3",
               "--calibration", str(w / "cal.csv"), str(w / "cal.csv"), "--out", str(w / "x.skops")])
    assert rc == 1
    assert "is in more than one gold file" in capsys.readouterr().err
    # A calibration gold without text names the calibration option, not --segments.
    _gold(n_docs=4, per_doc=15, seed=3, prefix="cal")[["id", "agency"]].to_csv(
        w / "cal_notext.csv", index=False)
    rc = main(["train", str(w / "gold.csv"), "--codebook", str(w / "cb.yaml"), "--folds", "3",
               "--calibration", str(w / "cal_notext.csv"), "--out", str(w / "x.skops")])
    assert rc == 1
    assert "has no text column: give --calibration-segments" in capsys.readouterr().err


def test_train_on_several_gold_files(workspace, capsys):
    w = workspace
    gold = pd.read_csv(w / "gold.csv")
    first, second = gold[gold["id"] < "int03"], gold[gold["id"] >= "int03"]
    first.to_csv(w / "g1.csv", index=False)
    second.drop(columns=["text"]).to_csv(w / "g2.csv", index=False)   # texts from --segments
    second[["id", "text"]].to_csv(w / "texts2.csv", index=False)
    first[["id", "text"]].rename(columns={"id": "segment_id"}).to_csv(w / "texts1.csv", index=False)
    rc = main(["train", str(w / "g1.csv"), str(w / "g2.csv"), "--segments", str(w / "texts2.csv"),
               str(w / "texts1.csv"), "--codebook", str(w / "cb.yaml"), "--folds", "3",
               "--out", str(w / "two.skops")])
    assert rc == 0, capsys.readouterr().err
    assert "on 90 segments from 6 documents" in capsys.readouterr().out
    from pipeline.ml import load_model
    assert load_model(w / "two.skops").meta["gold"] == f"{w / 'g1.csv'}, {w / 'g2.csv'}"

    rc = main(["train", str(w / "g1.csv"), str(w / "g1.csv"), "--out", str(w / "x.skops")])
    assert rc == 1
    assert "is in more than one gold file" in capsys.readouterr().err
    rc = main(["train", str(w / "g2.csv"), "--segments", str(w / "texts2.csv"), str(w / "texts2.csv"),
               "--out", str(w / "x.skops")])
    assert rc == 1
    assert "is in more than one of the segment sources" in capsys.readouterr().err


def _model_and_transcripts(w):
    """Train ``m.skops`` on the workspace gold; write 4 new transcripts to ``raw/``."""
    assert main(["train", str(w / "gold.csv"), "--codebook", str(w / "cb.yaml"), "--folds", "3",
                 "--out", str(w / "m.skops"), "-q"]) == 0
    raw = w / "raw"
    raw.mkdir()
    new = _gold(n_docs=4, per_doc=8, seed=11, prefix="d")
    for d, rows in new.groupby(new["id"].str.split(":").str[0]):
        body = "".join(f"I: Vraag {k}?\nR: {t}\n\n" for k, t in enumerate(rows["text"]))
        (raw / f"{d}.txt").write_text(body, encoding="utf-8")
    return raw


def test_code_with_model_is_streamed_chunk_by_chunk(workspace, capsys):
    """--method ml|hybrid codes every chunk with the model; chunking changes nothing."""
    from pipeline.runner import RunOptions, code_corpus
    w = workspace
    raw = _model_and_transcripts(w)
    outs = {}
    for method in ("ml", "hybrid"):
        for chunk_bytes in (1, 1_000_000):        # one file per chunk / everything in one
            out = w / f"{method}-{chunk_bytes}"
            res = code_corpus([raw], codebook=w / "cb.yaml", out_dir=out,
                              options=RunOptions(progress=False, cache=False, method=method,
                                                 model=str(w / "m.skops"), chunk_bytes=chunk_bytes))
            assert res.exit_code == 0
            outs[method, chunk_bytes] = pd.read_parquet(out / "codings.parquet")
        one, many = outs[method, 1_000_000], outs[method, 1]
        pd.testing.assert_frame_equal(one, many)
        assert len(one) and (one[C.METHOD] == method).all()
        assert one[C.RULE].str.startswith("model:").all()
        assert set(one[C.CODE_ID]) <= {"agency", "ownership", "alignment", "amo.opportunity"}
        manifest = json.loads((w / f"{method}-1" / "manifest.json").read_text())
        assert manifest["counts"]["codings"] == len(one)
        assert sum(manifest["counts"]["codings_per_code"].values()) == len(one)
    # The hybrid keeps the rule evidence where a rule fired.
    hyb = outs["hybrid", 1]
    assert (hyb[C.EVIDENCE] != "").any()


def test_code_with_model_from_cache_equals_uncached(workspace):
    """A model run whose tables come from the table cache still reads whole segments."""
    import hashlib

    from pipeline.runner import RunOptions, code_corpus
    w = workspace
    raw = _model_and_transcripts(w)

    def run(out, method, cache):
        code_corpus([raw], codebook=w / "cb.yaml", out_dir=w / out,
                    options=RunOptions(progress=False, cache=cache, method=method,
                                       model=str(w / "m.skops"), chunk_bytes=1))
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
                for p in (w / out).iterdir() if p.suffix in (".csv", ".parquet")}

    run("cached", "rules", True)  # fills the caches, the table cache too
    assert run("cached", "hybrid", True) == run("fresh", "hybrid", False)
    assert run("cached", "ml", True) == run("fresh", "ml", False)
    for out in ("cached", "fresh"):  # the model's codings, not the rules' (CSV rows made early)
        codings = pd.read_parquet(w / out / "codings.parquet")
        assert (codings[C.METHOD] == "ml").all()
        text = codings.to_csv(index=False, lineterminator="\n")
        assert (w / out / "codings.csv").read_text(encoding="utf-8") == text


def _opening_book(w):
    path = w / "cb_open.yaml"
    path.write_text(CODEBOOK.replace("threshold: 0.5}", "threshold: 0.5, opening_weight: 0}"),
                    encoding="utf-8")
    from pipeline.codebook import load_codebook
    return load_codebook(path, require_codes=False)


def _scores(data, book):
    from pipeline.cli.ml import _prepare
    _, rules = _prepare(data, book)
    return rules["amo.opportunity"].to_dict()


def test_training_rule_scores_drop_only_the_true_opening_unit(workspace):
    """Gold with text: the document's first unit by index (":1", not ":10" that sorts
    first as a string) opens it; survey row ids ("S001") belong to no opening."""
    from pipeline.cli.ml import load_training
    w = workspace
    ids = ["int00:10", "int00:1", "int00:2", "S001", "S002"]
    gold = pd.DataFrame({"id": ids, "text": ["we hadden geen tijd"] * 5,
                         **{c: [0, 1, 0, 1, 0] for c in CUES}})
    gold.to_csv(w / "g.csv", index=False)
    book = _opening_book(w)
    scores = _scores(load_training(str(w / "g.csv"), segments=None, codebook=book), book)
    assert scores["int00:1"] == 0
    assert all(scores[k] > 0.5 for k in ("int00:10", "int00:2", "S001", "S002")), scores


def test_training_rule_scores_from_a_coded_folder_match_the_run(workspace, capsys):
    """Segments from a coded folder: the run's own opening units (the first respondent
    turn; none in a survey CSV), whatever units the gold holds."""
    from pipeline.cli.ml import load_training
    from pipeline.store import load_coded
    w = workspace
    raw = w / "raw"
    raw.mkdir()
    (raw / "int.txt").write_text("I: Vraag?\nR: Geen tijd.\nI: En toen?\nR: Nog steeds geen tijd.\n"
                                 "I: Later?\nR: Weer geen tijd.\n", encoding="utf-8")
    (raw / "survey.csv").write_text("id,text\nS1,Geen tijd.\nS2,Te weinig uren.\n", encoding="utf-8")
    book = _opening_book(w)
    assert main(["code", str(raw), "--out", str(w / "coded"), "--codebook", str(w / "cb_open.yaml"),
                 "--quiet", "--no-cache"]) == 0, capsys.readouterr().err
    run = load_coded(w / "coded").codings
    coded_run = set(run.loc[run[C.CODE_ID] == "amo.opportunity", C.SEGMENT_ID])
    assert coded_run == {"int:3", "int:5", "S1", "S2"}   # int:1 opens the interview
    # the gold leaves out the opening turn: no other unit takes its place
    gold = pd.DataFrame({"id": ["int:3", "int:5", "S1", "S2"], **{c: [1, 0, 1, 0] for c in CUES}})
    gold.to_csv(w / "g2.csv", index=False)
    data = load_training(str(w / "g2.csv"), segments=str(w / "coded"), codebook=book)
    scores = _scores(data, book)
    assert {k for k, v in scores.items() if v >= 0.5} == coded_run


def test_train_on_an_empty_gold_is_a_clear_error(workspace, capsys):
    (workspace / "empty.csv").write_text("id,text,agency\n", encoding="utf-8")
    assert main(["train", str(workspace / "empty.csv"), "--out", str(workspace / "m.skops"),
                 "--codebook", str(workspace / "cb.yaml")]) == 1
    assert "at least two documents" in capsys.readouterr().err


def test_code_with_model_and_two_jobs_equals_one_job(workspace, monkeypatch):
    """With --jobs 2 (or Dask) the model pass runs on the workers too: it reads the
    segment parts the rule pass's workers encoded as Parquet; the chunks' codings come
    back in order, the same files as one job."""
    import hashlib

    from pipeline import model_pass
    from pipeline.runner import RunOptions, code_corpus
    w = workspace
    raw = _model_and_transcripts(w)
    used = []
    for name in ("_pool", "_dask"):
        real = getattr(model_pass, name)
        monkeypatch.setattr(model_pass, name,
                            lambda *a, _real=real, _name=name, **k: used.append(_name) or
                            _real(*a, **k))
    found = {}
    for label, kw in (("one", {}), ("two", {"jobs": 2}), ("dask", {"jobs": 2, "engine": "dask"})):
        out = w / f"hybrid-{label}"
        res = code_corpus([raw], codebook=w / "cb.yaml", out_dir=out,
                          options=RunOptions(progress=False, cache=False, method="hybrid",
                                             model=str(w / "m.skops"), chunk_bytes=1, **kw))
        assert res.exit_code == 0 and res.manifest["throughput"]["chunks"] > 1
        found[label] = {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
                        for p in out.iterdir() if p.suffix in (".csv", ".parquet")}
    assert found["one"] == found["two"] == found["dask"] and "codings.parquet" in found["two"]
    assert used == ["_pool", "_dask"]
