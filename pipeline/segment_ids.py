"""Segment ids unique across the chunks of a streaming run.

``segment()`` makes ids unique inside the documents it is given; a streaming run
segments chunks separately, so the runner passes each chunk's segments through
``unique_across`` with the ids of the earlier chunks (``SegmentIds``). It runs in
the runner once per chunk (~240 times at 1M segments, beside the pool workers): for
string ids and integer unit indexes it works on Arrow columns (``_Columns``: which ids
are ``"{doc_id}:{unit_index}"``, by one join and compare), other column types take
the pandas path; both remember and find the same ids (a test holds them equal).
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline import columns as C

# (documents of a table's own ids "{doc_id}:{unit_index}", its other ids)
IdSummary = tuple[list[str], list[str]]


class SegmentIds:
    """Segment ids used so far in a run, in memory proportional to documents + CSV rows.

    Ids of the form ``"{doc_id}:{unit_index}"`` are remembered by their document
    only (doc ids are unique in a run; any "{doc_id}:<n>" then counts as used); every
    other id (CSV id values) is kept.
    """

    def __init__(self) -> None:
        self.docs: set[str] = set()
        self.other: set[str] = set()
        # the part before the last ":" of every other id: an own id "{doc}:{n}" can be
        # an other id only if its document is here (``may_hold``)
        self._other_docs: set[str] = set()

    def _others(self, ids: list[str]) -> None:
        """Remember other (not own) ids."""
        self.other.update(ids)
        self._other_docs.update(i.rpartition(":")[0] for i in ids)

    def may_hold(self, summary: IdSummary) -> bool:
        """Whether an id of the table ``summary`` describes may be used already.

        False means none is (``unique_across`` would rename nothing); True: maybe,
        its ids must be looked at. Own ids are met by their document (unique in a
        run: a later chunk's documents are new), other ids one by one.
        """
        docs, others = summary
        if (self.docs or self._other_docs) and any(
                d in self.docs or d in self._other_docs for d in docs):
            return True
        if not others:
            return False
        # ``seg_id in self`` for every other id (strings): a set test first
        if not self.other.isdisjoint(others):
            return True
        if self.docs:
            for seg_id in others:
                doc_id, _, n = seg_id.rpartition(":")
                if n.isdigit() and doc_id in self.docs:
                    return True
        return False

    @contextlib.contextmanager
    def continued(self, docs: Iterable[str]) -> Iterator[None]:
        """Within: the own ids of ``docs`` count as new again.

        For a later part of a file coded in parts (``chunk_parts``): its document's own
        ids were remembered with the first part, but the unit indexes of a later part
        are not an earlier part's. Their other ids are still looked up one by one.
        """
        back = self.docs.intersection(docs)
        self.docs -= back
        try:
            yield
        finally:
            self.docs |= back

    def add_summary(self, summary: IdSummary) -> None:
        """``add`` of the table ``summary`` describes (its ids are all new: ``may_hold``)."""
        docs, others = summary
        self.docs.update(docs)
        if others:
            self._others(others)

    def __contains__(self, seg_id: object) -> bool:
        seg_id = str(seg_id)
        if seg_id in self.other:
            return True
        doc_id, _, n = seg_id.rpartition(":")
        return n.isdigit() and doc_id in self.docs

    def contains(self, ids: pd.Series) -> np.ndarray:
        """``seg_id in self`` for every id of ``ids`` (strings), without a loop over them.

        Only ids that are remembered CSV ids or whose part before the last ":" is a
        remembered document are tested one by one (as ``__contains__``); the sets are
        met with the batch's few distinct values, not looked up id by id.
        """
        found = np.zeros(len(ids), dtype=bool)
        if not len(ids) or not (self.docs or self.other):
            return found
        values = pa.array(ids.to_numpy(dtype=object), type=pa.large_string(), from_pandas=True)
        maybe = np.zeros(len(ids), dtype=bool)
        if self.other:
            hits = set(pc.unique(values).to_pylist()) & self.other
            if hits:
                maybe |= pc.is_in(values, value_set=pa.array(sorted(hits))).to_numpy(
                    zero_copy_only=False)
        if self.docs:
            parts = pc.split_pattern(values, ":", max_splits=1, reverse=True)
            prefix = pc.if_else(pc.greater(pc.list_value_length(parts), 1),
                                pc.list_element(parts, 0), "")  # as str.rpartition(":")[0]
            hits = set(pc.unique(prefix).to_pylist()) & self.docs
            if hits:
                maybe |= pc.is_in(prefix, value_set=pa.array(sorted(hits))).to_numpy(
                    zero_copy_only=False)
        positions = np.flatnonzero(maybe)
        found[positions] = [seg_id in self for seg_id in ids.iloc[positions].tolist()]
        return found

    def add(self, segments: pd.DataFrame) -> None:
        """Remember the ids of a segments table."""
        columns = _Columns.of(segments)
        if columns is not None:
            self._add(columns)
            return
        ids = segments[C.SEGMENT_ID].astype(str)
        docs = segments[C.DOC_ID].astype(str)
        # an id "{doc_id}:{unit_index}" is remembered by its document
        own = (ids == docs + ":" + segments[C.UNIT_INDEX].astype(str)).to_numpy(dtype=bool)
        self.docs.update(docs[own].unique().tolist())
        self._others(ids[~own].tolist())

    def _add(self, columns: _Columns) -> None:
        """``add`` of a table whose id columns are Arrow strings (``_Columns``)."""
        self.add_summary(columns.summary())

    def _contains(self, columns: _Columns) -> np.ndarray:
        """``contains`` of a table's ids, from its ``_Columns``.

        An own id ``"{doc_id}:{unit_index}"`` splits (``rpartition(":")``) into its
        document and ``str(unit_index)``, digits exactly when the index is not
        negative: it is taken when it is a remembered other id or its document is
        remembered. Any other id is tested one by one, as ``__contains__``.
        """
        n = len(columns.own)
        found = np.zeros(n, dtype=bool)
        if not (self.docs or self.other):
            return found
        if self.other:
            hits = set(columns.ids.to_pylist()) & self.other
            if hits:
                found |= _is_in(columns.ids, hits)
        if self.docs:
            hits = set(pc.unique(columns.docs.filter(columns.own)).to_pylist()) & self.docs
            if hits:
                found |= _is_in(columns.docs, hits) & columns.own & columns.counted
            rest = np.flatnonzero(~columns.own & ~found)
            if len(rest):
                values = columns.ids.take(pa.array(rest)).to_pylist()
                found[rest] = [seg_id in self for seg_id in values]
        return found


def _is_in(values: pa.Array, hits: set[str]) -> np.ndarray:
    return pc.is_in(values, value_set=pa.array(sorted(hits), type=values.type)).to_numpy(
        zero_copy_only=False)


class _Columns:
    """A segments table's ids and documents as Arrow strings, and which ids are own ids.

    ``own[k]``: row ``k``'s id is ``"{doc_id}:{unit_index}"``, decided as ``add``
    decides it (``astype(str)`` of string columns without nulls is the column itself,
    ``str`` of an integer is Arrow's cast of it); ``counted[k]``: its unit index is not
    negative. ``of`` gives None for other column types: the callers' pandas paths.
    """

    def __init__(self, ids: pa.Array, docs: pa.Array, own: np.ndarray,
                 counted: np.ndarray) -> None:
        self.ids, self.docs, self.own, self.counted = ids, docs, own, counted

    def summary(self) -> IdSummary:
        """(documents of the own ids, the other ids): what ``SegmentIds.add`` keeps."""
        docs = pc.unique(self.docs.filter(self.own)).to_pylist()
        return docs, ([] if self.own.all() else self.ids.filter(~self.own).to_pylist())

    @classmethod
    def of(cls, segments: pd.DataFrame) -> _Columns | None:
        """The columns of ``segments``, or None (not string ids and integer indexes)."""
        index = segments[C.UNIT_INDEX]
        if not isinstance(index.dtype, np.dtype) or index.dtype.kind not in "iu":
            return None
        arrays = []
        for name in (C.SEGMENT_ID, C.DOC_ID):
            column = segments[name]
            if column.dtype.kind != "O" and not pd.api.types.is_string_dtype(column.dtype):
                return None
            try:
                values = pa.array(column, from_pandas=True)
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                return None
            if not pa.types.is_string(values.type) and not pa.types.is_large_string(values.type):
                return None
            if values.null_count:
                return None
            arrays.append(values.cast(pa.large_string()))
        ids, docs = arrays
        numbers = index.to_numpy()
        made = pc.binary_join_element_wise(docs, pa.array(numbers).cast(pa.large_string()),
                                          pa.scalar(":", pa.large_string()))
        own = pc.equal(ids, made).to_numpy(zero_copy_only=False)
        return cls(ids, docs, own, numbers >= 0)


def summary(segments: pd.DataFrame) -> IdSummary | None:
    """What ``SegmentIds`` needs of a segments table, without the table (None: ids or
    indexes of other types, the table itself is needed).

    A pool worker sends this instead of the chunk's ids (``engine.slim_result``): the
    runner checks it with ``SegmentIds.may_hold`` and remembers it with ``add_summary``,
    and reads the ids back from the chunk's part only when one may be taken.
    """
    if segments.empty:
        return [], []
    columns = _Columns.of(segments)
    return None if columns is None else columns.summary()


CLASHED = "_clashed"  # key of a warning row of ``unique_across``: (doc id, first ids renamed)


def clash_message(doc_id: str, values: list[str]) -> str:
    """The warning of ``unique_across`` for the renamed ids ``values`` of ``doc_id``."""
    shown = ", ".join(repr(v) for v in values[:5]) + (", ..." if len(values) > 5 else "")
    return (f"ids {shown} of {C.DOC_ID} {doc_id!r} are also segment ids of a document read "
            f"earlier in the run; prefixed with {doc_id + ':'!r}")


def unique_across(segments: pd.DataFrame, taken: SegmentIds, errors: list[dict] | None = None,
                  paths: dict[str, str] | None = None) -> tuple[pd.DataFrame, dict[str, str]]:
    """Make a later batch's segment ids unique against ids already used in the run.

    A streaming run segments chunks of documents separately; ``segment()`` makes ids
    unique inside a chunk, this makes them unique across chunks: an id already in
    ``taken`` is prefixed ``"<doc_id>:"`` (a warning row per document in ``errors``,
    its file from ``paths``, doc id -> path). ``taken`` then gets the batch's ids.
    The earlier chunk's rows keep their id (they are written already), so unlike
    inside one table only the later document's ids change. A warning row also has
    ``CLASHED``: (doc id, its first six renamed ids), so that the warnings of a
    document coded in parts can be merged into one (``run_stream``).

    Returns:
        ``(segments, renames)``; ``renames`` maps old -> new id, to apply to the
        batch's matches and codings (ids are unique inside a batch).
    """
    renames: dict[str, str] = {}
    if segments.empty:
        return segments, renames
    columns = _Columns.of(segments)
    if columns is None:
        hits = np.flatnonzero(taken.contains(segments[C.SEGMENT_ID].astype(str)))
    else:
        hits = np.flatnonzero(taken._contains(columns))
    if not len(hits):  # the usual case: no id of the batch was used before
        if columns is None:
            taken.add(segments)
        else:
            taken._add(columns)
        return segments, renames
    ids = segments[C.SEGMENT_ID].astype(str).tolist()
    docs = segments[C.DOC_ID].astype(str).tolist()
    batch = set(ids)
    per_doc: dict[str, list[str]] = {}
    for seg_id, doc_id in ((ids[k], docs[k]) for k in hits.tolist()):
        if seg_id in taken:
            new, n = f"{doc_id}:{seg_id}", 1
            while new in taken or new in batch:
                new, n = f"{doc_id}:{seg_id}#{n}", n + 1
            batch.add(new)
            renames[seg_id] = new
            per_doc.setdefault(doc_id, []).append(seg_id)
    if renames:
        segments = segments.copy()
        segments[C.SEGMENT_ID] = [renames.get(i, i) for i in ids]
        for doc_id, values in per_doc.items():
            if errors is not None:
                errors.append({C.ERROR_FILE: (paths or {}).get(doc_id, doc_id),
                               C.ERROR_STAGE: "segment", C.ERROR_SEVERITY: "warning",
                               C.ERROR_MESSAGE: clash_message(doc_id, values),
                               CLASHED: (doc_id, values[:6])})
    taken.add(segments)
    return segments, renames
