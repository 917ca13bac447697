"""Rule matches -> codings (one row per segment x code), multi-language coding, rollup."""
from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pandas.arrays import ArrowStringArray

from pipeline import columns as C
from pipeline.code.combine import MatchKeys, frame_keys, pack_keys, sorted_unique, stable_order
from pipeline.code.evidence import STR_DTYPE
from pipeline.code.compiled import compile_rules
from pipeline.code.matching import _empty_matches, match_segments
from pipeline.code.opening import first_coded_units
from pipeline.codebook import Codebook
from pipeline.errors import UsageError

if TYPE_CHECKING:  # spaCy is imported where it is used: a re-code from cache may not need it
    from spacy.tokens import Doc

METHOD_RULES = "rules"
# Scores are products of floats: 1 - (1 - 0.5) must reach a threshold of 0.5.
EPS = 1e-9


def empty_codings() -> pd.DataFrame:
    """Return an empty codings table with the contract's columns and dtypes."""
    if not _EMPTY:  # made once: building the typed columns costs more than a copy
        types = {C.SCORE: "float64", C.N_MATCHES: "int64", C.START: "int64", C.END: "int64"}
        _EMPTY.append(pd.DataFrame({col: pd.Series(dtype=types.get(col, "str"))
                                    for col in C.CODING_COLUMNS}))
    return _EMPTY[0].copy()


_EMPTY: list[pd.DataFrame] = []


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
    keys = frame_keys(matches, forget=True)  # match_frame's integer ids (None: factorised)
    groups = _Groups(matches, keys)
    # ``order_codings(aggregate_rows(...))``, with the kept codings put in order on the
    # integer keys before any string column is taken: each is taken once, not three times
    kept = np.flatnonzero(groups.scores >= threshold - EPS)
    ordered = _in_output_order(groups, keys, kept)
    if ordered is None:  # a missing id: as pandas
        return order_codings(groups.frame(kept))
    return _finish(groups.frame(ordered), C.CODING_COLUMNS)


def _in_output_order(groups: _Groups, keys: MatchKeys | None,
                     kept: np.ndarray) -> np.ndarray | None:
    """The groups ``kept`` in output order (doc id, segment order, segment, code), on
    integer keys; None when an id is missing (then pandas' order applies)."""
    best = groups.best[kept]
    # only the best rows' doc ids: ranked among themselves they order as among all rows
    doc = (keys.doc[best] if keys is not None
           else pd.factorize(groups.matches[C.DOC_ID].take(best), sort=True)[0])
    seg, code = groups.seg[best], groups.code[best]
    if (doc < 0).any() or (seg < 0).any() or (code < 0).any():
        return None
    first = groups.first[kept]
    seg_first = np.full(int(seg.max()) + 1 if len(seg) else 0, np.iinfo(np.int64).max,
                        dtype=np.int64)
    np.minimum.at(seg_first, seg, first)
    return kept[stable_order([doc, seg_first[seg], seg, code])]


def aggregate_rows(matches: pd.DataFrame, *, threshold: float) -> pd.DataFrame:
    """The codings of ``aggregate_matches``, unordered, with their first match start.

    Every row depends only on the matches of its segment x code, so the rows of some
    codes can be computed (and cached, ``pipeline.coding_cache``) apart from the
    others; ``order_codings`` puts rows of any codes together in the output order.

    Returns:
        ``CODING_COLUMNS`` + ``FIRST_MATCH`` (earliest match start of the coding),
        with the output dtypes; empty (same columns) without matches.
    """
    if matches.empty:
        return empty_codings().assign(**{C.FIRST_MATCH: pd.Series(dtype="int64")})
    # match_frame's integer ids, when these are the rows it made (a first run): then
    # the rows come in output order too (``order_codings`` finds nothing to move)
    keys = frame_keys(matches, forget=True)
    groups = _Groups(matches, keys)
    kept = np.flatnonzero(groups.scores >= threshold - EPS)
    ordered = _in_output_order(groups, keys, kept) if keys is not None else None
    out = groups.frame(kept if ordered is None else ordered, first=True)
    return _finish(out, [*C.CODING_COLUMNS, C.FIRST_MATCH])


class _Groups:
    """The segment x code groups of a matches table, on integer codes.

    On integer codes (ids factorised in sorted order compare as the strings do), not
    with groupby: the same rows as sort_values + groupby, several times faster. Group
    ``g`` (in segment, code order) has its best match at row ``best[g]``, its score
    ``scores[g]`` and its earliest match start ``first[g]``.
    """

    def __init__(self, matches: pd.DataFrame, keys: MatchKeys | None = None) -> None:
        self.matches = matches
        if keys is not None:  # codes of the same order (not dense): the same groups and order
            seg, code, rule, self.names = keys.seg, keys.code, keys.rule, keys.rule_names
        else:
            seg, _ = pd.factorize(matches[C.SEGMENT_ID], sort=True)
            code, _ = pd.factorize(matches[C.CODE_ID], sort=True)
            rule, self.names = pd.factorize(matches[C.RULE_ID].astype(str), sort=True)
        self.rule = rule
        self.start = start = matches[C.START].to_numpy(dtype=np.int64)
        self.end = end = matches[C.END].to_numpy(dtype=np.int64)
        score = matches[C.SCORE].astype("float64").to_numpy()
        # drop_duplicates on (segment, code, rule, start, end): the first row of each stays
        kept = np.flatnonzero(~_duplicated([seg, code, rule, start, end - start]))
        # by segment, code, score (highest first), start, end, rule; stable, as sort_values
        rows = kept[_score_order(seg[kept], code[kept], score[kept], start[kept], end[kept],
                                 rule[kept])]
        s, c = seg[rows], code[rows]
        new = np.empty(len(rows), dtype=bool)
        new[0] = True
        new[1:] = (s[1:] != s[:-1]) | (c[1:] != c[:-1])
        self.firsts = firsts = np.flatnonzero(new)
        self.best = rows[firsts]  # the best match of each segment x code
        self.seg, self.code = seg, code
        # score = 1 - prod(1 - weight), multiplied in row order like groupby().prod()
        self.scores = np.clip(1.0 - np.multiply.reduceat(1.0 - score[rows], firsts), 0.0, 1.0)
        self.first = np.minimum.reduceat(start[rows], firsts)
        self.n_matches = np.diff(np.append(firsts, len(rows)))
        self._gid, self._rules = np.cumsum(new) - 1, rule[rows]

    def frame(self, groups: np.ndarray, first: bool = False) -> pd.DataFrame:
        """The codings of ``groups`` (group numbers, in the order given), with their
        ``FIRST_MATCH`` when ``first``."""
        if not len(groups):  # typed as the rows of every group typed it, then filtered
            return self.frame(np.arange(len(self.best)), first).iloc[:0]
        matches, best = self.matches, self.best[groups]

        def taken(col: str) -> object:
            values = matches[col].array
            if isinstance(values, ArrowStringArray) and values.dtype == STR_DTYPE:
                return ArrowStringArray(values.__arrow_array__().take(best), dtype=STR_DTYPE)
            return matches[col].take(best).reset_index(drop=True)

        # "rule:<id>" of each distinct rule id once, then taken (as the "rules" lists)
        names = pa.array(np.asarray(self.names, dtype=object), type=pa.large_string())
        prefixed = pc.binary_join_element_wise(pa.scalar("rule:", pa.large_string()), names,
                                               pa.scalar("", pa.large_string()))
        data = {
            C.SEGMENT_ID: taken(C.SEGMENT_ID), C.DOC_ID: taken(C.DOC_ID),
            C.CODE_ID: taken(C.CODE_ID),
            C.METHOD: ArrowStringArray(pa.array([METHOD_RULES], type=pa.large_string()).take(
                np.zeros(len(best), dtype=np.int64)), dtype=STR_DTYPE),
            C.SCORE: self.scores[groups],
            C.RULE: (ArrowStringArray(prefixed.take(self.rule[best]), dtype=STR_DTYPE)
                     if not (self.rule < 0).any()  # a missing rule id: as pandas adds to it
                     else "rule:" + matches[C.RULE_ID].take(best).reset_index(drop=True).astype(str)),
            C.RULES: ArrowStringArray(_rule_lists(self._gid, self._rules, names).take(groups),
                                      dtype=STR_DTYPE),
            C.EVIDENCE: taken(C.EVIDENCE), C.N_MATCHES: self.n_matches[groups],
            C.START: self.start[best], C.END: self.end[best],
        }
        if first:
            data[C.FIRST_MATCH] = self.first[groups]
        return pd.DataFrame(data)


def _duplicated(keys: list[np.ndarray]) -> np.ndarray:
    """``DataFrame(keys).duplicated()``: rows whose keys an earlier row has.

    The integer keys are packed into one int64 (``combine.pack_keys``) and hashed once;
    keys too wide to pack go through pandas.
    """
    packed = pack_keys(keys)
    if packed is None:
        return pd.DataFrame(dict(enumerate(keys))).duplicated().to_numpy()
    return pd.Series(packed).duplicated().to_numpy()


def _score_order(seg: np.ndarray, code: np.ndarray, score: np.ndarray, start: np.ndarray,
                 end: np.ndarray, rule: np.ndarray) -> np.ndarray:
    """Stable order by segment, code, score (highest first), start, end, rule.

    ``np.lexsort`` of the six keys; with the score as its rank among the distinct
    scores (the same order, as integers), ``stable_order`` packs them into one or
    two keys. A NaN score (never expected) sorts as lexsort sorts it.
    """
    if np.isnan(score).any():
        return np.lexsort((rule, end, start, -score, code, seg))
    rank = pd.factorize(-score, sort=True)[0]  # np.unique's inverse, by hashing: faster
    return stable_order([seg, code, rank, start, end, rule])


def coding_order(rows: pd.DataFrame, keep: np.ndarray | None = None) -> np.ndarray:
    """Positions of ``rows`` (``aggregate_rows`` output) in the output order.

    By doc_id, the segment's first coded match, segment_id and code_id: unique per
    row, so the order does not depend on the order of ``rows``. Computed on integer
    keys (ids factorised in sorted order compare as the strings do) with a stable
    argsort that merges already sorted runs (cached codings) in about linear time.

    Args:
        rows: the rows.
        keep: None, or a mask: only those rows are ordered (the others are left out,
            as if they were not in ``rows``).
    """
    if keep is not None and keep.all():
        keep = None
    if not len(rows):
        return np.zeros(0, dtype=np.int64)
    doc = pd.factorize(rows[C.DOC_ID], sort=True)[0]
    seg, names = pd.factorize(rows[C.SEGMENT_ID], sort=True)
    code = pd.factorize(rows[C.CODE_ID], sort=True)[0]
    if (doc < 0).any() or (seg < 0).any() or (code < 0).any():  # a missing id: as pandas
        if keep is None:
            return _coding_order_frame(rows)
        kept = np.flatnonzero(keep)
        return kept[_coding_order_frame(rows.take(kept))]
    first = rows[C.FIRST_MATCH].to_numpy(dtype=np.int64)
    seg_first = np.full(len(names), np.iinfo(np.int64).max, dtype=np.int64)
    if keep is None:
        np.minimum.at(seg_first, seg, first)
    else:
        np.minimum.at(seg_first, seg[keep], first[keep])
    order = stable_order([doc, seg_first[seg], seg, code])
    return order if keep is None else order[keep[order]]


def _coding_order_frame(rows: pd.DataFrame) -> np.ndarray:
    """``coding_order`` with pandas (ids with missing values sort as pandas sorts them)."""
    seg_first = rows.groupby(C.SEGMENT_ID)[C.FIRST_MATCH].transform("min")
    keys = rows[[C.DOC_ID, C.SEGMENT_ID, C.CODE_ID]].assign(_seg_first=seg_first)
    keys = keys.reset_index(drop=True).sort_values(
        [C.DOC_ID, "_seg_first", C.SEGMENT_ID, C.CODE_ID], kind="stable")
    return keys.index.to_numpy()


def order_codings(rows: pd.DataFrame) -> pd.DataFrame:
    """``aggregate_rows`` output (of any codes, in any order) as the codings table."""
    return _finish(rows.take(coding_order(rows)))


def _rule_lists(gid: np.ndarray, rcode: np.ndarray, names: pa.Array) -> pa.Array:
    """Sorted, distinct rule ids of each group (in group order), ";"-joined.

    Args:
        gid: group number of every row (0, 1, ...).
        rcode: rule id of every row, factorised in sorted order.
        names: the rule ids of the codes (Arrow large strings).

    On integer codes, not with ``groupby().agg(lambda)``, which builds a Series per
    group: the distinct (group, rule) pairs come out of one ``sorted_unique`` in (group,
    rule) order, and the ids of each group are joined by Arrow's ``binary_join`` on
    a list array of them (one C++ pass instead of a Python join per group). Returns
    Arrow large strings (no Python string per group).
    """
    gid = gid.astype(np.int64)
    n_groups = int(gid.max()) + 1 if len(gid) else 0
    if not n_groups:
        return pa.array([], type=pa.large_string())
    pairs = sorted_unique(gid * len(names) + rcode)
    pair_gid, pair_rule = np.divmod(pairs, len(names))
    offsets = np.searchsorted(pair_gid, np.arange(n_groups + 1))
    lists = pa.LargeListArray.from_arrays(pa.array(offsets, type=pa.int64()),
                                          names.take(pair_rule))
    return pc.binary_join(lists, pa.scalar(";", pa.large_string()))


def _finish(out: pd.DataFrame, columns: list[str] = C.CODING_COLUMNS) -> pd.DataFrame:
    out = out[columns].reset_index(drop=True)
    types = {C.SCORE: "float64", C.N_MATCHES: "int64", C.START: "int64", C.END: "int64"}
    if all(out[col].dtype == np.dtype(kind) for col, kind in types.items()):
        return out  # astype would copy every column's block for nothing
    return out.astype(types)


def code_segments(segments: pd.DataFrame, docs: Sequence[Doc], codebook: Codebook,
                  tables: Collection[str] = ()) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run the rule coder over segments in any mix of languages.

    Args:
        segments: segments table; only ``coded`` rows are matched.
        docs: Docs aligned with the rows (``nlp.parse_segments``).
        codebook: the codebook; its ``settings.threshold`` filters codings.
        tables: ids of survey-table documents (CSV): ``settings.opening_weight`` does
            not apply to their first row.

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
    # settings.opening_weight: the first coded unit of a document, whatever its language
    opening = (first_coded_units(segments, tables) if codebook.settings.opening_weight != 1.0
               else None)
    for lang in dict.fromkeys(lg for lg, ok in zip(langs, coded, strict=True) if ok):
        positions = [k for k, lg in enumerate(langs) if lg == lang and coded[k]]
        compiled = compile_rules(codebook, lang)
        if not compiled.rules:
            continue
        part = match_segments(segments.iloc[positions], [docs[k] for k in positions], compiled,
                              opening)
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
