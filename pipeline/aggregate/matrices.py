"""Code x document / attribute / speaker matrices (MAXQDA's Code Matrix Browser).

Rows are codes, columns are groups of segments; the value says how strongly each
code is present in each group. Pure functions: tables in, a wide DataFrame out.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from pipeline import columns as C
from pipeline.aggregate._common import (
    apply_level,
    attribute_columns,
    check_columns,
    code_order,
    word_count,
)
from pipeline.errors import UsageError

VALUES = ("segments", "share", "documents", "words_per_1000")
MISSING = "(missing)"
TOTAL = "Total"


def _as_list(by: str | Sequence[str]) -> list[str]:
    return [by] if isinstance(by, str) else list(by)


def theme_matrix(segments: pd.DataFrame, codings: pd.DataFrame, *,
                 by: str | Sequence[str] = C.DOC_ID, value: str = "segments",
                 level: str | int = "code", codebook: Any = None,
                 total: bool = False) -> pd.DataFrame:
    """Build a code x group matrix.

    Args:
        segments: segments table; its rows are the universe (the denominator of
            shares and rates), so filter it first (``filter_coded``).
        codings: codings table.
        by: one or two grouping columns of the segments table (``doc_id``,
            ``speaker`` or any attribute such as ``country``). Two columns give
            MultiIndex columns.
        value: ``segments`` (coded segments), ``share`` (of the group's segments),
            ``documents`` (documents mentioning the code) or ``words_per_1000``
            (words in segments carrying the code per 1000 words of the group).
        level: ``code``, ``top``, ``all`` or an int (see ``apply_level``).
        codebook: optional ``Codebook``; fixes row order and adds unused codes.
        total: add a ``Total`` column computed over all groups together.

    Returns:
        DataFrame indexed by ``code_id`` with one column per group value (sorted).

    Raises:
        UsageError: unknown value, grouping column, or more than two groupings.
    """
    cols = _as_list(by)
    if value not in VALUES:
        raise UsageError(f"unknown matrix value {value!r}; use one of {', '.join(VALUES)}")
    if not 1 <= len(cols) <= 2:
        raise UsageError(f"group by one or two columns, got {len(cols)}")
    for col in cols:
        if col not in segments.columns:
            raise UsageError(
                f"cannot group by {col!r}: no such column; attributes are "
                f"{', '.join(attribute_columns(segments)) or '(none)'}")
    check_columns(codings, [C.SEGMENT_ID, C.CODE_ID], "codings")

    # only the columns the value needs: a merge copies each of them once per coding
    # (with a million segments, the texts alone would be gigabytes)
    words = value == "words_per_1000"
    seg = segments[[C.SEGMENT_ID, C.DOC_ID, *([C.TEXT] if words else []),
                    *[c for c in cols if c != C.DOC_ID]]].copy()
    for col in cols:
        seg[col] = seg[col].astype(object).where(seg[col].notna(), MISSING).astype(str)
    if words:
        seg["_words"] = word_count(seg.pop(C.TEXT))
    # counts need only which segment carries which code: the other columns are not
    # copied (nor sorted by score) at every level
    cod = apply_level(codings[[C.SEGMENT_ID, C.CODE_ID]], level)
    cod = cod.merge(seg, on=C.SEGMENT_ID, how="inner")

    def compute(groups: list[str]) -> pd.DataFrame:
        keys = [C.CODE_ID, *groups]
        if value == "segments":
            out = cod.groupby(keys)[C.SEGMENT_ID].nunique()
        elif value == "documents":
            out = cod.groupby(keys)[C.DOC_ID].nunique()
        elif value == "share":
            num = cod.groupby(keys)[C.SEGMENT_ID].nunique()
            den = seg.groupby(groups)[C.SEGMENT_ID].nunique() if groups else len(seg)
            out = _divide(num, den, groups)
        else:
            num = cod.groupby(keys)["_words"].sum()
            den = seg.groupby(groups)["_words"].sum() if groups else seg["_words"].sum()
            out = _divide(num, den, groups) * 1000.0
        return out

    long = compute(cols)
    wide = long.unstack(cols) if len(long) else pd.DataFrame(index=pd.Index([], name=C.CODE_ID))
    group_values = (seg[cols].drop_duplicates().sort_values(cols).itertuples(index=False, name=None))
    col_index = (pd.Index([g[0] for g in group_values], name=cols[0]) if len(cols) == 1
                 else pd.MultiIndex.from_tuples(list(group_values), names=cols))
    rows = code_order(cod[C.CODE_ID].unique(), codebook, level)
    wide = wide.reindex(index=rows, columns=col_index).fillna(0)
    if total:
        tot = compute([])
        wide[(TOTAL,) * len(cols) if len(cols) > 1 else TOTAL] = tot.reindex(rows).fillna(0)
    wide.index.name = C.CODE_ID
    if value in ("segments", "documents"):
        wide = wide.astype("int64")
    return wide


def _divide(num: pd.Series, den: Any, groups: list[str]) -> pd.Series:
    if not groups:
        return num / den if den else num * 0.0
    den_aligned = den.reindex(num.index.droplevel(C.CODE_ID)).to_numpy()
    return num / den_aligned


def code_by_document(segments: pd.DataFrame, codings: pd.DataFrame, **kwargs: Any) -> pd.DataFrame:
    """Code x document matrix; keyword arguments as in ``theme_matrix``."""
    return theme_matrix(segments, codings, by=C.DOC_ID, **kwargs)


def code_by_attribute(segments: pd.DataFrame, codings: pd.DataFrame, by: str | Sequence[str],
                      **kwargs: Any) -> pd.DataFrame:
    """Code x attribute matrix (``by="country"`` or ``by=["country", "sector"]``)."""
    return theme_matrix(segments, codings, by=by, **kwargs)


def code_by_speaker(segments: pd.DataFrame, codings: pd.DataFrame, **kwargs: Any) -> pd.DataFrame:
    """Code x speaker matrix; speakers are labelled ``doc_id/speaker`` to keep them apart."""
    seg = segments.assign(_speaker=segments[C.DOC_ID].astype(str) + "/"
                          + segments[C.SPEAKER].fillna("").astype(str))
    out = theme_matrix(seg, codings, by="_speaker", **kwargs)
    out.columns = out.columns.rename(C.SPEAKER)
    return out


def flatten_columns(matrix: pd.DataFrame, sep: str = " · ") -> pd.DataFrame:
    """Return a copy whose MultiIndex columns are joined into single strings."""
    if isinstance(matrix.columns, pd.MultiIndex):
        out = matrix.copy()
        out.columns = [sep.join(map(str, c)) for c in matrix.columns]
        return out
    return matrix
