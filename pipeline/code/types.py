"""What the matcher needs to know about a word, computed once per word type.

Which trie edges a token can start or continue, whether it is a negation cue or a
clause boundary, which token patterns it can anchor: all of that depends only on the
token's form and lemma, never on its position. A corpus has far fewer types than
tokens (Zipf), so ``TypeTable`` computes it once per (ORTH, LEMMA) pair, for the whole
run, and the per-token work is a NumPy gather.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.code.trie import TokenTrie, _Node
from pipeline.code.walk import TrieWalk

CLAUSE_WORDS = frozenset({"omdat", "dat", "want", "maar", "terwijl", "als",
                          "because", "but", "that", "while", "if"})
CLAUSE_PUNCT = frozenset({",", ";", ":"})

# id(orth array) -> (orth, form codes, lemma codes, hashes): see ``hint``
_HINTS: dict[int, tuple] = {}
_MAX_HINTS = 4


def hint(orth: np.ndarray, form_codes: np.ndarray, lemma_codes: np.ndarray,
         hashes: np.ndarray) -> None:
    """Tell ``TypeTable.ids`` how the tokens of ``orth`` are coded, to skip hashing them.

    A chunk-cache entry stores its tokens as indexes into its string list, so
    ``orth == hashes[form_codes]`` and the lemmas are ``hashes[lemma_codes]``: the
    distinct forms are known without a factorisation of the hashes. Only the
    latest few hints are kept; ``ids`` uses one only for that very ``orth`` array.
    """
    _HINTS.pop(id(orth), None)
    _HINTS[id(orth)] = (orth, form_codes, lemma_codes, hashes)
    while len(_HINTS) > _MAX_HINTS:
        _HINTS.pop(next(iter(_HINTS)))


class _Column:
    """A growable NumPy column indexed by type id."""

    def __init__(self, dtype: str) -> None:
        self.data = np.zeros(1024, dtype=dtype)

    def set(self, index: int, value: object) -> None:
        if index >= len(self.data):
            grown = np.zeros(2 * index + 1, dtype=self.data.dtype)
            grown[:len(self.data)] = self.data
            self.data = grown
        self.data[index] = value


class TypeTable:
    """Type ids for (ORTH, LEMMA) pairs and their per-type facts.

    Args:
        trie: the compiled token trie (terms, phrases, globs).
        cues: negation cues (lower-case).
        requirements: per pattern group, the word sets of which a doc needs one each
            (``compiled.pattern_requirements``).
    """

    def __init__(self, trie: TokenTrie, cues: frozenset[str],
                 requirements: list[tuple[frozenset[str], ...]]) -> None:
        self.trie = trie
        self.cues = cues
        self._ids: dict[tuple[int, int], int] = {}
        self.keys: list[tuple[str, ...]] = []        # (lower,) or (lower, lemma)
        self.pairs: list[tuple[int, int]] = []       # (ORTH, LEMMA) hashes
        self.globs: list[frozenset[str]] = []       # globs matching the keys
        self.roots: list[list[_Node]] = []           # trie nodes one step from the root
        self.root_ends: list[list[int]] = []         # channels ending there (one-token hits)
        self.root_deeper: list[list[_Node]] = []     # those of them with children
        self.lengths = _Column("int64")              # characters of the form
        self.starts = _Column("bool")                # some trie path starts here
        self.cue = _Column("bool")                   # a negation cue
        self.clause_word = _Column("bool")           # starts a clause (CLAUSE_WORDS)
        self.clause_punct = _Column("bool")          # ends a clause (CLAUSE_PUNCT)
        # word -> [(group, requirement index)], and per type the pairs it satisfies
        self._req_words: dict[str, list[tuple[int, int]]] = {}
        for group, sets in enumerate(requirements):
            for r, words in enumerate(sets):
                for word in words:
                    self._req_words.setdefault(word, []).append((group, r))
        self.full = [(1 << len(sets)) - 1 for sets in requirements]  # every requirement met
        self.anchors: list[tuple[tuple[int, int], ...]] = []        # per type: (group, mask)
        # (id(trie node), type) -> next nodes; the trie outlives the table, so ids are stable
        self._steps: dict[tuple[int, int], list[_Node]] = {}
        self._walker = None
        # (orth, lemma, type id) of the known types, sorted by orth: see ``_known``
        self._sorted: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def walker(self) -> TrieWalk:
        """The batch trie walk (``pipeline.code.walk``), built on first use."""
        if self._walker is None:
            self._walker = TrieWalk(self.trie)
        return self._walker

    def ids(self, vocab: object, orth: np.ndarray, lemma: np.ndarray) -> np.ndarray:
        """Type id of every token (new types are added)."""
        if not len(orth):
            return np.zeros(0, dtype=np.int64)
        got = _HINTS.get(id(orth))
        if got is not None and got[0] is orth:
            coded = self._coded_ids(vocab, *got[1:])
            if coded is not None:
                return coded
        # A hash factorisation of plain uint64 is much faster than sorting (25x against
        # np.unique), and a form almost always has one lemma: pair each distinct form
        # with its lemma and fall back to (orth, lemma) records only when some form has
        # two. Type ids are internal: the order new types are added in does not matter.
        inverse, forms = pd.factorize(orth)
        lemmas = np.zeros(len(forms), dtype=np.uint64)
        lemmas[inverse] = lemma
        if np.array_equal(lemmas[inverse], lemma):
            unique = zip(forms.tolist(), lemmas.tolist())
        else:
            pairs = np.empty(len(orth), dtype=[("o", "u8"), ("l", "u8")])
            pairs["o"], pairs["l"] = orth, lemma
            records, inverse = np.unique(pairs, return_inverse=True)
            inverse = inverse.reshape(-1)
            unique = records.tolist()
        get, known = self._ids.get, []
        for o, le in unique:
            t = get((o, le))
            if t is None:
                t = self._add(vocab, o, le)
            known.append(t)
        return np.asarray(known, dtype=np.int64)[inverse]

    def _coded_ids(self, vocab: object, forms: np.ndarray, lemmas: np.ndarray,
                   hashes: np.ndarray) -> np.ndarray | None:
        """``ids`` of tokens given as string indexes (see ``hint``); None when some form
        has two lemmas (then ``ids`` pairs them itself)."""
        lemma_of = np.zeros(len(hashes), dtype=lemmas.dtype)
        lemma_of[forms] = lemmas
        if not np.array_equal(lemma_of[forms], lemmas):
            return None
        present = np.flatnonzero(np.bincount(forms, minlength=len(hashes)))
        orth, lemma = hashes[present], hashes[lemma_of[present]]
        known = self._known(orth, lemma)
        get = self._ids.get
        for k in np.flatnonzero(known < 0).tolist():  # new types, or a form with two lemmas
            o, le = int(orth[k]), int(lemma[k])
            t = get((o, le))
            known[k] = t if t is not None else self._add(vocab, o, le)
        table = np.zeros(len(hashes), dtype=np.int64)
        table[present] = known
        return table[forms]

    def _known(self, orth: np.ndarray, lemma: np.ndarray) -> np.ndarray:
        """Type id of each (orth, lemma) pair by a sorted search, -1 where not found.

        The sorted arrays of the known pairs are rebuilt when types were added since;
        a form known with several lemmas may be found with another one: -1 then too
        (the caller looks those up one by one)."""
        if self._sorted is None or len(self._sorted[0]) != len(self.pairs):
            pairs = np.asarray(self.pairs, dtype=np.uint64).reshape(-1, 2)
            order = np.lexsort((pairs[:, 1], pairs[:, 0]))
            self._sorted = (pairs[order, 0], pairs[order, 1], order.astype(np.int64))
        s_orth, s_lemma, s_tid = self._sorted
        out = np.full(len(orth), -1, dtype=np.int64)
        if not len(s_orth):
            return out
        at = np.minimum(np.searchsorted(s_orth, orth), len(s_orth) - 1)
        hit = (s_orth[at] == orth) & (s_lemma[at] == lemma)
        out[hit] = s_tid[at[hit]]
        return out

    def _add(self, vocab, orth: int, lemma: int) -> int:  # noqa: ANN001
        strings = vocab.strings  # type: ignore[attr-defined]
        text = strings[orth]
        low = vocab[orth].lower_  # type: ignore[index]  # the lexeme's LOWER, as Token.lower_
        lem = strings[lemma].lower() if lemma else ""
        keys = (low, lem) if lem and lem != low else (low,)
        t = len(self.keys)
        self._ids[(orth, lemma)] = t
        trie = self.trie
        if not trie._globs:
            globs: frozenset[str] = frozenset()
        elif trie.glob_lemmas:
            globs = frozenset().union(*(trie.globs.match(k) for k in keys))
        else:
            globs = trie.globs.match(low)
        self.keys.append(keys)
        self.pairs.append((orth, lemma))
        self.globs.append(globs)
        roots = self._step([trie.root], t)
        self.roots.append(roots)
        self.root_ends.append(list(dict.fromkeys(ch for node in roots for ch in node.ends)))
        self.root_deeper.append([node for node in roots if node.lit or node.glob])
        self.lengths.set(t, len(text))
        self.starts.set(t, bool(roots))
        self.cue.set(t, low in self.cues or lem in self.cues)  # as Token.lemma_.lower()
        self.clause_word.set(t, low in CLAUSE_WORDS)
        self.clause_punct.set(t, low in CLAUSE_PUNCT)
        masks: dict[int, int] = {}  # group -> bit mask of the requirements this type meets
        for k in keys:
            for group, r in self._req_words.get(k, ()):
                masks[group] = masks.get(group, 0) | (1 << r)
        self.anchors.append(tuple(masks.items()))
        return t

    def step(self, nodes: list[_Node], t: int) -> list[_Node]:
        """Trie nodes reached from ``nodes`` by a token of type ``t`` (each node once)."""
        if len(nodes) == 1:  # the usual frontier: memoised per (node, type)
            key = (id(nodes[0]), t)
            got = self._steps.get(key)
            if got is None:
                got = self._steps[key] = self._step(nodes, t)
            return got
        return self._step(nodes, t)

    def _step(self, nodes: list[_Node], t: int) -> list[_Node]:
        keys, globs = self.keys[t], self.globs[t]
        nxt: list[_Node] = []
        for node in nodes:
            lit = node.lit
            if lit:
                for key in keys:
                    child = lit.get(key)
                    if child is not None:
                        nxt.append(child)
            if node.glob and globs:
                for glob in globs:
                    child = node.glob.get(glob)
                    if child is not None:
                        nxt.append(child)
        if len(nxt) > 1:  # a node reached by literal and glob edges counts once
            nxt = list({id(node): node for node in nxt}.values())
        return nxt

    def wanted_groups(self, types: set[int]) -> list[int]:
        """Pattern groups whose every requirement some type in ``types`` satisfies."""
        covered: dict[int, int] = {}
        get = covered.get
        for t in types:
            for group, mask in self.anchors[t]:
                covered[group] = get(group, 0) | mask
        full = self.full
        return sorted(g for g, mask in covered.items() if mask == full[g])
