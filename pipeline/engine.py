"""Where chunks run: in this process, in a local process pool, or on a Dask cluster.

Every engine runs the same ``chunk.process_chunk`` on the same chunks and yields the
results in chunk order, so the output files are identical whatever the engine or the
number of jobs. At most ``2 x workers`` chunks are in flight, which bounds memory: a
finished chunk waits for its predecessors, never for the whole corpus.

Dask: ``--engine dask`` without ``--scheduler`` starts a ``LocalCluster`` of ``--jobs``
single-threaded worker processes; ``--scheduler tcp://host:8786`` connects to a running
cluster. Workers need this package installed and the input files and codebook at the
same paths (a shared file system); the output is written by the client only.
"""
from __future__ import annotations

import collections
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from pipeline.chunk import ChunkResult, ChunkTask, RunContext, process_chunk
from pipeline.errors import UsageError
from pipeline.pool_server import BATCH_GC_THRESHOLD, PRELOAD, start_pool_server

__all__ = ["ENGINES", "PRELOAD", "run_chunks", "start_pool_server"]

ENGINES = ("local", "dask")

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
        spill: Local engine: run on every result where the chunk ran (a pool worker
            writes its own part files); its return value is ``stats["parts"]``.
            Dask workers may not share the output's file system: not used there.
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
        yield from _run_dask(tasks, ctx, jobs, scheduler)
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
        ids = summary(result.segments)
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
        pending: collections.deque = collections.deque()
        todo = iter(tasks)
        for task in todo:
            pending.append(pool.submit(_pool_task, task))
            if len(pending) >= 2 * jobs:
                break
        while pending:
            result = pending.popleft().result()
            nxt = next(todo, None)
            if nxt is not None:
                pending.append(pool.submit(_pool_task, nxt))
            yield result


def _run_dask(tasks: Sequence[ChunkTask], ctx: RunContext, jobs: int,
              scheduler: str | None) -> Iterator[ChunkResult]:
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:  # pragma: no cover - dask[distributed] is a dependency
        raise UsageError("--engine dask needs dask[distributed] installed") from exc
    cluster = None
    if scheduler:
        try:
            client = Client(scheduler, timeout="20s")
        except OSError as exc:
            raise UsageError(f"cannot reach the dask scheduler at {scheduler} ({exc})") from exc
    else:
        cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
    try:
        n_workers = max(1, len(client.scheduler_info().get("workers", {})) or jobs)
        remote_ctx = client.scatter(ctx, broadcast=True)
        pending: collections.deque = collections.deque()
        todo = iter(tasks)
        for task in todo:
            pending.append(client.submit(process_chunk, task, remote_ctx, pure=False))
            if len(pending) >= 2 * n_workers:
                break
        while pending:
            future = pending.popleft()
            result = future.result()
            future.release()
            nxt = next(todo, None)
            if nxt is not None:
                pending.append(client.submit(process_chunk, nxt, remote_ctx, pure=False))
            yield result
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
