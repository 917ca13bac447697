"""Active learning: which uncoded segments should a researcher hand-code next."""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from pipeline import columns as C
from pipeline.ml.model import CoderModel

# Helper columns of a suggestion sheet; parsers of wide tables skip them.
SUGGEST_COLUMNS = ["uncertainty", "uncertain_code", "model_probability"]


def uncertainty(model: CoderModel, proba: pd.DataFrame) -> pd.DataFrame:
    """Per segment: how close its least certain code is to that code's threshold.

    Margin of a code = |p - t| / (t if p < t else 1 - t), the distance to the decision
    threshold scaled to 0..1; uncertainty = 1 - the smallest margin over codes.
    """
    if not len(model.learnable):
        return pd.DataFrame({"uncertainty": 0.0, "uncertain_code": "", "model_probability": np.nan},
                            index=proba.index)
    p = proba[model.learnable].to_numpy(float)
    t = np.array([model.thresholds[c] for c in model.learnable])
    scale = np.where(p < t, t, 1 - t)
    margin = np.abs(p - t) / np.where(scale > 0, scale, 1)
    j = margin.argmin(axis=1)
    rows = np.arange(len(p))
    return pd.DataFrame({"uncertainty": 1 - margin[rows, j],
                         "uncertain_code": np.asarray(model.learnable, dtype=object)[j],
                         "model_probability": p[rows, j]}, index=proba.index)


def suggest(model: CoderModel, segments: pd.DataFrame, features: pd.DataFrame, *, n: int = 20,
            exclude: Iterable[str] = ()) -> pd.DataFrame:
    """The ``n`` uncoded segments whose labels would teach the model most.

    Uncertainty sampling: segments nearest a decision threshold first (ties: segment
    order). Training segments and ``exclude`` are skipped.

    Returns:
        A sheet ready for hand-coding: ``segment_id``, ``doc_id``, ``text``, one empty
        column per code of the label set, then ``SUGGEST_COLUMNS``.
    """
    skip = set(map(str, model.train_ids)) | set(map(str, exclude))
    ids = segments[C.SEGMENT_ID].astype(str)
    keep = ~ids.isin(skip).to_numpy()
    if C.CODED in segments.columns:
        keep &= segments[C.CODED].astype(str).str.lower().isin(["true", "1"]).to_numpy()
    segs = segments.loc[keep].reset_index(drop=True)
    feats = features.loc[keep].reset_index(drop=True)
    feats.index = pd.Index(segs[C.SEGMENT_ID].astype(str), name=C.SEGMENT_ID)
    unc = uncertainty(model, model.predict_proba(feats)).reset_index(drop=True)
    unc["_pos"] = np.arange(len(unc))
    top = unc.sort_values(["uncertainty", "_pos"], ascending=[False, True], kind="stable").head(n)
    sheet = segs.loc[top["_pos"], [C.SEGMENT_ID, C.DOC_ID, C.TEXT]].reset_index(drop=True)
    for code in model.labels:
        sheet[code] = ""
    for col in SUGGEST_COLUMNS:
        sheet[col] = top[col].to_numpy()
    sheet["uncertainty"] = sheet["uncertainty"].round(4)
    sheet["model_probability"] = sheet["model_probability"].round(4)
    return sheet
