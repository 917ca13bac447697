"""Shared helpers of the aggregation functions: code levels, filters, ordering.

Everything here is pure (tables in, tables out). Code hierarchy is read from the
dotted code ids (the codebook contract: a child's id is ``<parent id>.<name>``), so
roll-ups work on the coded tables alone; a codebook, when given, only fixes the row
order and adds codes that were never applied (zero rows instead of missing rows).
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from pipeline import columns as C
from pipeline.errors import UsageError

LEVELS = ("code", "top", "all")


def ancestors(code_id: str) -> list[str]:
    """Return the ancestors of a dotted code id, nearest first (``a.b.c`` -> ``a.b``, ``a``)."""
    parts = str(code_id).split(".")
    return [".".join(parts[:i]) for i in range(len(parts) - 1, 0, -1)]


def apply_level(codings: pd.DataFrame, level: str | int = "code") -> pd.DataFrame:
    """Map codings to the requested level of the code tree.

    Args:
        codings: codings table (at least ``segment_id``, ``doc_id``, ``code_id``).
        level: ``"code"`` keeps codes as coded; ``"top"`` replaces every code by its
            top-level ancestor; ``"all"`` keeps each code and adds all its ancestors
            (a parent counts a segment once however many of its children fired); an
            int ``n`` truncates ids to their first ``n`` dotted parts.

    Returns:
        A codings table with one row per segment x code (best score kept).
    """
    if level == "code":
        return codings
    if isinstance(level, int) and not isinstance(level, bool):
        if level < 1:
            raise UsageError(f"level must be >= 1, got {level}")
        mapped = codings.assign(**{C.CODE_ID: codings[C.CODE_ID].map(
            lambda c: ".".join(str(c).split(".")[:level]))})
    elif level == "top":
        mapped = codings.assign(**{C.CODE_ID: codings[C.CODE_ID].map(
            lambda c: str(c).split(".")[0])})
    elif level == "all":
        extra = []
        for code in codings[C.CODE_ID].drop_duplicates():
            for anc in ancestors(code):
                part = codings[codings[C.CODE_ID] == code].assign(**{C.CODE_ID: anc})
                extra.append(part)
        mapped = pd.concat([codings, *extra], ignore_index=True) if extra else codings
    else:
        raise UsageError(f"unknown level {level!r}; use one of {', '.join(LEVELS)} or an int")
    # Keep the strongest evidence per segment x code so exemplar quotes stay meaningful.
    if C.SCORE in mapped.columns:
        mapped = mapped.sort_values(C.SCORE, ascending=False, kind="mergesort")
    mapped = mapped.drop_duplicates([C.SEGMENT_ID, C.CODE_ID], keep="first")
    return mapped.reset_index(drop=True)


def code_order(codes: Iterable[str], codebook: Any = None, level: str | int = "code") -> list[str]:
    """Return codes in codebook order (then alphabetical for unknown ones).

    With a codebook, codes of the requested level that were never applied are included
    so that every matrix has one row per code of the codebook.
    """
    present = {str(c) for c in codes}
    ordered: list[str] = []
    if codebook is not None:
        for cid in codebook.codes:
            if level == "top" and "." in cid:
                continue
            if isinstance(level, int) and not isinstance(level, bool) and cid.count(".") >= level:
                continue
            ordered.append(cid)
    seen = set(ordered)
    ordered += sorted(present - seen)
    return ordered


def filter_coded(segments: pd.DataFrame, codings: pd.DataFrame, *,
                 where: Mapping[str, Any] | None = None,
                 speakers: Sequence[str] | None = None,
                 methods: Sequence[str] | None = None,
                 codes: Sequence[str] | None = None,
                 coded_only: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Select segments and codings by attribute, speaker, coding method and code.

    Args:
        segments: segments table.
        codings: codings table.
        where: attribute column -> value or list of values (``{"country": "NL"}``).
        speakers: keep only segments of these speakers.
        methods: keep only codings made by these methods (rules, ml, hybrid, human).
        codes: keep only these codes (and their sub-codes).
        coded_only: keep only segments offered to the coders (respondent turns), the
            denominator of shares and rates.

    Returns:
        ``(segments, codings)``, codings restricted to the kept segments.

    Raises:
        UsageError: an attribute column does not exist.
    """
    seg = segments
    if coded_only and C.CODED in seg.columns:
        seg = seg[seg[C.CODED].astype(bool)]
    for col, value in (where or {}).items():
        if col not in seg.columns:
            raise UsageError(f"unknown attribute {col!r}; segments have: "
                             f"{', '.join(attribute_columns(segments)) or '(none)'}")
        values = [value] if isinstance(value, (str, int, float)) else list(value)
        seg = seg[seg[col].astype(str).isin([str(v) for v in values])]
    if speakers:
        seg = seg[seg[C.SPEAKER].astype(str).isin([str(s) for s in speakers])]
    cod = codings[codings[C.SEGMENT_ID].isin(seg[C.SEGMENT_ID])]
    if methods:
        cod = cod[cod[C.METHOD].isin(list(methods))]
    if codes:
        wanted = tuple(codes)
        cod = cod[cod[C.CODE_ID].map(lambda c: c in wanted or any(
            str(c).startswith(w + ".") for w in wanted))]
    return seg.reset_index(drop=True), cod.reset_index(drop=True)


# Columns of the segments table that are not attributes to group by.
_STRUCTURAL = set(C.SEGMENT_COLUMNS)


def attribute_columns(segments: pd.DataFrame) -> list[str]:
    """Return the attribute columns (metadata, CSV row attributes) of a segments table."""
    return [c for c in segments.columns if c not in _STRUCTURAL]


def word_count(text: pd.Series) -> pd.Series:
    """Count words (runs of letters/digits) per text; punctuation is not a word."""
    counts = text.fillna("").astype(str).map(lambda t: len(_WORD.findall(t)))
    return counts.astype("int64")   # an empty Series would otherwise stay object dtype


_WORD = re.compile(r"\w+(?:['’-]\w+)*")


def segment_order(segments: pd.DataFrame) -> pd.DataFrame:
    """Sort segments by document and position, stably."""
    keys = [c for c in (C.DOC_ID, C.UNIT_INDEX) if c in segments.columns]
    return segments.sort_values(keys, kind="mergesort").reset_index(drop=True)


def check_columns(df: pd.DataFrame, needed: Iterable[str], what: str) -> None:
    """Raise ``UsageError`` naming the missing columns of a table."""
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise UsageError(f"{what} table lacks column(s): {', '.join(missing)}")
