"""Rule hits of a batch of docs, from token arrays: the trie walk and the token patterns.

Only tokens whose type can start a trie path are visited (a per-type flag gathered with
NumPy), and the spaCy Matcher only runs on docs containing a word of every required
token of one of its patterns; hit positions are token positions in the concatenation.
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
    types = compiled.types
    found: Hits = {}
    bounds = arrays.bounds
    if compiled.trie.root.lit or compiled.trie.root.glob:
        starts = np.flatnonzero(types.starts.data[tid])
        if len(starts):
            docs = arrays.doc_index(starts)
            tids = tid.tolist()
            ends, deeper, step = types.root_ends, types.root_deeper, types.step
            for s, k, stop in zip(starts.tolist(), docs.tolist(), bounds[docs + 1].tolist()):
                t = tids[s]
                spans = found.get(k)
                if spans is None:
                    spans = found[k] = {}
                for channel in ends[t]:  # one-token hits: known per type
                    got = spans.get(channel)
                    if got is None:
                        spans[channel] = {(s, s + 1)}
                    else:
                        got.add((s, s + 1))
                frontier = deeper[t]
                j = s + 1
                while frontier and j < stop:  # longer phrases: walk on
                    frontier = step(frontier, tids[j])
                    j += 1
                    for node in frontier:
                        for channel in node.ends:
                            got = spans.get(channel)
                            if got is None:
                                spans[channel] = {(s, j)}
                            else:
                                got.add((s, j))
                    frontier = [node for node in frontier if node.lit or node.glob]
    if compiled.group_patterns or compiled.unanchored_patterns:
        _pattern_hits(arrays, compiled, tid, found)
    return found


def _pattern_hits(arrays: TokenArrays, compiled: CompiledRules, tid: np.ndarray,
                  found: Hits) -> None:
    """Run the Matcher on the docs that can hold a pattern; add its spans to ``found``."""
    types = compiled.types
    bounds = arrays.bounds.tolist()
    anchors = types.anchors
    # Only types anchoring some requirement matter for choosing a doc's patterns.
    has_anchor = np.fromiter((bool(a) for a in anchors), dtype=bool, count=len(anchors))
    relevant = np.flatnonzero(has_anchor[tid])
    per_doc: dict[int, set[int]] = {}
    for k, t in zip(arrays.doc_index(relevant).tolist(), tid[relevant].tolist()):
        per_doc.setdefault(k, set()).add(t)
    every = bool(compiled.unanchored_patterns)
    for k in (range(len(arrays)) if every else sorted(per_doc)):
        if bounds[k] == bounds[k + 1]:
            continue
        groups = tuple(types.wanted_groups(per_doc[k])) if k in per_doc else ()
        matcher = compiled.matcher_for(groups)
        if matcher is None:
            continue
        offset = bounds[k]
        spans = found.setdefault(k, {})
        channels = compiled.matcher_channels
        for key, start, end in matcher(arrays.get_doc(k)):
            if end > start:  # all-optional patterns can match zero tokens
                spans.setdefault(channels[key], set()).add((offset + start, offset + end))
