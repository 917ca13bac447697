"""Coding segments with a trained model (``--method ml`` / ``hybrid``)."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from pipeline import columns as C
from pipeline.errors import UsageError
from pipeline.ml.features import analyze
from pipeline.ml.model import CoderModel, hybrid_proba

METHODS = ("ml", "hybrid")


def rule_score_matrix(rule_codings: pd.DataFrame | None, segment_ids: Sequence[str],
                      labels: Sequence[str]) -> pd.DataFrame:
    """Rule-coder score per segment x label, sub-codes rolled up by maximum.

    A coding of ``ownership.shaping`` is evidence for ``ownership`` too (codebook
    contract: a child's id is "<parent id>.<name>"); 0 where no rule fired.
    """
    out = pd.DataFrame(0.0, index=pd.Index(list(segment_ids), name=C.SEGMENT_ID),
                       columns=list(labels))
    if rule_codings is None or not len(rule_codings):
        return out
    rc = rule_codings[rule_codings[C.SEGMENT_ID].astype(str).isin(out.index)]
    codes = rc[C.CODE_ID].astype(str)
    score = (pd.to_numeric(rc[C.SCORE], errors="coerce").fillna(1.0) if C.SCORE in rc.columns
             else pd.Series(1.0, index=rc.index))
    for label in labels:
        hit = (codes == label) | codes.str.startswith(label + ".")
        if hit.any():
            best = pd.Series(score[hit].to_numpy(float),
                             index=rc.loc[hit, C.SEGMENT_ID].astype(str).to_numpy())
            best = best.groupby(level=0).max()
            out.loc[best.index, label] = best.to_numpy()
    return out


def _features(segments: pd.DataFrame, docs_or_texts) -> pd.DataFrame:
    if docs_or_texts is None:
        return analyze(segments)
    items = list(docs_or_texts)
    if items and isinstance(items[0], str):
        seg = segments.copy()
        seg[C.TEXT] = items
        return analyze(seg)
    return analyze(segments, items)


def apply_model(model: CoderModel, segments: pd.DataFrame, docs_or_texts=None,
                rule_codings: pd.DataFrame | None = None, method: str = "ml") -> pd.DataFrame:
    """Code segments with a trained model.

    Args:
        model: from :func:`pipeline.ml.load_model` / :func:`train_model`.
        segments: segments table (``segment_id``, ``doc_id``, ``text``, ``lang``,
            ``start``, ``end``; only rows with ``coded`` true are coded when the
            column is present).
        docs_or_texts: spaCy Docs aligned with ``segments`` rows (from
            ``nlp.parse_segments``), or the texts, or None (parsed here).
        rule_codings: the rule coder's codings table (needed for ``hybrid``).
        method: ``"ml"`` (model only; codes without rules work too) or ``"hybrid"``
            (rule evidence and model probability combined by each code's chosen combiner).

    Returns:
        A codings table (``columns.CODING_COLUMNS``): method ml/hybrid, score = model
        (or hybrid) probability, rule ``model:<version>``, rules/evidence/n_matches
        from the rule coder where it fired (hybrid), start/end = the segment's span.

    Raises:
        UsageError: unknown method. ModelError: hybrid with a model trained without a codebook.
    """
    if method not in METHODS:
        raise UsageError(f"--method must be one of {', '.join(METHODS)} for a model, not {method!r}")
    feats = _features(segments, docs_or_texts)
    keep = np.ones(len(segments), dtype=bool)
    if C.CODED in segments.columns:
        keep = segments[C.CODED].astype(str).str.lower().isin(["true", "1"]).to_numpy()
    segs = segments.loc[keep].reset_index(drop=True)
    feats = feats.loc[keep].reset_index(drop=True)
    ids = segs[C.SEGMENT_ID].astype(str)
    feats.index = pd.Index(ids, name=C.SEGMENT_ID)
    proba = model.predict_proba(feats)
    if method == "ml":
        score = proba
        decision = pd.DataFrame({c: proba[c] >= model.thresholds[c] for c in model.learnable},
                                index=proba.index)
    else:
        rs = rule_score_matrix(rule_codings, ids, model.labels)
        score, decision = hybrid_proba(model, proba, rs)
    rule_info = {}
    if rule_codings is not None and len(rule_codings) and method == "hybrid":
        for rec in rule_codings.to_dict("records"):
            for label in model.labels:
                cid = str(rec[C.CODE_ID])
                if cid == label or cid.startswith(label + "."):
                    key = (str(rec[C.SEGMENT_ID]), label)
                    prev = rule_info.get(key)
                    if prev is None or float(rec.get(C.SCORE, 0) or 0) > float(prev.get(C.SCORE, 0) or 0):
                        rule_info[key] = rec
    rows = []
    tag = f"model:{model.version}"
    for pos, sid in enumerate(ids):
        seg = segs.iloc[pos]
        for code in decision.columns:
            if not decision.iat[pos, decision.columns.get_loc(code)]:
                continue
            rec = rule_info.get((sid, code), {})
            rows.append({
                C.SEGMENT_ID: sid, C.DOC_ID: seg[C.DOC_ID], C.CODE_ID: code, C.METHOD: method,
                C.SCORE: float(score.iat[pos, score.columns.get_loc(code)]), C.RULE: tag,
                C.RULES: rec.get(C.RULES, "") or "", C.EVIDENCE: rec.get(C.EVIDENCE, "") or "",
                C.N_MATCHES: int(rec.get(C.N_MATCHES, 0) or 0),
                C.START: int(seg[C.START]), C.END: int(seg[C.END]),
            })
    out = pd.DataFrame(rows, columns=C.CODING_COLUMNS)
    if len(out):
        order = {sid: k for k, sid in enumerate(ids)}
        out["_o"] = out[C.SEGMENT_ID].map(order)
        out = out.sort_values([C.DOC_ID, "_o", C.CODE_ID], kind="stable").drop(columns="_o")
    return out.reset_index(drop=True)
