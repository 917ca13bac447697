"""The CSV id values several files of a run use (``ingest.shared_csv_keys``), for the runner.

Every chunk with a CSV file must prefix those ids, whatever the chunking, so the
runner finds them before the chunks run: remembered in the cache folder per CSV
bytes (``shared_keys``), or, for a local pool without a cache, on a thread while the
first chunks run (``SharedKeys``, the engine's ``prepare`` of the tasks).
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline import ingest as ingest_stage
from pipeline.chunk import ChunkTask, RunContext
from pipeline.ingest.files import name_suffix
from pipeline.store import atomic_write_text

if TYPE_CHECKING:
    from pipeline.runner import RunOptions

SHARED_KEYS = "csv-keys-v1"   # cache subfolder of ``shared_keys`` (bump if its format changes)


def shared_keys(files: Sequence[Path], opts: RunOptions,
                cache_dir: str | None) -> frozenset[str]:
    """``ingest.shared_csv_keys`` of ``files``, remembered in the cache folder.

    Finding them parses every CSV file of the run; the result depends only on the CSV
    files' bytes, the id and text columns, and the code and libraries that read them
    (``chunk_cache.chunk_key``'s versions), so a re-code reads it from a small JSON
    file named after all of that (not after the paths: the input folder given by
    another path, or moved, finds it too). A file that cannot be read, or an
    unreadable memo, means the files are parsed as before.
    """
    from pipeline.chunk_cache import _source_digest, _versions

    # one Path per file (9,000 at a million segments), not two
    csvs = [p for p in map(Path, files) if p.suffix.lower() == ".csv"]

    def compute() -> frozenset[str]:  # the other files hold no CSV ids
        return ingest_stage.shared_csv_keys(csvs, text_column=opts.text_column,
                                            id_column=opts.id_column)

    if cache_dir is None or len(csvs) < 2:
        return compute()
    h = hashlib.sha256(json.dumps([SHARED_KEYS, *_versions(), _source_digest(),
                                   opts.text_column, opts.id_column]).encode("utf-8"))
    try:
        for path in csvs:
            h.update(hashlib.sha256(path.read_bytes()).digest())
    except OSError:
        return compute()
    memo = Path(cache_dir) / SHARED_KEYS / f"{h.hexdigest()}.json"
    try:
        found = json.loads(memo.read_text(encoding="utf-8"))
        if isinstance(found, list) and all(isinstance(k, str) for k in found):
            return frozenset(found)
    except (OSError, ValueError):
        pass
    keys = compute()
    try:  # atomic: a reader sees the whole list or none
        atomic_write_text(memo, json.dumps(sorted(keys)))
    except OSError:
        pass
    return keys


def defer_keys(opts: RunOptions, ctx: RunContext) -> bool:
    """Whether the shared CSV ids are found while the first chunks run (``SharedKeys``).

    Only for a local pool without a cache: its workers wait for the runner's first
    tasks, and finding the ids parses every CSV file (~0.5 s at a million segments).
    With a cache the ids are part of every chunk's cache key, needed up front (and
    usually read from their memo); one job would only move the parsing.
    """
    return ctx.cache_dir is None and opts.engine == "local" and opts.jobs > 1


class SharedKeys:
    """``prepare`` of a run's tasks: a task with a CSV file gets the shared CSV ids.

    They are found (``shared_keys``) on a thread started when the first task is
    handed out, while the runner waits for the pool's first worker (its fork server
    is still importing) and the workers code the first chunks; the first task with a
    CSV file waits for them. Chunks without a CSV file do not use them (only CSV
    rows have id values).
    """

    def __init__(self, files: Sequence[Path], opts: RunOptions) -> None:
        self._files, self._opts = files, opts
        self._keys: frozenset[str] | None = None
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def _find(self) -> None:
        try:
            self._keys = shared_keys(self._files, self._opts, None)
        except BaseException as exc:  # noqa: BLE001 - raised where the keys are needed
            self._error = exc

    def __call__(self, task: ChunkTask) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._find, daemon=True)
            self._thread.start()
        # ``Path(path).suffix``, the test of ``shared_csv_keys``, on the string
        if not any(name_suffix(os.path.basename(path)).lower() == ".csv"
                   for _, path, _ in task.files):
            return
        self._thread.join()
        if self._error is not None:
            raise self._error
        task.shared_keys = self._keys
