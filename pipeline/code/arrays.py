"""Parsed segments as flat token arrays: what the rule matcher reads, without Token objects.

Creating a Python ``Token`` per token (``for token in doc``, ``doc[i]``) costs more than
the matching itself, so the matcher reads a few attribute arrays of all the docs of a
batch at once (``Doc.to_array``, concatenated) and works on word types; a ``Doc`` is
only needed by the spaCy ``Matcher``, for the few docs that can hold a token pattern.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from pipeline.code.lightvocab import spacy_vocab

if TYPE_CHECKING:
    from spacy.tokens import Doc

# spaCy's attribute ids of ORTH, LEMMA, SENT_START, SPACY, NORM (``spacy.attrs``;
# a test holds them to spaCy's): spelled out so that reading cached token arrays
# does not import spaCy.
ORTH, LEMMA, SENT_START, SPACY, NORM = 65, 73, 80, 81, 67
# NORM is not read by the matcher, but a Doc rebuilt from the arrays for the spaCy
# Matcher (a pattern may test NORM) must equal the parsed one.
ATTRS = [ORTH, LEMMA, SENT_START, SPACY, NORM]


@dataclass
class TokenArrays:
    """The tokens of several docs, concatenated.

    Attributes:
        vocab: the spaCy vocab whose StringStore resolves the hashes.
        orth: ORTH hash per token (uint64).
        lemma: LEMMA hash per token (uint64; 0: no lemma).
        sent: SENT_START per token (1 starts a sentence, -1 does not, 0 unknown).
        space: whether the token is followed by a space.
        bounds: doc ``k`` holds tokens ``bounds[k]:bounds[k + 1]``.
        get_doc: returns the ``Doc`` of doc ``k`` (built on demand when the arrays
            did not come from Docs).
    """

    vocab: object
    orth: np.ndarray
    lemma: np.ndarray
    sent: np.ndarray
    space: np.ndarray
    bounds: np.ndarray
    get_doc: Callable[[int], Doc]
    _doc_of: np.ndarray | None = field(default=None, repr=False)
    _doc_starts: np.ndarray | None = field(default=None, repr=False)
    # precomputed by ``derived`` (a chunk-cache entry read ahead): see ``with_derived``
    _sent_starts: np.ndarray | None = field(default=None, repr=False)
    _lengths: np.ndarray | None = field(default=None, repr=False)
    _offsets: np.ndarray | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.bounds) - 1

    @classmethod
    def from_docs(cls, docs: Sequence[Doc]) -> TokenArrays:
        """Read the arrays of ``docs`` (one ``Doc.to_array`` per doc)."""
        docs = list(docs)
        parts = [doc.to_array(ATTRS) for doc in docs]
        return cls.from_parts(docs[0].vocab if docs else None, parts, docs.__getitem__)

    @classmethod
    def from_parts(cls, vocab: object, parts: Sequence[np.ndarray],
                   get_doc: Callable[[int], Doc]) -> TokenArrays:
        """Concatenate per-doc ``(n, 5)`` arrays of ``ATTRS`` columns."""
        sizes = [len(p) for p in parts]
        bounds = np.zeros(len(parts) + 1, dtype=np.int64)
        np.cumsum(sizes, out=bounds[1:])
        table = _joined(parts)
        if table is None:
            table = (np.concatenate([p.reshape(-1, len(ATTRS)) for p in parts]) if parts
                     else np.zeros((0, len(ATTRS)), dtype=np.uint64))
        return cls(vocab, table[:, 0], table[:, 1], table[:, 2].astype(np.int64),
                   table[:, 3].astype(bool), bounds, get_doc)

    def doc_index(self, positions: np.ndarray) -> np.ndarray:
        """Doc number of each token position."""
        n = int(self.bounds[-1])
        if len(positions) > 64 and n and 0 <= positions.min() and positions.max() < n:
            if self._doc_of is None:  # one gather beats a binary search per position
                sizes = np.diff(self.bounds)
                self._doc_of = np.repeat(np.arange(len(sizes), dtype=np.int64), sizes)
            return self._doc_of[positions]
        return np.searchsorted(self.bounds, positions, side="right") - 1

    def doc_starts(self) -> np.ndarray:
        """Per token: the position of the first token of its doc (computed once)."""
        if self._doc_starts is None:
            n = int(self.bounds[-1])
            firsts = np.zeros(n, dtype=np.int64)
            starts = self.bounds[:-1][self.bounds[:-1] < self.bounds[1:]]  # non-empty docs
            firsts[starts] = starts
            self._doc_starts = np.maximum.accumulate(firsts) if n else firsts
        return self._doc_starts

    def sentence_starts(self, doc_first: np.ndarray) -> np.ndarray:
        """Per token: the position of the first token of its sentence.

        As ``matching`` always read it from ``SENT_START``: a token flagged 1 starts a
        sentence, and a doc's first token starts one (a doc without sentence
        annotation is one sentence).
        """
        if self._sent_starts is not None and doc_first is self._doc_starts:
            return self._sent_starts
        n = len(self.sent)
        marks = np.where(self.sent == 1, np.arange(n, dtype=np.int64), 0)
        return np.maximum(np.maximum.accumulate(marks) if n else marks, doc_first)

    def char_offsets(self, lengths: np.ndarray, doc_first: np.ndarray) -> np.ndarray:
        """Per token: its character offset in its doc (``Token.idx``), from lengths and spaces."""
        if (self._offsets is not None and doc_first is self._doc_starts
                and np.array_equal(lengths, self._lengths)):
            return self._offsets
        width = lengths + self.space.astype(np.int64)
        total = np.cumsum(width) - width          # offset in the concatenation
        return total - total[doc_first] if len(total) else total


    def with_derived(self, derived: dict[str, np.ndarray] | None) -> TokenArrays:
        """Take ``derived``'s arrays (of these tokens) instead of computing them again."""
        if derived is not None and np.array_equal(derived["bounds"], self.bounds):
            self._doc_starts = derived["doc_starts"]
            self._sent_starts = derived["sent_starts"]
            self._lengths = derived["lengths"]
            self._offsets = derived["offsets"]
        return self


def derived(codes: np.ndarray, string_lengths: np.ndarray,
            sizes: list[int]) -> dict[str, np.ndarray]:
    """What the matcher computes from a chunk's tokens besides their word types.

    Runs on the read-ahead thread for a chunk-cache entry (NumPy, mostly without the
    GIL), so re-matching an edited rule on the coding thread finds them done.

    Args:
        codes: the entry's stored ``(n, 5)`` table (string indexes; ``SENT_START`` + 1;
            ``SPACY``).
        string_lengths: characters of each string of the entry (index 0: no string).
        sizes: tokens per doc (segment), in table order.

    Returns:
        ``bounds``, ``sent``, ``space`` (``TokenArrays``' columns), ``doc_starts``, ``sent_starts``,
        per-token ``lengths`` (characters of ORTH) and ``offsets`` (``char_offsets``).
    """
    bounds = np.zeros(len(sizes) + 1, dtype=np.int64)
    np.cumsum(sizes, out=bounds[1:])
    n = len(codes)
    # the values ``TokenArrays`` computes, in fewer passes: the doc and sentence
    # starts as runs (``repeat``) instead of running maxima over every token
    sent = np.subtract(codes[:, 2], 1, dtype=np.int64)
    space = codes[:, 3].astype(bool)
    counts = np.asarray(sizes, dtype=np.int64)
    doc_first = np.repeat(bounds[:-1], counts)
    # a sentence starts at a token flagged 1 (stored 2) and at a doc's first token
    marks = codes[:, 2] == 2
    marks[bounds[:-1][counts > 0]] = True
    firsts = np.flatnonzero(marks)
    sent_starts = np.repeat(firsts, np.diff(firsts, append=n))
    lengths = string_lengths.take(codes[:, 0])
    # character offsets: a running sum of the widths, less its value at the doc's
    # first token, in one array (a re-code allocates less: fewer page faults)
    offsets = lengths + codes[:, 3]
    np.cumsum(offsets, out=offsets)
    offsets -= lengths
    offsets -= codes[:, 3]
    offsets -= offsets[doc_first]
    return {"bounds": bounds, "sent": sent, "space": space, "doc_starts": doc_first,
            "sent_starts": sent_starts, "lengths": lengths, "offsets": offsets}


def _joined(parts: Sequence[np.ndarray]) -> np.ndarray | None:
    """The parts concatenated when all are ``(n, len(ATTRS))`` arrays (as parsing gives
    them): no reshape per part (tens of thousands per chunk). None: another shape."""
    if not parts:
        return None
    try:
        table = np.concatenate(parts)
    except ValueError:  # parts of different numbers of dimensions or columns
        return None
    # every part had this shape: concatenate needs one number of dimensions and columns
    return table if table.ndim == 2 and table.shape[1] == len(ATTRS) else None


def runs(items: Sequence, limit: int) -> list[tuple[int, int]]:
    """``items`` (texts, token arrays) cut into consecutive ``(begin, end)`` runs of about
    ``limit`` in ``len``: a run ends with the item that reaches it; one run when
    they hold no more."""
    ends = np.cumsum(np.fromiter(map(len, items), dtype=np.int64, count=len(items)))
    if not len(items) or ends[-1] <= limit:
        return [(0, len(items))]
    out, start, reached = [], 0, limit
    while start < len(items):
        stop = min(int(np.searchsorted(ends, reached, side="left")) + 1, len(items))
        out.append((start, stop))
        start, reached = stop, int(ends[stop - 1]) + limit
    return out


def ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``concatenate([arange(s, s + c) for s, c in zip(starts, counts)])``, vectorised."""
    total = int(counts.sum())
    if not total:
        return np.zeros(0, dtype=np.int64)
    ends = np.cumsum(counts)
    return np.arange(total, dtype=np.int64) - np.repeat(ends - counts - starts, counts)


def rebuild_doc(vocab, part: np.ndarray) -> Doc:  # noqa: ANN001
    """The ``Doc`` of one ``(n, 5)`` array of ``ATTRS``, as ``DocBin.get_docs`` builds it."""
    from spacy.tokens import Doc

    vocab = spacy_vocab(vocab)  # a Doc needs spaCy's vocab
    strings = vocab.strings
    words = [strings[o] for o in part[:, 0].tolist()]
    doc = Doc(vocab, words=words, spaces=part[:, 3].astype(bool).tolist())
    if len(words):
        doc.from_array([LEMMA, NORM, SENT_START], np.ascontiguousarray(part[:, [1, 4, 2]]))
    return doc
