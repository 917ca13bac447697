"""Speaker roles: who is the interviewer, and which speakers' units are coded.

Split from ``segment``, which re-exports ``normalise_label`` and ``speaker_role``.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import pandas as pd

from pipeline import columns as C

_TRAILING_NUMBER = re.compile(r"[\s_-]*\d+$")


def normalise_label(label: object) -> str:
    """Normalise a speaker label for comparison ("Interviewer 2" -> "interviewer")."""
    text = str(label or "").strip().strip("*[]():").strip()
    text = _TRAILING_NUMBER.sub("", text)
    return text.casefold()


def speaker_role(label: object, interviewer_labels: Iterable[str]) -> str:
    """Return ``"interviewer"`` or ``"respondent"`` for a speaker label.

    A label is the interviewer's when it is an interviewer label ("I", "Interviewer 2"),
    when one appears as a word in parentheses ("Pieters, Anna (Onderzoeker)", "Anna
    (I)", "Anna Pieters (interviewer)"), or as a role prefix/suffix joined by a dash,
    colon or bar ("Interviewer - Anna", "Anna | Interviewer").
    """
    known = {normalise_label(x) for x in interviewer_labels} - {""}
    text = str(label or "").strip()
    if not text:
        return C.RESPONDENT
    if normalise_label(text) in known:
        return C.INTERVIEWER
    for inner in _PARENS.findall(text):
        words = _ROLE_WORDS.findall(inner)
        phrase = normalise_label(" ".join(words))
        if phrase in known or any(normalise_label(w) in known for w in words):
            return C.INTERVIEWER
    parts = [p for p in _ROLE_SEP.split(_PARENS.sub(" ", text)) if p.strip()]
    if len(parts) > 1 and (normalise_label(parts[0]) in known
                           or normalise_label(parts[-1]) in known):
        return C.INTERVIEWER
    return C.RESPONDENT


def _roles(speakers: list, labels: Iterable[str]) -> list[str]:
    """``speaker_role`` of every label, computed once per distinct label (a few per corpus)."""
    memo = {label: speaker_role(label, labels) for label in dict.fromkeys(speakers)}
    return list(map(memo.__getitem__, speakers))


_PARENS = re.compile(r"[(\[]([^()\[\]]*)[)\]]")
_ROLE_WORDS = re.compile(r"[^\W_]+", re.UNICODE)
_ROLE_SEP = re.compile(r"\s+[-\u2013\u2014|/]\s+|\s*:\s+")


def _coded_flags(speakers: pd.Series, roles: pd.Series,
                 code_speakers: Sequence[str] | str | None) -> pd.Series:
    if code_speakers is None:
        return roles.eq(C.RESPONDENT)
    if isinstance(code_speakers, str):
        if code_speakers.strip().lower() == "all":
            return pd.Series(True, index=speakers.index)
        code_speakers = [x for x in code_speakers.split(",") if x.strip()]
    wanted = {normalise_label(x) for x in code_speakers}
    if "all" in wanted:
        return pd.Series(True, index=speakers.index)
    return speakers.map(normalise_label).isin(wanted)
