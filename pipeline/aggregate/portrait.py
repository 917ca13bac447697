"""Document portrait data: which codes sit where along each transcript (MAXQDA's document portrait)."""
from __future__ import annotations

from typing import Any

import numpy as np
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
    seg = seg.loc[seg[C.DOC_ID].notna(), [C.SEGMENT_ID, C.DOC_ID]]
    # documents by name, each in its own segment order: rows of a list, not a loop over them
    seg = seg.sort_values(C.DOC_ID, kind="mergesort").reset_index(drop=True)
    per_doc = seg.groupby(C.DOC_ID, sort=False)
    seg["position"] = per_doc.cumcount()
    seg["n_positions"] = per_doc[C.SEGMENT_ID].transform("size")
    seg["_row"] = np.arange(len(seg))
    cod = apply_level(codings[[C.SEGMENT_ID, C.CODE_ID]], level).drop_duplicates()
    order = {c: i for i, c in enumerate(code_order(cod[C.CODE_ID].unique(), codebook, level))}
    cod = cod.assign(_rank=cod[C.CODE_ID].map(order).fillna(len(order)))
    cod = cod.sort_values("_rank", kind="mergesort")
    per_seg = cod.groupby(C.SEGMENT_ID, sort=False)
    cod["slot"] = per_seg.cumcount()
    cod["n_slots"] = per_seg[C.CODE_ID].transform("size")
    out = seg.merge(cod.drop(columns="_rank"), on=C.SEGMENT_ID, how="left")
    if out.empty:
        return pd.DataFrame([], columns=PORTRAIT_COLUMNS)
    out = out.sort_values(["_row", "slot"], kind="mergesort", na_position="first")
    uncoded = out["slot"].isna()
    out[C.CODE_ID] = out[C.CODE_ID].where(~uncoded, "")
    out["slot"] = out["slot"].fillna(0)
    out["n_slots"] = out["n_slots"].fillna(1)
    out[C.DOC_ID] = out[C.DOC_ID].astype(str)
    out = out.astype({"position": "int64", "n_positions": "int64", "slot": "int64",
                      "n_slots": "int64"})
    return out[PORTRAIT_COLUMNS].reset_index(drop=True)
