"""``aggregate_matches`` on NumPy arrays: the pandas groupby path without pandas groupby.

A chunk of 100k segments carries about 1.5M match rows; sorting, de-duplicating and
grouping them through pandas (string keys, ``groupby().head``, ``prod``, ``min``) costs
seconds. Here every string key is factorised once in sorted order, so all the sorting
is one ``np.lexsort`` on integers, groups are runs of the sorted rows and every
per-group value is a ``reduceat``. The result equals ``aggregate._aggregate_frames``
(the pandas path) row for row and dtype for dtype; inputs this path does not cover
(missing keys, non-string ids, a rule with several scores) return None and take the
pandas path.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline import columns as C
from pipeline.code.arrays import ranges

_STRINGS = (C.SEGMENT_ID, C.DOC_ID, C.CODE_ID, C.RULE_ID, C.EVIDENCE)


def _covered(matches: pd.DataFrame) -> bool:
    """Whether the fast path gives the pandas path's result for ``matches``."""
    for name in _STRINGS:
        col = matches[name]
        if not isinstance(col.dtype, pd.StringDtype) or col.isna().any():
            return False
    for name in (C.START, C.END):
        if matches[name].dtype.kind not in "iu":
            return False
    return matches[C.SCORE].dtype.kind in "fiu" and not matches[C.SCORE].isna().any()


def fast_aggregate(matches: pd.DataFrame, threshold: float, eps: float,
                   method: str) -> pd.DataFrame | None:
    """The codings of ``aggregate_matches``, or None when the input is not covered.

    Args:
        matches: a non-empty matches table.
        threshold: keep codings with score >= threshold - eps.
        eps: the float tolerance of the threshold.
        method: the ``method`` column value.
    """
    if not _covered(matches):
        return None
    seg, _ = pd.factorize(matches[C.SEGMENT_ID], sort=True)
    code, _ = pd.factorize(matches[C.CODE_ID], sort=True)
    rule, rule_names = pd.factorize(matches[C.RULE_ID], sort=True)
    start = matches[C.START].to_numpy(dtype=np.int64)
    end = matches[C.END].to_numpy(dtype=np.int64)
    score = matches[C.SCORE].to_numpy(dtype=np.float64)
    # Duplicates (same segment, code, rule, start, end) must be adjacent after the sort
    # for the keep-first step below: true when every rule has one score (its weight).
    rule_score = np.empty(len(rule_names), dtype=np.float64)
    rule_score[rule[::-1]] = score[::-1]
    if not np.array_equal(rule_score[rule], score):
        return None
    # The pandas sort: segment, code, score descending, start, end, rule; stable.
    # (score is one value per rule: rank the rules' scores, not the rows')
    values, inverse = np.unique(rule_score, return_inverse=True)
    descending = (len(values) - 1 - inverse.reshape(-1))[rule]
    order = stable_order([seg, code, descending, start, end, rule])
    s_seg, s_code, s_rule = seg[order], code[order], rule[order]
    s_start, s_end = start[order], end[order]
    dup = np.zeros(len(order), dtype=bool)
    dup[1:] = ((s_seg[1:] == s_seg[:-1]) & (s_code[1:] == s_code[:-1])
               & (s_rule[1:] == s_rule[:-1]) & (s_start[1:] == s_start[:-1])
               & (s_end[1:] == s_end[:-1]))
    if dup.any():  # drop_duplicates keeps the first row: the earliest, as the sort is stable
        keep = ~dup
        order, s_seg, s_code, s_rule, s_start = (order[keep], s_seg[keep], s_code[keep],
                                                 s_rule[keep], s_start[keep])
    new = np.ones(len(order), dtype=bool)
    new[1:] = (s_seg[1:] != s_seg[:-1]) | (s_code[1:] != s_code[:-1])
    firsts = np.flatnonzero(new)
    # groupby().prod() multiplies in row order; reduceat does too (no pairwise sums
    # for products), so the floats are the same
    q = 1.0 - score[order]
    scores = np.clip(1.0 - np.multiply.reduceat(q, firsts), 0.0, 1.0)
    sizes = np.diff(np.append(firsts, len(order)))
    first_start = np.minimum.reduceat(s_start, firsts)
    rules = rule_lists(s_rule, firsts, sizes, np.asarray(rule_names, dtype=object))
    kept = np.flatnonzero(scores >= threshold - eps)
    best = order[firsts[kept]]          # row of the best match of every kept coding
    g_seg = s_seg[firsts[kept]]
    # a segment is placed by its earliest match over its kept codings
    seg_new = np.ones(len(kept), dtype=bool)
    seg_new[1:] = g_seg[1:] != g_seg[:-1]
    seg_firsts = np.flatnonzero(seg_new)
    fs = first_start[kept]
    seg_first = np.repeat(np.minimum.reduceat(fs, seg_firsts) if len(fs) else fs,
                          np.diff(np.append(seg_firsts, len(kept))))
    doc = pd.factorize(matches[C.DOC_ID].take(best), sort=True)[0]
    final = np.lexsort((s_code[firsts[kept]], g_seg, seg_first, doc))
    rows, kept = best[final], kept[final]
    rule_text = np.asarray(["rule:" + str(name) for name in rule_names], dtype=object)

    def text(values: object) -> pd.api.extensions.ExtensionArray:
        return pd.array(values, dtype="str")

    def taken(name: str) -> pd.api.extensions.ExtensionArray:
        return matches[name].array.take(rows)

    out = pd.DataFrame({
        C.SEGMENT_ID: taken(C.SEGMENT_ID), C.DOC_ID: taken(C.DOC_ID),
        C.CODE_ID: taken(C.CODE_ID),
        C.METHOD: text([method]).take(np.zeros(len(rows), dtype=np.int64)),
        C.SCORE: scores[kept], C.RULE: text(rule_text).take(rule[rows]),
        C.RULES: text(rules[kept]),
        C.EVIDENCE: taken(C.EVIDENCE), C.N_MATCHES: sizes[kept].astype(np.int64),
        C.START: start[rows], C.END: end[rows],
    })
    return out


def stable_order(keys: list[np.ndarray]) -> np.ndarray:
    """``np.lexsort`` of integer ``keys`` (most significant first), on fewer, packed keys.

    Keys are shifted to start at 0 and packed, least significant first, into int64
    values as long as the product of their ranges fits; the packed keys sort the rows
    exactly as the originals do, and one or two stable argsorts beat a lexsort on six.
    """
    packed: list[np.ndarray] = []
    acc, width = None, 1
    for key in reversed(keys):
        key = key.astype(np.int64, copy=False)
        low = int(key.min()) if len(key) else 0
        span = (int(key.max()) - low + 1) if len(key) else 1
        if span >= 1 << 62:  # shifting could overflow: sort the keys as they are
            return np.lexsort(keys[::-1])
        if acc is not None and width * span >= 1 << 62:
            packed.append(acc)
            acc, width = None, 1
        shifted = key - low if low else key
        acc = shifted if acc is None else shifted * width + acc
        width *= span
    if acc is not None:
        packed.append(acc)
    order = np.argsort(packed[0], kind="stable")
    for key in packed[1:]:  # least significant first: each pass is stable
        order = order[np.argsort(key[order], kind="stable")]
    return order


def rule_lists(s_rule: np.ndarray, firsts: np.ndarray, sizes: np.ndarray,
               names: np.ndarray) -> np.ndarray:
    """Sorted, distinct rule names of each group, ";"-joined (object array).

    Groups are runs of rows (``firsts``, ``sizes``); rule codes are factorised in
    sorted order, so for the groups of several rows the distinct (group, rule) pairs
    come out of one sort in (group, rule name) order, and their names are joined
    column by column.
    """
    out = names[s_rule[firsts]]
    multi = np.flatnonzero(sizes > 1)
    if not len(multi):
        return out
    rows = ranges(firsts[multi], sizes[multi])
    pairs = np.sort(np.repeat(multi, sizes[multi]) * len(names) + s_rule[rows])
    pairs = pairs[np.concatenate(([True], pairs[1:] != pairs[:-1]))]
    pair_gid, pair_rule = np.divmod(pairs, len(names))
    counts = np.bincount(pair_gid, minlength=len(firsts))
    first = np.searchsorted(pair_gid, np.arange(len(firsts)))
    out[multi] = names[pair_rule[first[multi]]]
    # Join column by column: the j-th name of every group with more than j rules is
    # appended in one object-array add (a C loop), not one str.join per group.
    many = np.flatnonzero(counts > 1)
    j = 1
    while len(many):
        out[many] = out[many] + (";" + names[pair_rule[first[many] + j]])
        j += 1
        many = many[counts[many] > j]
    return out
