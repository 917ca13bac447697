"""The supervised coder: multi-label model, per-code thresholds, hybrid stacker.

Estimator: ``Pipeline(features, OneVsRestClassifier(LogisticRegression))``. The
per-code decision thresholds and the hybrid combination are chosen on out-of-fold
predictions of a cross-validation grouped by document, so two turns of one
interview never sit on both sides of a split.
"""
from __future__ import annotations

import hashlib
import logging
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import Pipeline

from pipeline.errors import UsageError
from pipeline.ml.features import FEATURE_COLUMNS, build_features

log = logging.getLogger(__name__)

MIN_POSITIVES = 5
THRESHOLD_GRID = np.round(np.arange(0.05, 0.951, 0.025), 3)


@dataclass
class CoderModel:
    """A trained supervised coder (what ``qcode train`` writes).

    Attributes:
        estimator: fitted scikit-learn Pipeline over ``learnable`` (None when no code
            is learnable).
        labels: the label set, in order.
        learnable: codes the estimator predicts (its output columns, in order).
        not_learnable: code -> reason (too few positives / documents).
        thresholds: code -> decision threshold on the model probability.
        hybrid: code -> {"coef": [w_logit_p, w_rule_score, w_fired], "intercept", "threshold"}
            or {"fallback": "rules"}; None when trained without rule evidence.
        meta: provenance (codebook hash, label set, library versions, training data
            hash, cross-validated scores, ...).
        train_ids: segment ids of the training data (``suggest`` skips them).
    """

    estimator: Pipeline | None
    labels: list[str]
    learnable: list[str]
    not_learnable: dict[str, str]
    thresholds: dict[str, float]
    hybrid: dict[str, dict[str, Any]] | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    train_ids: list[str] = field(default_factory=list)

    @property
    def version(self) -> str:
        """Short id of this model (used in codings' provenance, ``model:<version>``)."""
        return str(self.meta.get("version", "unversioned"))

    def predict_proba(self, features: pd.DataFrame) -> pd.DataFrame:
        """Model probability per segment x learnable code."""
        if self.estimator is None or not len(features):
            return pd.DataFrame(np.zeros((len(features), len(self.learnable))),
                                index=features.index, columns=self.learnable)
        proba = _proba(self.estimator, features[FEATURE_COLUMNS], len(self.learnable))
        return pd.DataFrame(proba, index=features.index, columns=self.learnable)


def build_estimator(*, C: float = 4.0, seed: int = 0) -> Pipeline:
    """Return the unfitted multi-label estimator (stock scikit-learn parts only)."""
    clf = LogisticRegression(C=C, class_weight="balanced", max_iter=2000, random_state=seed)
    return Pipeline([("features", build_features()), ("clf", OneVsRestClassifier(clf))])


def _proba(estimator: Pipeline, X: pd.DataFrame, n_labels: int) -> np.ndarray:
    p = estimator.predict_proba(X)
    p = np.asarray(p.toarray() if hasattr(p, "toarray") else p, dtype=float)
    return p.reshape(len(X), n_labels)


def _fit(estimator: Pipeline, X: pd.DataFrame, Y: np.ndarray) -> Pipeline:
    with warnings.catch_warnings():
        # A label absent from a training fold: OneVsRest predicts a constant, which is
        # the right answer for that fold, so its warning is noise here.
        warnings.filterwarnings("ignore", message=".*not present in all training examples.*")
        warnings.filterwarnings("ignore", category=UserWarning, module="sklearn")
        return estimator.fit(X, Y)


def group_folds(groups: np.ndarray, folds: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Grouped K-fold splits (deterministic), at most one fold per group."""
    n_groups = len(np.unique(groups))
    k = min(folds, n_groups)
    if k < 2:
        raise UsageError("cross-validation needs at least two documents (groups); "
                         f"the training data has {n_groups}")
    return list(GroupKFold(n_splits=k).split(np.zeros(len(groups)), groups=groups))


def best_threshold(y: np.ndarray, p: np.ndarray) -> float:
    """Threshold on ``p`` maximising F1 for ``y``; ties go to the one nearest 0.5."""
    y = y.astype(bool)
    best, best_f1 = 0.5, -1.0
    for t in sorted(THRESHOLD_GRID, key=lambda t: abs(t - 0.5)):
        pred = p >= t
        tp = np.sum(pred & y)
        denom = pred.sum() + y.sum()
        f1 = 2 * tp / denom if denom else 0.0
        if f1 > best_f1 + 1e-12:
            best, best_f1 = float(t), f1
    return best


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


def stack_inputs(p: np.ndarray | None, rule_score: np.ndarray) -> np.ndarray:
    """Inputs of the hybrid stacker: logit of the model probability (0 when the code
    is not learnable), rule score, and whether any rule fired."""
    p_part = _logit(p) if p is not None else np.zeros_like(rule_score)
    return np.column_stack([p_part, rule_score, (rule_score > 0).astype(float)])


def _fit_stacker(Z: np.ndarray, y: np.ndarray, seed: int) -> LogisticRegression | None:
    if len(np.unique(y)) < 2:
        return None
    return LogisticRegression(C=1.0, max_iter=1000, random_state=seed).fit(Z, y)


def _stacker_proba(params: dict[str, Any], Z: np.ndarray) -> np.ndarray:
    z = Z @ np.asarray(params["coef"], dtype=float) + float(params["intercept"])
    return 1 / (1 + np.exp(-z))


def data_hash(features: pd.DataFrame, Y: pd.DataFrame) -> str:
    """sha256 of the training texts and labels (order-independent)."""
    table = pd.concat([features[[FEATURE_COLUMNS[0]]].reset_index(drop=True),
                       Y.reset_index(drop=True).astype(int)], axis=1)
    table.insert(0, "_id", list(map(str, Y.index)))
    table = table.sort_values("_id")
    return hashlib.sha256(table.to_csv(index=False).encode("utf-8")).hexdigest()


def train_model(features: pd.DataFrame, Y: pd.DataFrame, groups: pd.Series | np.ndarray, *,
                rule_scores: pd.DataFrame | None = None, folds: int = 5,
                min_positives: int = MIN_POSITIVES, C: float = 4.0, seed: int = 0,
                meta: dict[str, Any] | None = None) -> CoderModel:
    """Train the supervised coder.

    Args:
        features: ``analyze()`` output, one row per training segment; index = segment ids.
        Y: boolean labels, same index, one column per code (the label set).
        groups: document of each row (cross-validation never splits a document).
        rule_scores: rule-coder score per row x code (0 when no rule fired), same
            shape as ``Y``; enables the hybrid combination.
        folds: cross-validation folds (fewer when there are fewer documents).
        min_positives: codes with fewer positive examples (or all positives in one
            document) are reported as not learnable instead of trained.
        C: inverse regularisation strength of the logistic regressions.
        seed: random seed.
        meta: extra provenance stored in ``model.meta``.

    Raises:
        UsageError: features and labels not aligned, fewer than two documents.
    """
    if len(features) != len(Y) or not features.index.equals(Y.index):
        raise UsageError("features and labels are not aligned (same segments, same order)")
    groups = np.asarray(groups)
    Yb = Y.astype(bool)
    labels = list(Y.columns)
    not_learnable: dict[str, str] = {}
    for code in labels:
        pos = Yb[code].to_numpy()
        n_pos, n_docs = int(pos.sum()), len(np.unique(groups[pos]))
        if n_pos < min_positives:
            not_learnable[code] = f"{n_pos} positive example(s); at least {min_positives} needed"
        elif n_pos == len(pos):
            not_learnable[code] = "every example is positive"
        elif n_docs < 2:
            not_learnable[code] = "all positive examples come from one document"
    learnable = [c for c in labels if c not in not_learnable]
    splits = group_folds(groups, folds)
    X = features[FEATURE_COLUMNS]
    Yl = Yb[learnable].to_numpy().astype(int)

    oof = np.zeros((len(X), len(learnable)))
    if learnable:
        for train, test in splits:
            est = _fit(build_estimator(C=C, seed=seed), X.iloc[train], Yl[train])
            oof[test] = _proba(est, X.iloc[test], len(learnable))
    thresholds = {code: best_threshold(Yl[:, j], oof[:, j]) for j, code in enumerate(learnable)}
    estimator = _fit(build_estimator(C=C, seed=seed), X, Yl) if learnable else None

    hybrid = None
    if rule_scores is not None:
        rs = rule_scores.reindex(index=Y.index, columns=labels, fill_value=0.0).to_numpy(float)
        hybrid = {}
        for i, code in enumerate(labels):
            j = learnable.index(code) if code in learnable else None
            Z = stack_inputs(oof[:, j] if j is not None else None, rs[:, i])
            y = Yb[code].to_numpy()
            full = _fit_stacker(Z, y, seed)
            if full is None:
                hybrid[code] = {"fallback": "rules"}
                continue
            # The stacker's own threshold comes from a second out-of-fold pass.
            z_oof = np.zeros(len(y))
            for train, test in splits:
                part = _fit_stacker(Z[train], y[train], seed)
                z_oof[test] = (part.predict_proba(Z[test])[:, 1] if part is not None
                               else float(y[train].mean()))
            hybrid[code] = {"coef": full.coef_[0].tolist(), "intercept": float(full.intercept_[0]),
                            "threshold": best_threshold(y, z_oof)}

    scores = {}
    for j, code in enumerate(learnable):
        y, pred = Yl[:, j].astype(bool), oof[:, j] >= thresholds[code]
        tp, denom = np.sum(y & pred), y.sum() + pred.sum()
        scores[code] = round(float(2 * tp / denom) if denom else 0.0, 4)
    info = dict(meta or {})
    info.update({
        "labels": labels, "n_segments": int(len(Y)), "n_documents": int(len(np.unique(groups))),
        "folds": len(splits), "min_positives": min_positives, "C": C, "seed": seed,
        "positives": {c: int(Yb[c].sum()) for c in labels},
        "cv_f1_ml": scores, "training_data_hash": data_hash(features, Y),
    })
    info["version"] = hashlib.sha256(
        f"{info['training_data_hash']}|{info.get('codebook_hash', '')}|{C}|{seed}".encode()
    ).hexdigest()[:12]
    for code, reason in not_learnable.items():
        log.warning("code %s is not learnable: %s", code, reason)
    return CoderModel(estimator=estimator, labels=labels, learnable=learnable,
                      not_learnable=not_learnable, thresholds=thresholds, hybrid=hybrid,
                      meta=info, train_ids=[str(i) for i in Y.index])


def hybrid_proba(model: CoderModel, proba: pd.DataFrame, rule_scores: pd.DataFrame
                 ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hybrid probability and decision per segment x code.

    Returns:
        (probability, decision) DataFrames over ``model.labels``. A code whose
        stacker could not be fitted falls back to the rules (decision = a rule fired).
    """
    if model.hybrid is None:
        from pipeline.errors import ModelError
        raise ModelError("this model was trained without a codebook, so it has no rule "
                         "evidence to combine: use --method ml, or retrain with --codebook")
    rs = rule_scores.reindex(index=proba.index, columns=model.labels, fill_value=0.0)
    prob = pd.DataFrame(0.0, index=proba.index, columns=model.labels)
    dec = pd.DataFrame(False, index=proba.index, columns=model.labels)
    for code in model.labels:
        params = model.hybrid.get(code, {"fallback": "rules"})
        r = rs[code].to_numpy(float)
        if "fallback" in params:
            prob[code] = r
            dec[code] = r > 0
            continue
        p = proba[code].to_numpy(float) if code in proba.columns else None
        h = _stacker_proba(params, stack_inputs(p, r))
        prob[code] = h
        dec[code] = h >= params["threshold"]
    return prob, dec
