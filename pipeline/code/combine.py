"""Sorting integer keys fast: the packed stable sort the array paths share.

Match rows are ordered by several integer keys (factorised ids, offsets); one or two
stable argsorts on keys packed into int64 beat an ``np.lexsort`` on all of them.
(The codings themselves are aggregated in ``pipeline.code.aggregate``.)
"""
from __future__ import annotations

import numpy as np


def pack_keys(keys: list[np.ndarray]) -> np.ndarray | None:
    """Integer ``keys`` (most significant first) packed into one int64 per row.

    Each key is shifted to start at 0 and scaled by the ranges of the keys after it:
    equal rows give equal values and the values sort as the rows do. None when the
    product of the ranges does not fit in 62 bits.
    """
    acc, width = None, 1
    for key in reversed(keys):
        key = key.astype(np.int64, copy=False)
        low = int(key.min()) if len(key) else 0
        span = (int(key.max()) - low + 1) if len(key) else 1
        if span >= 1 << 62 or width * span >= 1 << 62:
            return None
        shifted = key - low if low else key
        acc = shifted if acc is None else shifted * width + acc
        width *= span
    return acc if acc is not None else np.zeros(0, dtype=np.int64)


def stable_order(keys: list[np.ndarray]) -> np.ndarray:
    """``np.lexsort`` of integer ``keys`` (most significant first), on fewer, packed keys.

    Keys are shifted to start at 0 and packed, least significant first, into int64
    values as long as the product of their ranges fits; the packed keys sort the rows
    exactly as the originals do, and one or two stable argsorts beat a lexsort on six.
    """
    packed: list[np.ndarray] = []
    acc, width = None, 1
    for key in reversed(keys):
        key = key.astype(np.int64, copy=False)
        low = int(key.min()) if len(key) else 0
        span = (int(key.max()) - low + 1) if len(key) else 1
        if span >= 1 << 62:  # shifting could overflow: sort the keys as they are
            return np.lexsort(keys[::-1])
        if acc is not None and width * span >= 1 << 62:
            packed.append(acc)
            acc, width = None, 1
        shifted = key - low if low else key
        acc = shifted if acc is None else shifted * width + acc
        width *= span
    if acc is not None:
        packed.append(acc)
    order = np.argsort(packed[0], kind="stable")
    for key in packed[1:]:  # least significant first: each pass is stable
        order = order[np.argsort(key[order], kind="stable")]
    return order


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """``np.unique(values)`` of integers, by a stable sort and dropping repeats.

    ``np.unique`` hashes and then sorts; a stable sort (timsort, which merges the
    sorted runs keys made in group order come in) is several times faster.
    """
    ordered = np.sort(values, kind="stable")
    if len(ordered) < 2:
        return ordered
    keep = np.empty(len(ordered), dtype=bool)
    keep[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered[keep]
