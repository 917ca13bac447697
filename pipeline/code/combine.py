"""Sorting integer keys fast: the packed stable sort the array paths share.

Match rows are ordered by several integer keys (factorised ids, offsets); one or two
stable argsorts on keys packed into int64 beat an ``np.lexsort`` on all of them.
(The codings themselves are aggregated in ``pipeline.code.aggregate``.) The ids of the
match rows ``matching.match_frame`` makes are kept as such integer keys for the
aggregation (``remember_keys``, ``frame_keys``).
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np
import pandas as pd


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


class MatchKeys:
    """Integer keys of the rows of a matches table, as ``pd.factorize(sort=True)`` ranks them.

    ``seg``, ``doc``, ``code`` and ``rule`` hold, per row, a code whose order is the order
    of the row's segment, document, code and rule id strings (equal ids, equal codes; not
    necessarily dense); ``rule_names[rule]`` is the rule id itself. Made on first use
    from the rows' batch positions and rule indexes (``rows``, ``rules``), the ids of the
    batch's segments (``segments``: (segment id, doc id) per position) and the rank of
    each rule's code and rule id (``ranks``: code rank, rule rank, sorted rule ids).
    """

    def __init__(self, rows: np.ndarray, rules: np.ndarray, segments: tuple[list, list],
                 ranks: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
        self._rows, self._rules, self._segments = rows, rules, segments
        self._code_rank, self._rule_rank, self.rule_names = ranks

    def __len__(self) -> int:
        return len(self._rows)

    @property
    def seg(self) -> np.ndarray:
        return _rank(self._segments[0])[self._rows]

    @property
    def doc(self) -> np.ndarray:
        return _rank(self._segments[1])[self._rows]

    @property
    def code(self) -> np.ndarray:
        return self._code_rank[self._rules]

    @property
    def rule(self) -> np.ndarray:
        return self._rule_rank[self._rules]

    @classmethod
    def joined(cls, parts: list[MatchKeys]) -> MatchKeys | None:
        """The keys of the tables of ``parts`` concatenated in order, each made from a
        batch of its own (consecutive batches of one batch, matched with the same rules).
        None: the rules' ranks differ."""
        first = parts[0]
        ranks = (first._code_rank, first._rule_rank, first.rule_names)
        if any(not all(np.array_equal(a, b) for a, b in zip(
                ranks, (k._code_rank, k._rule_rank, k.rule_names))) for k in parts[1:]):
            return None
        offsets = np.cumsum([0] + [len(k._segments[0]) for k in parts[:-1]])
        rows = np.concatenate([k._rows + offset for k, offset in zip(parts, offsets.tolist())])
        segments = ([s for k in parts for s in k._segments[0]],
                    [d for k in parts for d in k._segments[1]])
        return cls(rows, np.concatenate([k._rules for k in parts]), segments, ranks)


def _rank(ids: list) -> np.ndarray:
    """Codes of ``ids`` (strings) ordered as the strings are (``pd.factorize(sort=True)``)."""
    return pd.factorize(np.asarray(ids, dtype=object), sort=True)[0]


# id(frame) -> (weak reference, {column: (array, Arrow data)}, keys): the keys of tables
# ``matching.match_frame`` made, for ``aggregate_matches`` (which would factorise the
# ~30 rows per segment's strings again). Valid while the frame has those very arrays.
_KEYS: dict[int, tuple[weakref.ref, dict[str, tuple[object, object]], MatchKeys]] = {}
_KEYED = ("segment_id", "doc_id", "code_id", "rule_id")


def remember_keys(frame: pd.DataFrame, keys: MatchKeys) -> None:
    """Keep ``keys`` (aligned with ``frame``'s rows) for ``frame_keys`` while ``frame`` lives."""
    key = id(frame)

    def forget(ref: weakref.ref, key: int = key) -> None:
        if _KEYS.get(key, (None,))[0] is ref:
            del _KEYS[key]

    arrays = {col: (frame[col].array, frame[col].array.__arrow_array__()) for col in _KEYED}
    _KEYS[key] = (weakref.ref(frame, forget), arrays, keys)


def concat_keyed(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """``pd.concat(frames, ignore_index=True)`` of match tables, each column one Arrow
    chunk, keeping the frames' integer keys (``MatchKeys.joined``) when all have them."""
    import pyarrow as pa

    if len(frames) == 1:
        return frames[0]
    keys = [frame_keys(frame) for frame in frames]
    data = {}
    for k, name in enumerate(frames[0].columns):
        values = frames[0].iloc[:, k].array
        if isinstance(values, pd.arrays.ArrowStringArray):
            chunks = [c for f in frames for c in f.iloc[:, k].array.__arrow_array__().chunks]
            data[name] = pd.arrays.ArrowStringArray(pa.concat_arrays(chunks), dtype=values.dtype)
        else:
            data[name] = pd.concat([f.iloc[:, k] for f in frames], ignore_index=True)
    out = pd.DataFrame(data, copy=False)
    if all(key is not None for key in keys):
        joined = MatchKeys.joined(keys)
        if joined is not None:
            remember_keys(out, joined)
    return out


def frame_keys(frame: pd.DataFrame, forget: bool = False) -> MatchKeys | None:
    """The keys ``remember_keys`` kept for ``frame``; None when none were kept, or the
    frame's id columns are no longer the arrays they were made for (a column set again
    or written to: keys of other rows). ``forget``: drop them (they are used once; a
    chunk's match rows may wait a while to be written)."""
    got = _KEYS.pop(id(frame), None) if forget else _KEYS.get(id(frame))
    if got is None or got[0]() is not frame or len(got[2]) != len(frame):
        return None
    for col, (array, data) in got[1].items():
        if col not in frame.columns:
            return None
        now = frame[col].array
        if now is not array or now.__arrow_array__() is not data:
            return None
    return got[2]
