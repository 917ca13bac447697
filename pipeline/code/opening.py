"""``settings.opening_weight``: matches in a document's first coded unit weigh less.

An interview usually opens with introductions; a study can give the matches of each
document's first coded unit a factor (0 drops them). Survey tables (one answer per
row) have no opening unit.
"""
from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from pipeline import columns as C

if TYPE_CHECKING:
    from pipeline.code.compiled import CompiledRules


def opening_units(segments: Sequence[tuple[str, str, int, str | None]],
                  opening: frozenset[str] | None = None) -> np.ndarray:
    """Per segment row: is it the first coded unit of its document?

    With ``opening`` (segment ids), the rows whose id is in it. Without: rows come in
    document order, a document's coded segments together (one document is never split
    over batches or chunks, and a chunk codes one language per document), so a row opens
    its document when the row before it belongs to another one.
    """
    from pipeline.code.sparse import segment_column

    if opening is not None:
        return np.asarray([sid in opening for sid in segment_column(segments, 0)], dtype=bool)
    doc_ids = segment_column(segments, 1)
    return np.asarray([k == 0 or doc_ids[k] != doc_ids[k - 1] for k in range(len(doc_ids))],
                      dtype=bool)


def _opening_scores(compiled: CompiledRules, segments: Sequence[tuple[str, str, int, str | None]],
                    docs: np.ndarray, cr: np.ndarray, weights: np.ndarray,
                    opening_ids: frozenset[str] | None = None,
                    ) -> tuple[np.ndarray, np.ndarray | None]:
    """Scores of the matches, and which to keep (None: all).

    ``settings.opening_weight`` multiplies the weight of every match in a document's
    first coded unit; a factor of 0 drops those matches. Without it (all factors 1)
    the scores are the rule weights and nothing else is computed.
    """
    scores = weights[cr]
    factors = compiled.opening_factors()
    if factors is None:
        return scores, None
    opening = opening_units(segments, opening_ids)[docs]
    scores = np.where(opening, scores * factors[cr], scores)
    return scores, scores > 0


def first_coded_units(segments: pd.DataFrame,
                      tables: Collection[str] = ()) -> frozenset[str]:
    """Ids of the first coded segment of every document of a segments table (row order).

    Documents in ``tables`` (survey tables: one answer per row, each its own respondent)
    have no opening unit: their first row is an answer like any other.
    """
    coded = (segments[C.CODED].astype(bool) if C.CODED in segments.columns
             else pd.Series(True, index=segments.index))
    rows = segments.loc[coded, [C.SEGMENT_ID, C.DOC_ID]].drop_duplicates(C.DOC_ID)
    if tables:
        rows = rows[~rows[C.DOC_ID].isin(list(tables))]
    return frozenset(rows[C.SEGMENT_ID].tolist())
