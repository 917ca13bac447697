"""settings.opening_weight (round 6): matches in a document's first coded unit.

The respondent's opening turn (who they are, which school, what the innovation is) draws
role and setting cues that coders do not code; the setting multiplies the weight of every
match in the first coded unit of each document (0: those matches are dropped).
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pipeline import columns as C
from pipeline.code import code_segments, compile_rules
from pipeline.code.matching import match_segments
from pipeline.code.opening import first_coded_units, opening_units
from pipeline.codebook import validate_codebook
from pipeline.match_cache import unit_digests
from pipeline.nlp import parse_segments
from tests.test_code import make_codebook, make_segments, run

RULES = "- id: own.t\n  kind: terms\n  terms: [eigenaar]\n  weight: 0.8\n"
TEXTS = ["Ik ben eigenaar van niks.", "We zijn eigenaar.", "Eigenaar, zeker."]


def test_default_is_off_and_rules_carry_no_opening(tmp_path: Path) -> None:
    cb = make_codebook(tmp_path, ownership=RULES)
    assert cb.settings.opening_weight == 1.0
    assert all("opening" not in r.params for r in cb.rules("nl"))
    assert compile_rules(cb, "nl").opening_factors() is None
    matches, codings, _ = run(cb, TEXTS)
    assert codings[C.SEGMENT_ID].tolist() == ["d:0", "d:1", "d:2"]


def test_zero_drops_the_first_coded_unit_only(tmp_path: Path) -> None:
    cb = make_codebook(tmp_path, ownership=RULES, settings="settings:\n  opening_weight: 0\n")
    matches, codings, _ = run(cb, TEXTS)
    assert sorted(set(matches[C.SEGMENT_ID])) == ["d:1", "d:2"]
    assert codings[C.SEGMENT_ID].tolist() == ["d:1", "d:2"]


def test_interviewer_turn_first_then_respondent_opening(tmp_path: Path) -> None:
    cb = make_codebook(tmp_path, ownership=RULES, settings="settings:\n  opening_weight: 0\n")
    matches, _, _ = run(cb, ["Eigenaar?", *TEXTS], coded=[False, True, True, True])
    assert sorted(set(matches[C.SEGMENT_ID])) == ["d:2", "d:3"]   # d:1 opens (d:0 not coded)


def test_factor_scales_weights_below_threshold(tmp_path: Path) -> None:
    cb = make_codebook(tmp_path, ownership=RULES, settings="settings:\n  opening_weight: 0.5\n")
    matches, codings, _ = run(cb, TEXTS)
    scores = matches.groupby(C.SEGMENT_ID)[C.SCORE].max().to_dict()
    assert scores == pytest.approx({"d:0": 0.4, "d:1": 0.8, "d:2": 0.8})
    assert codings[C.SEGMENT_ID].tolist() == ["d:1", "d:2"]   # 0.4 < 0.5


def test_every_document_has_its_own_opening(tmp_path: Path) -> None:
    cb = make_codebook(tmp_path, ownership=RULES, settings="settings:\n  opening_weight: 0\n")
    a, _ = make_segments(TEXTS[:2], doc_id="a")
    b, _ = make_segments(TEXTS[1:], doc_id="b")
    segs = pd.concat([a, b], ignore_index=True)
    matches, _ = code_segments(segs, parse_segments(segs), cb)
    assert sorted(set(matches[C.SEGMENT_ID])) == ["a:1", "b:1"]
    assert first_coded_units(segs) == frozenset({"a:0", "b:0"})


def test_opening_is_per_document_not_per_language(tmp_path: Path) -> None:
    """A document whose first turn is Dutch: its first English turn is no opening."""
    rules = {"nl": RULES, "en": "- id: own.en\n  kind: terms\n  terms: [owner]\n  weight: 0.8\n"}
    cb = make_codebook(tmp_path, ownership=rules, settings="settings:\n  opening_weight: 0\n")
    matches, _, _ = run(cb, ["Ik ben eigenaar.", "I am the owner.", "We zijn eigenaar."],
                        langs=["nl", "en", "nl"])
    assert sorted(set(matches[C.SEGMENT_ID])) == ["d:1", "d:2"]


def test_match_segments_without_ids_uses_first_coded_row(tmp_path: Path) -> None:
    cb = make_codebook(tmp_path, ownership=RULES, settings="settings:\n  opening_weight: 0\n")
    segs, _ = make_segments(["Eigenaar?", *TEXTS], coded=[False, True, True, True])
    out = match_segments(segs, parse_segments(segs), compile_rules(cb, "nl"))
    assert sorted(set(out[C.SEGMENT_ID])) == ["d:2", "d:3"]
    rows = [("a:0", "a", 0, None), ("a:1", "a", 0, None), ("b:0", "b", 0, None)]
    assert opening_units(rows).tolist() == [True, False, True]
    assert opening_units(rows, frozenset({"a:1"})).tolist() == [False, True, False]


def test_setting_is_in_the_match_cache_digests(tmp_path: Path) -> None:
    off = make_codebook(tmp_path, ownership=RULES)
    on = make_codebook(tmp_path, ownership=RULES, settings="settings:\n  opening_weight: 0\n")
    assert unit_digests(off, "nl")[0] != unit_digests(on, "nl")[0]


@pytest.mark.parametrize("value", ["1.5", "-0.1", "veel"])
def test_out_of_range_is_an_error_naming_the_path(tmp_path: Path, value: str) -> None:
    path = tmp_path / "cb.yaml"
    make_codebook(tmp_path, ownership=RULES)
    text = (tmp_path / "codebook.yaml").read_text(encoding="utf-8")
    path.write_text(text.replace("codes:\n", f"settings:\n  opening_weight: {value}\n"
                                 "codes:\n", 1), encoding="utf-8")
    problems = validate_codebook(path)
    assert problems and any("settings.opening_weight" in str(p) for p in problems)


def test_survey_tables_have_no_opening_unit(tmp_path: Path) -> None:
    """A CSV's rows are separate answers: its first row keeps its codes."""
    cb = make_codebook(tmp_path, ownership=RULES, settings="settings:\n  opening_weight: 0\n")
    a, _ = make_segments(TEXTS[:2], doc_id="interview")
    b, _ = make_segments(TEXTS[1:], doc_id="survey")
    segs = pd.concat([a, b], ignore_index=True)
    assert first_coded_units(segs, {"survey"}) == frozenset({"interview:0"})
    matches, _ = code_segments(segs, parse_segments(segs), cb, tables={"survey"})
    assert sorted(set(matches[C.SEGMENT_ID])) == ["interview:1", "survey:0", "survey:1"]


def test_cli_codes_the_first_survey_answer_but_not_the_opening_turn(tmp_path: Path) -> None:
    """End to end: ``qcode code`` on an interview and a survey CSV with opening_weight 0."""
    from pipeline.cli import main

    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "int.txt").write_text("I: Wie bent u?\n\nR: Ik ben eigenaar van een zaak.\n\n"
                                 "I: En de vernieuwing?\n\nR: We zijn eigenaar.\n", encoding="utf-8")
    (raw / "survey.csv").write_text("id,text\nS1,Eigenaar zeker.\nS2,Wij zijn eigenaar.\n",
                                    encoding="utf-8")
    cb = make_codebook(tmp_path, ownership=RULES, settings="settings:\n  opening_weight: 0\n")
    for extra in ([], ["--no-cache"]):
        out = tmp_path / f"out{len(extra)}"
        assert main(["code", str(raw), "--codebook", str(tmp_path / "codebook.yaml"), "--out", str(out), "-q",
                     *extra]) == 0
        coded = sorted(set(pd.read_csv(out / "codings.csv")[C.SEGMENT_ID]))
        assert coded == ["S1", "S2", "int:3"]
