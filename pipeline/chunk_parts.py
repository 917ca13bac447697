"""A large file coded in parts: one file's segments shared out over several chunks.

A chunk holds whole files, and a file is one document: a survey of 64,000 answers or a
transcript of 600 interviews was one chunk, so a run's memory grew with its largest
file and ``--jobs`` could not share it out. The planner (``runner.plan_chunks``) now
gives such a file n chunks of its own, ``ChunkTask.part = (k, n)``. Each reads and
segments the whole file (in a process that runs several parts of it, once: kept here
until its last part), then parses, matches and aggregates only the k-th n-th of its
segments, in order. The first part also has the document's row and the file's error
rows. Concatenated in chunk order, the parts' tables are the rows the file gives as one
chunk: segments are cut from the whole file, and a segment's matches and codings depend
on that segment alone, save the document's opening unit (``settings.opening_weight``:
its first coded segment, never a survey row), which every part is told
(``first_units``). A later part's own segment ids ("{doc_id}:{n}") go on from the
earlier parts' (``SegmentIds.continued``). Survey ids that are also segment ids of an
earlier chunk (ids written like "int01:3") are prefixed by each part that has some; the
runner merges their warnings into the file's one (``run_stream._unique_ids``).
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from typing import Any

import pandas as pd

from pipeline import columns as C

# (memo key, (documents, segments, errors, present, failed)) of the file whose parts
# this process is coding: read and segmented once for all of them
_WHOLE: list[tuple[str, tuple]] = []


def part_of(task, load: Callable[[], tuple], settings: dict[str, Any],  # noqa: ANN001
            lap: Callable[[str], None]) -> tuple[tuple, dict[str, str], dict[str, str]]:
    """The tables of one part of a file: ``slice_part`` of what ``load()`` gives.

    Args:
        task: the part's ``chunk.ChunkTask`` (``task.part`` set; one file).
        load: reads and segments the whole file (``chunk._read_and_segment``, which
            times the ingest and segment stages itself).
        settings: what else shapes the file's tables (``chunk._key_settings``).
        lap: the chunk's stage timer (called when the tables were kept here).

    Returns:
        ``(documents, segments, errors, present, failed)`` of the part, the language
        of each document's first coded segment (``first_languages``) and that
        segment's id (``first_units``).
    """
    k, n = task.part
    key = _memo_key(task, settings)
    if _WHOLE and _WHOLE[0][0] == key:
        whole, langs, units = _WHOLE[0][1]
        lap("ingest")
        lap("segment")
    else:
        _WHOLE.clear()  # another file's tables go before this one's are read
        whole = load()
        langs, units = first_languages(whole[1]), first_units(whole[1])
        _WHOLE.append((key, (whole, langs, units)))
    if k == n - 1:
        # a process is handed a file's parts in order: none of them comes after this one
        _WHOLE.clear()
    return slice_part(whole, k, n), langs, units


def first_languages(segments: pd.DataFrame) -> dict[str, str]:
    """Document id -> the language of its first coded segment.

    A document is parsed and matched in that language (``chunk_code.code_chunk``: its
    segments of another language are not coded), which a part that starts later in
    the document cannot see for itself.
    """
    return _first_coded(segments, C.LANG)


def first_units(segments: pd.DataFrame) -> dict[str, str]:
    """Document id -> the id of its first coded segment: its opening unit
    (``settings.opening_weight``), which a later part cannot tell from its own rows."""
    return _first_coded(segments, C.SEGMENT_ID)


def _first_coded(segments: pd.DataFrame, column: str) -> dict[str, str]:
    """Document id -> ``column`` of its first coded segment."""
    coded = segments[C.CODED].to_numpy(dtype=bool)
    docs = segments[C.DOC_ID].to_numpy()[coded].tolist()
    values = segments[column].to_numpy()[coded].tolist()
    out: dict[str, str] = {}
    for doc, value in zip(docs, values):
        out.setdefault(doc, value)
    return out


def slice_part(whole: tuple, k: int, n: int) -> tuple:
    """Part ``k`` of ``n`` of a file's ``(documents, segments, errors, present, failed)``:
    segments ``[len * k // n, len * (k + 1) // n)``; the other tables in part 0 only."""
    documents, segments, errors, present, failed = whole
    a, b = len(segments) * k // n, len(segments) * (k + 1) // n
    part = segments.iloc[a:b].reset_index(drop=True)
    if k:
        return documents.iloc[0:0].reset_index(drop=True), part, [], [], []
    return documents, part, list(errors), list(present), list(failed)


def _memo_key(task, settings: dict[str, Any]) -> str:  # noqa: ANN001
    """What identifies a file's whole tables in this process: its path, size and time,
    the run's settings and the shared CSV ids it is segmented with."""
    files = []
    for pos, path, shown in task.files:
        try:
            st = os.stat(path)
            files.append([pos, path, shown, st.st_size, st.st_mtime_ns])
        except OSError:
            files.append([pos, path, shown, None, None])
    shared = (None if task.shared_keys is None
              else hashlib.sha256("\n".join(sorted(task.shared_keys)).encode()).hexdigest())
    return json.dumps([files, settings, shared], sort_keys=True, default=str)


def forget() -> None:
    """Drop the tables kept for a file's next part (a run that ended early)."""
    _WHOLE.clear()

