"""The rule logic of ``matching`` on arrays of hits, for a whole batch at once.

Most hits belong to terms/phrase/glob/pattern rules whose spans do not overlap, so
``longest_first`` keeps them all, negation is two prefix-sum lookups, proximity
pairing a windowed search (``proximity``), exclude vetoes a join on (doc, code) and
``max_matches`` a rank inside (doc, rule): all NumPy. Only groups of overlapping spans
go through ``longest_first`` in Python. The surviving matches are those of the
per-doc rules for every doc: ``longest_first``, ``_pair`` and ``_vetoed`` in
``matching`` state them (and the tests hold the arrays to them).
"""
from __future__ import annotations

import numpy as np

from pipeline.code.arrays import TokenArrays, ranges
from pipeline.code.compiled import MAIN, SIDE_A, CompiledRules
from pipeline.code.proximity import keep_longest, pair_sides
from pipeline.code.scan import flat_hits
from pipeline.code.sparse import doc_index


def vector_matches(arrays: TokenArrays, compiled: CompiledRules, tid: np.ndarray | None,
                   ctx, hits: tuple | None = None,  # noqa: ANN001
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Surviving matches of the batch as (rule index, start, end) arrays.

    Args:
        arrays: the batch.
        compiled: the rules.
        tid: type ids of the tokens (unused with ``hits``).
        ctx: ``matching._Context`` of the batch (or ``sparse``'s, the same answers).
        hits: ``scan.flat_hits`` of the batch when already found (``sparse``).
    """
    from pipeline.code.matching import longest_first

    rules = compiled.rules
    ch, s, e = hits if hits is not None else flat_hits(arrays, compiled, tid)
    empty = np.zeros(0, dtype=np.int64)
    if not len(ch):
        return empty, empty, empty
    owner = np.asarray([index for index, _ in compiled.channels], dtype=np.int64)
    role_main = np.asarray([role == MAIN for _, role in compiled.channels], dtype=bool)
    kinds = [rule.kind for rule in rules]
    is_exclude = np.asarray([k == "exclude" for k in kinds], dtype=bool)
    r = owner[ch]
    doc = doc_index(arrays, s)
    plain = role_main[ch] & ~is_exclude[r]
    # Plain rules: longest_first per (doc, channel); flat_hits sorted by channel and start.
    pg = ch[plain] * len(arrays) + doc[plain]
    pg, ps, pe = keep_longest(pg, s[plain], e[plain], longest_first)
    out_r, out_s, out_e = [owner[pg // max(len(arrays), 1)]], [ps], [pe]
    # Proximity: pair the sides per doc and rule (``proximity.pair_sides``).
    side = ~role_main[ch]
    if side.any():
        window = np.asarray([rule.params.get("window", 0) for rule in rules], dtype=np.int64)
        order_ab = np.asarray([rule.params.get("order") == "ab" for rule in rules], dtype=bool)
        is_a = np.asarray([role == SIDE_A for _, role in compiled.channels], dtype=bool)
        xr, xs, xe = pair_sides(r[side], is_a[ch[side]], s[side], e[side], doc[side],
                                window, order_ab, longest_first)
        out_r.append(xr)
        out_s.append(xs)
        out_e.append(xe)
    cr, cs, ce = np.concatenate(out_r), np.concatenate(out_s), np.concatenate(out_e)
    # Negation: keep (ignore) or drop by the cue test (forbid / require).
    # 0: ignore; 2: require a cue; 1: any other mode forbids one
    mode = np.asarray([0 if rule.negation == "ignore" else 2 if rule.negation == "require"
                       else 1 for rule in rules], dtype=np.int8)
    m = mode[cr]
    if m.any():
        neg = np.zeros(len(cr), dtype=bool)
        checked = m != 0
        neg[checked] = ctx.negated_all(cs[checked], ce[checked], compiled)
        keep = (m == 0) | (neg == (m == 2))
        cr, cs, ce = cr[keep], cs[keep], ce[keep]
    # Exclude rules: veto matches of their code in the same doc.
    vetoes = is_exclude[r] & role_main[ch]
    if vetoes.any():
        cr, cs, ce = _apply_vetoes(cr, cs, ce, r[vetoes], s[vetoes], e[vetoes],
                                   doc[vetoes], arrays, compiled, ctx.sents)
    return _limits(cr, cs, ce, arrays, compiled)


def _apply_vetoes(cr, cs, ce, vr, vs, ve, vd, arrays, compiled, sents):  # noqa: ANN001, ANN202
    """Drop candidates vetoed by an exclude rule hit in their doc (``matching._vetoed``).

    Every (candidate, exclude hit) pair of the same doc and code is tested at once:
    the veto applies to the candidate's rule (no ``rules`` list, or the rule is in it)
    and its scope holds - ``segment`` always, ``match`` when the spans overlap, else
    when they share a sentence (sentences are contiguous, so their ranges overlap).
    """
    code_of, scope, targeted, allowed = compiled.veto_tables()
    n_codes, n_rules = int(code_of.max()) + 1, len(compiled.rules)
    vk = vd * n_codes + code_of[vr]
    order = np.argsort(vk, kind="stable")
    vk, vr, vs, ve = vk[order], vr[order], vs[order], ve[order]
    ck = doc_index(arrays, cs) * n_codes + code_of[cr]
    lo = np.searchsorted(vk, ck)
    counts = np.searchsorted(vk, ck, side="right") - lo
    ci = np.repeat(np.arange(len(cr), dtype=np.int64), counts)
    vi = ranges(lo, counts)
    a0, a1, b0, b1 = cs[ci], ce[ci], vs[vi], ve[vi]
    ok = ~targeted[vr[vi]]
    if not ok.all():
        key = vr[vi] * n_rules + cr[ci]
        where = np.minimum(np.searchsorted(allowed, key), max(len(allowed) - 1, 0))
        ok |= (allowed[where] == key) if len(allowed) else False
    kind = scope[vr[vi]]
    hit = ((kind == 0) | ((kind == 1) & (b0 < a1) & (a0 < b1))
           | ((kind == 2) & (sents[b0] <= sents[a1 - 1]) & (sents[a0] <= sents[b1 - 1])))
    vetoed = np.zeros(len(cr), dtype=bool)
    vetoed[ci[ok & hit]] = True
    return cr[~vetoed], cs[~vetoed], ce[~vetoed]


def _limits(cr, cs, ce, arrays, compiled):  # noqa: ANN001, ANN202
    """``max_matches``: per (doc, rule) the longest, then earliest, ``limit`` matches."""
    limits = np.asarray([-1 if (n := compiled.max_matches(rule)) is None else n
                         for rule in compiled.rules], dtype=np.int64)
    lim = limits[cr]
    if not (lim >= 0).any():
        return cr, cs, ce
    cdoc = doc_index(arrays, cs)
    order = np.lexsort((cs, cs - ce, cr, cdoc))
    d, rr = cdoc[order], cr[order]
    new = np.ones(len(order), dtype=bool)
    new[1:] = (d[1:] != d[:-1]) | (rr[1:] != rr[:-1])
    starts = np.flatnonzero(new)
    rank = np.arange(len(order)) - np.repeat(starts, np.diff(np.append(starts, len(order))))
    keep = np.ones(len(cr), dtype=bool)
    keep[order] = (lim[order] < 0) | (rank < lim[order])
    return cr[keep], cs[keep], ce[keep]
