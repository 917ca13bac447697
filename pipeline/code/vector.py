"""The rule logic of ``matching`` on arrays of hits, for a whole batch at once.

Most hits belong to terms/phrase/glob/pattern rules whose spans do not overlap, so
``longest_first`` keeps them all, negation is two prefix-sum lookups and
``max_matches`` a rank inside (doc, rule): all NumPy. Only what needs the per-doc
logic goes through Python: groups of overlapping spans (``longest_first``),
proximity pairing and exclude vetoes, on exactly the hits concerned. The surviving
matches are those of ``matching._doc_matches`` for every doc.
"""
from __future__ import annotations

import numpy as np

from pipeline.code.arrays import TokenArrays
from pipeline.code.compiled import MAIN, SIDE_A, CompiledRules
from pipeline.code.scan import flat_hits


def vector_matches(arrays: TokenArrays, compiled: CompiledRules, tid: np.ndarray,
                   ctx) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # noqa: ANN001
    """Surviving matches of the batch as (rule index, start, end) arrays.

    Args:
        arrays: the batch.
        compiled: the rules.
        tid: type ids of the tokens.
        ctx: ``matching._Context`` of the batch.
    """
    from pipeline.code.matching import _pair, _vetoed, longest_first

    rules = compiled.rules
    ch, s, e = flat_hits(arrays, compiled, tid)
    empty = np.zeros(0, dtype=np.int64)
    if not len(ch):
        return empty, empty, empty
    owner = np.asarray([index for index, _ in compiled.channels], dtype=np.int64)
    role_main = np.asarray([role == MAIN for _, role in compiled.channels], dtype=bool)
    kinds = [rule.kind for rule in rules]
    is_exclude = np.asarray([k == "exclude" for k in kinds], dtype=bool)
    r = owner[ch]
    doc = arrays.doc_index(s)
    plain = role_main[ch] & ~is_exclude[r]
    # Plain rules: a group (doc, channel) keeps every span unless two of them overlap.
    ps, pe, pr, pd_, pc = s[plain], e[plain], r[plain], doc[plain], ch[plain]
    same = np.zeros(len(ps), dtype=bool)
    same[1:] = (pc[1:] == pc[:-1]) & (pd_[1:] == pd_[:-1])
    clash = np.zeros(len(ps), dtype=bool)
    clash[1:] = same[1:] & (ps[1:] < pe[:-1])
    group = np.cumsum(~same) - 1  # group number of every plain hit
    bad = np.zeros(int(group[-1]) + 1 if len(group) else 0, dtype=bool)
    bad[group[clash]] = True
    simple = ~bad[group]
    out_r, out_s, out_e = [pr[simple]], [ps[simple]], [pe[simple]]
    extra: list[tuple[int, int, int]] = []
    hard = np.flatnonzero(~simple)
    if len(hard):
        g = group[hard]
        cut = np.flatnonzero(np.diff(g)) + 1
        for part in np.split(hard, cut):
            spans = list(zip(ps[part].tolist(), pe[part].tolist()))
            rule = int(pr[part[0]])
            extra += [(rule, a, b) for a, b in longest_first(spans)]
    # Proximity: pair the sides per doc (Python, on those hits only).
    side = ~role_main[ch]
    if side.any():
        pairs: dict[tuple[int, int], tuple[list, list]] = {}
        for c, a, b, k in zip(ch[side].tolist(), s[side].tolist(), e[side].tolist(),
                              doc[side].tolist()):
            index, role = compiled.channels[c]
            got = pairs.setdefault((k, index), ([], []))
            got[0 if role == SIDE_A else 1].append((a, b))
        for (k, index), (a_spans, b_spans) in sorted(pairs.items()):
            if a_spans and b_spans:
                rule = rules[index]
                spans = _pair(sorted(a_spans), sorted(b_spans), rule.params["window"],
                              rule.params["order"])
                extra += [(index, a, b) for a, b in longest_first(spans)]
    if extra:
        table = np.asarray(extra, dtype=np.int64)
        out_r.append(table[:, 0])
        out_s.append(table[:, 1])
        out_e.append(table[:, 2])
    cr, cs, ce = np.concatenate(out_r), np.concatenate(out_s), np.concatenate(out_e)
    # Negation: keep (ignore) or drop by the cue test (forbid / require).
    # 0: ignore; 2: require a cue; 1: any other mode forbids one (as _doc_matches reads it)
    mode = np.asarray([0 if rule.negation == "ignore" else 2 if rule.negation == "require"
                       else 1 for rule in rules], dtype=np.int8)
    m = mode[cr]
    if m.any():
        neg = np.zeros(len(cr), dtype=bool)
        checked = m != 0
        neg[checked] = ctx.negated_all(cs[checked], ce[checked], compiled)
        keep = (m == 0) | (neg == (m == 2))
        cr, cs, ce = cr[keep], cs[keep], ce[keep]
    # Exclude rules: veto matches of their code, per doc, in Python (few docs).
    vetoes = is_exclude[r] & role_main[ch]
    if vetoes.any():
        cr, cs, ce = _apply_vetoes(cr, cs, ce, r[vetoes], s[vetoes], e[vetoes],
                                   doc[vetoes], arrays, rules, ctx, _vetoed)
    return _limits(cr, cs, ce, arrays, compiled)


def _apply_vetoes(cr, cs, ce, vr, vs, ve, vd, arrays, rules, ctx, vetoed):  # noqa: ANN001, ANN202
    """Drop candidates vetoed by an exclude rule hit in their doc (``_vetoed``)."""
    by_doc: dict[int, list] = {}
    for index, a, b, k in zip(vr.tolist(), vs.tolist(), ve.tolist(), vd.tolist()):
        by_doc.setdefault(k, {}).setdefault(index, []).append((a, b))
    codes = {rules[index].code_id for index in set(vr.tolist())}
    cdoc = arrays.doc_index(cs)
    keep = np.ones(len(cr), dtype=bool)
    for i, (index, a, b, k) in enumerate(zip(cr.tolist(), cs.tolist(), ce.tolist(),
                                             cdoc.tolist())):
        per = by_doc.get(k)
        if per is None or rules[index].code_id not in codes:
            continue
        match = (rules[index], a, b)
        for veto_index in sorted(per):
            if vetoed(match, rules[veto_index], sorted(per[veto_index]), ctx.sent_starts):
                keep[i] = False
                break
    return cr[keep], cs[keep], ce[keep]


def _limits(cr, cs, ce, arrays, compiled):  # noqa: ANN001, ANN202
    """``max_matches``: per (doc, rule) the longest, then earliest, ``limit`` matches."""
    limits = np.asarray([-1 if (n := compiled.max_matches(rule)) is None else n
                         for rule in compiled.rules], dtype=np.int64)
    lim = limits[cr]
    if not (lim >= 0).any():
        return cr, cs, ce
    cdoc = arrays.doc_index(cs)
    order = np.lexsort((cs, cs - ce, cr, cdoc))
    d, rr = cdoc[order], cr[order]
    new = np.ones(len(order), dtype=bool)
    new[1:] = (d[1:] != d[:-1]) | (rr[1:] != rr[:-1])
    starts = np.flatnonzero(new)
    rank = np.arange(len(order)) - np.repeat(starts, np.diff(np.append(starts, len(order))))
    keep = np.ones(len(cr), dtype=bool)
    keep[order] = (lim[order] < 0) | (rank < lim[order])
    return cr[keep], cs[keep], ce[keep]
