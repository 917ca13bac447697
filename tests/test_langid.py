"""Tests of pipeline.langid: stopword-ratio language detection."""
from __future__ import annotations

import pytest

from pipeline.errors import UsageError
from pipeline.langid import detect_language


@pytest.mark.parametrize("text, expected", [
    ("We mochten het zelf invullen, dat was fijn.", "nl"),
    ("Ik heb er eigenlijk niet zoveel tijd voor gekregen.", "nl"),
    ("We could shape it ourselves and the team decided.", "en"),
    ("The school didn't give us any time for it.", "en"),
    ("Onze leraren kregen geen uren, but the board said nothing about that at all.", "en"),
])
def test_detects_dutch_and_english(text: str, expected: str) -> None:
    assert detect_language(text) == expected
    assert detect_language(text, default="en" if expected == "nl" else "nl") == expected


@pytest.mark.parametrize("text", ["", "ok", "Goed!", "Yes", "123 456", None, float("nan")])
def test_no_evidence_gives_the_default(text: object) -> None:
    assert detect_language(text, default="en") == "en"  # type: ignore[arg-type]
    assert detect_language(text, default="nl") == "nl"  # type: ignore[arg-type]


def test_tie_gives_the_default_and_candidates_restrict() -> None:
    assert detect_language("the de and en", default="en") == "en"
    assert detect_language("the de and en", default="nl") == "nl"
    assert detect_language("We could shape it ourselves.", candidates=("nl",)) == "nl"


def test_unknown_candidate_language() -> None:
    with pytest.raises(UsageError, match="no stopword list for language 'de'"):
        detect_language("Wir haben das", candidates=("nl", "de"))
