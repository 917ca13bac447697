"""The token-trie walk of a batch with NumPy: multi-token terms, phrases and globs.

Walking the trie from every token that starts a longer path, one token at a time in
Python, was the largest trie cost (a codebook's phrases often start with common words:
"ik", "we", "het"). Here all walks of a batch advance together: a walk is (trie node,
start, position); the children of a node for a word type are a per-(node, type) fact,
computed once per run by ``TypeTable.step`` and kept in a sorted key table, so a step
is a ``searchsorted`` plus gathers. The hits are those of ``TokenTrie.find`` per doc.
"""
from __future__ import annotations

import numpy as np

from pipeline.code.arrays import ranges
from pipeline.code.trie import TokenTrie

_SHIFT = 32  # key = node << 32 | type id


class TrieWalk:
    """Node numbering, per-node channel lists and the (node, type) -> children memo.

    Args:
        trie: the frozen trie of the compiled rules.
    """

    def __init__(self, trie: TokenTrie) -> None:
        self.nodes = trie.all_nodes()
        self.index = {id(node): k for k, node in enumerate(self.nodes)}
        ends = [node.ends for node in self.nodes]
        self.ends_ptr = np.concatenate([[0], np.cumsum([len(x) for x in ends])]).astype(np.int64)
        self.ends_flat = np.asarray([c for x in ends for c in x], dtype=np.int64)
        self.more = np.asarray([bool(node.lit or node.glob) for node in self.nodes], dtype=bool)
        # (node, type) memo: keys in insertion order with a CSR of child ids, plus the
        # keys sorted (and their insertion index) for lookups
        self.keys = np.zeros(0, dtype=np.int64)
        self.res_ptr = np.zeros(1, dtype=np.int64)
        self.res_flat = np.zeros(0, dtype=np.int64)
        self.sorted_keys = np.zeros(0, dtype=np.int64)
        self.perm = np.zeros(0, dtype=np.int64)
        # per type: the nodes one token deep that have children (TypeTable.root_deeper)
        self.deep_ptr = np.zeros(1, dtype=np.int64)
        self.deep_flat = np.zeros(0, dtype=np.int64)

        # per type: the channels of its one-token hits (TypeTable.root_ends)
        self.one_ptr = np.zeros(1, dtype=np.int64)
        self.one_flat = np.zeros(0, dtype=np.int64)

    def _describe(self, types) -> None:  # noqa: ANN001 - TypeTable
        """CSR rows of the types added to ``types`` since the last call."""
        t0 = len(self.deep_ptr) - 1
        if t0 == len(types):
            return
        deep = [[self.index[id(node)] for node in nodes] for nodes in types.root_deeper[t0:]]
        self.deep_ptr, self.deep_flat = _extend(self.deep_ptr, self.deep_flat, deep)
        self.one_ptr, self.one_flat = _extend(self.one_ptr, self.one_flat, types.root_ends[t0:])

    def hits(self, types, arrays, tid: np.ndarray,  # noqa: ANN001
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every trie hit of the batch: (channel, start, end), one-token hits first."""
        self._describe(types)
        counts = self.one_ptr[tid + 1] - self.one_ptr[tid]
        chans = self.one_flat[ranges(self.one_ptr[tid], counts)]
        one = np.repeat(np.arange(len(tid), dtype=np.int64), counts)
        at = np.flatnonzero(self.deep_ptr[tid + 1] > self.deep_ptr[tid])
        if not len(at):
            return chans, one, one + 1
        c, s, e = self.walk(types, tid, at, arrays.bounds[arrays.doc_index(at) + 1])
        return np.concatenate([chans, c]), np.concatenate([one, s]), np.concatenate([one + 1, e])

    def hits_at(self, types, arrays, tid, positions: np.ndarray,  # noqa: ANN001
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``hits`` of the walks from ``positions`` only (ascending; every token whose
        type starts a trie path must be among them for all the hits).

        ``tid`` need only answer ``tid[index array]`` (``sparse.Lazy``): it is read at
        the positions and along the walks, never whole.
        """
        self._describe(types)
        t = tid[positions]
        counts = self.one_ptr[t + 1] - self.one_ptr[t]
        chans = self.one_flat[ranges(self.one_ptr[t], counts)]
        one = np.repeat(positions, counts)
        at = positions[self.deep_ptr[t + 1] > self.deep_ptr[t]]
        if not len(at):
            return chans, one, one + 1
        # the end of each position's doc (a binary search: few positions)
        stops = arrays.bounds[np.searchsorted(arrays.bounds, at, side="right")]
        c, s, e = self.walk(types, tid, at, stops)
        return np.concatenate([chans, c]), np.concatenate([one, s]), np.concatenate([one + 1, e])

    def _lookup(self, key: np.ndarray, types) -> np.ndarray:  # noqa: ANN001
        """Insertion index of every (node, type) key; unknown keys are computed first."""
        where = np.searchsorted(self.sorted_keys, key)
        known = where < len(self.sorted_keys)
        known[known] = self.sorted_keys[where[known]] == key[known]
        if not known.all():
            new = np.unique(key[~known])
            lists = []
            for k in new.tolist():
                node, t = self.nodes[k >> _SHIFT], k & ((1 << _SHIFT) - 1)
                lists.append([self.index[id(child)] for child in types.step([node], t)])
            self.res_ptr, self.res_flat = _extend(self.res_ptr, self.res_flat, lists)
            self.keys = np.concatenate([self.keys, new])
            self.perm = np.argsort(self.keys, kind="stable")
            self.sorted_keys = self.keys[self.perm]
            where = np.searchsorted(self.sorted_keys, key)
        return self.perm[where]

    def walk(self, types, tid: np.ndarray, positions: np.ndarray,  # noqa: ANN001
             stops: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Hits of two or more tokens from ``positions``: (channel, start, end) arrays.

        Args:
            types: the ``TypeTable`` of ``tid``.
            tid: type ids of the batch's tokens.
            positions: tokens whose type starts a path longer than one token.
            stops: the end of each position's doc.
        """
        t = tid[positions]
        counts = self.deep_ptr[t + 1] - self.deep_ptr[t]
        node = self.deep_flat[ranges(self.deep_ptr[t], counts)]
        start, stop = np.repeat(positions, counts), np.repeat(stops, counts)
        pos = start + 1
        chans, starts, ends = [], [], []
        while len(node):
            live = pos < stop
            if not live.all():
                node, start, stop, pos = node[live], start[live], stop[live], pos[live]
            if not len(node):
                break
            at = self._lookup((node << _SHIFT) | tid[pos], types)
            counts = self.res_ptr[at + 1] - self.res_ptr[at]
            node = self.res_flat[ranges(self.res_ptr[at], counts)]
            start, stop = np.repeat(start, counts), np.repeat(stop, counts)
            pos = np.repeat(pos, counts) + 1
            n_ends = self.ends_ptr[node + 1] - self.ends_ptr[node]
            if n_ends.any():
                chans.append(self.ends_flat[ranges(self.ends_ptr[node], n_ends)])
                starts.append(np.repeat(start, n_ends))
                ends.append(np.repeat(pos, n_ends))
            keep = self.more[node]
            node, start, stop, pos = node[keep], start[keep], stop[keep], pos[keep]
        if not chans:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, empty
        return np.concatenate(chans), np.concatenate(starts), np.concatenate(ends)


def _extend(ptr: np.ndarray, flat: np.ndarray, lists: list) -> tuple[np.ndarray, np.ndarray]:
    """A CSR (``ptr``, ``flat``) with rows for ``lists`` appended."""
    sizes = np.asarray([len(x) for x in lists], dtype=np.int64)
    values = np.asarray([k for x in lists for k in x], dtype=np.int64)
    return (np.concatenate([ptr, ptr[-1] + np.cumsum(sizes)]),
            np.concatenate([flat, values]))
