"""The token arrays of a chunk-cache entry on disk: string indexes instead of hashes.

A chunk entry (``chunk_cache``) stores its documents' token attribute arrays
(``code.arrays.ATTRS``: ORTH, LEMMA, SENT_START, SPACY, NORM) as ``uint32`` indexes into
one sorted list of the entry's strings, 20 bytes a token, and ``_decode`` turns them
back into the ``uint64`` arrays ``Doc.to_array`` gives, column-major (each column is
read by the matcher contiguously). ``StoredTokens`` is a loaded entry's token arrays.
"""
from __future__ import annotations

import operator

import numpy as np
import pandas as pd

TOKEN_COLUMNS = 5      # arrays.ATTRS: ORTH, LEMMA, SENT_START, SPACY, NORM


def _encode(tokens: dict[int, list[np.ndarray]],
            vocabs: list) -> tuple[np.ndarray, list[str], list, np.ndarray]:
    """Hashes -> indexes into one string list (index 0: hash 0), per-segment sizes, and
    the hash of every string of the list (sorted)."""
    table, layout = token_table(tokens)
    ids, strings, hashes = encode_table(table, vocabs)
    return ids, strings, layout, hashes


def token_table(tokens: dict[int, list[np.ndarray]]) -> tuple[np.ndarray, list]:
    """The arrays of ``tokens`` (first segment row -> its documents' arrays) in one new
    table, in row order, and the entry's layout: ``[first, [tokens per segment]]``."""
    parts, layout = token_parts(tokens)
    table = np.concatenate([*parts, np.zeros((0, TOKEN_COLUMNS), dtype=np.uint64)])
    return table, layout


def token_parts(tokens: dict[int, list[np.ndarray]]) -> tuple[list[np.ndarray], list]:
    """``token_table`` without the table: the arrays in row order (not copied)."""
    parts = [p.reshape(-1, TOKEN_COLUMNS) for first in sorted(tokens) for p in tokens[first]]
    layout = [[first, [len(p) for p in tokens[first]]] for first in sorted(tokens)]
    return parts, layout


ENCODE_ROWS = 1 << 19   # tokens encoded at a time (bounds the temporary arrays)


def encode_table(table: np.ndarray | list[np.ndarray],
                 vocabs: list) -> tuple[np.ndarray, list[str], np.ndarray]:
    """``_encode`` of the concatenated token arrays: (indexes, strings, hashes).

    Args:
        table: ``(n_tokens, 5)`` uint64 ATTRS arrays, or a list of them that is their
            concatenation in order (``token_parts``: not concatenated here at once).
        vocabs: vocabs whose StringStores have the hashes (the first that has one wins).

    Returns:
        The ``uint32`` table of string indexes (index 0: hash 0), column-major (as it
        is stored), the strings in hash order, and their hashes (sorted).

    Raises:
        KeyError: a hash none of the vocabs has.
    """
    text_cols = [0, 1, 4]  # ORTH, LEMMA, NORM are string hashes; SENT_START, SPACY are not
    parts = [table] if isinstance(table, np.ndarray) else table
    # the distinct hashes, a block of rows at a time: a large document's temporary
    # arrays stay small; the sorted hashes then give each value its index by a search
    distinct = [pd.unique(rows[:, text_cols].reshape(-1)) for _, rows in _blocks(parts)]
    found = np.unique(np.concatenate(distinct)) if distinct else np.zeros(0, dtype=np.uint64)
    found = found.astype(np.uint64, copy=False)
    zero = bool(len(found)) and found[0] == 0
    # the index of a value: its place among the sorted non-zero hashes + 1 (0: hash 0)
    shift = np.uint32(0 if zero else 1)
    hashes = found[1:] if zero else found
    stores = [v.strings for v in vocabs]
    strings = [_string(stores, h) for h in hashes.tolist()]
    # 20 bytes a token on disk: string indexes, SENT_START (1 / 0 / -1) + 1, SPACY
    ids = np.empty((sum(map(len, parts)), TOKEN_COLUMNS), dtype=np.uint32, order="F")
    for at, rows in _blocks(parts):
        block = ids[at:at + len(rows)]
        for col in text_cols:
            block[:, col] = np.searchsorted(found, rows[:, col]).astype(np.uint32) + shift
        block[:, 2] = rows[:, 2].view(np.int64) + 1
        block[:, 3] = rows[:, 3]
    return ids, strings, hashes


def _blocks(parts: list[np.ndarray]):  # noqa: ANN202 - an iterator of (row, array)
    """The rows of ``parts`` (in order) as ``(first row, array)`` blocks of about
    ``ENCODE_ROWS`` rows: slices of a large part, small parts concatenated."""
    at, group, size = 0, [], 0
    for part in parts:
        if len(part) >= ENCODE_ROWS:
            if group:
                yield at, np.concatenate(group)
                at, group, size = at + size, [], 0
            for a in range(0, len(part), ENCODE_ROWS):
                yield at + a, part[a:a + ENCODE_ROWS]
            at += len(part)
            continue
        group.append(part)
        size += len(part)
        if size >= ENCODE_ROWS:
            yield at, np.concatenate(group)
            at, group, size = at + size, [], 0
    if group:
        yield at, np.concatenate(group)


def _string(stores: list, h: int) -> str:
    """The string of hash ``h`` from the first StringStore that has it."""
    for store in stores:
        if h in store:
            return store[h]
    raise KeyError(h)


def _decode(ids: np.ndarray, hashes: np.ndarray) -> np.ndarray:
    """The inverse of ``_encode``: uint64 attribute arrays, as ``Doc.to_array`` gives.

    The values of ``Doc.to_array``'s table, laid out column by column (a transposed
    view): each column is written, and later read by the matcher, contiguously.

    Raises:
        IndexError: a string index outside ``hashes`` (a damaged entry).
    """
    # zeros, not empty: calloc'ed memory costs the thread fewer page faults (measured)
    out = np.zeros((ids.shape[1], len(ids)), dtype=np.uint64)
    for col in (0, 1, 4):
        column = ids[:, col]
        if len(column) and (int(column.max()) >= len(hashes)
                            or (column.dtype.kind == "i" and int(column.min()) < 0)):
            raise IndexError(f"a string index outside the {len(hashes)} of the entry")
        # checked above: ``take`` in "raise" mode would copy through a buffer of ``out``
        hashes.take(column, out=out[col], mode="clip")
    out[2] = ids[:, 2]
    out[2] -= 1  # SENT_START + 1 stored: 0 - 1 wraps to -1 as uint64, as spaCy's arrays hold it
    out[3] = ids[:, 3]
    return out.T


class StoredTokens(dict):
    """``ChunkEntry.tokens`` of a loaded entry, which also keeps the decoded table.

    Its parts (``{first: [array per segment]}``, keys in order) are consecutive views
    of ``table``, so a batch made of all of them in order is ``table`` itself and
    needs no concatenation (``chunk_code``).
    """

    table: np.ndarray | None = None
    codes: np.ndarray | None = None      # the stored table (string indexes)
    hashes: np.ndarray | None = None     # the vocab's hash of each string index
    derived: dict[str, np.ndarray] | None = None  # ``arrays.derived`` made ahead
    strings: list[str] | None = None     # the entry's strings (forms, lemmas, norms)

    def parts(self) -> list[np.ndarray]:
        """Every part, in table order."""
        return [part for first in sorted(self) for part in self[first]]

    def words(self, parts: list) -> EntryWords | None:
        """The entry's strings and their lower-case forms, when each of ``parts`` is one
        of its parts (then every token matched is one of its tokens: a batch leaves out
        the segments of another language and those not coded); else None."""
        if self.strings is None or not parts:
            return None
        mine = {id(part) for first in self for part in self[first]}
        if not all(id(part) in mine for part in parts):
            return None
        return EntryWords(self.strings)


class EntryWords:
    """A chunk entry's strings and their lower-case forms, as a set, made as far as asked.

    The probe (``match_probe.trie_may_match``) asks whether a few words are among them:
    a word that is one of the strings needs no lower-casing of the others (the tokens'
    NORM and LEMMA strings are mostly lower-case already). ``in`` and iteration answer
    as ``set(strings) | {s.lower() for s in strings}`` would.
    """

    def __init__(self, strings: list[str]) -> None:
        self._strings = strings
        self._exact: set[str] | None = None
        self._every: set[str] | None = None

    def _all(self) -> set[str]:
        if self._every is None:
            self._every = set(self._strings)
            self._every.update([w.lower() for w in self._strings])
        return self._every

    def __contains__(self, word: object) -> bool:
        if self._every is None:
            if self._exact is None:
                self._exact = set(self._strings)
            if word in self._exact:
                return True
        return word in self._all()

    def __iter__(self):  # noqa: ANN204
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())

    def __bool__(self) -> bool:
        return bool(self._strings)


def stored_arrays(stored, parts: list, vocab, get_doc):  # noqa: ANN001, ANN202
    """``TokenArrays.from_parts(vocab, parts, get_doc)`` without copying, when ``parts`` are
    all the parts of a loaded chunk entry in order (then their concatenation is its table),
    with the tokens as the entry's string indexes (``code.sparse.Coded``, None if the
    entry has none). None otherwise."""
    from pipeline.code.arrays import TokenArrays
    from pipeline.code.types import hint

    table = getattr(stored, "table", None)
    if table is None or not parts:
        return None
    every = stored.parts()
    if len(every) != len(parts) or not all(map(operator.is_, every, parts)):
        return None
    # the read-ahead thread's arrays of this table (``arrays.derived``), if it made them
    done = stored.derived
    if done is not None and len(done["bounds"]) == len(parts) + 1 \
            and done["bounds"][-1] == len(table):
        bounds = done["bounds"]  # the entry's sizes, which are those of its parts
    else:
        done = None
        bounds = np.zeros(len(parts) + 1, dtype=np.int64)
        np.cumsum(list(map(len, parts)), out=bounds[1:])
    if bounds[-1] != len(table):
        return None
    sent, space = ((done["sent"], done["space"]) if done is not None
                   else (table[:, 2].astype(np.int64), table[:, 3].astype(bool)))
    arrays = TokenArrays(vocab, table[:, 0], table[:, 1], sent, space, bounds,
                         get_doc).with_derived(done)
    coded = None
    if stored.codes is not None:  # the tokens as string indexes: word types without hashing
        from pipeline.code.sparse import Coded

        hint(arrays.orth, stored.codes[:, 0], stored.codes[:, 1], stored.hashes)
        coded = Coded(stored.codes[:, 0], stored.codes[:, 1], stored.hashes,
                      done.get("facts") if done is not None else None,
                      done["offsets"] if done is not None else None)
    return arrays, coded
