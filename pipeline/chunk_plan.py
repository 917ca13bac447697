"""Where a run's chunks begin and end: boundaries that survive files added or removed.

A chunk is the unit of every cache (its key covers its files): a chunk whose files
are the same is read from the cache, any other one is parsed again. Cutting a chunk
as soon as it holds ``chunk_bytes`` made every boundary depend on every file before
it, so one interview added (or removed, or grown past a boundary) early in a project
shifted all later chunks and the next run parsed nearly the whole corpus again.

Boundaries are now content-defined, as in rsync or restic: after the last file of a
stem, a chunk ends when it holds at least half of ``chunk_bytes`` and a hash of that
stem falls under the stem's size / (5/8 of ``chunk_bytes``), or when it reaches 1.5 x
``chunk_bytes`` (or ``max_files``). The hazard is the same per byte whatever the files,
so chunks hold ``chunk_bytes`` on average, and never much more than before (a run's
memory follows its largest chunk). A file added, removed or edited changes the
decision at that file only: the chunks after it end where they ended as soon as both
plans have cut at the same file, usually the next boundary. Boundaries still depend on
the inputs only (names and sizes), never on the engine or the number of jobs, so
output files are byte-identical across them.
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from pipeline.chunk import ChunkTask
from pipeline.memory_need import text_bytes

LOW = 0.5      # a chunk ends only once it holds LOW x chunk_bytes,
HIGH = 1.5     # always once it holds HIGH x chunk_bytes (its memory is bounded),
SPREAD = 0.625  # in between after a stem of n bytes with odds n / (SPREAD x chunk_bytes):
# then a chunk holds LOW + SPREAD x (1 - e^(-(HIGH - LOW) / SPREAD)) = 1.0 x chunk_bytes
# on average


def stem_draw(stem: str) -> float:
    """A number in [0, 1) fixed by the stem (a document id): the same in every run."""
    digest = hashlib.sha256(stem.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0 ** 64


def ends_chunk(stem: str, stem_bytes: int, held: int, chunk_bytes: int) -> bool:
    """Whether a chunk that holds ``held`` bytes ends after the files of ``stem``
    (``stem_bytes`` of them, counted in ``held``)."""
    low, high = int(LOW * chunk_bytes), int(HIGH * chunk_bytes)
    if held >= high:
        return True
    if held < low:
        return False
    return stem_draw(stem) < stem_bytes / max(SPREAD * chunk_bytes, 1)


def _text_bytes(path: Path, size: int) -> int:
    """The bytes of text ``path`` gives: its size, but a .docx is compressed (its
    document's XML, as ``memory_need`` counts it, which then counts it in parts too)."""
    if path.suffix.lower() != ".docx":
        return size
    return text_bytes(path) or size


def plan_chunks(files: Sequence[Path], shown: Sequence[str], *, chunk_bytes: int,
                max_files: int = 2000, part_bytes: int | None = None) -> list[ChunkTask]:
    """Cut the input files into chunks of about ``chunk_bytes`` of raw input.

    Files are taken in ``doc_id`` order (stem, then path), which is the order of the
    output tables; files sharing a stem stay together so duplicate ids are resolved
    exactly as in a whole-corpus run. A chunk ends where ``ends_chunk`` says (see the
    module docstring), or at ``max_files`` files.

    A file of more than ``part_bytes`` of text (None: never; a .docx: its document's XML)
    that shares its stem with no other file is split instead: ``ceil(size / part_bytes)``
    chunks of its own, each coding an equal share of its segments in order
    (``ChunkTask.part``).
    """
    order = sorted(range(len(files)), key=lambda k: (files[k].stem, files[k].as_posix()))
    tasks: list[ChunkTask] = []
    current: list[tuple[int, str, str]] = []
    size = stem_size = 0
    for n, k in enumerate(order):
        try:
            file_size = files[k].stat().st_size
        except OSError:
            file_size = 0  # unreadable: read_file reports it
        first_of_stem = n == 0 or files[order[n - 1]].stem != files[k].stem
        last_of_stem = n + 1 == len(order) or files[order[n + 1]].stem != files[k].stem
        text_size = _text_bytes(files[k], file_size)
        if part_bytes is not None and text_size > part_bytes and first_of_stem and last_of_stem:
            if current:
                tasks.append(ChunkTask(len(tasks), current))
                current, size = [], 0
            parts = -(-text_size // part_bytes)
            tasks += [ChunkTask(len(tasks) + i, [(k, str(files[k]), shown[k])], part=(i, parts))
                      for i in range(parts)]
            continue
        if first_of_stem:
            stem_size = 0
        current.append((k, str(files[k]), shown[k]))
        size += file_size
        stem_size += file_size
        if last_of_stem and (len(current) >= max_files
                             or ends_chunk(files[k].stem, stem_size, size, chunk_bytes)):
            tasks.append(ChunkTask(len(tasks), current))
            current, size = [], 0
    if current:
        tasks.append(ChunkTask(len(tasks), current))
    return tasks
