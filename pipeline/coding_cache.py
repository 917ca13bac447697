"""Codings cache: a codebook edit re-aggregates only the codes it changed.

A coding is one segment x code, computed from the match rows of that segment and
code only (``code.aggregate.aggregate_rows``), and a segment is matched in one
language; only the order of the codings table (document, the segment's first coded
match, segment, code) joins codes, and it is recomputed from all rows every run. So,
next to the match cache, one entry per chunk and language holds the aggregated rows
of every code, each code tagged with a digest of its match units
(``match_cache.unit_digests``: rules, settings, matcher code), the threshold and the
aggregation code. A re-code reuses the rows of codes whose digest is unchanged and
aggregates the others from the chunk's match rows.

Every row also keeps its line of ``codings.csv``: pandas writes a CSV row from that
row's values alone, so the lines of cached and new rows, joined in output order, are
the bytes ``DataFrame.to_csv`` would write, and a warm run serialises only new rows.

Entries share the match cache's key (chunk key, language, pipeline fingerprint) and
format (a ``tagged_store.TaggedEntry`` whose units are codes; damaged: a miss).
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from pipeline import columns as C
from pipeline.match_cache import unit_digests
from pipeline.entry_tables import take_rows
from pipeline.tagged_store import TaggedEntry

SUBDIR = "codings-v3"   # bump when the entry format changes
# Code whose behaviour shapes coding rows and their CSV lines; its bytes are in every digest.
SOURCES = ("code/aggregate.py", "code/combine.py", "coding_cache.py", "tagged_store.py",
           "cache_io.py", "columns.py", "entry_tables.py")
ENTRY_COLUMNS = [*C.CODING_COLUMNS, C.FIRST_MATCH, C.CSV_LINE]
_QUOTE, _NEWLINE = ord('"'), ord("\n")


@lru_cache(maxsize=1)
def _source_digest() -> str:
    from pipeline.chunk_cache import files_digest

    root = Path(__file__).resolve().parent
    return files_digest([root / name for name in SOURCES])


def code_digests(book, lang: str, old: dict[str, str] | None = None,  # noqa: ANN001
                 ) -> dict[str, str]:
    """Digest of everything the codings of each code of ``lang`` depend on.

    The digests of the code's match units (its rules, the matching settings and the
    matcher's code), the threshold and the aggregation code.

    Args:
        book: the codebook.
        lang: the language.
        old: unit -> digest to use instead of a unit's current digest (the digests
            a code had when its match units had these digests).
    """
    if not old:  # the current digests: once per process, not per chunk
        key = (id(book), book.hash, lang)
        got = _CURRENT.get(key)
        if got is None or got[0] is not book:
            if len(_CURRENT) > 8:
                _CURRENT.clear()
            got = _CURRENT[key] = (book, _code_digests(book, lang, None))
        return dict(got[1])
    return _code_digests(book, lang, old)


_CURRENT: dict[tuple, tuple] = {}


def _code_digests(book, lang: str, old: dict[str, str] | None) -> dict[str, str]:  # noqa: ANN001
    digests, unit_of = unit_digests(book, lang)
    if old:
        digests = {**digests, **{u: d for u, d in old.items() if u in digests}}
    units: dict[str, set[str]] = {}
    for (code, _), unit in unit_of.items():
        units.setdefault(code, set()).add(unit)
    common = [SUBDIR, _source_digest(), lang, repr(float(book.settings.threshold))]
    out = {}
    for code, names in units.items():
        text = json.dumps([common, code, sorted((u, digests[u]) for u in names)])
        out[code] = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return out


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """The rows of ``frame`` as ``codings.csv`` holds them (no header; ``to_csv``'s bytes)."""
    from pipeline.csv_rows import csv_rows

    return csv_rows(frame)


def csv_lines(frame: pd.DataFrame) -> list[bytes]:
    """``csv_bytes`` of ``frame`` cut into one line per row (see ``csv_array``)."""
    return csv_array(frame).to_pylist()


def csv_array(frame: pd.DataFrame) -> pa.LargeBinaryArray:
    """``csv_bytes`` of ``frame`` as an Arrow array of one line per row.

    A newline ends a row unless it is inside a quoted field; quotes inside a quoted
    field are doubled and an unquoted field has none, so a newline is inside quotes
    exactly when an odd number of quote characters come before it (in UTF-8 neither
    byte occurs inside a multi-byte character). The quotes before each newline are
    counted by a binary search in the quotes' positions (a running count over every
    byte cost ~1.8 s per 40 MB). The array's data buffer is the CSV text itself (only
    the line ends are computed): no bytes object per row.

    Raises:
        ValueError: the text does not cut into one line per row (never expected).
    """
    data = csv_bytes(frame)
    raw = np.frombuffer(data, dtype=np.uint8)
    newlines = np.flatnonzero(raw == _NEWLINE)
    quotes = np.flatnonzero(raw == _QUOTE)
    if len(quotes):
        newlines = newlines[np.searchsorted(quotes, newlines) % 2 == 0]
    ends = newlines + 1
    if len(ends) != len(frame):
        raise ValueError(f"{len(ends)} CSV lines for {len(frame)} rows")
    offsets = np.zeros(len(ends) + 1, dtype=np.int64)
    offsets[1:] = ends
    return pa.LargeBinaryArray.from_buffers(
        pa.large_binary(), len(ends), [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def joined_lines(lines: pd.Series) -> bytes:
    """The CSV lines of a ``CSV_LINE`` column (Arrow-backed binary), joined in order."""
    array = pa.chunked_array(lines.array.__arrow_array__()).combine_chunks() \
        if isinstance(lines.dtype, pd.ArrowDtype) else None
    if array is None or not pa.types.is_large_binary(array.type):
        return b"".join(lines.tolist())  # an object column of bytes
    if not len(array):
        return b""
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int64)[
        array.offset:array.offset + len(array) + 1]
    return array.buffers()[2][int(offsets[0]):int(offsets[-1])].to_pybytes()


class CodingCache:
    """Coding entries of one chunk in ``<folder>/codings-v3``; a None key disables it."""

    def __init__(self, folder: str | Path | None, chunk_key: str | None) -> None:
        self.folder = Path(folder) / SUBDIR if folder is not None and chunk_key else None
        self.key = chunk_key

    def entry(self, lang: str, fingerprint: str) -> TaggedEntry:
        """The entry of the chunk's codings in ``lang`` (disabled without a folder)."""
        if self.folder is None or self.key is None:
            return TaggedEntry(None, ENTRY_COLUMNS)
        name = hashlib.sha256(f"{self.key}|{lang}|{fingerprint}".encode()).hexdigest()
        return TaggedEntry(self.folder / name[:2] / name, ENTRY_COLUMNS)


def load_entry(memo: CodingCache, book, lang: str, fingerprint: str,  # noqa: ANN001
               ) -> tuple[TaggedEntry, dict[str, str], pd.DataFrame | None, set[str]]:
    """Open and load the codings entry of one language of a chunk.

    It only reads files and builds its own objects, so it can run on another thread
    while the chunk is matched (Arrow decompresses without holding the GIL).

    Returns:
        ``(entry, code digests, rows, codes)``: ``rows`` keep stale rows (negative unit ids).
    """
    digests = code_digests(book, lang)
    entry = memo.entry(lang, fingerprint)
    # stale rows stay in (negative unit ids): ordering drops them in its one take
    cached, have = entry.load(digests, stale=True)
    return entry, digests, cached, have


def cached_codings(memo: CodingCache, book,  # noqa: ANN001
                   parts: Sequence[tuple[str, str, pd.DataFrame]],
                   loaded: dict | None = None,
                   same: dict[str, dict[str, str]] | None = None) -> tuple[pd.DataFrame, bytes]:
    """The chunk's codings table and its ``codings.csv`` rows, aggregating only new codes.

    Args:
        memo: the chunk's codings cache.
        book: the codebook.
        parts: per language: (language, pipeline fingerprint, the match rows of the
            chunk's segments of that language, in matches-table order).
        loaded: language -> ``load_entry``'s result for it, when already loaded.
        same: language -> the ``same`` of ``match_cache.cached_match``: re-matched
            units whose rows did not change, with their old digests.

    Returns:
        ``(codings, csv)``: as ``aggregate_matches`` of all the match rows, and
        ``csv_bytes`` of it.
    """
    from pipeline.code.aggregate import _finish, aggregate_rows

    frames = []
    for lang, fingerprint, matches in parts:
        got = (loaded or {}).get(lang)
        entry, digests, cached, have = got or load_entry(memo, book, lang, fingerprint)
        todo = set(digests) - have
        new = None
        rows = _still_valid(entry, cached, todo, code_digests(book, lang, same[lang])) \
            if todo and same and same.get(lang) else None
        if rows is not None:  # the stale rows are the codings of the new digests
            ids = np.asarray([entry.unit_id(code) for code in todo], dtype=np.int64)
            entry.save(rows, todo, digests, rows,
                       keep=np.isin(rows[C.CACHE_UNIT].to_numpy(), ids))
            if len(rows):
                frames.append(rows)
            continue
        if todo:
            subset = matches[matches[C.CODE_ID].isin(todo).to_numpy()] if have else matches
            new = aggregate_rows(subset, threshold=book.settings.threshold)
            # Arrow-backed: stored, loaded, reordered and joined without a bytes per row
            new[C.CSV_LINE] = pd.Series(pd.arrays.ArrowExtensionArray(
                csv_array(new[C.CODING_COLUMNS])), index=new.index)
            codes, names = pd.factorize(new[C.CODE_ID])
            ids = np.asarray([entry.unit_id(code) for code in names], dtype=np.int64)
            new[C.CACHE_UNIT] = ids[codes] if len(new) else np.zeros(0, dtype=np.int64)
        # entries hold their rows in output order: sorting cached rows (one sorted run
        # per file read) with new ones is then about linear (``coding_order``)
        if new is None and cached is not None and entry.in_order() \
                and (cached[C.CACHE_UNIT].to_numpy() >= 0).all():
            rows = cached.reset_index(drop=True)  # the rows of one ordered file: no sort
        else:
            present = [f for f in (cached, new) if f is not None and len(f)]
            # no rows at all (matches, none of them a coding): ``new``'s empty table is
            # what the entry stores (its columns and types, the unit ids included)
            rows = _in_order(present) if present or new is None else new
        if new is not None:
            whole = cached is None or not len(cached)  # then ``rows`` is all of it, in order
            entry.save(rows if whole else new, todo, digests, rows, ordered=whole)
        if len(rows):
            frames.append(rows)
    if not frames:
        from pipeline.code import empty_codings

        return empty_codings(), b""
    rows = frames[0] if len(frames) == 1 else _in_order(frames)
    return _finish(rows), joined_lines(rows[C.CSV_LINE])


def _still_valid(entry: TaggedEntry, cached: pd.DataFrame | None, todo: set[str],
                 before: dict[str, str]) -> pd.DataFrame | None:
    """The loaded rows, stale ones made live, if they are the codings of every code.

    A coding depends only on the match rows of its segment x code, the threshold and
    the aggregation code, all in a code's digest. ``before`` are the digests the codes
    had when the re-matched units had their old digests (their rows being unchanged):
    a stale code whose stored digest is that one was aggregated from the very match
    rows it has now. When the entry came from one file in output order
    (``TaggedEntry.replaced``) and every code to redo is such a code, the loaded rows
    are the codings in output order.

    Returns:
        The rows (``CACHE_UNIT`` of the stale ones set), or None.
    """
    old = entry.replaced()
    if old is None or cached is None or set(old) != todo \
            or any(before.get(code) != old[code] for code in todo):
        return None
    units = cached[C.CACHE_UNIT].to_numpy().copy()
    stale = units < 0
    if stale.any():
        codes, names = _factorized(cached[C.CODE_ID], stale)
        ids = np.asarray([entry.unit_id(code) for code in names], dtype=np.int64)
        units[stale] = ids[codes]
    return cached.assign(**{C.CACHE_UNIT: units})


def _factorized(values: pd.Series, mask: np.ndarray) -> tuple[np.ndarray, list]:
    """``pd.factorize(values[mask])`` (codes, distinct values), by Arrow when the column is
    Arrow-backed without missing values (no pandas copy of the selected rows)."""
    data = values.array
    if isinstance(data, pd.arrays.ArrowExtensionArray):
        chosen = data.__arrow_array__().filter(pa.array(mask)).combine_chunks()
        if not chosen.null_count:
            encoded = chosen.dictionary_encode()  # distinct values in order of appearance
            return encoded.indices.to_numpy(), encoded.dictionary.to_pylist()
    codes, names = pd.factorize(values[mask])
    return codes, list(names)


def _in_order(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """The rows of ``frames`` (``aggregate_rows`` output and more) in output order.

    Rows with a negative ``CACHE_UNIT`` (stale rows of a loaded entry) are left out.
    """
    from pipeline.code.aggregate import coding_order

    if not frames:
        return pd.DataFrame(columns=ENTRY_COLUMNS)
    rows = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    keep = (rows[C.CACHE_UNIT].to_numpy() >= 0 if C.CACHE_UNIT in rows.columns
            else np.ones(len(rows), dtype=bool))
    order = coding_order(rows, keep)
    if len(order) == len(rows) and not (order[1:] < order[:-1]).any():  # in order: no copy
        return rows.reset_index(drop=True)
    return take_rows(rows, order)
