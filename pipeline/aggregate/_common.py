"""Shared helpers of the aggregation functions: code levels, filters, ordering.

Everything here is pure (tables in, tables out). Code hierarchy is read from the
dotted code ids (the codebook contract: a child's id is ``<parent id>.<name>``), so
roll-ups work on the coded tables alone; a codebook, when given, only fixes the row
order and adds codes that were never applied (zero rows instead of missing rows).
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pandas.api.types import is_string_dtype

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
        mapped = codings.assign(**{C.CODE_ID: _per_code(
            codings[C.CODE_ID], lambda c: ".".join(str(c).split(".")[:level]))})
    elif level == "top":
        mapped = codings.assign(**{C.CODE_ID: _per_code(
            codings[C.CODE_ID], lambda c: str(c).split(".")[0])})
    elif level == "all":
        mapped = _with_ancestors(codings)
    else:
        raise UsageError(f"unknown level {level!r}; use one of {', '.join(LEVELS)} or an int")
    # Keep the strongest evidence per segment x code so exemplar quotes stay meaningful.
    # Row positions first, then one ``take`` of the whole table instead of two.
    pos = np.arange(len(mapped))
    if C.SCORE in mapped.columns:
        pos = (mapped[C.SCORE].reset_index(drop=True)
               .sort_values(ascending=False, kind="mergesort").index.to_numpy())
    dup = mapped[[C.SEGMENT_ID, C.CODE_ID]].take(pos).duplicated(keep="first").to_numpy()
    return mapped.take(pos[~dup]).reset_index(drop=True)


def _per_code(codes: pd.Series, fn: Callable[[Any], str]) -> pd.Series:
    """``codes.map(fn)``, calling ``fn`` once per distinct code instead of once per row
    (a million codings have a handful of codes)."""
    if not len(codes):
        return codes.map(fn)
    index, uniques = pd.factorize(codes, use_na_sentinel=False)
    mapped = np.array([fn(c) for c in uniques], dtype=object)
    return pd.Series(mapped[index], index=codes.index)  # dtype inferred, as ``map`` does


def _with_ancestors(codings: pd.DataFrame) -> pd.DataFrame:
    """``codings`` followed by a copy of each coding for every ancestor of its code.

    The copies come in the order of a loop over the distinct codes (first appearance),
    their ancestors (nearest first) and then the rows, computed on row positions
    rather than by one boolean selection per code x ancestor.
    """
    index, uniques = pd.factorize(codings[C.CODE_ID], use_na_sentinel=False)
    parents = [ancestors(c) if isinstance(c, str) else [] for c in uniques]
    depth = np.array([len(p) for p in parents], dtype=np.int64)
    if not len(codings) or not depth.any():
        return codings
    row_depth = depth[index]
    rows, codes, nearest = [], [], []
    for j in range(int(depth.max())):
        at = np.flatnonzero(row_depth > j)
        rows.append(at)
        codes.append(index[at])
        nearest.append(np.full(len(at), j, dtype=np.int64))
    rows_, codes_, nearest_ = (np.concatenate(a) for a in (rows, codes, nearest))
    order = np.lexsort((rows_, nearest_, codes_))
    rows_, codes_, nearest_ = rows_[order], codes_[order], nearest_[order]
    width = int(depth.max())
    table = np.array([p + [""] * (width - len(p)) for p in parents], dtype=object)
    extra = codings.take(rows_).assign(**{C.CODE_ID: table[codes_, nearest_]})
    return pd.concat([codings, extra], ignore_index=True)


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
    cod = codings[_isin(codings[C.SEGMENT_ID], seg[C.SEGMENT_ID])]
    if methods:
        cod = cod[cod[C.METHOD].isin(list(methods))]
    if codes:
        wanted = tuple(codes)
        cod = cod[cod[C.CODE_ID].map(lambda c: c in wanted or any(
            str(c).startswith(w + ".") for w in wanted))]
    return seg.reset_index(drop=True), cod.reset_index(drop=True)


def _isin(values: pd.Series, allowed: pd.Series) -> np.ndarray:
    """``values.isin(allowed)`` as a boolean array.

    pandas' ``isin`` on Arrow-backed strings builds one Python scalar per allowed value
    (5 s for a million segment ids); Arrow's own ``is_in`` does the same in 0.3 s.
    """
    if is_string_dtype(values) and is_string_dtype(allowed):
        try:
            hit = pc.is_in(pa.array(values, from_pandas=True),
                           value_set=pa.array(allowed, from_pandas=True))
            return np.asarray(hit.fill_null(False), dtype=bool)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            pass  # mixed object columns: leave it to pandas
    return values.isin(allowed).to_numpy(dtype=bool)


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
