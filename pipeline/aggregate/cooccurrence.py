"""Code x code co-occurrence (ATLAS.ti's code co-occurrence table, MAXQDA's Code Relations Browser).

Unit of counting: a *window* of segments. With ``window=0`` a window is one segment
(codes applied to the same segment co-occur). With ``window=N`` every coded segment
opens a window of itself and the N coded segments before and after it in the same
document; a code is "in" the window when any of those segments carries it. Counting
windows (not segment pairs) keeps n12 <= min(n1, n2), so Jaccard and the
c-coefficient stay in [0, 1] for every N.
"""
from __future__ import annotations

from itertools import combinations
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
    wins = code_windows(segments, codings, window=window, level=level)
    own = wins if window == 0 else code_windows(segments, codings, window=0, level=level)
    codes = code_order({c for w in wins for c in w}, codebook, level)
    n_seg = {c: 0 for c in codes}
    for w in own:
        for c in w:
            n_seg[c] += 1
    pos = {c: i for i, c in enumerate(codes)}
    n = np.zeros(len(codes), dtype=np.int64)
    both = np.zeros((len(codes), len(codes)), dtype=np.int64)
    for w in wins:
        idx = sorted(pos[c] for c in w)
        n[idx] += 1
        for a, b in combinations(idx, 2):
            both[a, b] += 1
    rows = []
    for a, b in combinations(range(len(codes)), 2):
        n_a, n_b, n_ab = int(n[a]), int(n[b]), int(both[a, b])
        union = n_a + n_b - n_ab
        ratio = max(n_a, n_b) / min(n_a, n_b) if min(n_a, n_b) else float("inf")
        rows.append((codes[a], codes[b], n_a, n_b, n_ab,
                     n_ab / union if union else 0.0,
                     n_ab / union if union else 0.0,
                     bool(max(n_a, n_b) > 0 and ratio >= imbalance),
                     n_seg[codes[a]], n_seg[codes[b]]))
    return pd.DataFrame(rows, columns=PAIR_COLUMNS)


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
    mat = pd.DataFrame(0.0, index=pd.Index(codes, name=C.CODE_ID), columns=codes)
    for row in pairs.itertuples(index=False):
        v = getattr(row, col)
        mat.loc[row.code_a, row.code_b] = v
        mat.loc[row.code_b, row.code_a] = v
    freq = dict(zip(pairs["code_a"], pairs["n_a"])) | dict(zip(pairs["code_b"], pairs["n_b"]))
    for c in codes:
        mat.loc[c, c] = freq.get(c, 0) if measure == "count" else 1.0
    if measure == "count":
        mat = mat.astype("int64")
    return mat
