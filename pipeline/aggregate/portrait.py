"""Document portrait data: which codes sit where along each transcript (MAXQDA's document portrait)."""
from __future__ import annotations

from typing import Any

import pandas as pd

from pipeline import columns as C
from pipeline.aggregate._common import apply_level, code_order, segment_order

PORTRAIT_COLUMNS = [C.DOC_ID, "position", "n_positions", C.SEGMENT_ID, C.CODE_ID, "slot",
                    "n_slots"]


def document_portrait(segments: pd.DataFrame, codings: pd.DataFrame, *,
                      level: str | int = "top", codebook: Any = None) -> pd.DataFrame:
    """Lay codes out along each document.

    Every segment of the (filtered) segments table gets a ``position`` (0-based, in
    document order); a segment with k codes gets k rows with ``slot`` 0..k-1 in code
    order so a plot can stack them; an uncoded segment gets one row with an empty
    ``code_id``.

    Returns:
        Columns ``doc_id``, ``position``, ``n_positions`` (segments in the document),
        ``segment_id``, ``code_id``, ``slot``, ``n_slots``.
    """
    seg = segment_order(segments)
    cod = apply_level(codings, level)
    order = {c: i for i, c in enumerate(code_order(cod[C.CODE_ID].unique(), codebook, level))}
    by_seg = cod.groupby(C.SEGMENT_ID)[C.CODE_ID].agg(
        lambda s: sorted(set(s), key=lambda c: order.get(c, len(order)))).to_dict()
    rows = []
    for doc, ids in seg.groupby(C.DOC_ID, sort=True)[C.SEGMENT_ID]:
        n_pos = len(ids)
        for pos, sid in enumerate(ids):
            codes = by_seg.get(sid) or [""]
            for slot, code in enumerate(codes):
                rows.append((str(doc), pos, n_pos, sid, code, slot, len(codes)))
    return pd.DataFrame(rows, columns=PORTRAIT_COLUMNS)
