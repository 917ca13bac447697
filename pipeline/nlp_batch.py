"""The lemma components and the sentencizer of ``nlp.make_nlp`` as NumPy steps over docs.

``lemmatizer`` (lookup) + ``lemma_lower`` + ``nl_word_forms`` set a token's lemma from
its form alone, and the sentencizer's two per-token tests (is the text a sentence-end
character, is the token punctuation) are properties of the form too. So both are
computed once per distinct ORTH, by the very calls the components make, and then
spread over all tokens of a batch of docs with NumPy; only the sentencizer's scan
(a sentence starts at the first word after a sentence-end character) is positional,
and it is vectorised as well. The result is that of ``nlp.pipe``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from spacy.attrs import LEMMA, ORTH, SENT_START
from spacy.language import Language
from spacy.tokens import Doc, Token


class FusedLemmas:
    """The three lemma components + the sentencizer of one pipeline, over many docs.

    Args:
        nlp: the pipeline (``make_nlp``).
        table: the extra form -> lemma table of the language (``nlp.word_forms``).
    """

    def __init__(self, nlp: Language, table: dict[str, str]) -> None:
        self.nlp = nlp
        self.lemmatizer = nlp.get_pipe("lemmatizer")
        self.table = table
        self.components = [nlp.get_pipe(name) for name in nlp.pipe_names[:-1]]
        self.memo = OrthMemo(np.uint64)  # orth hash -> final lemma hash
        # id(sentencizer) -> orth hash -> 1 (a sentence-end character) | 2 (punctuation)
        self.punct_memo: dict[int, OrthMemo] = {}

    def _final(self, token: Token) -> int:
        strings = token.vocab.strings
        lemma = self.lemmatizer.lemmatize(token)[0]
        strings.add(lemma)  # the components add each lemma they set to the StringStore
        if lemma and not lemma.islower():
            lemma = lemma.lower()
            strings.add(lemma)
        lemma = self.table.get(token.lower_, lemma)
        return strings.add(lemma)

    def annotate(self, docs: list[Doc], sentencizer, *, fresh: bool = False) -> None:  # noqa: ANN001
        """Set lemmas and sentence starts of freshly tokenized ``docs`` in place.

        Args:
            docs: the docs.
            sentencizer: the pipeline's sentencizer.
            fresh: the docs come straight from the pipeline's tokenizer, which sets no
                lemma (a special case may set only ORTH and NORM) and no sentence start
                but the first token's (``Doc.push_back``): then only their ORTH column is
                read, not the two columns that would say so.
        """
        if not docs:
            return
        if fresh:
            parts = [doc.to_array(ORTH).reshape(-1) for doc in docs]
        else:
            parts = [doc.to_array([ORTH, LEMMA, SENT_START]).reshape(-1, 3) for doc in docs]
        sizes = np.fromiter((len(p) for p in parts), dtype=np.int64, count=len(parts))
        bounds = np.zeros(len(docs) + 1, dtype=np.int64)
        np.cumsum(sizes, out=bounds[1:])
        table = None if fresh else np.concatenate(parts)
        orth = np.concatenate(parts) if fresh else table[:, 0]
        forms, inverse = distinct(orth)
        uses = FirstUses(docs, bounds, inverse, len(forms))
        lemmas = self._lemmas(docs, table, forms, inverse, uses)
        starts = self._sentence_starts(sentencizer, bounds, forms, inverse, uses)
        guess = np.where(starts, 1, -1).astype(np.int64)
        before = None if fresh else table[:, 2].view(np.int64)
        if lemmas is not None and (fresh or ((before == 0) | (before == guess)).all()):
            # set_annotations writes 1 or -1 to each token whose sentence start is unset
            # (a doc's first token is already 1, and so is its guess): write the same
            # values with the lemmas, one from_array per doc.
            values = np.empty((len(orth), 2), dtype=np.uint64)
            values[:, 0] = lemmas
            values[:, 1] = guess.view(np.uint64)
            for k, doc in enumerate(docs):
                if bounds[k] < bounds[k + 1]:
                    doc.from_array([LEMMA, SENT_START], values[bounds[k]:bounds[k + 1]])
            return
        if lemmas is not None:
            for k, doc in enumerate(docs):
                if bounds[k] < bounds[k + 1]:
                    doc.from_array([LEMMA], lemmas[bounds[k]:bounds[k + 1]].reshape(-1, 1))
        guesses = np.split(starts, bounds[1:-1])
        sentencizer.set_annotations(docs, [g.tolist() for g in guesses])

    def values(self, orth: np.ndarray, sentencizer) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN001
        """Per token of fresh tokens known by their ORTH only (no ``Doc``): the final
        LEMMA and the sentencizer's flags (1: a sentence-end character, 2: punctuation).

        Both depend on the form alone, as in ``annotate``; a form never seen is looked
        at as the token of a one-word ``Doc`` (what is read of it - its text, lower-case
        form and punctuation flag - belongs to its lexeme). ``sentence_starts`` makes
        SENT_START of the flags.

        Args:
            orth: ORTH hash per token (uint64).
            sentencizer: the pipeline's sentencizer.

        Returns:
            (lemma hashes as uint64, flags as uint8), per token.
        """
        if not len(orth):
            return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.uint8)
        forms, inverse = distinct(orth)
        uses = WordUses(self.nlp.vocab, forms)
        lemmas = self.memo.get(forms, lambda us: [self._final(t) for t in uses.tokens(us)])
        return lemmas[inverse], self._flags(sentencizer, forms, uses)[inverse]

    def _lemmas(self, docs, table, forms, inverse, uses) -> np.ndarray | None:  # noqa: ANN001
        """The final lemma of every token (memoised per distinct form for the run).

        None when some lemma was set by the tokenizer: then the components' own code
        has set the lemmas, doc by doc (``table`` None: the docs are fresh, none was).
        """
        if table is not None and table[:, 1].any():
            for doc in docs:
                self.apply(doc)
            return None
        finals = self.memo.get(forms, lambda us: [self._final(t) for t in uses.tokens(us)])
        return finals[inverse]

    def apply(self, doc: Doc) -> None:
        """Set the lemmas of one ``doc`` as the three components would."""
        if not len(doc):
            return
        array = doc.to_array([ORTH, LEMMA])
        if array[:, 1].any():  # a lemma set by the tokenizer: the components' own code
            for component in self.components:
                component(doc)
            return
        forms, inverse = distinct(array[:, 0])
        uses = FirstUses([doc], np.asarray([0, len(doc)], dtype=np.int64), inverse, len(forms))
        finals = self.memo.get(forms, lambda us: [self._final(t) for t in uses.tokens(us)])
        doc.from_array([LEMMA], finals[inverse].reshape(-1, 1))

    def _flags(self, sentencizer, forms: np.ndarray, uses) -> np.ndarray:  # noqa: ANN001
        """Sentencizer flags of distinct forms: 1 a sentence-end character, 2 punctuation."""
        punct_chars = sentencizer.punct_chars
        memo = self.punct_memo.setdefault(id(sentencizer), OrthMemo(np.uint8))

        def flags(us: np.ndarray) -> list[int]:
            return [(token.text in punct_chars) | 2 * token.is_punct
                    for token in uses.tokens(us)]

        return memo.get(forms, flags)

    def _sentence_starts(self, sentencizer, bounds, forms, inverse,  # noqa: ANN001
                         uses) -> np.ndarray:
        """``Sentencizer.predict``: its guesses for every token, concatenated."""
        return sentence_starts(self._flags(sentencizer, forms, uses)[inverse], bounds)


def sentence_starts(bits: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """``Sentencizer.predict`` of tokens given their flags (``FusedLemmas.values``).

    Args:
        bits: per token, 1 if a sentence-end character, 2 if punctuation (or both).
        bounds: doc ``k`` holds tokens ``bounds[k]:bounds[k + 1]``.

    Returns:
        Per token whether it starts a sentence (bool).
    """
    in_chars, is_punct = (bits & 1).astype(bool), (bits & 2).astype(bool)
    n = len(bits)
    starts = np.zeros(n, dtype=bool)
    # A word (neither punctuation nor a sentence-end character) starts a sentence when
    # the last non-neutral token before it in its doc was a sentence-end character;
    # punctuation that is no sentence-end character is neutral (the period state
    # passes through it).
    pos = np.flatnonzero(in_chars | ~is_punct)
    if len(pos):
        ender = in_chars[pos]
        # doc of each position: a gather (cheaper than a binary search per token)
        same_doc = np.repeat(np.arange(len(bounds) - 1), np.diff(bounds))[pos]
        after_end = np.zeros(len(pos), dtype=bool)
        after_end[1:] = ender[:-1] & (same_doc[1:] == same_doc[:-1])
        starts[pos[after_end & ~ender]] = True
    firsts = bounds[:-1][bounds[:-1] < bounds[1:]]
    starts[firsts] = True
    return starts


class OrthMemo:
    """A per-form value (ORTH hash -> number), looked up for many forms at once.

    Forms seen before are found with one ``searchsorted`` in a sorted table; new forms
    wait in a small dict until they are merged into it, so neither a lookup nor an
    insert walks every form in Python.
    """

    def __init__(self, dtype: type) -> None:
        self.dtype = dtype
        self.keys = np.zeros(0, dtype=np.uint64)
        self.values = np.zeros(0, dtype=dtype)
        self.recent: dict[int, int] = {}

    def get(self, forms: np.ndarray, compute) -> np.ndarray:  # noqa: ANN001
        """Values of the distinct ``forms``; ``compute(indexes)`` gives the values of
        forms never seen (called with their indexes, in ascending order of the forms,
        so that new forms are computed - and their strings stored - in a fixed order)."""
        out = np.zeros(len(forms), dtype=self.dtype)
        where = np.searchsorted(self.keys, forms)
        found = where < len(self.keys)
        found[found] = self.keys[where[found]] == forms[found]
        out[found] = self.values[where[found]]
        missing = np.flatnonzero(~found)
        if len(missing):
            recent = self.recent
            values = [recent.get(o) for o in forms[missing].tolist()]
            new = [i for i, v in zip(missing.tolist(), values) if v is None]
            if new:
                new.sort(key=forms.__getitem__)
                got = compute(np.asarray(new, dtype=np.int64))
                recent.update(zip(forms[new].tolist(), got))
            out[missing] = [recent[o] for o in forms[missing].tolist()]
            # merging sorts the table: do it when the dict has grown by a fair share of
            # it (amortised), and soon, so that most lookups are NumPy ones
            if len(recent) >= 32 and len(recent) > len(self.keys) // 8:
                self._merge()
        return out

    def _merge(self) -> None:
        keys = np.concatenate([self.keys, np.fromiter(self.recent, dtype=np.uint64,
                                                      count=len(self.recent))])
        values = np.concatenate([self.values, np.fromiter(self.recent.values(), dtype=self.dtype,
                                                          count=len(self.recent))])
        order = np.argsort(keys, kind="stable")
        self.keys, self.values = keys[order], values[order]
        self.recent = {}


def distinct(orth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct values, inverse) of a uint64 array, in order of first use.

    A hash factorisation, several times faster than the sort of ``np.unique``.
    """
    inverse, forms = pd.factorize(orth)
    return forms, inverse


class FirstUses:
    """The first token of each distinct form of a batch of docs, found when asked for.

    Only forms missing from the memos need a ``Token`` (after the first batches, a few
    per batch), so their positions are not computed for batches that have none.

    Args:
        docs: the docs.
        bounds: doc ``k`` holds tokens ``bounds[k]:bounds[k + 1]`` of the batch.
        inverse: distinct-form index of each token of the batch (``distinct``).
        n_forms: number of distinct forms.
    """

    def __init__(self, docs: list[Doc], bounds: np.ndarray, inverse: np.ndarray,
                 n_forms: int) -> None:
        self.docs, self.bounds, self.inverse, self.n_forms = docs, bounds, inverse, n_forms
        self.first: np.ndarray | None = None
        self.where: np.ndarray | None = None

    def tokens(self, us: np.ndarray) -> list[Token]:
        """The first token of each form in ``us`` (indexes of distinct forms)."""
        if self.first is None:
            n = len(self.inverse)
            self.first = np.empty(self.n_forms, dtype=np.int64)
            self.first[self.inverse[::-1]] = np.arange(n - 1, -1, -1, dtype=np.int64)
            # doc of each first use
            self.where = np.searchsorted(self.bounds, self.first, side="right") - 1
        docs, bounds = self.docs, self.bounds
        return [docs[k][p - int(bounds[k])]
                for p, k in zip(self.first[us].tolist(), self.where[us].tolist())]


class WordUses:
    """A token of each distinct form, as the one word of a ``Doc`` (``FirstUses``
    without docs: what the lemma and sentencizer steps read of a token - its text,
    lower-case form and punctuation flag - belongs to its lexeme).

    Args:
        vocab: the vocab whose StringStore holds the forms.
        forms: the distinct ORTH hashes.
    """

    def __init__(self, vocab, forms: np.ndarray) -> None:  # noqa: ANN001
        self.vocab, self.forms = vocab, forms

    def tokens(self, us: np.ndarray) -> list[Token]:
        """A token of each form in ``us`` (indexes of distinct forms)."""
        strings = self.vocab.strings
        return list(Doc(self.vocab, words=[strings[h] for h in self.forms[us].tolist()]))
