"""Proximity rules on arrays: ``matching._pair`` + ``longest_first`` for a whole batch.

A proximity side is often a list of very common words ("ik", "we", "je"), so a batch
has hundreds of thousands of side hits; pairing them per doc in Python was the
largest cost of a hand-written codebook after the token patterns. Here every a-hit
looks only at the b-hits of its (doc, rule) whose start lies within reach (window +
longest b span), found with one ``searchsorted``; the nearest valid one is picked by a
sort, exactly as ``_pair`` picks it (smallest gap, then earliest start, then the
first in span order), and only groups whose paired spans overlap go through
``longest_first`` in Python.
"""
from __future__ import annotations

import numpy as np

from pipeline.code.arrays import ranges


def pair_sides(rule: np.ndarray, is_a: np.ndarray, s: np.ndarray, e: np.ndarray,
               doc: np.ndarray, window: np.ndarray, order_ab: np.ndarray,
               longest_first) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # noqa: ANN001
    """Proximity matches (rule, start, end) from the side hits of a batch.

    Args:
        rule: rule index of each side hit; ``is_a``: whether it is side a.
        s, e: token span of each hit (distinct per rule and side).
        doc: doc number of each hit.
        window: per rule, the window; ``order_ab``: per rule, whether b must follow a.
        longest_first: ``matching.longest_first`` (for groups with overlaps).
    """
    n_rules = len(window)
    group = doc * n_rules + rule
    a, b = np.flatnonzero(is_a), np.flatnonzero(~is_a)
    empty = np.zeros(0, dtype=np.int64)
    if not len(a) or not len(b):
        return empty, empty, empty
    b = b[np.lexsort((e[b], s[b], group[b]))]       # span order inside each group
    gb, b0, b1 = group[b], s[b], e[b]
    ga, a0, a1 = group[a], s[a], e[a]
    w = window[rule[a]]
    reach = int(window.max()) + int((b1 - b0).max()) + 1
    base = int(max(s.max(), e.max())) + 2 * reach + 1   # keys: group * base + shifted start
    keys = gb * base + b0 + reach
    lo = np.searchsorted(keys, ga * base + a0 - w - (reach - int(window.max())) + 1 + reach)
    hi = np.searchsorted(keys, ga * base + a1 + w - 1 + reach, side="right")
    counts = np.maximum(hi - lo, 0)
    if not counts.any():
        return empty, empty, empty
    ai = np.repeat(np.arange(len(a)), counts)
    bi = ranges(lo, counts)
    pa0, pa1, pb0, pb1 = a0[ai], a1[ai], b0[bi], b1[bi]
    pw = w[ai]
    after = pb0 >= pa1
    ok = ~((pb0 < pa1) & (pa0 < pb1))               # the same words cannot be both sides
    ok &= after | ~order_ab[rule[a]][ai]
    dist = np.where(after, pb0 - pa1 + 1, pa0 - pb1 + 1)
    ok &= dist <= pw
    ai, bi, dist, pb0 = ai[ok], bi[ok], dist[ok], pb0[ok]
    if not len(ai):
        return empty, empty, empty
    # nearest b per a: smallest gap, then start; ties keep the first in span order
    best = np.lexsort((bi, pb0, dist, ai))
    first = np.ones(len(best), dtype=bool)
    first[1:] = ai[best][1:] != ai[best][:-1]
    ai, bi = ai[best][first], bi[best][first]
    ps = np.minimum(a0[ai], b0[bi])
    pe = np.maximum(a1[ai], b1[bi])
    pg = ga[ai]
    order = np.lexsort((pe, ps, pg))
    pg, ps, pe = pg[order], ps[order], pe[order]
    new = np.ones(len(pg), dtype=bool)
    new[1:] = (pg[1:] != pg[:-1]) | (ps[1:] != ps[:-1]) | (pe[1:] != pe[:-1])
    pg, ps, pe = pg[new], ps[new], pe[new]
    g, s_, e_ = keep_longest(pg, ps, pe, longest_first)
    return g % n_rules, s_, e_


def keep_longest(group: np.ndarray, s: np.ndarray, e: np.ndarray,
                 longest_first) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # noqa: ANN001
    """``longest_first`` per group, for spans sorted by (group, start, end) and distinct.

    A group whose spans do not overlap keeps them all (the usual case, decided with
    NumPy: in start order, any overlap shows between neighbours); the others go
    through ``longest_first`` in Python. Returns the kept (group, start, end).
    """
    same = np.zeros(len(group), dtype=bool)
    same[1:] = group[1:] == group[:-1]
    clash = np.zeros(len(group), dtype=bool)
    clash[1:] = same[1:] & (s[1:] < e[:-1])
    if not clash.any():
        return group, s, e
    gid = np.cumsum(~same) - 1
    bad = np.zeros(int(gid[-1]) + 1, dtype=bool)
    bad[gid[clash]] = True
    simple = ~bad[gid]
    hard = np.flatnonzero(~simple)
    cuts = [0, *(np.flatnonzero(np.diff(gid[hard])) + 1).tolist(), len(hard)]
    hg, hs, he = group[hard].tolist(), s[hard].tolist(), e[hard].tolist()
    kg: list[int] = []
    ks: list[int] = []
    ke: list[int] = []
    for lo, hi in zip(cuts, cuts[1:]):  # plain lists: groups are small and many
        for a, b in longest_first(list(zip(hs[lo:hi], he[lo:hi]))):
            kg.append(hg[lo])
            ks.append(a)
            ke.append(b)
    return (np.concatenate([group[simple], np.asarray(kg, dtype=np.int64)]),
            np.concatenate([s[simple], np.asarray(ks, dtype=np.int64)]),
            np.concatenate([e[simple], np.asarray(ke, dtype=np.int64)]))
