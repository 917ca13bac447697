"""Choosing the hybrid combination on a calibration gold the rules were not written from.

Why a separate set: ``train_model`` chooses each code's combiner on inner folds of
the training gold. When the codebook's rules were developed on that same gold (the
usual case: a researcher tunes rules on the segments she has hand-coded), the rule
scores there are in-sample, the rules look better than they are, and the inner folds
always pick "rules". A calibration gold coded by the same standard but not used to
write the rules gives both the model (which never saw it) and the rules honest
out-of-sample scores to choose from.
"""
from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import numpy as np
import pandas as pd

from pipeline.errors import UsageError
from pipeline.ml.model import (
    MIN_GAIN, CoderModel, best_threshold, choose_combiner, data_hash, describe_combiner,
    group_folds,
)


def calibrate_hybrid(model: CoderModel, features: pd.DataFrame, Y: pd.DataFrame,
                     groups: pd.Series | np.ndarray, rule_scores: pd.DataFrame, *,
                     folds: int = 5, seed: int = 0, min_gain: float = MIN_GAIN,
                     thresholds: bool = False, source: str = "") -> CoderModel:
    """Re-choose every code's hybrid combiner on a calibration gold.

    The estimator is not refitted: its probabilities on the calibration segments are
    out-of-sample because it never saw them. Each combiner is scored by cross-fitting
    over the calibration documents (parameters fitted on the other documents) and the
    winner is refitted on the whole calibration set, as in :func:`choose_combiner`.

    Args:
        model: a trained model (``train_model``), with or without a hybrid part.
        features: ``analyze()`` output of the calibration segments; index = segment ids.
        Y: their gold labels (bool), one column per code of ``model.labels``.
        groups: document of each calibration row.
        rule_scores: rule score per calibration row x code (0: no rule fired).
        folds: cross-fitting folds over the calibration documents.
        seed: random seed.
        min_gain: F1 a combiner must add over a simpler one.
        thresholds: also re-choose the model's per-code decision thresholds on the
            calibration probabilities (for ``--method ml``).
        source: name of the calibration gold, recorded in ``meta``.

    Returns:
        A new model; ``meta["hybrid_calibration"]`` records the calibration data.

    Raises:
        UsageError: calibration labels missing codes of the model, misaligned inputs,
            fewer than two calibration documents.
    """
    missing = [c for c in model.labels if c not in Y.columns]
    if missing:
        raise UsageError(f"calibration gold {source or ''} has no column for code(s) "
                         f"{', '.join(missing)} of the model".replace("  ", " "))
    if len(features) != len(Y) or not features.index.equals(Y.index):
        raise UsageError("calibration features and labels are not aligned")
    groups = np.asarray(groups)
    Yb = Y[model.labels].astype(bool)
    splits = group_folds(groups, folds)
    proba = model.predict_proba(features)
    rs = rule_scores.reindex(index=Y.index, columns=model.labels, fill_value=0.0)
    hybrid: dict[str, dict[str, Any]] = {}
    new_thresholds = dict(model.thresholds)
    for code in model.labels:
        p = proba[code].to_numpy(float) if code in model.learnable else None
        y = Yb[code].to_numpy()
        hybrid[code] = choose_combiner(p, rs[code].to_numpy(float), y, groups, splits,
                                       folds=folds, seed=seed, min_gain=min_gain)
        if thresholds and p is not None and y.any():
            new_thresholds[code] = best_threshold(y, p)
    meta = dict(model.meta)
    cal_hash = data_hash(features, Y[model.labels])
    meta["hybrid_calibration"] = {
        "gold": source, "n_segments": int(len(Y)), "n_documents": int(len(np.unique(groups))),
        "data_hash": cal_hash, "thresholds_recalibrated": bool(thresholds),
        "positives": {c: int(Yb[c].sum()) for c in model.labels},
    }
    meta["hybrid_combiners"] = {c: describe_combiner(hybrid[c]) for c in model.labels}
    meta["hybrid_min_gain"] = min_gain
    meta["version"] = hashlib.sha256(
        f"{model.version}|calibrated|{cal_hash}|{thresholds}|{min_gain}".encode()).hexdigest()[:12]
    return dataclasses.replace(model, hybrid=hybrid, thresholds=new_thresholds, meta=meta)
