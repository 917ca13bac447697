"""Finished codebook-independent output files, reused when no input changed.

``documents.parquet``, ``segments.parquet`` and ``segments.csv`` of a run follow from
its chunks alone: each chunk's documents and segments from its chunk-cache key
(files, ingest/segment settings, package versions, code), the renames of segment ids
repeated across chunks and the merged columns from all chunks in order, and the
bytes from the table-writing code. So the finished files are stored under a digest of
the ordered chunk keys and of that code; a re-code after a codebook edit copies them
instead of spilling, merging and serialising a hundred thousand segments again.

An entry is a folder written atomically (temp folder + rename) with the files and a
``meta.json`` of their sizes and sha256; a file that does not match is a miss. The
folder can be deleted any time.

``meta.json`` also records where each chunk's rows are in the segments files (row
groups, CSV bytes, its chunk key; ``coded_slices.tables_layout``): after a transcript
is added or removed, the chunks that kept their keys take their segments rows from the
newest entry (``TableCache.moved``), as their coding rows (``coded_slices.moved``).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from pipeline import columns as C

SUBDIR = "tables-v1"    # bump when the entry format changes
FILES = (f"{C.DOCUMENTS_FILE}.parquet", f"{C.SEGMENTS_FILE}.parquet", f"{C.SEGMENTS_FILE}.csv")
TABLES = ("documents", "segments")   # the runner's names of the tables of FILES
# Code that turns chunk tables into these files (renames across chunks, merging, writing).
SOURCES = ("runner.py", "run_stream.py", "parts.py", "parts_stream.py", "parquet_splice.py",
           "thrift_compact.py",
           "segment.py", "segment_roles.py", "segment_units.py", "segment_ids.py",
           "table_cache.py", "columns.py")
STAGED = ".staged"      # suffix of the copies handed to store.commit_staged


@lru_cache(maxsize=1)
def _source_digest() -> str:
    from pipeline.chunk_cache import files_digest

    root = Path(__file__).resolve().parent
    return files_digest([root / name for name in SOURCES])


def tables_key(chunk_keys: Sequence[str | None]) -> str | None:
    """Key of the finished files of a run of these chunks (in order); None: not cacheable.

    Args:
        chunk_keys: ``chunk_cache.chunk_key`` of every chunk, in run order.
    """
    if not chunk_keys or any(key is None for key in chunk_keys):
        return None
    text = json.dumps([SUBDIR, _source_digest(), list(chunk_keys)])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class TableCache:
    """Entries in ``<folder>/tables-v1``; a None folder disables it."""

    def __init__(self, folder: str | Path | None) -> None:
        from pipeline.digest_memo import DigestMemo

        self.folder = Path(folder) / SUBDIR if folder is not None else None
        self.digests: dict[str, str] = {}   # file name -> sha256 of the last fetch's files
        # the run's memo of file digests (inputs and entries; the runner saves it)
        self.memo = DigestMemo(folder)

    def _path(self, key: str) -> Path:
        assert self.folder is not None
        return self.folder / key[:2] / key

    def fetch(self, key: str | None, dest: Path) -> dict[str, Path] | None:
        """Link (or copy) the entry's files into ``dest`` (``<name>.staged``), checked.

        A hard link costs no write of the (large) files; the output and the entry then
        share the bytes, which no run changes in place (outputs are replaced whole),
        and a file changed by hand fails the check of the next fetch (a miss). Another
        file system (``--cache-dir``) gets a copy. The checked digests are kept in
        ``digests`` (the manifest records them without hashing the files again).

        Returns:
            File name -> copy, or None (no entry, or a file missing or damaged; then no
            copy is left behind).
        """
        from pipeline.store import file_digests

        self.digests = {}
        if self.folder is None or key is None:
            return None
        path = self._path(key)
        out: dict[str, Path] = {}
        try:
            meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
            for name in FILES:
                size, _ = meta[name]
                out[name] = dest / f"{name}{STAGED}"
                try:
                    os.link(path / name, out[name])
                except OSError:
                    out[name].unlink(missing_ok=True)
                    out[name].write_bytes((path / name).read_bytes())
                if out[name].stat().st_size != size:
                    raise ValueError(f"damaged {name}")
            # the files handed on are the files checked (hashed on two threads, unless
            # the memo knows them: the entry's files, unchanged since)
            found = file_digests([out[name] for name in FILES], memo=self.memo, ctime=False)
            for name, digest in zip(FILES, found):
                if digest != meta[name][1]:
                    raise ValueError(f"damaged {name}")
        except Exception:  # absent, or damaged in json, a file, or a size: a miss
            for copy in out.values():
                copy.unlink(missing_ok=True)
            from pipeline.chunk_cache import discard_entry

            discard_entry(path)  # so that store writes a good one
            return None
        self.digests = dict(zip(FILES, found))
        return out

    def store(self, key: str | None, staged: dict[str, Path],
              chunks: list[dict] | None = None) -> None:
        """Store the staged files of ``FILES`` (hard links, else copies); failures are ignored.

        A link shares the bytes with the output the staged file becomes, as ``fetch``'s
        links do (no run changes a file in place). The digests of the stored files are
        kept in ``digests``, as ``fetch`` keeps those it checks: the manifest records
        them without hashing the files again. ``chunks``: every chunk's place in the
        segments files (``coded_slices.tables_layout``), for ``moved``.
        """
        from pipeline.store import file_digests

        if self.folder is None or key is None:
            return
        path = self._path(key)
        if path.exists():
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=path.parent))
            try:
                for name in FILES:
                    try:
                        os.link(staged[name], tmp / name)
                    except OSError:  # another file system (--cache-dir): a copy
                        shutil.copyfile(staged[name], tmp / name)
                found = file_digests([tmp / name for name in FILES])  # on two threads
                meta: dict = {name: [(tmp / name).stat().st_size, digest]
                              for name, digest in zip(FILES, found)}
                if chunks is not None:
                    meta["chunks"] = chunks
                self.digests.update(zip(FILES, found))
                (tmp / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
                os.replace(tmp, path)  # atomic: readers see a whole entry or none
            finally:
                shutil.rmtree(tmp, ignore_errors=True)  # left only if not renamed
        except (OSError, KeyError):
            return

    def moved(self, chunk_keys: list[str | None], dest: Path):  # noqa: ANN201
        """The chunks of this run whose segments rows the newest entry of another corpus
        holds, found by their keys (as ``coded_slices.moved`` finds coding rows): a
        ``coded_slices.Slices`` of its segments files, linked into ``dest`` and
        checked, or None. Leaves ``digests`` (the run's own files') as they are."""
        from pipeline.coded_files import MOVED_TRIES, _mtime
        from pipeline.coded_slices import SEGMENTS_CSV, SEGMENTS_FILE, Slices

        if self.folder is None:
            return None
        try:
            paths = sorted((p for p in self.folder.glob("*/*") if not p.name.startswith(".")),
                           key=_mtime, reverse=True)
        except OSError:
            return None
        for path in paths[:MOVED_TRIES]:
            try:
                meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
                chunks = meta.get("chunks") if isinstance(meta, dict) else None
            except (OSError, ValueError):
                continue
            stored = {info["key"]: info for info in chunks or () if _valid(info)}
            held = {k: stored[key] for k, key in enumerate(chunk_keys) if key in stored}
            links = self._linked(path, meta, dest) if held else None
            if links is None:
                continue
            try:
                import pyarrow.parquet as pq

                from pipeline.coded_slices import with_rows

                schema = pq.read_schema(links[SEGMENTS_FILE])
                held = with_rows(held, {"segments": links[SEGMENTS_FILE]})
            except (OSError, ValueError):
                continue
            if not held:
                continue
            return Slices({SEGMENTS_FILE: links[SEGMENTS_FILE], SEGMENTS_CSV: links[SEGMENTS_CSV]},
                          held, {"segments": schema}, tables={"segments": SEGMENTS_FILE},
                          csv={"segments": SEGMENTS_CSV})
        return None

    def _linked(self, path: Path, meta: dict, dest: Path) -> dict[str, Path] | None:
        """The entry's segments files linked (or copied) into ``dest`` and checked; None
        (the entry removed) when one is damaged."""
        from pipeline.chunk_cache import discard_entry
        from pipeline.coded_files import linked_files
        from pipeline.coded_slices import SEGMENTS_CSV, SEGMENTS_FILE

        got = linked_files(path, {name: meta.get(name) for name in (SEGMENTS_FILE, SEGMENTS_CSV)},
                           dest, self.memo)
        if got is None:
            discard_entry(path)
            return None
        return got[0]


def _valid(info: object) -> bool:
    """Whether a chunk's ``tables_layout`` can be taken: written so, ids not renamed."""
    from pipeline.coded_slices import is_range

    return (isinstance(info, dict) and isinstance(info.get("key"), str)
            and info.get("renamed") is False and is_range(info.get("csv"))
            and is_range(info.get("segments")) and info["segments"][1] > 0)


@dataclass
class RunTables:
    """A run's table cache and, on a hit, the checked copies of its files."""

    cache: TableCache
    files: dict[str, Path] | None = None   # file name -> staged copy (None: a miss)


def prepare(tasks: list, ctx, book, *, engine: str, dest: Path) -> RunTables:  # noqa: ANN001
    """Set the chunk keys of ``tasks`` (local engine) and fetch the run's files if cached.

    The local engine's workers run this interpreter and package, so the keys computed
    here are theirs (``ChunkTask.key``); Dask workers compute their own (they may run
    other versions), and such a run only stores its files, from the keys they report.

    Args:
        tasks: the run's ``ChunkTask``s, in order.
        ctx: the ``RunContext`` (its cache folder; None: no cache).
        book: the codebook.
        engine: ``local`` or ``dask``.
        dest: folder for the copies (the run's parts folder).
    """
    from pipeline.chunk import task_key

    tables = RunTables(TableCache(ctx.cache_dir))
    if ctx.cache_dir is None or engine != "local" or not tasks:
        return tables
    memo = tables.cache.memo  # the digests of input files unchanged since an earlier run
    tasks[0].key = task_key(tasks[0], ctx, book, memo)  # sets the run-wide parts once
    if len(tasks) > 1:
        # two threads: most of a key is sha256 of the files' bytes, which releases the GIL
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(2, os.cpu_count() or 1)) as pool:
            for task, key in zip(tasks[1:], pool.map(lambda t: task_key(t, ctx, book, memo),
                                                     tasks[1:])):
                task.key = key
    tables.files = tables.cache.fetch(tables_key([task.key for task in tasks]), dest)
    return tables
