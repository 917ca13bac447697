"""Supervised coder: features, model, safe persistence, hybrid, active learning.

Public API:

* ``train_model(features, Y, groups, *, rule_scores=None, ...) -> CoderModel``
* ``analyze(segments, docs=None) -> features`` (lemmas, stems, text)
* ``save_model(model, path)``, ``load_model(path, codebook=None) -> CoderModel``
* ``apply_model(model, segments, docs_or_texts, rule_codings, method) -> codings``
* ``suggest(model, segments, features, n=20) -> sheet``
* ``cross_validate_methods(features, Y, groups, rule_scores=...) -> table``
"""
from pipeline.ml.active import SUGGEST_COLUMNS, suggest, uncertainty
from pipeline.ml.apply import apply_model, rule_score_matrix
from pipeline.ml.evaluation import cross_validate_methods, replace_readme_block, to_markdown
from pipeline.ml.features import FEATURE_COLUMNS, analyze, build_features
from pipeline.ml.model import CoderModel, build_estimator, hybrid_proba, train_model
from pipeline.ml.persistence import (
    check_codebook, load_model, model_from_bytes, model_to_bytes, save_model,
)

__all__ = [
    "FEATURE_COLUMNS", "SUGGEST_COLUMNS", "CoderModel", "analyze", "apply_model",
    "build_estimator", "build_features", "check_codebook", "cross_validate_methods",
    "hybrid_proba", "load_model", "model_from_bytes", "model_to_bytes", "replace_readme_block",
    "rule_score_matrix", "save_model", "suggest", "to_markdown", "train_model", "uncertainty",
]
