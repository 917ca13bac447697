"""``code.scan._distinct_sorted``: packed-key sort equals the three-key lexsort and dedupe."""
from __future__ import annotations

import numpy as np
import pytest

from pipeline.code.scan import _distinct_sorted


def _lexsorted(ch: np.ndarray, s: np.ndarray, e: np.ndarray) -> tuple[np.ndarray, ...]:
    order = np.lexsort((e, s, ch))
    ch, s, e = ch[order], s[order], e[order]
    keep = np.ones(len(ch), dtype=bool)
    keep[1:] = (ch[1:] != ch[:-1]) | (s[1:] != s[:-1]) | (e[1:] != e[:-1])
    return ch[keep], s[keep], e[keep]


@pytest.mark.parametrize("seed", range(20))
def test_distinct_sorted_equals_lexsort(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 5000))
    m = int(rng.integers(0, 3000))
    ch = rng.integers(0, int(rng.integers(1, 400)), m).astype(np.int64)
    s = rng.integers(0, n, m).astype(np.int64)
    e = np.minimum(s + rng.integers(1, 5, m), n)
    ch, s, e = (np.concatenate([x, x[: m // 3]]) for x in (ch, s, e))  # repeated hits
    got, want = _distinct_sorted(ch, s, e, n), _lexsorted(ch, s, e)
    for a, b in zip(got, want):
        assert a.dtype == b.dtype and np.array_equal(a, b)


def test_channels_too_large_to_pack_use_lexsort() -> None:
    ch = np.asarray([2**62, 5, 2**62, 5], dtype=np.int64)
    s = np.asarray([3, 1, 3, 0], dtype=np.int64)
    e = s + 1
    got = _distinct_sorted(ch, s, e, 10)
    assert [x.tolist() for x in got] == [[5, 5, 2**62], [0, 1, 3], [1, 2, 4]]
