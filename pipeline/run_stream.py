"""The streaming half of a coding run: chunks in, part files and counters out.

``stream_chunks`` runs the chunks on the engine and hands each result, in chunk
order, to the ``PartWriter`` (which writes the final files as they come): segment
ids repeated across chunks are renamed here, and what the manifest needs (inputs,
counts, stage times, error rows) is kept as counters, not tables. The runner
(``runner.code_corpus``) plans the chunks before and writes the manifest after.
"""
from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from pipeline import columns as C
from pipeline import segment as segment_stage
from pipeline import table_cache
from pipeline.chunk import (ORDER, PHASE_FILE, PHASE_META_COLUMNS, PHASE_ORPHAN_META, ChunkResult,
                            ChunkTask, RunContext)
from pipeline.csv_rows import csv_rows
from pipeline.engine import Prepare, run_chunks
from pipeline.parts import ChunkSpill, PartWriter
from pipeline.segment_ids import CLASHED, clash_message

if TYPE_CHECKING:
    from pipeline.runner import RunOptions

TABLES = ("documents", "segments", "codings", "matches")
CSV_TABLES = ("segments", "codings")        # the tables with a CSV file too
RENAMED_TABLES = ("segments", "codings", "matches")  # rows that hold segment ids


class StreamedRun:
    """What the runner keeps of a streamed run: counters, not tables."""

    def __init__(self) -> None:
        self.keys: list[str | None] = []  # chunk-cache key of every chunk's tables
        self.inputs: list[dict[str, str]] = []
        self.errors_rows: list[pd.DataFrame] = []
        self.present: set[str] = set()
        self.failed: set[str] = set()
        self.counts = {"documents": 0, "segments": 0, "segments_coded": 0, "codings": 0,
                       "tokens": 0, "cache_hits": 0, "cache_misses": 0}
        self.per_code: dict[str, int] = {}
        self.stage_s = {"ingest": 0.0, "segment": 0.0, "nlp_code": 0.0}
        self.wall_s = 0.0
        self.chunk_counts: list[tuple[int, dict[str, int]]] = []  # (tokens, per code)
        self.renamed: list[bool] = []  # whether some of a chunk's segment ids were renamed
        self.errors = pd.DataFrame(columns=C.ERROR_COLUMNS)
        self.n_failed = 0


def _unique_ids(res: ChunkResult, taken: segment_stage.SegmentIds,
                task: ChunkTask, clashed: dict | None = None,
                cache_dir: str | None = None) -> dict[str, str]:
    """Rename a chunk's segment ids already used by an earlier chunk (with warnings).

    A chunk may come with a summary of its ids (``segment_ids.summary``: made with its
    segments, or kept in its cache entry): its ids are looked at only if one may be
    taken, read back from the chunk's segments part if a pool worker sent the summary
    instead of them, or from its cache entry if the entry's tables were not read.
    ``clashed``: doc id -> (the errors table holding its warning, the row, the ids
    shown): a later part of a document adds its ids to the warning of an earlier
    part, so a file coded in parts has the one warning it has coded whole.

    Returns:
        Old -> new id of the renamed ids (then the chunk's spilled tables are stale).
    """
    ids = res.stats.pop("ids", None)
    if task.part is not None and task.part[0] > 0:  # the file's own ids go on from part 0
        docs = ids[0] if ids is not None else res.segments[C.DOC_ID].unique().tolist()
        with taken.continued(docs):
            return _unique_in(res, ids, taken, task, clashed, cache_dir)
    return _unique_in(res, ids, taken, task, clashed, cache_dir)


def _unique_in(res: ChunkResult, ids, taken: segment_stage.SegmentIds,  # noqa: ANN001
               task: ChunkTask, clashed: dict | None, cache_dir: str | None) -> dict[str, str]:
    """``_unique_ids`` of a chunk whose ids' summary (or None) is ``ids``."""
    if ids is not None:
        if not taken.may_hold(ids):  # the usual case: all new, nothing to rename
            taken.add_summary(ids)
            return {}
        if "segments" in (res.stats.get("slim") or ()):  # the ids are in the part only
            part = res.stats["parts"]["segments"]
            res.segments = PartWriter.read(Path(part.path))[[C.SEGMENT_ID, C.DOC_ID,
                                                              C.UNIT_INDEX]]
        elif res.stats.get("light"):  # a stored chunk's segments were not read: now
            res.segments = _stored_segments(cache_dir, res.stats.get("key"), task)
    warnings: list[dict] = []
    paths = dict(zip(res.documents[C.DOC_ID], res.documents[C.PATH]))
    if task.part is not None and task.files:  # a later part has no document row: its file
        paths.update((doc, task.files[0][2]) for doc in res.segments[C.DOC_ID].unique().tolist()
                     if doc not in paths)
    res.segments, renames = segment_stage.unique_across(res.segments, taken, warnings, paths)
    if not renames:
        return renames
    for name in ("matches", "codings"):
        setattr(res, name, _renamed(getattr(res, name), name, renames))
    res.codings_csv = None  # its lines hold the old ids: the writer serialises the rows
    positions = {shown: pos for pos, _, shown in task.files}
    rows, docs = [], []
    for w in warnings:
        doc, values = w.pop(CLASHED, (None, []))
        earlier = clashed.get(doc) if clashed is not None and task.part is not None else None
        if earlier is not None:  # an earlier part of the file warned: one warning for all
            frame, row, shown = earlier
            shown[:] = [*shown, *values][:6]
            frame.loc[row, C.ERROR_MESSAGE] = clash_message(doc, shown)
            continue
        rows.append({**w, ORDER: (PHASE_FILE, positions.get(w[C.ERROR_FILE], -1))})
        docs.append((doc, list(values)))
    res.errors = pd.concat([res.errors, pd.DataFrame(rows, columns=res.errors.columns)],
                           ignore_index=True)
    if clashed is not None and task.part is not None:
        first = len(res.errors) - len(rows)
        for k, (doc, values) in enumerate(docs):
            clashed[doc] = (res.errors, first + k, values)
    return renames


def _coded_after_all(res: ChunkResult, task: ChunkTask, ctx: RunContext,
                     renames: dict[str, str], segments: bool = False) -> None:
    """Code here a chunk whose coding rows were to come from a stored entry of another
    corpus (``coded_slices.moved``), now that this run renamed some of its segment ids:
    ``res`` gets its match and coding rows (and its segments, when they were to come
    from one too), renamed as ``_unique_ids`` renames them."""
    from pipeline.chunk import process_chunk

    task.reuse = task.segments_taken = False  # (the manifest counts the chunks taken)
    fresh = process_chunk(replace(task, reuse=False, segments_taken=False), ctx)
    for name in ("matches", "codings", *(("segments",) if segments else ())):
        setattr(res, name, _renamed(getattr(fresh, name), name, renames))
    res.codings_csv = None  # the writer serialises the renamed rows
    res.stats["tokens"] = fresh.stats["tokens"]
    for key in ("uncoded", "per_code", "n_codings"):  # counted from the rows now
        res.stats.pop(key, None)


def _renamed(table: pd.DataFrame, name: str, renames: dict[str, str]) -> pd.DataFrame:
    """``table`` with the renamed segment ids (as ``segment.unique_across`` renames)."""
    if name == "segments":
        table = table.copy()
        table[C.SEGMENT_ID] = [renames.get(i, i) for i in table[C.SEGMENT_ID].astype(str).tolist()]
    else:
        table[C.SEGMENT_ID] = table[C.SEGMENT_ID].map(lambda i: renames.get(i, i))
    return table


def _whole(res: ChunkResult, name: str, part,  # noqa: ANN001 - a parts.Part
           renames: dict[str, str]) -> pd.DataFrame:
    """A result's table as the runner writes it; a slimmed one is read back from its part."""
    if name not in res.stats.get("slim", ()):
        return getattr(res, name)
    table = PartWriter.read(Path(part.path))  # read whole before add() rewrites the file
    return _renamed(table, name, renames) if renames and name in RENAMED_TABLES else table


class _NoBar:
    """The progress bar of a quiet run: nothing (``tqdm.auto`` imports asyncio, ~15 ms)."""

    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, n: int = 1) -> None:
        """Nothing to show."""

    def set_postfix_str(self, text: str) -> None:
        """Nothing to show."""


def _bar(n_files: int, progress: bool, file=None):  # noqa: ANN001, ANN202 - tqdm bar or _NoBar
    """The run's progress bar on ``file`` (None: stderr), or none (``_NoBar``)."""
    if not progress:
        return _NoBar()
    from tqdm.auto import tqdm

    class Bar(tqdm):
        """Files done, a file coded in parts (``chunk_parts``) counted a part at a time:
        shown with one decimal while it is part-way ("3.4/12")."""

        @property
        def format_dict(self):  # noqa: ANN202
            shown = super().format_dict
            n = round(shown["n"], 6)  # float sums of the shares: 5.999999999 is 6
            shown["done"] = f"{n:,.0f}" if float(n).is_integer() else f"{n:,.1f}"
            return shown

    return Bar(total=n_files, desc="coding", unit="doc", leave=False, file=file,
               bar_format="{l_bar}{bar}| {done}/{total_fmt} [{elapsed}<{remaining}, "
                          "{rate_fmt}{postfix}]")


def files_done(task: ChunkTask) -> float:
    """How much of the run's files ``task`` finishes: its files, or for a part of a file
    its share, the last part the rest (the shares of a file add up to exactly 1)."""
    if task.part is None:
        return len(task.files)
    k, n = task.part
    return (k + 1) / n - k / n if k < n - 1 else 1 - k / n


def stream_chunks(tasks: list[ChunkTask], ctx: RunContext, opts: RunOptions, writer: PartWriter,
                  n_files: int, tables: table_cache.RunTables,
                  prepare: Prepare | None = None, coded: bool = False,
                  slices=None, segments=None) -> StreamedRun:  # noqa: ANN001 - coded_slices.Slices
    """Run the chunks on the engine and spill every result to the part files in order.

    With the finished documents and segments files from the table cache, those tables
    are not spilled (segments still are for a model pass, which reads them); with the
    finished coding files (``coded``, ``coded_files``), codings and matches are not;
    the chunks of ``slices`` (``coded_slices``) take their rows of them from a stored
    entry's files, and those of ``segments`` (``TableCache.moved``) their segments rows.
    A chunk whose segment ids this run renames is coded after all (the stored rows hold
    the ids it had). ``prepare``: as for ``engine.run_chunks``.
    """
    from pipeline.errors import InputError

    skip = set()
    if tables.files is not None:
        skip = {"documents", "segments"} if opts.method == "rules" else {"documents"}
    if coded:
        skip |= {"codings", "matches"}
    run = StreamedRun()
    taken = segment_stage.SegmentIds()  # segment ids unique across chunks too
    clashed: dict = {}  # the warnings of renamed ids of files in parts (``_unique_ids``)
    started = time.perf_counter()
    bar = _bar(n_files, opts.progress)
    with bar:
        names = tuple(name for name in TABLES if name not in skip)
        # Where the chunk ran (a pool worker), its tables become part files, CSV lines
        # included: the runner only records them, and its final merge copies bytes.
        # In this process (one job, rules only: a model pass reads the parts back), parts
        # a stream takes are never written as files: their rows are in the staged files.
        memory = opts.engine == "local" and opts.jobs == 1 and opts.method == "rules"
        # In pool workers (engine.run_chunks uses a pool for more than one chunk) and
        # on Dask workers, the parts are encoded as Parquet there: the runner's streams
        # splice their bytes.
        pooled = opts.engine == "dask" or (opts.jobs > 1 and len(tasks) > 1)
        spill = ChunkSpill(str(writer.dir), names, CSV_TABLES, memory=memory, parquet=pooled)
        for res in run_chunks(tasks, ctx, jobs=opts.jobs, engine=opts.engine,
                              scheduler=opts.scheduler, spill=spill, prepare=prepare):
            renamed = _unique_ids(res, taken, tasks[res.index], clashed, ctx.cache_dir)
            run.keys.append(res.stats.get("key"))
            run.renamed.append(bool(renamed))
            if tables.files is not None and run.keys[-1] != tasks[res.index].key:
                # the cached files hold the inputs as hashed at the start (and the
                # documents of a chunk that ran out of memory: they cannot be left out)
                raise InputError(tasks[res.index].files[0][1],
                                 "out of memory while coding; the run stopped"
                                 if res.stats.get("out_of_memory") else
                                 "an input file changed while the run was going on; run again")
            parts = res.stats.pop("parts", None) or {}
            sliced = slices.chunks.get(res.index) if slices is not None else None
            rows = segments if segments is not None and res.index in segments.chunks else None
            if (sliced is not None or rows is not None) and renamed:
                _coded_after_all(res, tasks[res.index], ctx, renamed, rows is not None)
                sliced = rows = None
            if sliced is not None:  # not coded: the stored entry's counts of the chunk
                res.stats["tokens"] = sliced["tokens"]
            for name in names:
                if sliced is not None and name in sliced:  # the stored entry's rows
                    writer.adopt(name, slices.part(name, res.index, writer.dir))
                    continue
                if rows is not None and name == "segments":
                    writer.adopt(name, rows.part(name, res.index, writer.dir))
                    continue
                part = parts.get(name)
                if part is not None and not (renamed and name in RENAMED_TABLES) \
                        and len(writer.parts.get(name, [])) == res.index:
                    writer.adopt(name, part)
                else:  # not spilled, or renamed ids: the rows as they are now
                    table = _whole(res, name, part, renamed)
                    lines = res.codings_csv if name == "codings" else None
                    if lines is None and name in CSV_TABLES:
                        # its CSV lines: the output file's stream goes on (and a stored
                        # run records where each chunk's rows are, ``coded_slices``)
                        lines = csv_rows(table)
                    writer.add(name, table, lines)
            docs = res.documents  # lists: iterating Arrow-backed columns is per element
            run.inputs += [{"doc_id": d, "path": p, "sha256": h} for d, p, h in zip(
                docs[C.DOC_ID].tolist(), docs[C.PATH].tolist(), docs[C.SHA256].tolist())]
            run.errors_rows.append(res.errors)
            run.present.update(res.present)
            run.failed.update(res.failed)
            for key in ("documents", "segments", "segments_coded", "tokens", "cache_hits",
                        "cache_misses"):
                run.counts[key] += int(res.stats[key])
            per_code = res.stats.get("per_code")  # counted by a pool worker
            if sliced is not None:  # (also when its entry failed and it was coded after all)
                per_code = sliced["per_code"]
                run.counts["codings"] += sum(per_code.values())
            else:
                run.counts["codings"] += res.stats.get("n_codings", len(res.codings))
                if per_code is None:
                    per_code = dict(res.codings[C.CODE_ID].value_counts().items())
            for code, n in per_code.items():
                run.per_code[code] = run.per_code.get(code, 0) + int(n)
            run.chunk_counts.append((int(res.stats["tokens"]),
                                     {str(c): int(n) for c, n in per_code.items()}))
            for stage in run.stage_s:
                run.stage_s[stage] += res.stats[f"{stage}_s"]
            elapsed = max(time.perf_counter() - started, 1e-9)
            bar.update(files_done(tasks[res.index]))
            bar.set_postfix_str(f"{run.counts['segments'] / elapsed:,.0f} seg/s, "
                                f"{run.counts['documents'] / elapsed:,.1f} doc/s")
    run.wall_s = time.perf_counter() - started
    if not tasks:  # still write typed, empty tables with headers
        from pipeline.code import empty_codings
        from pipeline.code.matching import _empty_matches

        writer.add("documents", pd.DataFrame(columns=C.DOCUMENT_COLUMNS))
        writer.add("segments", pd.DataFrame(columns=C.SEGMENT_COLUMNS))
        writer.add("codings", empty_codings())
        writer.add("matches", _empty_matches())
    rows = pd.DataFrame(meta_rows(ctx, set(), PHASE_META_COLUMNS)
                        + meta_rows(ctx, run.present | run.failed, PHASE_ORPHAN_META),
                        columns=[*C.ERROR_COLUMNS, ORDER])
    errors = pd.concat([*run.errors_rows, rows], ignore_index=True)
    errors = errors.iloc[sorted(range(len(errors)), key=lambda k: errors[ORDER].iloc[k])]
    run.errors = errors[C.ERROR_COLUMNS].reset_index(drop=True)
    run.n_failed = int((run.errors[C.ERROR_SEVERITY] == "error").sum())
    return run


def _stored_segments(cache_dir: str | None, key: str | None, task: ChunkTask) -> pd.DataFrame:
    """The segments of a chunk's cache entry (its ids: ``chunk.REUSE_COLUMNS``)."""
    from pipeline.chunk import REUSE_COLUMNS
    from pipeline.chunk_cache import ChunkCache
    from pipeline.chunk_code import vocab_of
    from pipeline.errors import InputError

    entry = ChunkCache(cache_dir).load(key, vocab_of, REUSE_COLUMNS, tokens=False)
    if entry is None or entry.segments is None:
        raise InputError(task.files[0][1], "a cache entry of this file went away while the "
                         "run was going on; run again")
    return entry.segments


def meta_rows(ctx: RunContext, known: set[str], phase: int) -> list[dict]:
    """Metadata warnings of the whole corpus (column renames, or rows without a document)."""
    from pipeline.ingest import join_metadata

    rows: list[dict] = []
    if ctx.meta is None:
        return rows

    def report(file: str, severity: str, message: str) -> None:
        rows.append({C.ERROR_FILE: file, C.ERROR_STAGE: "ingest", C.ERROR_SEVERITY: severity,
                     C.ERROR_MESSAGE: message, ORDER: (phase, len(rows))})

    empty = pd.DataFrame(columns=C.DOCUMENT_COLUMNS)
    renames = []
    join_metadata(empty, ctx.meta, ctx.meta_name, set(ctx.meta[C.DOC_ID]),
                   lambda f, s, m: renames.append((f, s, m)))
    if phase == PHASE_META_COLUMNS:
        for f, sev, m in renames:
            report(f, sev, m)
        return rows
    every = []
    join_metadata(empty, ctx.meta, ctx.meta_name, known, lambda f, s, m: every.append((f, s, m)))
    for f, sev, m in every[len(renames):]:  # the renames come first; reported once already
        report(f, sev, m)
    return rows
