"""A chunk that ran out of memory: its files reported, the run going on.

A chunk holds whole documents and codes each in one piece (a large survey: a share of
its answers, but read whole, ``chunk_parts``), so one file too large for the machine's
memory stops its chunk with a ``MemoryError``. Instead of the run ending in a
traceback, the chunk's files become error rows (each named, with its size) and the
other chunks are coded as usual, as for a file that cannot be read.
"""
from __future__ import annotations

import dataclasses
import gc
import os

import pandas as pd

from pipeline import columns as C
from pipeline.errors import InputError


def not_coded(task, ctx):  # noqa: ANN001, ANN201 - chunk.ChunkTask, RunContext -> ChunkResult
    """The result of ``task`` when coding it ran out of memory: no rows, an error row per
    file, its documents counted as files that could not be read.

    Raises:
        InputError: the runner takes the chunk's documents and segments (or coding
            files) from its cache (``task.slim``/``task.reuse``): they cannot be left
            out there, so the run stops, naming the chunk's largest file.
    """
    from pipeline.chunk import ORDER, PHASE_FILE, ChunkTask, process_chunk
    from pipeline.ingest import assign_doc_ids

    gc.collect()  # what the failed chunk held (its frames are gone) is freed before going on
    sizes = {shown: _size(path) for _, path, shown in task.files}
    if task.slim or task.reuse:
        largest = max(task.files, key=lambda f: sizes[f[2]])
        raise InputError(largest[2], f"out of memory while coding (a file of "
                                     f"{_mb(sizes[largest[2]])}); the run stopped")
    # the typed, empty tables of a chunk without files (no cache entry made for it)
    empty = process_chunk(ChunkTask(task.index, []), dataclasses.replace(ctx, cache_dir=None))
    together = (f", coded together with {len(task.files) - 1} more" if len(task.files) > 1
                else "")
    part = getattr(task, "part", None)

    def message(shown: str) -> str:
        if part is not None:  # (``chunk_parts``) the file's other parts are coded as usual
            return (f"not coded: out of memory (part {part[0] + 1} of {part[1]} of the segments "
                    f"of a file of {_mb(sizes[shown])}, read whole by each part): split the "
                    "file, or code it on a machine with more memory")
        return (f"not coded: out of memory (a file of {_mb(sizes[shown])}{together}; a file is "
                "coded in one piece): split a very large file, or code it on a machine with "
                "more memory")

    errors = pd.DataFrame(
        [{C.ERROR_FILE: shown, C.ERROR_STAGE: "code", C.ERROR_SEVERITY: "error",
          C.ERROR_MESSAGE: message(shown), ORDER: (PHASE_FILE, pos)}
         for pos, _, shown in task.files],
        columns=[*C.ERROR_COLUMNS, ORDER])
    doc_ids, _ = assign_doc_ids([p for _, p, _ in task.files], [s for _, _, s in task.files])
    empty.stats.update(key=None, out_of_memory=True)
    return dataclasses.replace(empty, errors=errors, present=[],
                               failed=list(doc_ids) if part is None else [])


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _mb(size: int) -> str:
    return f"{size / 1e6:,.1f} MB" if size >= 100_000 else f"{size / 1e3:,.1f} kB"
