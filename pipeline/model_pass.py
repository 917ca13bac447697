"""``--method ml|hybrid``: the model re-codes each spilled chunk, on the run's engine.

The rule pass spills every chunk's segments and rule codings; the model then codes the
coded segments of one chunk at a time. A segment's score does not depend on the other
segments, so the chunks can go to several processes (``--jobs N``) or to a Dask cluster
(``--engine dask``) and give the same codings, taken back in chunk order. The model was
a single-process pass: 51 s of a 56 s hybrid run at 100k segments, whatever ``--jobs``.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline import columns as C

Chunk = tuple[Path, Path]   # a chunk's segments part and rule codings part


def model_chunk(segments: pd.DataFrame, rule_codings: pd.DataFrame, model: Any,
                method: str) -> pd.DataFrame:
    """The model's (ml) or the combination's (hybrid) codings of one chunk."""
    from pipeline import ml
    from pipeline.code import empty_codings

    coded = segments[segments[C.CODED].astype(str).str.lower().isin(["true", "1"])] \
        if len(segments) else segments
    if not len(coded):
        return empty_codings()
    return ml.apply_model(model, coded.reset_index(drop=True), None, rule_codings, method)


def _read(chunk: Chunk) -> tuple[pd.DataFrame, pd.DataFrame]:
    from pipeline.parts import PartWriter

    return PartWriter.read(chunk[0]), PartWriter.read(chunk[1])


def model_codings(chunks: Sequence[Chunk], model: Any, method: str, *, jobs: int = 1,
                  engine: str = "local", scheduler: str | None = None) -> Iterator[pd.DataFrame]:
    """Yield each chunk's codings, in chunk order.

    Args:
        chunks: the spilled parts of every chunk, in order.
        model: the loaded model (``ml.load_model``).
        method: ``ml`` or ``hybrid``.
        jobs: local worker processes (also the size of a local Dask cluster).
        engine: ``local`` or ``dask``.
        scheduler: Dask scheduler address; None starts a local cluster.
    """
    if engine == "dask":
        yield from _dask(chunks, model, method, jobs, scheduler)
    elif jobs == 1 or len(chunks) <= 1:
        for chunk in chunks:
            yield model_chunk(*_read(chunk), model, method)
    else:
        yield from _pool(chunks, model, method, jobs)


_MODEL: tuple[Any, str] | None = None   # a pool worker's model and method


def _init_worker(model: Any, method: str) -> None:
    import gc

    from pipeline.pool_server import BATCH_GC_THRESHOLD

    global _MODEL
    _MODEL = (model, method)
    gc.freeze()
    gc.set_threshold(*BATCH_GC_THRESHOLD)


def _pool_task(chunk: Chunk) -> pd.DataFrame:
    assert _MODEL is not None
    return model_chunk(*_read(chunk), *_MODEL)


def _pool(chunks: Sequence[Chunk], model: Any, method: str, jobs: int) -> Iterator[pd.DataFrame]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from pipeline.engine import in_order
    from pipeline.pool_server import PRELOAD

    mp = multiprocessing.get_context("forkserver")   # as the rule pass's pool
    mp.set_forkserver_preload(list(PRELOAD))
    # the parts are files in this machine's output folder: a worker reads its own
    with ProcessPoolExecutor(max_workers=jobs, mp_context=mp, initializer=_init_worker,
                             initargs=(model, method)) as pool:
        yield from in_order(chunks, lambda chunk: pool.submit(_pool_task, chunk), jobs,
                            lambda future: future.result())


def _dask(chunks: Sequence[Chunk], model: Any, method: str, jobs: int,
          scheduler: str | None) -> Iterator[pd.DataFrame]:
    from pipeline.engine import dask_client, in_order, outcome

    with dask_client(jobs, scheduler) as (client, workers):
        remote = client.scatter(model, broadcast=True)

        def submit(chunk: Chunk):  # noqa: ANN202 - a dask Future
            # the tables travel: a worker need not see this machine's parts folder
            return client.submit(model_chunk, *_read(chunk), remote, method, pure=False)

        def result(future) -> pd.DataFrame:  # noqa: ANN001
            out = outcome(future, scheduler)
            future.release()
            return out

        yield from in_order(chunks, submit, workers, result)
