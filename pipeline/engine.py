"""Where chunks run: in this process, in a local process pool, or on a Dask cluster.

Every engine runs the same ``chunk.process_chunk`` on the same chunks and yields the
results in chunk order, so the output files are identical whatever the engine or the
number of jobs. At most ``2 x workers`` chunks are in flight, which bounds memory: a
finished chunk waits for its predecessors, never for the whole corpus.

Dask: ``--engine dask`` without ``--scheduler`` starts a ``LocalCluster`` of ``--jobs``
single-threaded worker processes; ``--scheduler tcp://host:8786`` connects to a running
cluster. Workers need this package installed and the input files at the same paths (a
shared file system; a relative path is relative to the runner's directory, where each
chunk runs); they encode their chunks' part files and send the bytes back, and the
output is written by the client only. ``--method ml|hybrid`` runs its model pass on
the same engine (``pipeline.model_pass``).
"""
from __future__ import annotations

import collections
import contextlib
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from pipeline.chunk import ChunkResult, ChunkTask, RunContext, process_chunk
from pipeline.errors import UsageError
from pipeline.pool_server import BATCH_GC_THRESHOLD, PRELOAD, start_pool_server

__all__ = ["ENGINES", "PRELOAD", "run_chunks", "start_pool_server"]

ENGINES = ("local", "dask")
SPAWN_ENVIRON = "distributed.nanny.pre-spawn-environ"   # dask config: a worker's environment

# A worker's spill step: writes a result's tables where it ran, returns what it wrote.
Spill = Callable[[ChunkResult], Any]
# The runner's last step on a task before it is handed to a worker (e.g. what only
# some chunks need, found while the first chunks run).
Prepare = Callable[[ChunkTask], None]


def run_chunks(tasks: Sequence[ChunkTask], ctx: RunContext, *, jobs: int = 1,
               engine: str = "local", scheduler: str | None = None,
               spill: Spill | None = None,
               prepare: Prepare | None = None) -> Iterator[ChunkResult]:
    """Process chunks and yield their results in order.

    Args:
        tasks: Chunks in output order.
        ctx: Run-wide settings shipped to the workers.
        jobs: Worker processes (local engine; also the LocalCluster size for dask).
        engine: ``local`` or ``dask``.
        scheduler: Dask scheduler address; None starts a LocalCluster.
        spill: Run on every result where the chunk ran (a pool worker writes its own
            part files); its return value is ``stats["parts"]``. Dask workers may not
            share the output's file system: a ``parts.ChunkSpill`` runs there on a
            folder of their own, and its files come back as bytes, written here.
        prepare: Called on every task just before it is run or submitted, in chunk
            order, in this process (so it may do work the first chunks need not wait for).

    Raises:
        UsageError: Unknown engine, bad ``jobs``, or dask cannot connect.
    """
    if engine not in ENGINES:
        raise UsageError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    if jobs < 1:
        raise UsageError(f"--jobs must be at least 1, not {jobs}")
    if prepare is not None:
        tasks = _Prepared(tasks, prepare)
    if engine == "dask":
        yield from _run_dask(tasks, ctx, jobs, scheduler, spill)
    elif jobs == 1 or len(tasks) <= 1:
        for task in tasks:
            yield _spilled(process_chunk(task, ctx), spill)
    else:
        yield from _run_pool(tasks, ctx, jobs, spill)


class _Prepared(Sequence):
    """``tasks`` whose iteration calls ``prepare`` on each task before yielding it
    (every engine iterates its tasks once, in order, as it hands them out)."""

    def __init__(self, tasks: Sequence[ChunkTask], prepare: Prepare) -> None:
        self._tasks, self._prepare = tasks, prepare

    def __len__(self) -> int:
        return len(self._tasks)

    def __getitem__(self, k):  # noqa: ANN001, ANN204 - Sequence protocol
        return self._tasks[k]

    def __iter__(self) -> Iterator[ChunkTask]:
        for task in self._tasks:
            self._prepare(task)
            yield task


def _spilled(result: ChunkResult, spill: Spill | None) -> ChunkResult:
    if spill is not None:
        result.stats["parts"] = spill(result)
    return result


def _init_worker(ctx: RunContext, spill: Spill | None = None) -> None:
    import gc

    global _CTX, _SPILL
    _CTX, _SPILL = ctx, spill
    # A worker is a batch job: what it forked with (modules, the warm pipelines) is
    # never walked by the collector, and collections are rarer (pool_server).
    gc.freeze()
    gc.set_threshold(*BATCH_GC_THRESHOLD)


_CTX: RunContext | None = None
_SPILL: Spill | None = None


def _pool_task(task: ChunkTask) -> ChunkResult:
    assert _CTX is not None
    result = _spilled(process_chunk(task, _CTX), _SPILL)
    return slim_result(result) if _SPILL is not None else result


def slim_result(result: ChunkResult) -> ChunkResult:
    """Drop what the runner does not read of a result whose tables are spilled already.

    A pool worker's result is pickled through a pipe to the runner, which records the
    part files and reads only ids, paths, hashes and counts: the texts, match rows and
    codings (about 15 MB per chunk of 4,000 segments) would be copied and unpickled
    for nothing, on the same two cores the workers need. The runner reads a spilled
    table back from its part in the rare case it must rewrite it (segment ids renamed
    across chunks); tables that were not spilled stay whole.
    """
    from pipeline import columns as C
    from pipeline.segment_ids import summary

    parts = result.stats.get("parts") or {}
    keep = {"documents": [C.DOC_ID, C.PATH, C.SHA256],
            "segments": [C.SEGMENT_ID, C.DOC_ID, C.UNIT_INDEX]}
    if "segments" in parts:
        # what the runner's check of the ids across chunks needs (a few document ids
        # and CSV ids), instead of every id (~0.2-0.4 MB a chunk, pickled and read)
        ids = result.stats.get("ids") or summary(result.segments)
        if ids is not None:
            result.stats["ids"] = ids
            result.segments = result.segments.iloc[:0]
    result.stats["n_codings"] = len(result.codings)
    result.stats["per_code"] = {str(k): int(n) for k, n in
                                result.codings[C.CODE_ID].value_counts().items()}
    for name in ("documents", "segments", "matches", "codings"):
        if name in parts:
            table = getattr(result, name)
            setattr(result, name, table[keep[name]] if name in keep else table.iloc[:0])
    if "codings" in parts:
        result.codings_csv = None
    result.stats["slim"] = sorted(n for n in ("documents", "segments", "matches", "codings")
                                  if n in parts)
    return result


def _run_pool(tasks: Sequence[ChunkTask], ctx: RunContext, jobs: int,
              spill: Spill | None = None) -> Iterator[ChunkResult]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # forkserver: workers start clean (no copied threads/locks from the parent) and the
    # context is sent once per worker instead of once per chunk.
    mp = multiprocessing.get_context("forkserver")
    # The fork server imports the heavy modules once; every worker forks from it instead
    # of importing spaCy, pandas and the stages again (about a second per worker).
    mp.set_forkserver_preload(list(PRELOAD))
    with ProcessPoolExecutor(max_workers=jobs, mp_context=mp, initializer=_init_worker,
                             initargs=(ctx, spill)) as pool:
        yield from in_order(tasks, lambda task: pool.submit(_pool_task, task), jobs,
                            lambda future: future.result())


def in_order(items: Iterable, submit: Callable[[Any], Any], workers: int,
             result: Callable[[Any], Any]) -> Iterator:
    """``result(submit(item))`` of every item, in order, with at most ``2 x workers``
    items submitted and not yet taken: a finished item waits for its predecessors,
    never for the whole corpus, which bounds memory."""
    pending: collections.deque = collections.deque()
    todo = iter(items)
    for item in todo:
        pending.append(submit(item))
        if len(pending) >= 2 * workers:
            break
    while pending:
        future = pending.popleft()
        out = result(future)
        nxt = next(todo, None)
        if nxt is not None:
            pending.append(submit(nxt))
        yield out


_DASK_BATCH = False   # this Dask worker process has the batch gc settings


def _dask_task(task: ChunkTask, ctx: RunContext, spill: Any = None) -> ChunkResult:
    """A Dask task: the chunk, run from the runner's working directory.

    With a ``ChunkSpill``, its part files are made in a folder of the worker's own and
    travel back as bytes (``stats["shipped"]``) with the slim result, as a pool worker's
    parts do by name: Parquet bytes and CSV lines instead of pickled tables (three
    times the bytes, unpickled in the runner), and the encoding is done on the
    workers, not by the runner alone.
    """
    import dataclasses
    import tempfile
    from pathlib import Path

    global _DASK_BATCH
    if not _DASK_BATCH:   # once per worker, as a pool worker does (``_init_worker``)
        import gc

        gc.freeze()
        gc.set_threshold(*BATCH_GC_THRESHOLD)
        _DASK_BATCH = True
    with _runner_dir(ctx):
        result = process_chunk(task, ctx)
    if spill is None:
        return result
    with tempfile.TemporaryDirectory(prefix="qcode-parts-") as folder:
        parts = dataclasses.replace(spill, folder=folder)(result)
        shipped = {}
        for name, part in parts.items():
            path = Path(part.path)
            sidecar = path.with_suffix(".csv")
            shipped[name] = (path.name, path.read_bytes(),
                             sidecar.read_bytes() if sidecar.exists() else None)
    result.stats["parts"] = parts
    result = slim_result(result)
    result.stats["shipped"] = shipped
    return result


@contextlib.contextmanager
def _runner_dir(ctx: RunContext) -> Iterator[None]:
    """Work in the runner's directory, where relative input paths point.

    The outputs name the inputs as the user gave them, so the paths cannot be made
    absolute; a worker a cluster started elsewhere runs the chunk from the runner's
    directory instead (if its file system has it). Workers run one task at a time
    (``--nthreads 1``), so no other task sees the change.
    """
    here = os.getcwd()
    if not ctx.cwd or ctx.cwd == here or not os.path.isdir(ctx.cwd):
        yield
        return
    os.chdir(ctx.cwd)
    try:
        yield
    finally:
        os.chdir(here)


def _landed(result: ChunkResult, folder: str) -> ChunkResult:
    """Write the part files a Dask worker shipped into the runner's parts folder."""
    from pathlib import Path

    parts = result.stats["parts"]
    for name, (file_name, data, csv_rows) in result.stats.pop("shipped").items():
        path = Path(folder) / file_name
        path.write_bytes(data)
        if csv_rows is not None:
            path.with_suffix(".csv").write_bytes(csv_rows)
        parts[name].path = str(path)
    return result


def local_cluster(jobs: int):  # noqa: ANN201 - a distributed.LocalCluster
    """A ``LocalCluster`` of ``jobs`` single-threaded worker processes, no dashboard.

    Dask starts its workers with ``MALLOC_TRIM_THRESHOLD_`` set, which also fixes
    glibc's mmap threshold: every array of a chunk was then mapped and unmapped again
    (1.1 million page faults for 100k segments against 0.13 million without; 12.7
    against 10.5 CPU-s). These workers start without it; the rest of dask's worker
    environment is kept.
    """
    import dask
    from distributed import LocalCluster

    environ = {k: v for k, v in dask.config.get(SPAWN_ENVIRON, {}).items()
               if k != "MALLOC_TRIM_THRESHOLD_"}
    with dask.config.set({SPAWN_ENVIRON: environ}):   # read when the nannies are made
        # no dashboard; its plain HTTP server on a free port, not on 8787 (with a warning
        # when another cluster's has it)
        return LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True,
                            dashboard_address=None, scheduler_kwargs={"dashboard_address": ":0"})


def outcome(future: Any, scheduler: str | None) -> ChunkResult:
    """A Dask future's result; what went wrong on the cluster as one ``EngineError``.

    Errors of the pipeline's own (``PipelineError``) pass as they are.
    """
    from pipeline.errors import EngineError, PipelineError

    try:
        return future.result()
    except PipelineError:
        raise
    except Exception as exc:  # dask raises many kinds: lost workers, pickling, comms
        where = f"at {scheduler}" if scheduler else "(local cluster)"
        first = (str(exc).strip().splitlines() or [""])[0]
        raise EngineError(f"the dask cluster {where} could not run a chunk: "
                          f"{type(exc).__name__}: {first} (its workers need this qcode "
                          "and the same package versions, started with --nthreads 1)") from exc


@contextlib.contextmanager
def dask_client(jobs: int, scheduler: str | None) -> Iterator[tuple[Any, int]]:
    """A Dask client and its number of workers: of the cluster at ``scheduler``, else
    of a local cluster of ``jobs`` workers (closed after).

    Raises:
        UsageError: dask is missing or the scheduler cannot be reached.
    """
    import logging

    try:
        from distributed import Client
    except ImportError as exc:  # pragma: no cover - dask[distributed] is a dependency
        raise UsageError("--engine dask needs dask[distributed] installed") from exc
    # distributed logs its start-up and shut-down at INFO through our handler; a run
    # shows its warnings and errors only (and --quiet only errors), as the rest does.
    log = logging.getLogger("distributed")
    saved_level = log.level
    log.setLevel(max(logging.WARNING, logging.getLogger().getEffectiveLevel()))
    cluster = None
    try:
        if scheduler:
            try:
                client = Client(scheduler, timeout="20s")
            except OSError as exc:
                raise UsageError(f"cannot reach the dask scheduler at {scheduler} "
                                 f"({exc})") from exc
        else:
            cluster = local_cluster(jobs)
            client = Client(cluster)
        try:
            yield client, max(1, len(client.scheduler_info().get("workers", {})) or jobs)
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    finally:
        log.setLevel(saved_level)


def _run_dask(tasks: Sequence[ChunkTask], ctx: RunContext, jobs: int,
              scheduler: str | None, spill: Spill | None = None) -> Iterator[ChunkResult]:
    from pipeline.parts import ChunkSpill

    shipped = isinstance(spill, ChunkSpill)   # made on the workers, written here
    with dask_client(jobs, scheduler) as (client, n_workers):
        remote_ctx = client.scatter(ctx, broadcast=True)

        def submit(task: ChunkTask):  # noqa: ANN202 - a dask Future
            return client.submit(_dask_task, task, remote_ctx, spill if shipped else None,
                                 pure=False)

        def result(future) -> ChunkResult:  # noqa: ANN001 - a dask Future
            out = outcome(future, scheduler)
            future.release()
            return _landed(out, spill.folder) if shipped else out

        yield from in_order(tasks, submit, n_workers, result)
