"""Rule matches -> codings (one row per segment x code), multi-language coding, rollup."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from spacy.tokens import Doc

from pipeline import columns as C
from pipeline.code.combine import fast_aggregate
from pipeline.code.compiled import compile_rules
from pipeline.code.matching import _empty_matches, match_segments
from pipeline.codebook import Codebook
from pipeline.errors import UsageError

METHOD_RULES = "rules"
# Scores are products of floats: 1 - (1 - 0.5) must reach a threshold of 0.5.
EPS = 1e-9


def empty_codings() -> pd.DataFrame:
    """Return an empty codings table with the contract's columns and dtypes."""
    types = {C.SCORE: "float64", C.N_MATCHES: "int64", C.START: "int64", C.END: "int64"}
    return pd.DataFrame({col: pd.Series(dtype=types.get(col, "str"))
                         for col in C.CODING_COLUMNS})


def aggregate_matches(matches: pd.DataFrame, *, threshold: float) -> pd.DataFrame:
    """Combine the matches of each segment x code into one coding.

    score = 1 - prod(1 - weight) over the distinct matches; the best match (highest
    weight, then earliest) gives ``rule``, ``evidence``, ``start`` and ``end``.

    Args:
        matches: a matches table (``columns.MATCH_COLUMNS``).
        threshold: keep codings with score >= threshold.

    Returns:
        ``columns.CODING_COLUMNS`` with method "rules", sorted by doc_id, segment
        order (segments do not overlap, so their first match orders them) and code_id.
    """
    if matches.empty:
        return empty_codings()
    fast = fast_aggregate(matches, threshold, EPS, METHOD_RULES)
    return _finish(fast) if fast is not None else _aggregate_frames(matches, threshold)


def _aggregate_frames(matches: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """``aggregate_matches`` with pandas groupby: any input (the general path)."""
    m = matches.drop_duplicates(
        [C.SEGMENT_ID, C.CODE_ID, C.RULE_ID, C.START, C.END]).copy()
    m["_q"] = 1.0 - m[C.SCORE].astype("float64")
    m = m.sort_values([C.SEGMENT_ID, C.CODE_ID, C.SCORE, C.START, C.END, C.RULE_ID],
                      ascending=[True, True, False, True, True, True], kind="stable")
    groups = m.groupby([C.SEGMENT_ID, C.CODE_ID], sort=False)
    best = groups.head(1).set_index([C.SEGMENT_ID, C.CODE_ID])
    out = pd.DataFrame({
        C.DOC_ID: best[C.DOC_ID],
        C.METHOD: METHOD_RULES,
        C.SCORE: (1.0 - groups["_q"].prod()).clip(0.0, 1.0),
        C.RULE: "rule:" + best[C.RULE_ID].astype(str),
        C.RULES: pd.Series(_rule_lists(m, groups), index=best.index),
        C.EVIDENCE: best[C.EVIDENCE],
        C.N_MATCHES: groups.size(),
        C.START: best[C.START],
        C.END: best[C.END],
        "_first": groups[C.START].min(),
    }).reset_index()
    out = out[out[C.SCORE] >= threshold - EPS]
    seg_first = out.groupby(C.SEGMENT_ID)["_first"].transform("min")
    out = out.assign(_seg_first=seg_first).sort_values(
        [C.DOC_ID, "_seg_first", C.SEGMENT_ID, C.CODE_ID], kind="stable")
    return _finish(out)


def _rule_lists(m: pd.DataFrame, groups) -> np.ndarray:  # noqa: ANN001 - DataFrameGroupBy
    """Sorted, distinct rule ids of each group (in group order), ";"-joined.

    The plain pandas way (a Series per group): this path only runs for inputs the
    NumPy path (``combine.rule_lists``) does not cover, and is its reference.
    """
    joined = groups[C.RULE_ID].agg(lambda ids: ";".join(sorted({str(i) for i in ids})))
    return joined.to_numpy(dtype=object)


def _finish(out: pd.DataFrame) -> pd.DataFrame:
    out = out[C.CODING_COLUMNS].reset_index(drop=True)
    return out.astype({C.SCORE: "float64", C.N_MATCHES: "int64", C.START: "int64",
                       C.END: "int64"})


def code_segments(segments: pd.DataFrame, docs: Sequence[Doc],
                  codebook: Codebook) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run the rule coder over segments in any mix of languages.

    Args:
        segments: segments table; only ``coded`` rows are matched.
        docs: Docs aligned with the rows (``nlp.parse_segments``).
        codebook: the codebook; its ``settings.threshold`` filters codings.

    Returns:
        (matches, codings): ``MATCH_COLUMNS`` in segment row order, and
        ``CODING_COLUMNS`` from ``aggregate_matches``.

    Raises:
        UsageError: docs not aligned, or a segment language the NLP stage lacks.
    """
    if len(docs) != len(segments):
        raise UsageError(f"{len(docs)} docs for {len(segments)} segments: not aligned")
    if segments.empty:
        return _empty_matches(), empty_codings()
    langs = (segments[C.LANG].tolist() if C.LANG in segments.columns
             else [codebook.settings.default_lang] * len(segments))
    coded = (segments[C.CODED].astype(bool).tolist() if C.CODED in segments.columns
             else [True] * len(segments))
    parts = []
    for lang in dict.fromkeys(lg for lg, ok in zip(langs, coded, strict=True) if ok):
        positions = [k for k, lg in enumerate(langs) if lg == lang and coded[k]]
        compiled = compile_rules(codebook, lang)
        if not compiled.rules:
            continue
        part = match_segments(segments.iloc[positions], [docs[k] for k in positions], compiled)
        if not part.empty:
            parts.append(part)
    if not parts:
        return _empty_matches(), empty_codings()
    matches = pd.concat(parts, ignore_index=True)
    order = {seg: k for k, seg in enumerate(segments[C.SEGMENT_ID].tolist())}
    matches = (matches.assign(_row=matches[C.SEGMENT_ID].map(order))
               .sort_values(["_row", C.START, C.END, C.CODE_ID, C.RULE_ID], kind="stable")
               .drop(columns="_row").reset_index(drop=True))
    return matches, aggregate_matches(matches, threshold=codebook.settings.threshold)


def rollup(codings: pd.DataFrame, codebook: Codebook, level: str = "top") -> pd.DataFrame:
    """Count codings of sub-codes for their ancestors.

    Args:
        codings: a codings table (any method).
        codebook: the codebook the codings refer to.
        level: ``"top"`` - one row per segment x top-level code; ``"all"`` - the
            codes themselves plus every ancestor.

    Returns:
        ``CODING_COLUMNS``; per segment x code the max score, with method, rule,
        evidence, start and end from the best row (highest score, then earliest);
        ``rules`` is the union of the rule ids, ``n_matches`` the sum.

    Raises:
        UsageError: unknown level, or a code id that is not in the codebook.
    """
    if level not in ("top", "all"):
        raise UsageError(f"unknown rollup level {level!r} (allowed: top, all)")
    if codings.empty:
        return empty_codings()
    targets = {}
    for code_id in dict.fromkeys(codings[C.CODE_ID].tolist()):
        targets[code_id] = ([codebook.rollup_id(code_id, "top")] if level == "top"
                            else [code_id, *codebook.ancestors(code_id)])
    rows = codings.copy()
    rows["_seg"] = pd.factorize(rows[C.SEGMENT_ID])[0]  # keeps the input segment order
    rows["_target"] = rows[C.CODE_ID].map(targets)
    rows = rows.explode("_target")
    rows = rows.sort_values(["_seg", "_target", C.SCORE, C.START, C.CODE_ID],
                            ascending=[True, True, False, True, True], kind="stable")
    groups = rows.groupby(["_seg", "_target"], sort=False)
    best = groups.head(1).set_index(["_seg", "_target"])
    rules = groups[C.RULES].agg(
        lambda vals: ";".join(sorted({r for v in vals if isinstance(v, str) and v
                                      for r in v.split(";")})))
    out = best.assign(**{C.RULES: rules, C.N_MATCHES: groups[C.N_MATCHES].sum()}).reset_index()
    out[C.CODE_ID] = out["_target"]
    out = out.sort_values([C.DOC_ID, "_seg", C.CODE_ID], kind="stable")
    return _finish(out)
