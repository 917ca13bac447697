"""The supervised coder: multi-label model, per-code thresholds, hybrid combiner.

Estimator: ``Pipeline(features, OneVsRestClassifier(LogisticRegression))``. The
per-code decision thresholds and the hybrid combination are chosen on out-of-fold
predictions of a cross-validation grouped by document, so two turns of one
interview never sit on both sides of a split.

Hybrid: per code, one of a few combiners of rule evidence and model probability
(``COMBINERS``: rules only; rules OR a confident model; rules AND NOT a confident
model veto; a logistic stacker) is chosen by its F1 on the inner held-out folds,
each combiner's own parameters fitted on the other folds only (cross-fitting), ties
going to the simpler one. With little data this falls back to the rules.
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
        hybrid: code -> the chosen combiner, ``{"combiner": name, **params,
            "inner_f1": {candidate: F1}}`` (see ``COMBINERS``); None when trained
            without rule evidence.
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
    # liblinear: deterministic, and on these small sparse problems as good as lbfgs at a
    # fraction of the time (measured on the gold standard: mean AP 0.469 vs 0.473, 15x faster).
    clf = LogisticRegression(C=C, class_weight="balanced", solver="liblinear", max_iter=2000,
                             random_state=seed)
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


# Hybrid combiners, simplest first (ties in inner F1 go to the earlier one).
COMBINERS = ("rules", "rules_or_model", "rules_and_not_model", "stacker")
# The model only overrides the rules where it is confident: adds a positive at
# p >= t_high, vetoes a rule hit at p <= t_low.
HIGH_GRID = THRESHOLD_GRID[THRESHOLD_GRID >= 0.5]
# A combiner must beat a simpler one by more than this inner F1 to be chosen: about one
# unit flipped among ~25 positives, so a single lucky unit does not change the method.
MIN_GAIN = 0.02
LOW_GRID = THRESHOLD_GRID[THRESHOLD_GRID <= 0.5]


def _f1(y: np.ndarray, pred: np.ndarray) -> float:
    y, pred = y.astype(bool), pred.astype(bool)
    denom = y.sum() + pred.sum()
    return float(2 * np.sum(y & pred) / denom) if denom else 0.0


def _best_on_grid(y: np.ndarray, decide, grid) -> float:
    """Grid value whose decisions maximise F1 (ties: the first in ``grid`` order)."""
    best, best_f1 = float(grid[0]), -1.0
    for t in grid:
        f1 = _f1(y, decide(float(t)))
        if f1 > best_f1 + 1e-12:
            best, best_f1 = float(t), f1
    return best


def fit_combiner(kind: str, p: np.ndarray | None, r: np.ndarray, y: np.ndarray,
                 groups: np.ndarray, *, folds: int = 5, seed: int = 0) -> dict[str, Any] | None:
    """Fit one hybrid combiner of model probability ``p`` and rule score ``r`` to ``y``.

    Returns the combiner's parameters (``{"combiner": kind, ...}``), or None when it
    cannot be fitted here (no model probability for a not-learnable code; one class
    only for the stacker).
    """
    y = y.astype(bool)
    fired = r > 0
    if kind == "rules":
        return {"combiner": "rules"}
    if kind in ("rules_or_model", "rules_and_not_model") and p is None:
        return None
    if kind == "rules_or_model":
        # Ties: the highest threshold (the model adds as little as possible).
        t = _best_on_grid(y, lambda t: fired | (p >= t), HIGH_GRID[::-1])
        return {"combiner": kind, "t_high": t}
    if kind == "rules_and_not_model":
        # Ties: the lowest threshold (the model vetoes as little as possible).
        t = _best_on_grid(y, lambda t: fired & (p > t), LOW_GRID)
        return {"combiner": kind, "t_low": t}
    if kind == "stacker":
        Z = stack_inputs(p, r)
        full = _fit_stacker(Z, y, seed)
        if full is None:
            return None
        # The stacker's threshold comes from its own grouped out-of-fold predictions.
        z_oof = full.predict_proba(Z)[:, 1]
        if len(np.unique(groups)) >= 2:
            for train, test in group_folds(groups, folds):
                part = _fit_stacker(Z[train], y[train], seed)
                z_oof[test] = (part.predict_proba(Z[test])[:, 1] if part is not None
                               else float(y[train].mean()))
        return {"combiner": kind, "coef": full.coef_[0].tolist(),
                "intercept": float(full.intercept_[0]), "threshold": best_threshold(y, z_oof)}
    raise ValueError(f"unknown combiner {kind!r}")


def apply_combiner(params: dict[str, Any], p: np.ndarray | None, r: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(score, decision) of a fitted combiner; model files of format 1 before the
    combiner choice (``{"fallback": "rules"}`` / a bare stacker) are understood too."""
    kind = params.get("combiner") or ("rules" if "fallback" in params else "stacker")
    r = np.asarray(r, dtype=float)
    fired = r > 0
    if kind == "rules" or (p is None and kind != "stacker"):
        return r, fired
    if kind == "rules_or_model":
        dec = fired | (p >= params["t_high"])
        return np.where(fired, np.maximum(r, p), p), dec
    if kind == "rules_and_not_model":
        dec = fired & (p > params["t_low"])
        return np.where(dec, r, np.minimum(r, p)), dec
    h = _stacker_proba(params, stack_inputs(p, r))
    return h, h >= params["threshold"]


def describe_combiner(params: dict[str, Any] | None) -> str:
    """Short human-readable form, e.g. ``rules OR p>=0.80``."""
    kind = (params or {}).get("combiner") or ("rules" if params is None or "fallback" in params
                                               else "stacker")
    if kind == "rules_or_model":
        return f"rules OR p>={params['t_high']:.2f}"
    if kind == "rules_and_not_model":
        return f"rules AND NOT p<={params['t_low']:.2f}"
    return kind


def choose_combiner(p: np.ndarray | None, r: np.ndarray, y: np.ndarray, groups: np.ndarray,
                    splits: list[tuple[np.ndarray, np.ndarray]], *, folds: int = 5,
                    seed: int = 0, min_gain: float = MIN_GAIN) -> dict[str, Any]:
    """Pick a code's hybrid combiner by F1 on the inner held-out folds.

    ``p`` are out-of-fold model probabilities over ``splits``. Each candidate is
    scored by cross-fitting: for every split its parameters are fitted on the other
    folds' rows and it decides the held-out rows (where it cannot be fitted, the
    rules decide). The best pooled F1 wins; ties go to the simpler candidate (order
    of ``COMBINERS``), so a model that adds nothing leaves the rules alone. The
    winner is refitted on all rows.

    Returns:
        The winner's parameters plus ``inner_f1`` (candidate -> F1, rounded).
    """
    y = y.astype(bool)
    inner: dict[str, float] = {}
    for kind in COMBINERS:
        if kind != "rules" and kind != "stacker" and p is None:
            continue
        dec = r > 0
        for train, test in splits:
            params = fit_combiner(kind, None if p is None else p[train], r[train], y[train],
                                  groups[train], folds=folds, seed=seed)
            if params is not None:
                dec[test] = apply_combiner(params, None if p is None else p[test], r[test])[1]
        inner[kind] = _f1(y, dec)
    best = "rules"
    for kind in inner:  # COMBINERS order: clearly better to displace a simpler one
        if inner[kind] > inner[best] + min_gain + 1e-9:
            best = kind
    params = fit_combiner(best, p, r, y, groups, folds=folds, seed=seed) or {"combiner": "rules"}
    params["inner_f1"] = {k: round(v, 4) for k, v in inner.items()}
    return params


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
                min_gain: float = MIN_GAIN, meta: dict[str, Any] | None = None) -> CoderModel:
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
        min_gain: inner F1 by which a hybrid combiner must beat a simpler one
            (see :func:`choose_combiner`).
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
            hybrid[code] = choose_combiner(oof[:, j] if j is not None else None, rs[:, i],
                                           Yb[code].to_numpy(), groups, splits, folds=folds,
                                           seed=seed, min_gain=min_gain)

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
    if hybrid is not None:
        info["hybrid_combiners"] = {c: describe_combiner(hybrid[c]) for c in labels}
        info["hybrid_min_gain"] = min_gain
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
    """Hybrid score and decision per segment x code, by each code's chosen combiner.

    Returns:
        (score, decision) DataFrames over ``model.labels``. A code without a fitted
        combiner falls back to the rules (decision = a rule fired).
    """
    if model.hybrid is None:
        from pipeline.errors import ModelError
        raise ModelError("this model was trained without a codebook, so it has no rule "
                         "evidence to combine: use --method ml, or retrain with --codebook")
    rs = rule_scores.reindex(index=proba.index, columns=model.labels, fill_value=0.0)
    prob = pd.DataFrame(0.0, index=proba.index, columns=model.labels)
    dec = pd.DataFrame(False, index=proba.index, columns=model.labels)
    for code in model.labels:
        params = model.hybrid.get(code, {"combiner": "rules"})
        p = proba[code].to_numpy(float) if code in proba.columns else None
        score, decision = apply_combiner(params, p, rs[code].to_numpy(float))
        prob[code] = score
        dec[code] = decision
    return prob, dec
