"""Parse once, code many times, per chunk: ingest + segment + parse results on disk.

Re-coding after a codebook edit changes no document, segment or token, so a chunk's
documents, segments, error rows and the token arrays of its coded segments are stored
under a key made of everything that shapes them (``chunk_keys.chunk_key``): the bytes,
paths as shown and positions of the chunk's files, the run's ingest/segment options, the
metadata table, the codebook settings that ingest and segmentation read (languages,
language detection; never the rules), the package versions, and, checked on load, the
NLP pipeline fingerprint of every language in the entry. A warm re-code then skips ingest, segmentation, parsing and
``Doc`` building, and only matches and aggregates. A changed file, option or pipeline
gives another key or a rejected entry; nothing is invalidated in place.

Entries are folders written atomically (temp folder + rename); an unreadable or
partial entry is a miss. Tables are Parquet, token arrays ``.npy`` (no pickle), so
reading a cache folder never runs code from it. The folder can be deleted any time.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline import cache_io
from pipeline import columns as C
from pipeline.chunk_keys import (_DIGESTS, _file_digest, _source_digest,  # noqa: F401 - re-exported
                                 _versions, chunk_key, files_digest, frame_digest, relocated)
from pipeline.chunk_tokens import (TOKEN_COLUMNS, StoredTokens, _decode,  # noqa: F401 - re-exported
                                   _encode, encode_table, token_parts,
                                   token_table)

SUBDIR = "chunks-v2"   # bump when the entry format or what an entry holds changes
# Modules (besides ingest/ and data/) whose code shapes an entry; their bytes are in the key.
SOURCES = ("segment.py", "segment_roles.py", "segment_units.py", "langid.py", "chunk.py",
           "chunk_keys.py",
           "chunk_code.py", "chunk_cache.py", "cache_io.py", "nlp.py", "nlp_lookups.py",
           "nlp_batch.py", "cache.py", "columns.py", "code/arrays.py", "chunk_tokens.py")


@dataclass
class ChunkEntry:
    """What a cold run of a chunk computed before matching.

    Attributes:
        documents, segments: the chunk's tables (as ``process_chunk`` returns them);
            segments None for a chunk that is not coded whose meta keeps what the
            runner needs of them (``ChunkCache.load(..., light=True)``).
        errors: error rows (dicts with the ``ORDER`` key as a tuple).
        present, failed: doc ids read, stems of files that could not be read.
        stats: counters of the cold run (documents, segments, ...).
        tokens: todo position of a document's first coded segment -> per segment a
            ``(n, 5)`` uint64 array of ``arrays.ATTRS`` (parsed documents only).
        fingerprints: language -> ``cache.pipeline_fingerprint`` at parse time.
        ruled: the languages the codebook had rules for when the entry was made:
            ``tokens`` holds every coded document in them (``coded_files`` trusts
            only those languages' words).
        given: the chunk's files' paths as given to the run that made it, then its
            metadata's name (error messages name them; ``relocated``).
        positions: the files' positions in that run (its error rows are ordered by
            them; ``relocated`` moves them to another run's).
    """

    documents: pd.DataFrame
    segments: pd.DataFrame | None
    errors: list[dict]
    present: list[str]
    failed: list[str]
    stats: dict[str, Any]
    tokens: dict[int, list[np.ndarray]]
    fingerprints: dict[str, str]
    ruled: list[str] = field(default_factory=list)
    given: list[str] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)


def discard_entry(path: Path) -> None:
    """Remove a damaged cache entry (a folder), so that the next store writes a good one
    in its place; renamed away first (a reader sees the whole entry or none), never raises."""
    if not path.exists():
        return
    try:
        trash = Path(tempfile.mkdtemp(prefix=f".{path.name}.damaged.", dir=path.parent))
        os.replace(path, trash / path.name)
        shutil.rmtree(trash, ignore_errors=True)
    except OSError:
        return


class ChunkCache:
    """Chunk entries in ``<folder>/chunks-v2``; a None folder disables it."""

    def __init__(self, folder: str | Path | None) -> None:
        self.folder = Path(folder) / SUBDIR if folder is not None else None

    def _path(self, key: str) -> Path:
        assert self.folder is not None
        return self.folder / key[:2] / key

    def discard(self, key: str) -> None:
        """Remove the entry of ``key`` (``discard_entry``)."""
        if self.folder is not None:
            discard_entry(self._path(key))

    def load(self, key: str | None, vocab_of, columns: dict[str, list[str]] | None = None,  # noqa: ANN001
             tokens: bool = True, light: bool = False) -> ChunkEntry | None:
        """Return the entry of ``key`` or None (absent, damaged, other pipeline).

        Args:
            key: ``chunk_key(...)``.
            vocab_of: language -> (pipeline fingerprint, spaCy vocab); the entry's
                strings are added to the vocab so its hashes resolve.
            columns: only these columns of ``documents`` / ``segments`` (None: all).
            tokens: False: without the token arrays (``ChunkEntry.tokens`` empty), for a
                chunk that is not coded (``coded_files``).
            light: with ``tokens`` False: no tables either when the meta keeps what
                the runner reads of them (``_light``: documents, no segments).
        """
        columns = columns or {}
        if self.folder is None or key is None:
            return None
        path = self._path(key)
        cache_io.wait(key)  # files read ahead by a thread (in-process runs) are taken
        try:
            meta = cache_io.take_json(path / "meta.json")
            for lang, fingerprint in meta["fingerprints"].items():
                if vocab_of(lang)[0] != fingerprint:
                    return None
            if not tokens and light and (found := _light(meta)) is not None:
                return _entry(meta, *found, StoredTokens())
            documents = _read_frame(path / "documents.parquet", columns.get("documents"))
            segments = _read_frame(path / "segments.parquet", columns.get("segments"))
            if not tokens:
                return _entry(meta, documents, segments, StoredTokens())
            # (table, hashes, decoded, derived) read ahead
            got = cache_io.take(path / "tokens.npy")
            table, ahead, decoded, done = (
                got if got is not None else
                (np.load(path / "tokens.npy", allow_pickle=False), None, None, None))
            strings = cache_io.take_json(path / "strings.json")
        except Exception:  # a damaged entry can fail in json, Parquet or NumPy: a miss
            discard_entry(path)  # (absent: nothing to discard)
            return None
        hashes = self._intern(strings, meta["fingerprints"], vocab_of)
        if hashes is None or table.ndim != 2 or table.shape[1] != TOKEN_COLUMNS:
            discard_entry(path)
            return None
        tokens = StoredTokens()
        offset = 0
        try:
            # decoded ahead with the stored hashes: the same table when they are the
            # hashes the vocab gave the entry's strings
            full = tokens.table = (decoded if decoded is not None and np.array_equal(ahead, hashes)
                                   else _decode(table, hashes))
            firsts = [int(first) for first, _ in meta["tokens"]]
            # ``derived`` follows the entry's layout, ``parts()`` the sorted firsts
            in_order = all(a < b for a, b in zip(firsts, firsts[1:]))
            tokens.codes, tokens.hashes, tokens.strings = table, hashes, strings
            tokens.derived = done if in_order else None
            for first, sizes in meta["tokens"]:
                parts = []
                for n in sizes:
                    parts.append(full[offset:offset + n])
                    offset += n
                tokens[int(first)] = parts
        except (IndexError, ValueError):
            discard_entry(path)
            return None
        if offset != len(table):
            discard_entry(path)
            return None
        return _entry(meta, documents, segments, tokens)

    def read_ahead(self, key: str, columns: dict[str, list[str]] | None,
                   found: dict[Path, Any], tokens: bool = True,
                   light: bool = True) -> dict[str, Any] | None:
        """Read the files of entry ``key`` as ``load`` reads them, into ``found`` (path ->
        what ``load`` takes); return its ``meta.json`` (None: no entry, or unreadable).

        Also makes ``arrays.derived`` of its tokens (``load`` hands them to the matcher);
        ``tokens``, ``light``: as for ``load`` (no token files read)."""
        columns = columns or {}
        if self.folder is None:
            return None
        path = self._path(key)
        try:
            meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None  # load reads (and reports) it again
        found[path / "meta.json"] = cache_io.Parsed(meta)
        if not tokens and light and _light(meta) is not None:
            return meta  # what the runner reads of a chunk that is not coded is in its meta
        with contextlib.suppress(Exception):  # load reads (and reports) it again
            for name in ("documents", "segments"):
                file = path / f"{name}.parquet"
                table = cache_io.read_parquet(file.read_bytes(), columns.get(name),
                                              pandas_metadata=True)[1]
                # the pandas frame too: its conversion is off the coding thread then
                found[file] = (columns.get(name), table, _to_pandas(table))
            if not tokens:
                return meta
            table = np.load(path / "tokens.npy", allow_pickle=False)
            strings = json.loads((path / "strings.json").read_text(encoding="utf-8"))
            found[path / "strings.json"] = cache_io.Parsed(strings)
            done = None
            with contextlib.suppress(Exception):  # not made: the matcher computes them
                from pipeline.code.arrays import derived  # (imports spaCy: needed by then)

                if not cache_io.matching():
                    raise LookupError("no rules re-matched so far")
                from pipeline.code.sparse import string_facts

                lengths = np.asarray([0, *map(len, strings)], dtype=np.int64)
                done = derived(table, lengths, [n for _, sizes in meta["tokens"] for n in sizes])
                # per string: what the sparse re-match (``code.sparse``) looks up
                facts = string_facts(table[:, 0], table[:, 1], len(lengths))
                done["facts"] = {**facts, "lengths": lengths}
            try:
                hashes = np.concatenate([np.zeros(1, dtype=np.uint64),
                                         np.load(path / "hashes.npy", allow_pickle=False)])
                found[path / "tokens.npy"] = (table, hashes, _decode(table, hashes), done)
            except (OSError, ValueError, IndexError, TypeError):
                found[path / "tokens.npy"] = (table, None, None, done)
        return meta

    @staticmethod
    def _intern(strings: list[str], fingerprints: dict[str, str], vocab_of) -> np.ndarray | None:  # noqa: ANN001
        """Add the entry's strings to the vocab(s); return their hashes (index 0: none)."""
        langs = list(fingerprints)
        if not langs:
            return np.zeros(1, dtype=np.uint64)
        out = np.zeros(len(strings) + 1, dtype=np.uint64)
        for lang in langs:
            add = vocab_of(lang)[1].strings.add
            out[1:] = [add(s) for s in strings]
        return out

    def save(self, key: str | None, entry: ChunkEntry, vocabs: list) -> None:
        """Store ``entry`` under ``key``; failures (disk full, read-only) are ignored.

        ``vocabs``: the vocabs of the entry's languages (they resolve its hashes). The
        token arrays are copied and the meta made here; encoding and writing them (and
        the tables) runs on the run's cache-writing thread (``cache_io.behind``).
        """
        if self.folder is None or key is None:
            return
        path = self._path(key)
        if path.exists():
            return
        try:
            # the arrays themselves, not a copy: a chunk's token arrays are never
            # written to once parsed (the writing thread encodes them a block at a time)
            table, layout = token_parts(entry.tokens)
            errors = [{**row, "_order": list(row["_order"])} for row in entry.errors]
            meta = {"fingerprints": entry.fingerprints, "present": entry.present,
                    "failed": entry.failed, "stats": entry.stats, "errors": errors,
                    "tokens": layout, "ruled": sorted(entry.ruled), "given": entry.given,
                    "positions": entry.positions}
            text = json.dumps(meta, default=_json_default)
        except (TypeError, ValueError, KeyError):
            return
        # shallow copies: pandas copies on write, so the caller's changes stay its own
        cache_io.behind(_write_entry, path, table, list(vocabs), text,
                        entry.documents.copy(deep=False), entry.segments.copy(deep=False))


LIGHT_DOCUMENTS = [C.DOC_ID, C.PATH, C.SHA256]   # the document columns kept in the meta


def stored_ids(stats: dict[str, Any]) -> tuple[list[str], list[str]] | None:
    """The summary of an entry's segment ids kept in its stats (``segment_ids.summary``),
    or None (none, or not of that form)."""
    ids = stats.get("ids")
    if isinstance(ids, list) and len(ids) == 2 and all(
            isinstance(part, list) and all(isinstance(v, str) for v in part) for part in ids):
        return ids[0], ids[1]
    return None


def _light(meta: dict[str, Any]) -> tuple[pd.DataFrame, None] | None:
    """The documents of an entry (``LIGHT_DOCUMENTS``) from its meta, and no segments,
    when its stats keep what the runner reads of a chunk that is not coded: those
    documents, its segments' counts and the summary of their ids (``chunk._light``);
    else None (read its tables)."""
    stats = meta.get("stats")
    if not isinstance(stats, dict):
        return None
    rows, counts = stats.get("documents_rows"), stats.get("counts")
    if not (isinstance(rows, list) and isinstance(counts, dict) and stored_ids(stats) is not None
            and all(isinstance(row, list) and len(row) == len(LIGHT_DOCUMENTS)
                    and all(isinstance(v, str) for v in row) for row in rows)
            and all(isinstance(counts.get(k), int) for k in ("segments", "segments_coded"))):
        return None
    return pd.DataFrame(rows, columns=LIGHT_DOCUMENTS), None


def _entry(meta: dict[str, Any], documents: pd.DataFrame, segments: pd.DataFrame | None,
           tokens: StoredTokens) -> ChunkEntry:
    errors = [{**row, "_order": tuple(row["_order"])} for row in meta["errors"]]
    return ChunkEntry(documents, segments, errors, meta["present"], meta["failed"],
                      meta["stats"], tokens, meta["fingerprints"], meta.get("ruled", []),
                      meta.get("given", []), meta.get("positions", []))


def _write_entry(path: Path, table: list[np.ndarray], vocabs: list, meta: str,
                 documents: pd.DataFrame, segments: pd.DataFrame) -> None:
    """Write a chunk entry's files into a new folder, renamed to ``path`` when whole.

    Failures (disk full, read-only, a hash no vocab has) leave no entry and no folder.
    """
    if path.exists():
        return
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
        ids, strings, hashes = encode_table(table, vocabs)
        # column-major on disk (``np.load`` keeps the order): the readers take whole
        # columns (string indexes, flags), each then contiguous without a copy
        np.save(tmp / "tokens.npy", np.asfortranarray(ids), allow_pickle=False)
        # the strings' hashes: a prefetching reader decodes the table before it
        # has the vocab (load checks them against the vocab's)
        np.save(tmp / "hashes.npy", hashes, allow_pickle=False)
        (tmp / "strings.json").write_text(json.dumps(strings), encoding="utf-8")
        for name, frame in (("documents", documents), ("segments", segments)):
            buf = io.BytesIO()
            frame.to_parquet(buf, index=False,
                             write_statistics=C.parquet_statistics(list(frame.columns)))
            (tmp / f"{name}.parquet").write_bytes(buf.getvalue())
        (tmp / "meta.json").write_text(meta, encoding="utf-8")
        os.replace(tmp, path)  # atomic: readers see a whole entry or none
    except (OSError, TypeError, ValueError, KeyError):
        pass  # (a rename fails too when another run stored the entry first)
    if tmp is not None and tmp.exists():
        shutil.rmtree(tmp, ignore_errors=True)


def _read_frame(path: Path, columns: list[str] | None) -> pd.DataFrame:
    """``pd.read_parquet(path, columns=columns)``: the same frame, without its dataset layer.

    ``pd.read_parquet`` reads through pyarrow's dataset API (file system resolution,
    fragment discovery), about as costly as decoding a chunk's small files; the file
    read whole into memory and decoded by ``ParquetFile`` gives the same table, and
    ``to_pandas`` (pandas metadata, the default string dtype) the same frame.
    """
    got = cache_io.take(path)  # (columns, table, frame) decoded ahead by a thread
    if got is not None and got[0] == columns:
        return got[2]
    _, table = cache_io.read_parquet(path.read_bytes(), columns, pandas_metadata=True)
    return _to_pandas(table)


# numpy types (pandas metadata) that ``to_pandas`` gives from the Arrow type alone
_PLAIN_TYPES = frozenset({"str", "int64", "int32", "float64", "bool"})


def _to_pandas(table: Any) -> pd.DataFrame:
    """``table.to_pandas()``: without reading back its pandas metadata when that can
    only say what the Arrow types say (no index, plain columns; the same frame then),
    which costs more than converting a chunk's small tables."""
    meta = table.schema.pandas_metadata
    plain = (meta is not None and not meta.get("index_columns")
             and not meta.get("column_indexes")
             and all(c.get("numpy_type") in _PLAIN_TYPES and c.get("metadata") is None
                     and isinstance(c.get("name"), str) for c in meta.get("columns", ())))
    return table.to_pandas(ignore_metadata=plain)


def _json_default(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON-able: {type(value).__name__}")
