"""Code x code co-occurrence (ATLAS.ti's code co-occurrence table, MAXQDA's Code Relations Browser).

Unit of counting: a *window* of segments. With ``window=0`` a window is one segment
(codes applied to the same segment co-occur). With ``window=N`` every coded segment
opens a window of itself and the N coded segments before and after it in the same
document; a code is "in" the window when any of those segments carries it. Counting
windows (not segment pairs) keeps n12 <= min(n1, n2), so Jaccard and the
c-coefficient stay in [0, 1] for every N.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from pipeline import columns as C
from pipeline.aggregate._common import apply_level, code_order, segment_order
from pipeline.errors import UsageError

MEASURES = ("count", "jaccard", "c")
PAIR_COLUMNS = ["code_a", "code_b", "n_a", "n_b", "n_ab", "jaccard", "c_coefficient",
                "imbalanced", "segments_a", "segments_b"]


def code_windows(segments: pd.DataFrame, codings: pd.DataFrame, *, window: int = 0,
                 level: str | int = "code") -> list[frozenset[str]]:
    """Return, for every segment in document order, the set of codes in its window."""
    if window < 0:
        raise UsageError(f"window must be >= 0 segments, got {window}")
    seg = segment_order(segments)
    cod = apply_level(codings, level)
    by_seg = cod.groupby(C.SEGMENT_ID)[C.CODE_ID].agg(frozenset).to_dict()
    out: list[frozenset[str]] = []
    for _, ids in seg.groupby(C.DOC_ID, sort=True)[C.SEGMENT_ID]:
        sets = [by_seg.get(s, frozenset()) for s in ids]
        for i in range(len(sets)):
            lo, hi = max(0, i - window), min(len(sets), i + window + 1)
            out.append(frozenset().union(*sets[lo:hi]))
    return out


def cooccurrence(segments: pd.DataFrame, codings: pd.DataFrame, *, window: int = 0,
                 level: str | int = "code", codebook: Any = None,
                 imbalance: float = 5.0) -> pd.DataFrame:
    """Count co-occurrences of every pair of codes.

    Args:
        segments: segments table (the windows' universe; filter it first).
        codings: codings table.
        window: 0 for within-segment co-occurrence, N for a window of N segments
            either side.
        level: code level (see ``apply_level``).
        codebook: optional ``Codebook`` for the code order.
        imbalance: flag a pair when the more frequent code occurs at least this many
            times as often as the other: the c-coefficient then understates the
            relation (ATLAS.ti's warning) and Jaccard is capped at n_small/n_large.

    Returns:
        One row per unordered pair (``code_a`` before ``code_b`` in code order) with
        ``n_a``, ``n_b``, ``n_ab``, ``jaccard`` = n_ab/(n_a+n_b-n_ab),
        ``c_coefficient`` (the same formula, ATLAS.ti's name), ``imbalanced`` and
        ``segments_a`` / ``segments_b``: the segments carrying each code. ``n_a``,
        ``n_b`` and ``n_ab`` count *windows*, so with ``window > 0`` they exceed the
        segment counts (a code in one segment is in up to 2N+1 windows); use the
        ``segments_*`` columns for how often a code was applied.
        Pairs that never co-occur are kept with zeros so the table is complete.
    """
    if window < 0:
        raise UsageError(f"window must be >= 0 segments, got {window}")
    own, codes = _incidence(segments, codings, level, codebook)
    wins = own if window == 0 else _windowed(own, segments, window)
    n = np.asarray(wins.sum(axis=0)).ravel().astype(np.int64)
    n_seg = np.asarray(own.sum(axis=0)).ravel().astype(np.int64)
    both = (wins.T @ wins).toarray().astype(np.int64)   # windows holding both codes
    a, b = np.triu_indices(len(codes), 1)                 # itertools.combinations' order
    n_a, n_b, n_ab = n[a], n[b], both[a, b]
    union = n_a + n_b - n_ab
    with np.errstate(divide="ignore", invalid="ignore"):
        similarity = np.where(union > 0, n_ab / np.where(union > 0, union, 1), 0.0)
    low, high = np.minimum(n_a, n_b), np.maximum(n_a, n_b)
    # ratio >= imbalance; a code that never occurs next to one that does: ratio inf
    imbalanced = (high > 0) & ((low == 0) | (high >= imbalance * np.where(low > 0, low, 1)))
    if not len(a):
        return pd.DataFrame([], columns=PAIR_COLUMNS)
    names = np.asarray(codes, dtype=object)
    return pd.DataFrame({"code_a": pd.Series(names[a]), "code_b": pd.Series(names[b]),
                         "n_a": n_a, "n_b": n_b, "n_ab": n_ab, "jaccard": similarity,
                         "c_coefficient": similarity.copy(), "imbalanced": imbalanced,
                         "segments_a": n_seg[a], "segments_b": n_seg[b]},
                        columns=PAIR_COLUMNS)


def _incidence(segments: pd.DataFrame, codings: pd.DataFrame, level: str | int,
               codebook: Any):  # noqa: ANN202 - (scipy CSR matrix, list of codes)
    """The 0/1 segment x code matrix (segments in document order, codes in code order)
    of the codings of ``segments``, and the codes: those applied plus the codebook's."""
    from scipy import sparse

    seg = segment_order(segments)
    cod = apply_level(codings[[C.SEGMENT_ID, C.CODE_ID]], level)   # order is irrelevant here
    ids = seg[C.SEGMENT_ID]
    if ids.is_unique:
        rows = pd.Index(ids).get_indexer(cod[C.SEGMENT_ID])
        take = np.flatnonzero(rows >= 0)
        rows = rows[take]
    else:  # every row of a repeated id carries the codes of that id
        hit = pd.DataFrame({C.SEGMENT_ID: cod[C.SEGMENT_ID].to_numpy(), "_cod": np.arange(len(cod))}) \
            .merge(pd.DataFrame({C.SEGMENT_ID: ids.to_numpy(), "_row": np.arange(len(seg))}),
                   on=C.SEGMENT_ID)
        take, rows = hit["_cod"].to_numpy(), hit["_row"].to_numpy()
    kinds, names = pd.factorize(cod[C.CODE_ID].iloc[take], use_na_sentinel=False)
    codes = code_order(list(names), codebook, level)
    where = {c: k for k, c in enumerate(codes)}
    column = np.array([where[str(c)] for c in names], dtype=np.int64)[kinds] \
        if len(names) else np.zeros(0, dtype=np.int64)
    own = sparse.csr_matrix((np.ones(len(column), dtype=np.int64), (rows, column)),
                            shape=(len(seg), len(codes)))
    own.data[:] = 1   # a segment coded twice with a code (two methods) carries it once
    return own, codes


def _windowed(own, segments: pd.DataFrame, window: int):  # noqa: ANN001, ANN202
    """Each segment's window: the codes of it and the ``window`` segments before and
    after it in its document (rows of ``own``, in ``segment_order``)."""
    from scipy import sparse

    doc = pd.factorize(segment_order(segments)[C.DOC_ID], use_na_sentinel=False)[0]
    n = len(doc)
    rows, cols = [np.arange(n)], [np.arange(n)]
    for step in range(1, min(window, max(n - 1, 0)) + 1):
        same = np.flatnonzero(doc[step:] == doc[:-step])   # k and k + step share a document
        rows += [same, same + step]
        cols += [same + step, same]
    band = sparse.csr_matrix((np.ones(sum(map(len, rows)), dtype=np.int64),
                              (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
    wins = (band @ own).tocsr()
    wins.data[:] = 1
    wins.eliminate_zeros()
    return wins


def cooccurrence_matrix(pairs: pd.DataFrame, measure: str = "count") -> pd.DataFrame:
    """Turn the pair table into a square symmetric code x code matrix.

    The diagonal holds each code's own frequency for ``count`` and 1 for the
    similarity measures.
    """
    col = {"count": "n_ab", "jaccard": "jaccard", "c": "c_coefficient"}.get(measure)
    if col is None:
        raise UsageError(f"unknown co-occurrence measure {measure!r}; use one of "
                         f"{', '.join(MEASURES)}")
    codes = list(dict.fromkeys([*pairs["code_a"], *pairs["code_b"]]))
    # Restore code order: code_a values come first in order, the last code only as code_b.
    where = {c: k for k, c in enumerate(codes)}
    a = np.array([where[c] for c in pairs["code_a"]], dtype=np.int64)
    b = np.array([where[c] for c in pairs["code_b"]], dtype=np.int64)
    values = np.zeros((len(codes), len(codes)))
    values[a, b] = pairs[col].to_numpy(dtype=float)
    values[b, a] = values[a, b]
    freq = dict(zip(pairs["code_a"], pairs["n_a"])) | dict(zip(pairs["code_b"], pairs["n_b"]))
    values[np.arange(len(codes)), np.arange(len(codes))] = (
        [freq.get(c, 0) for c in codes] if measure == "count" else 1.0)
    mat = pd.DataFrame(values, index=pd.Index(codes, name=C.CODE_ID), columns=codes)
    if measure == "count":
        mat = mat.astype("int64")
    return mat
