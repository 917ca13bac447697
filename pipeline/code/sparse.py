"""Matching cached tokens where the rules can start, instead of at every token.

A re-code after an edit re-matches a rule or two on a chunk's cached tokens. The batch
path computes a word type, a character offset and negation prefix sums for every
token of the chunk, although the rules can only match where a token's type starts a
trie path. A chunk-cache entry stores its tokens as indexes into its string list
(``chunk_cache``), so here word types are looked up once per distinct string, the
tokens whose type starts a trie path are found with one gather, and everything else
(trie walks, negation windows, character offsets, evidence) is computed only at the
hits, through ``Lazy`` per-token views. The hits are those of the batch path
(``scan.flat_hits``), and ``vector.vector_matches`` runs on them unchanged; rules
other than terms, phrases, globs, proximity and exclude rules (token patterns) and
tokens whose form has two lemmas take the batch path (``sparse_batch`` returns None).

A chunk also hands the matcher its segment rows as columns (``SegmentRows``): whole
columns without a loop over tuples, the ids as the Arrow arrays of the segments table,
and texts that are made only when read (a re-match of one-word rules never needs them).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from pipeline.code.arrays import TokenArrays
from pipeline.code.compiled import CompiledRules
from pipeline.code.scan import _distinct_sorted
from pipeline.code.types import hint


@dataclass
class Coded:
    """Tokens of a batch as indexes into a chunk entry's strings.

    Attributes:
        forms, lemmas: per token, the string index of its ORTH and LEMMA.
        hashes: per string index, the vocab's hash (index 0: no string).
        facts: ``string_facts`` of these tokens made ahead, or None.
        offsets: per token, its character offset in its doc (``arrays.derived``) when
            made ahead from the entry's strings (``facts["lengths"]``), else None.
    """

    forms: np.ndarray
    lemmas: np.ndarray
    hashes: np.ndarray
    facts: dict[str, Any] | None = None
    offsets: np.ndarray | None = None


def string_facts(forms: np.ndarray, lemmas: np.ndarray, n_strings: int) -> dict[str, Any]:
    """Per distinct form of a batch: which strings occur as a form, and their lemma.

    Args:
        forms, lemmas: string index of each token's ORTH and LEMMA.
        n_strings: size of the string index (the entry's strings + 1).

    Returns:
        ``present`` (string indexes used as a form), ``lemma_of`` (per string index,
        the lemma of its tokens) and ``one_lemma`` (whether every form has one lemma:
        else a type is not a function of the form, and ``sparse_batch`` declines).
    """
    # per string, in the tokens' own dtype: the gather and the comparison over every
    # token then read and write half the bytes (the entry's indexes are uint32)
    lemma_of = np.zeros(n_strings, dtype=lemmas.dtype)
    lemma_of[forms] = lemmas
    one = bool(np.array_equal(lemma_of.take(forms), lemmas))
    present = np.flatnonzero(np.bincount(forms, minlength=n_strings))
    return {"present": present, "lemma_of": lemma_of.astype(np.int64), "one_lemma": one}


class Lazy:
    """A per-token array computed only at the positions asked for: ``view[positions]``."""

    def __init__(self, fn) -> None:  # noqa: ANN001
        self._fn = fn

    def __getitem__(self, positions):  # noqa: ANN001, ANN204
        return self._fn(positions)


class SparseBatch:
    """Word types of a batch's distinct strings and the tokens where a trie path starts.

    Build it with ``sparse_batch``.
    """

    def __init__(self, arrays: TokenArrays, compiled: CompiledRules, coded: Coded,
                 string_type: np.ndarray, offsets: np.ndarray | None) -> None:
        self.arrays, self.compiled, self.coded = arrays, compiled, coded
        self.string_type = string_type
        forms = coded.forms
        lengths = compiled.types.lengths.data
        self.tid = Lazy(lambda p: string_type[forms[p]])
        if offsets is None:  # nothing made ahead: as ``char_offsets`` computes them
            offsets = arrays.char_offsets(lengths[string_type][forms], arrays.doc_starts())
        self.offsets = offsets
        self.char_end = Lazy(lambda p: offsets[p] + lengths[string_type[forms[p]]])
        self._full = None

    def hits(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``scan.flat_hits`` of the batch (the trie's hits; no token patterns here)."""
        compiled, types = self.compiled, self.compiled.types
        n = len(self.coded.forms)
        empty = np.zeros(0, dtype=np.int64)
        if not (compiled.trie.root.lit or compiled.trie.root.glob) or not n:
            return empty, empty, empty
        walker = types.walker
        walker._describe(types)
        t = self.string_type
        starts = ((walker.one_ptr[t + 1] > walker.one_ptr[t])
                  | (walker.deep_ptr[t + 1] > walker.deep_ptr[t]))
        positions = np.flatnonzero(starts[self.coded.forms])
        if not len(positions):
            return empty, empty, empty
        c, s, e = walker.hits_at(types, self.arrays, self.tid, positions)
        return _distinct_sorted(c, s, e, n)

    def full_tid(self) -> np.ndarray:
        """The type id of every token (what the batch path computes)."""
        if self._full is None:
            self._full = self.string_type[self.coded.forms]
        return self._full

    def context(self) -> _SparseContext:
        """The negation / veto facts of the batch (``matching._Context``'s interface)."""
        return _SparseContext(self)


class _SparseContext:
    """``matching._Context`` at the hits only; the clause scope builds the full one."""

    def __init__(self, batch: SparseBatch) -> None:
        self._batch = batch
        self._sents: np.ndarray | None = None
        self._ctx = None

    @property
    def sents(self) -> np.ndarray:
        """Per token, the first token of its sentence (``_Context.sents``)."""
        if self._sents is None:
            arrays = self._batch.arrays
            self._sents = arrays.sentence_starts(arrays.doc_starts())
        return self._sents

    @property
    def sent_starts(self) -> list[int]:
        """``sents`` as a list."""
        return self.sents.tolist()

    def negated_all(self, starts: np.ndarray, ends: np.ndarray,
                    compiled: CompiledRules) -> np.ndarray:
        """Whether each span is negated, as ``_Context.negated_all`` decides it.

        Window scope: a cue among the ``negation_window`` tokens before the span,
        not before its sentence's first token (the prefix-sum test, token by token).
        """
        if compiled.negation_scope == "clause":
            if self._ctx is None:
                from pipeline.code.matching import _Context

                self._ctx = _Context(self._batch.arrays, compiled, self._batch.full_tid())
            return self._ctx.negated_all(starts, ends, compiled)
        first = np.maximum(self.sents[starts], starts - compiled.negation_window)
        cue = compiled.types.cue.data
        tid = self._batch.tid
        out = np.zeros(len(starts), dtype=bool)
        for back in range(1, compiled.negation_window + 1):
            at = starts - back
            inside = at >= first
            if not inside.any():
                break
            out[inside] |= cue[tid[at[inside]]]
        return out


def doc_index(arrays: TokenArrays, positions: np.ndarray) -> np.ndarray:
    """``arrays.doc_index(positions)``; for a few positions of many tokens (a sparse
    re-match) by a binary search each, without the per-token table it builds."""
    if len(positions) * 16 < len(arrays.orth):
        return np.searchsorted(arrays.bounds, positions, side="right") - 1
    return arrays.doc_index(positions)


def sparse_batch(arrays: TokenArrays, compiled: CompiledRules,
                 coded: Coded | None) -> SparseBatch | None:
    """A ``SparseBatch`` of ``arrays`` when the sparse path gives the batch path's rows.

    None (take the batch path) without ``coded`` tokens, with token patterns (their
    anchors are not trie starts), or when some form has two lemmas.
    """
    if coded is None or compiled.token_patterns is not None or compiled.group_patterns \
            or compiled.unanchored_patterns or len(coded.forms) != len(arrays.orth):
        return None
    n_strings = len(coded.hashes)
    facts = coded.facts
    if facts is None or len(facts["lemma_of"]) != n_strings:
        facts = string_facts(coded.forms, coded.lemmas, n_strings)
    if not facts["one_lemma"]:
        return None
    present, lemma_of = facts["present"], facts["lemma_of"]
    types = compiled.types
    string_type = np.zeros(n_strings, dtype=np.int64)
    if len(present):
        hashes = coded.hashes
        orth, lemmas = hashes[present], lemma_of[present]
        # the strings are their own string indexes: known types by a sorted search
        hint(orth, present, lemmas, hashes)
        string_type[present] = types.ids(arrays.vocab, orth, hashes[lemmas])
    offsets = coded.offsets
    lengths = facts.get("lengths")
    if offsets is not None and (
            lengths is None or len(lengths) != n_strings or len(offsets) != len(coded.forms)
            or not np.array_equal(lengths[present], types.lengths.data[string_type[present]])):
        offsets = None  # made from other lengths than the types': compute them here
    return SparseBatch(arrays, compiled, coded, string_type, offsets)


class SegmentRows:
    """The segment rows of a batch (``match_frame``'s ``segments``) held as columns.

    A sequence of ``(segment id, doc id, segment start, text)`` tuples, as a list of
    them is; the matcher reads whole columns (``segment_column``) without a loop.
    """

    def __init__(self, ids: list, docs: list, starts: list, texts: Sequence,
                 arrow: tuple[pa.Array, pa.Array] | None = None) -> None:
        self.columns = (ids, docs, starts, texts)
        # the ids as Arrow large strings without nulls (``arrow_strings`` of the
        # lists), when the caller has them: the id columns are taken from them
        self.arrow = arrow

    def __len__(self) -> int:
        return len(self.columns[0])

    def __getitem__(self, k: int) -> tuple:
        return tuple(column[k] for column in self.columns)

    def __iter__(self):  # noqa: ANN204
        return zip(*self.columns)

    def take(self, positions: list[int]) -> SegmentRows:
        """The rows at ``positions``, in that order."""
        arrow = (None if self.arrow is None else
                 tuple(a.take(pa.array(positions, type=pa.int64())) for a in self.arrow))
        return SegmentRows(*([column[k] for k in positions] for column in self.columns),
                           arrow=arrow)


def segment_column(segments: Sequence[tuple[str, str, int, str | None]], k: int) -> list:
    """Item ``k`` of every segment row (a ``SegmentRows``' own column)."""
    columns = getattr(segments, "columns", None)
    return list(columns[k]) if columns is not None else [row[k] for row in segments]
