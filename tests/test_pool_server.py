"""The CLI's early start of the fork server and the batch garbage-collector settings."""
from __future__ import annotations

import gc

import pytest

from pipeline.pool_server import BATCH_GC_THRESHOLD, batch_gc, wants_pool


@pytest.mark.parametrize("argv, expected", [
    (["code", "in", "--jobs", "2"], True),
    (["code", "in", "--jobs=3"], True),
    (["run", "-j", "2"], True),
    (["code", "-j2", "in"], True),
    (["code", "in", "--jobs", "1"], False),
    (["code", "in"], False),
    (["code", "in", "--jobs", "2", "--engine", "dask"], False),
    (["code", "in", "--engine=dask", "-j4"], False),
    (["matrix", "--jobs", "2"], False),
    (["code", "--", "--jobs", "2"], False),
    (["code", "in", "--jobs", "x"], False),
    ([], False),
])
def test_wants_pool(argv: list[str], expected: bool) -> None:
    assert wants_pool(argv) is expected


def test_batch_gc_is_undone() -> None:
    before = gc.get_threshold()
    restore = batch_gc()
    try:
        assert gc.get_threshold() == BATCH_GC_THRESHOLD
        assert gc.get_freeze_count() > 0
    finally:
        gc.set_threshold(*restore)
        gc.unfreeze()
    assert gc.get_threshold() == before
