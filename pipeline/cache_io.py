"""Cache files of the coming chunks, read ahead on a thread (runs in this process).

A re-code from cache spends much of each chunk reading cache entries: file bytes,
digests, Parquet decoding, Arrow IPC decompression and ``.npy`` loading, all of which
release the GIL. When a run's chunks run in this process (``--jobs 1``), the runner
starts a ``Prefetcher`` over the chunks in run order: a thread reads the files of the
chunk-cache entry and of the match and codings entries of each chunk (and decodes them)
while the chunks before it are coded, at most ``AHEAD`` chunks ahead, and the cache loaders take what
it read instead of reading the disk (``take``).

The same run writes its new match and codings cache files behind the chunks too
(``behind``): a loader hands over an immutable Arrow table, and a thread of the
prefetcher encodes and writes it; closing the prefetcher waits for every write.

Nothing else changes: a loader checks what it takes exactly as it checks what it
reads (the digest in a tagged file's name, the columns of a table, the
fingerprints of a chunk entry), and a file the thread did not read (absent, an
error, written later) is read by the loader as before. Entries are immutable and
replaced by renames, so a prefetched file holds the bytes the loader would have read.
"""
from __future__ import annotations

import contextlib
import json
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

AHEAD = 2              # chunks read ahead of the one being coded (memory: a few MB each)
# Writes waiting for the writing thread; ``behind`` waits for room beyond that, so the
# arrays and tables handed over (a few MB a chunk) stay bounded however long the run.
QUEUED = 8

# A chunk's job: returns file path -> what the loader of that file takes.
Job = Callable[[], dict[Path, Any]]

_ACTIVE: Prefetcher | None = None


class Prefetcher:
    """Runs the jobs of chunks in order on one thread, ``AHEAD`` chunks ahead of ``wait``.

    Args:
        jobs: chunk key -> its job, in run order.
    """

    def __init__(self, jobs: list[tuple[str, Job]]) -> None:
        self._jobs = jobs
        self._index = {key: k for k, (key, _) in enumerate(jobs)}
        self._files: dict[Path, Any] = {}
        self._paths: list[list[Path]] = [[] for _ in jobs]   # files of each job, until dropped
        self._done = 0           # jobs finished
        self._wanted = 0         # jobs the loaders reached (``wait``)
        self._stop = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="qcode-prefetch", daemon=True)
        self._writes: queue.Queue = queue.Queue(maxsize=QUEUED)
        self._writer: threading.Thread | None = None
        self.matching = False    # see ``matching()``

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def close(self) -> None:
        """Stop the thread, wait for it and for the writes, and drop what nobody took."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join()
        self._files.clear()
        if self._writer is not None:
            self._put(None)
            self._writer.join()
            self._writer = None

    def behind(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` on the writing thread (in call order; errors are ignored).

        Waits while ``QUEUED`` writes are waiting; called on the writing thread itself
        (a write that writes more), runs ``fn`` there and then.
        """
        if self._writer is None:
            self._writer = threading.Thread(target=self._write_loop, name="qcode-cache-write",
                                            daemon=True)
            self._writer.start()
        elif threading.current_thread() is self._writer:
            self._run_write(fn, args)
            return
        if not self._put((fn, args)):
            self._run_write(fn, args)

    def _put(self, item: tuple | None) -> bool:
        """Queue ``item`` for the writing thread, waiting for room; False if that thread
        has ended (nothing would take it: the caller then does the write itself)."""
        assert self._writer is not None
        while True:
            try:
                self._writes.put(item, timeout=0.5)
                return True
            except queue.Full:
                if not self._writer.is_alive():
                    return False

    def _write_loop(self) -> None:
        while (item := self._writes.get()) is not None:
            self._run_write(*item)

    @staticmethod
    def _run_write(fn: Callable[..., Any], args: tuple) -> None:
        try:
            fn(*args)
        except Exception:  # noqa: BLE001, S110 - a cache write may fail: a later miss
            pass

    def _run(self) -> None:
        for k, (_, job) in enumerate(self._jobs):
            with self._cond:
                while not self._stop and k >= self._wanted + AHEAD:
                    self._cond.wait()
                if self._stop:
                    return
            try:
                found = job()
            except Exception:  # noqa: BLE001 - the loaders read (and report) it themselves
                found = {}
            with self._cond:
                self._files.update(found)
                self._paths[k] = list(found)
                self._done = k + 1
                self._cond.notify_all()

    def wait(self, key: str) -> None:
        """Wait until the files of chunk ``key`` are read (a key not planned: no wait).

        Files of earlier chunks that nobody took are dropped (their loaders are done).
        """
        k = self._index.get(key)
        if k is None:
            return
        with self._cond:
            for old in range(k):
                for path in self._paths[old]:
                    self._files.pop(path, None)
                self._paths[old] = []
            self._wanted = max(self._wanted, k + 1)
            self._cond.notify_all()
            while not self._stop and self._done <= k and self._thread.is_alive():
                self._cond.wait(0.5)

    def take(self, path: Path) -> Any:
        """What the thread read of ``path`` (once), or None."""
        with self._cond:
            return self._files.pop(path, None)


@contextlib.contextmanager
def prefetching(jobs: list[tuple[str, Job]]) -> Iterator[Prefetcher | None]:
    """Read the files of these chunks ahead while the block runs (no jobs: nothing)."""
    global _ACTIVE
    if not jobs or _ACTIVE is not None:
        yield None
        return
    ahead = Prefetcher(jobs)
    _ACTIVE = ahead
    ahead.start()
    try:
        yield ahead
    finally:
        _ACTIVE = None
        ahead.close()


def wait(key: str | None) -> None:
    """Wait for the prefetched files of chunk ``key`` (no prefetcher: nothing to wait for)."""
    active = _ACTIVE
    if active is not None and key is not None:
        active.wait(key)


def reading_ahead() -> bool:
    """Whether a prefetcher is reading this run's cache files ahead."""
    return _ACTIVE is not None


def note_matching() -> None:
    """Say that this run re-matches rules on cached tokens (see ``matching``)."""
    active = _ACTIVE
    if active is not None:
        active.matching = True


def matching() -> bool:
    """Whether this run re-matched rules on cached tokens so far: the read-ahead thread
    then also makes the matcher's arrays of the next chunks (wasted work otherwise,
    e.g. after an edit is undone, when every rule's rows are in the cache)."""
    active = _ACTIVE
    return active is not None and active.matching


def take(path: Path) -> Any:
    """What the prefetcher read of ``path`` (None: read it yourself)."""
    active = _ACTIVE
    return active.take(path) if active is not None else None


def behind(fn: Callable[..., Any], *args: Any) -> None:
    """Run ``fn(*args)`` on the prefetcher's writing thread, or now when there is none."""
    active = _ACTIVE
    if active is not None:
        active.behind(fn, *args)
    else:
        fn(*args)


@dataclass
class Parsed:
    """A JSON file's value, parsed by the prefetcher (``take_json`` hands it over)."""

    value: Any


def take_json(path: Path) -> Any:
    """The value of a JSON file: parsed by the prefetcher, or read and parsed now."""
    got = take(path)
    return got.value if isinstance(got, Parsed) else json.loads(
        path.read_text(encoding="utf-8"))


def read_parquet(data: bytes, columns: list[str] | None = None,
                 pandas_metadata: bool = False) -> tuple[Any, Any]:
    """``(ParquetFile, table)`` of a Parquet file's bytes, decoded on one thread."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    source = pq.ParquetFile(pa.BufferReader(data))
    return source, source.read(columns=columns, use_threads=False,
                               use_pandas_metadata=pandas_metadata)


def chunk_job(cache_dir: str, key: str, columns: dict[str, list[str]] | None,
              tokens: bool = True, light: bool = True) -> Job:
    """The job of one chunk: its chunk entry, then its match and codings entries.

    ``tokens``: False for a chunk that is not coded (``coded_files``): the entry
    without its token files, and no match or codings entries; ``light``: as for
    ``ChunkCache.load``."""

    def job() -> dict[Path, Any]:
        from pipeline.chunk_cache import ChunkCache
        from pipeline.coding_cache import CodingCache
        from pipeline.match_cache import MatchCache
        from pipeline.tagged_store import read_ahead

        found: dict[Path, Any] = {}
        entry = ChunkCache(cache_dir).read_ahead(key, columns, found, tokens, light)
        if entry is None or not tokens:
            return found
        langs = entry["fingerprints"]
        for lang, fingerprint in langs.items():
            for memo in (MatchCache(cache_dir, key), CodingCache(cache_dir, key)):
                folder = memo.entry(lang, fingerprint).folder
                if folder is not None:
                    read_ahead(folder, found)
        return found

    return job
