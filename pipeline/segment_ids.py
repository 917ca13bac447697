"""Segment ids unique across the chunks of a streaming run.

``segment()`` makes ids unique inside the documents it is given; a streaming run
segments chunks separately, so the runner passes each chunk's segments through
``unique_across`` with the ids of the earlier chunks (``SegmentIds``).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline import columns as C


class SegmentIds:
    """Segment ids used so far in a run, in memory proportional to documents + CSV rows.

    Ids of the form ``"{doc_id}:{unit_index}"`` are remembered by their document
    only (doc ids are unique in a run; any "{doc_id}:<n>" then counts as used); every
    other id (CSV id values) is kept.
    """

    def __init__(self) -> None:
        self.docs: set[str] = set()
        self.other: set[str] = set()

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
        ids = segments[C.SEGMENT_ID].astype(str)
        docs = segments[C.DOC_ID].astype(str)
        # an id "{doc_id}:{unit_index}" is remembered by its document
        own = (ids == docs + ":" + segments[C.UNIT_INDEX].astype(str)).to_numpy(dtype=bool)
        self.docs.update(docs[own].unique().tolist())
        self.other.update(ids[~own].tolist())


def unique_across(segments: pd.DataFrame, taken: SegmentIds, errors: list[dict] | None = None,
                  paths: dict[str, str] | None = None) -> tuple[pd.DataFrame, dict[str, str]]:
    """Make a later batch's segment ids unique against ids already used in the run.

    A streaming run segments chunks of documents separately; ``segment()`` makes ids
    unique inside a chunk, this makes them unique across chunks: an id already in
    ``taken`` is prefixed ``"<doc_id>:"`` (a warning row per document in ``errors``,
    its file from ``paths``, doc id -> path). ``taken`` then gets the batch's ids.
    The earlier chunk's rows keep their id (they are written already), so unlike
    inside one table only the later document's ids change.

    Returns:
        ``(segments, renames)``; ``renames`` maps old -> new id, to apply to the
        batch's matches and codings (ids are unique inside a batch).
    """
    renames: dict[str, str] = {}
    if segments.empty:
        return segments, renames
    hits = np.flatnonzero(taken.contains(segments[C.SEGMENT_ID].astype(str)))
    if not len(hits):  # the usual case: no id of the batch was used before
        taken.add(segments)
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
            shown = ", ".join(repr(v) for v in values[:5]) + (", ..." if len(values) > 5 else "")
            if errors is not None:
                errors.append({C.ERROR_FILE: (paths or {}).get(doc_id, doc_id),
                               C.ERROR_STAGE: "segment", C.ERROR_SEVERITY: "warning",
                               C.ERROR_MESSAGE: f"ids {shown} of {C.DOC_ID} {doc_id!r} are also "
                                                f"segment ids of a document read earlier in the "
                                                f"run; prefixed with {doc_id + ':'!r}"})
    taken.add(segments)
    return segments, renames
