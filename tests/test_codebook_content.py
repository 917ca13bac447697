"""Content tests of codebook.yaml: it validates, and the rule coder reproduces its own examples.

For every code, each positive example (coded alone as one respondent segment) must get that
code or one of its descendants from the rule coder, and each negative example must not.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pipeline import columns as C
from pipeline.code import code_segments
from pipeline.codebook import load_codebook, validate_codebook
from pipeline.nlp import parse_segments

CODEBOOK = Path(__file__).resolve().parents[1] / "codebook.yaml"

# Examples the rules cannot be expected to get right, with the reason: (code id, text) -> reason.
XFAIL: dict[tuple[str, str], str] = {}


def _examples() -> list[tuple[str, str, str, bool]]:
    """(code id, text, lang, positive?) for every example in the codebook."""
    book = load_codebook(CODEBOOK)
    default = book.settings.default_lang
    out = []
    for code_id, code in book.codes.items():
        for positive, items in ((True, code.examples_positive), (False, code.examples_negative)):
            for text, lang in items:
                out.append((code_id, text, lang or default, positive))
    return out


def _segments(texts_langs: list[tuple[str, str]]) -> pd.DataFrame:
    rows = []
    for k, (text, lang) in enumerate(texts_langs):
        rows.append({C.SEGMENT_ID: f"ex:{k}", C.DOC_ID: "ex", C.UNIT: "turn", C.UNIT_INDEX: k,
                     C.TURN: k, C.SPEAKER: "R", C.ROLE: "respondent", C.CODED: True,
                     C.START: 0, C.END: len(text), C.LANG: lang, C.TEXT: text})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def coded() -> dict[tuple[str, str], set[str]]:
    """(text, lang) -> the code ids the rule coder gives it, with all their ancestors."""
    book = load_codebook(CODEBOOK)
    keys = list(dict.fromkeys((text, lang) for _, text, lang, _ in _examples()))
    segments = _segments(keys)
    _, codings = code_segments(segments, parse_segments(segments), book)
    found: dict[str, set[str]] = {sid: set() for sid in segments[C.SEGMENT_ID]}
    for sid, code_id in zip(codings[C.SEGMENT_ID], codings[C.CODE_ID], strict=True):
        found[sid].update([code_id, *book.ancestors(code_id)])
    return {key: found[f"ex:{k}"] for k, key in enumerate(keys)}


def test_codebook_validates() -> None:
    assert validate_codebook(CODEBOOK) == []
    book = load_codebook(CODEBOOK)
    assert len(book.codes) == 33
    for code_id in book.ids():
        assert book.codes[code_id].rules, f"{code_id} has no rules"


def test_every_code_has_rules_in_both_languages() -> None:
    book = load_codebook(CODEBOOK)
    for lang in ("nl", "en"):
        with_rules = {rule.code_id for rule in book.rules(lang)}
        assert set(book.ids()) <= with_rules, f"{lang}: no rules for {set(book.ids()) - with_rules}"


def _params():
    for code_id, text, lang, positive in _examples():
        marks = []
        reason = XFAIL.get((code_id, text))
        if reason:
            marks.append(pytest.mark.xfail(reason=reason, strict=True))
        yield pytest.param(code_id, text, lang, positive, marks=marks,
                           id=f"{code_id}-{'pos' if positive else 'neg'}-{text[:40]}")


@pytest.mark.parametrize(("code_id", "text", "lang", "positive"), list(_params()))
def test_example(coded, code_id: str, text: str, lang: str, positive: bool) -> None:
    codes = coded[(text, lang)]
    if positive:
        assert code_id in codes, f"positive example of {code_id} not coded; got {sorted(codes)}"
    else:
        assert code_id not in codes, f"negative example of {code_id} was coded {code_id}"


# Decoys and cues of the cross-writer revision (round 3): invented sentences, one per concept-level
# change, so that a later edit that brings the misreading back fails here. (text, lang, code, coded?)
DECOYS: list[tuple[str, str, str, bool]] = [
    # the researcher's or respondent's setting is not a condition or a skill
    ("Volgens de expert is dat in veel scholen nog een open vraag.", "nl", "amo.ability", False),
    ("Zij werkt als onderzoeker aan een hogeschool in Antwerpen.", "nl", "amo.opportunity", False),
    ("He teaches at a university and met us in a café near the station.", "en", "amo.opportunity", False),
    ("Mijn lokaal is op de tweede verdieping, naast de kantine.", "nl", "amo.opportunity", False),
    ("We hebben een lokaal nodig dat groot genoeg is voor twee klassen.", "nl", "amo.opportunity", True),
    # pupils' motivation, the owner of a shop, the expert's own critical stance
    ("De motivatie van die jongens voor wiskunde blijft laag.", "nl", "amo.motivation", False),
    ("De nieuwe eigenaar van de bakkerij heeft dat geregeld.", "nl", "ownership", False),
    ("Over de planning is de expert kritisch.", "nl", "amo.motivation", False),
    # lexicon and idioms that carry the concept in other writers' words
    ("Veel collega's doen het alleen omdat het moet.", "nl", "amo.motivation", True),
    ("Niemand wist hoe je zoiets in de klas aanpakt.", "nl", "amo.ability", True),
    ("De directeur maakte elke week een middag vrij voor ons.", "nl", "amo.opportunity", True),
    ("Ze vroeg twee docenten om de werkgroep te trekken.", "nl", "shared_leadership", True),
    ("Teachers experienced it as something done to them.", "en", "ownership", True),
    ("Elke sectie werkte op haar eigen eiland, we stonden er alleen voor.", "nl", "alignment", True),
    # negation: a decision that was never taken is not the adoption phase
    ("Zo is het gegroeid, niet dat iemand dat ooit zo besloten heeft.", "nl", "phase.adoption", False),
]


@pytest.fixture(scope="module")
def coded_decoys() -> list[set[str]]:
    book = load_codebook(CODEBOOK)
    segments = _segments([(text, lang) for text, lang, _, _ in DECOYS])
    _, codings = code_segments(segments, parse_segments(segments), book)
    found: dict[str, set[str]] = {sid: set() for sid in segments[C.SEGMENT_ID]}
    for sid, code_id in zip(codings[C.SEGMENT_ID], codings[C.CODE_ID], strict=True):
        found[sid].update([code_id, *book.ancestors(code_id)])
    return [found[f"ex:{k}"] for k in range(len(DECOYS))]


@pytest.mark.parametrize("k", range(len(DECOYS)), ids=[f"{d[2]}-{d[0][:40]}" for d in DECOYS])
def test_decoy(coded_decoys, k: int) -> None:
    text, _, code_id, expected = DECOYS[k]
    codes = coded_decoys[k]
    assert (code_id in codes) == expected, f"{text!r}: expected {code_id} {expected}; got {sorted(codes)}"


def test_vocab_lists_are_used() -> None:
    """Every shared vocabulary list has both languages and is referenced by at least one rule."""
    import yaml
    raw = yaml.safe_load(CODEBOOK.read_text(encoding="utf-8"))
    text = CODEBOOK.read_text(encoding="utf-8")
    for name, langs in raw["vocab"].items():
        assert set(langs) == {"nl", "en"}, name
        assert f'"@{name}"' in text or f"@{name}" in text.split("\ncodes:\n", 1)[1], f"@{name} unused"
