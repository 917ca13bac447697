"""Rule hits of a batch of docs, from token arrays: the trie walk and the token patterns.

Trie hits (terms, phrases, globs) come from ``walk.TrieWalk``, token patterns from
``tokpat.TokenPatterns``, both on arrays for the whole batch; the spaCy Matcher only
runs for patterns those do not cover, and only on docs containing a word of every
required token of one of them. Hit positions are token positions in the
concatenation.
"""
from __future__ import annotations

import numpy as np

from pipeline.code.arrays import TokenArrays
from pipeline.code.compiled import CompiledRules

Hits = dict[int, dict[int, set[tuple[int, int]]]]  # doc -> channel -> {(start, end)}


def find_hits(arrays: TokenArrays, compiled: CompiledRules, tid: np.ndarray) -> Hits:
    """Return doc -> channel -> distinct (start, end) spans (positions in ``arrays``).

    Args:
        arrays: the tokens of the batch.
        compiled: the compiled rules.
        tid: ``compiled.types.ids(...)`` of the tokens.
    """
    ch, s, e = flat_hits(arrays, compiled, tid)
    found: Hits = {}
    for c, a, b, k in zip(ch.tolist(), s.tolist(), e.tolist(), arrays.doc_index(s).tolist()):
        found.setdefault(k, {}).setdefault(c, set()).add((a, b))
    return found


def flat_hits(arrays: TokenArrays, compiled: CompiledRules,
              tid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct (channel, start, end) hits of the batch, sorted, as three arrays."""
    types = compiled.types
    chans: list = []
    starts: list = []
    ends: list = []
    if compiled.trie.root.lit or compiled.trie.root.glob:
        c, s, e = types.walker.hits(types, arrays, tid)
        chans.append(c)
        starts.append(s)
        ends.append(e)
    if compiled.token_patterns is not None:
        c, s, e = compiled.token_patterns.find(arrays, tid, types)
        chans.append(c)
        starts.append(s)
        ends.append(e)
    if compiled.group_patterns or compiled.unanchored_patterns:
        found: dict = {}
        _pattern_hits(arrays, compiled, tid, found)
        spans = [(ch, s, e) for per_doc in found.values() for ch, got in per_doc.items()
                 for s, e in got]
        if spans:
            table = np.asarray(spans, dtype=np.int64)
            chans.append(table[:, 0])
            starts.append(table[:, 1])
            ends.append(table[:, 2])
    if not chans:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    ch, s, e = np.concatenate(chans), np.concatenate(starts), np.concatenate(ends)
    return _distinct_sorted(ch, s, e, len(tid))


def _distinct_sorted(ch: np.ndarray, s: np.ndarray, e: np.ndarray,
                     n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct (channel, start, end) triples, sorted; ``n``: tokens (end <= n).

    When (channel, start, end) fits one int64 number, one sort of those numbers does
    what a three-key ``lexsort`` and a comparison of neighbours did.
    """
    span = n + 1
    if len(ch) and int(ch.max()) < (np.iinfo(np.int64).max // span) // span:
        # stable: a merge sort that uses the runs the walk's hits come in
        key = np.sort((ch * span + s) * span + e, kind="stable")
        if len(key) > 1:
            key = key[np.concatenate(([True], key[1:] != key[:-1]))]
        pair, end = np.divmod(key, span)
        channel, start = np.divmod(pair, span)
        return channel, start, end
    order = np.lexsort((e, s, ch))
    ch, s, e = ch[order], s[order], e[order]
    keep = np.ones(len(ch), dtype=bool)
    keep[1:] = (ch[1:] != ch[:-1]) | (s[1:] != s[:-1]) | (e[1:] != e[:-1])
    return ch[keep], s[keep], e[keep]


def _pattern_hits(arrays: TokenArrays, compiled: CompiledRules, tid: np.ndarray,
                  found: Hits) -> None:
    """Run the Matcher on the docs that can hold a pattern; add its spans to ``found``."""
    types = compiled.types
    bounds = arrays.bounds.tolist()
    anchors = types.anchors
    # Only types anchoring some requirement matter for choosing a doc's patterns.
    has_anchor = np.fromiter((bool(a) for a in anchors), dtype=bool, count=len(anchors))
    relevant = np.flatnonzero(has_anchor[tid])
    per_doc: dict[int, list[tuple[int, int]]] = {}
    for k, t, p in zip(arrays.doc_index(relevant).tolist(), tid[relevant].tolist(),
                       relevant.tolist()):
        per_doc.setdefault(k, []).append((p, t))
    every = bool(compiled.unanchored_patterns)
    for k in (range(len(arrays)) if every else sorted(per_doc)):
        if bounds[k] == bounds[k + 1]:
            continue
        groups: tuple[int, ...] = ()
        if k in per_doc:
            found_at = per_doc[k]
            groups = tuple(g for g in types.wanted_groups({t for _, t in found_at})
                           if _close_enough(g, found_at, types, compiled.group_max_len[g]))
        matcher = compiled.matcher_for(groups)
        if matcher is None:
            continue
        offset = bounds[k]
        spans = found.setdefault(k, {})
        channels = compiled.matcher_channels
        for key, start, end in matcher(arrays.get_doc(k)):
            if end > start:  # all-optional patterns can match zero tokens
                spans.setdefault(channels[key], set()).add((offset + start, offset + end))


def _close_enough(group: int, found_at: list[tuple[int, int]], types,  # noqa: ANN001
                  reach: int | None) -> bool:
    """Whether the doc has a word of every requirement of ``group`` within one match length.

    A match of at most ``reach`` tokens holds a token of each requirement, so some
    token of the first requirement has one of every other requirement less than
    ``reach`` tokens away; a doc without that cannot match and skips the Matcher (which
    is then run, if at all, on the whole doc as before).
    """
    if reach is None:
        return True
    full = types.full[group]
    places: dict[int, list[int]] = {}
    for p, t in found_at:  # ascending positions
        for g, mask in types.anchors[t]:
            if g == group:
                bit = 1
                while bit <= full:
                    if mask & bit:
                        places.setdefault(bit, []).append(p)
                    bit <<= 1
    others = [ps for bit, ps in places.items() if bit != 1]
    return any(all(any(abs(q - p) < reach for q in ps) for ps in others)
               for p in places.get(1, ()))
