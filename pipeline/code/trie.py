"""A token trie for terms, phrases and globs, matched on lower-case form OR lemma.

spaCy's PhraseMatcher compares one attribute for the whole phrase, but the codebook
lets each token of a phrase match on its lower-case form or its lemma (and be a
glob). A trie keyed by token strings does exactly that in one pass: from each start
token we follow the edges for the token's lower form, its lemma and the globs that
match it (found through the ``GlobIndex``), so the work per token depends on the
live trie paths, not on the number of patterns.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from pipeline.code.globs import GlobIndex

if TYPE_CHECKING:  # spaCy is imported where it is used: a re-code from cache may not need it
    from spacy.tokens import Doc


class _Node:
    __slots__ = ("ends", "glob", "lit")

    def __init__(self) -> None:
        self.lit: dict[str, _Node] = {}
        self.glob: dict[str, _Node] = {}
        self.ends: list[int] = []


class TokenTrie:
    """Sequences of literal tokens / globs -> channel ids."""

    def __init__(self) -> None:
        self.root = _Node()
        self._globs: list[str] = []
        self.globs = GlobIndex(())
        # hash -> string memos; string hashes are global, so they are valid for any vocab
        self._lower_memo: dict[int, str] = {}
        self._lemma_memo: dict[int, str] = {}
        # settings.glob_lemmas: a glob also matches a token's lemma (looked up in the same
        # GlobIndex, so the cost stays one hash-lookup pass per distinct word)
        self.glob_lemmas = False

    def add(self, items: Sequence[tuple[str, bool]], channel: int) -> None:
        """Add one sequence of (token, is_glob) items that reports ``channel``."""
        node = self.root
        for text, glob in items:
            table = node.glob if glob else node.lit
            if glob:
                self._globs.append(text)
            node = table.setdefault(text, _Node())
        if channel not in node.ends:
            node.ends.append(channel)

    def all_nodes(self) -> list[_Node]:
        """Every node, the root first (breadth first: a stable numbering)."""
        out, k = [self.root], 0
        while k < len(out):
            node = out[k]
            out += list(node.lit.values()) + list(node.glob.values())
            k += 1
        return out

    def freeze(self) -> None:
        """Build the glob index once every sequence is added."""
        self.globs = GlobIndex(self._globs)

    def keys(self, doc: Doc) -> tuple[list[tuple[str, ...]], list[str]]:
        """Per token: its (lower form, lower-cased lemma) keys, and its lower form.

        Read as hash arrays (``Doc.to_array``) and turned into strings through memo
        tables: creating a Python ``Token`` per token costs more than the matching.
        lemma.lower(): docs from pipelines without the lemma_lower component still work.
        """
        from spacy.attrs import LEMMA, LOWER

        strings = doc.vocab.strings
        lower_memo, lemma_memo = self._lower_memo, self._lemma_memo
        keys, lowers = [], []
        for lo, le in doc.to_array([LOWER, LEMMA]).tolist():
            low = lower_memo.get(lo)
            if low is None:
                low = lower_memo[lo] = strings[lo]
            lem = lemma_memo.get(le)
            if lem is None:
                lem = lemma_memo[le] = strings[le].lower() if le else ""
            keys.append((low, lem) if lem and lem != low else (low,))
            lowers.append(low)
        return keys, lowers

    def find(self, doc: Doc, *, keys: list[tuple[str, ...]] | None = None,
             lowers: list[str] | None = None) -> list[tuple[int, int, int]]:
        """Return (channel, start token, end token) hits in ``doc``, without duplicates.

        ``keys``/``lowers``: the result of ``self.keys(doc)``, when the caller has it.
        """
        if not self.root.lit and not self.root.glob:
            return []
        if keys is None or lowers is None:
            keys, lowers = self.keys(doc)
        has_globs = bool(self._globs)
        none: frozenset[str] = frozenset()
        if not has_globs:
            hits_glob = [none] * len(doc)
        elif self.glob_lemmas:  # keys[j] = (lower,) or (lower, lemma)
            match = self.globs.match
            hits_glob = [match(k[0]) if len(k) == 1 else match(k[0]) | match(k[1])
                         for k in keys]
        else:
            hits_glob = [self.globs.match(low) for low in lowers]
        out: set[tuple[int, int, int]] = set()
        n = len(doc)
        for start in range(n):
            frontier = [self.root]
            j = start
            while frontier and j < n:
                nxt: list[_Node] = []
                for node in frontier:
                    for key in keys[j]:
                        child = node.lit.get(key)
                        if child is not None:
                            nxt.append(child)
                    if node.glob:
                        for glob in hits_glob[j]:
                            child = node.glob.get(glob)
                            if child is not None:
                                nxt.append(child)
                j += 1
                if len(nxt) > 1:  # a node reached by literal and glob edges counts once
                    nxt = list({id(node): node for node in nxt}.values())
                for node in nxt:
                    for channel in node.ends:
                        out.add((channel, start, j))
                frontier = nxt
        return sorted(out)
