"""Applying compiled rules to parsed segments: hits -> rule matches.

Per batch of docs (token arrays, ``pipeline.code.scan``): the trie + the Matcher on the
docs that need it give the spans of every rule channel; then per doc and rule
(``pipeline.code.vector``, with the helpers here for the per-doc cases): overlap
filtering, proximity pairing, negation, and finally the exclude rules veto matches of
their own code.
"""
from __future__ import annotations

import gc
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
from pandas.arrays import ArrowStringArray

from pipeline import columns as C
from pipeline.code.arrays import TokenArrays
from pipeline.code.combine import MatchKeys, remember_keys, stable_order
from pipeline.code.compiled import CompiledRules
from pipeline.code.opening import _opening_scores, first_coded_units
from pipeline.code.evidence import (  # noqa: F401 - EVIDENCE_LIMIT re-exported
    EVIDENCE_LIMIT, STR_DTYPE, arrow_strings, evidence_parts)
# negation_scope "clause": a sentence is also split at commas and these subordinators
# (the word starts a new clause), so verb-final Dutch negation is seen.
from pipeline.code.types import CLAUSE_PUNCT, CLAUSE_WORDS  # noqa: F401 - re-exported
from pipeline.codebook import Rule
from pipeline.errors import UsageError

if TYPE_CHECKING:  # spaCy is imported where it is used: a re-code from cache may not need it
    from spacy.tokens import Doc

NEGATION_WINDOW = 3      # default: tokens before a match that may hold a negation cue


@dataclass(frozen=True)
class _Match:
    rule: Rule
    start: int           # token span in the doc
    end: int


def longest_first(spans: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """Keep the longest non-overlapping spans (ties: earlier), in text order.

    One piece of text counts once per rule: "zelf invullen" and "het zelf invullen"
    in the same rule are one match, not two.
    """
    ordered = sorted(spans)
    if all(a[1] <= b[0] for a, b in zip(ordered, ordered[1:])):
        return ordered  # no overlaps (the usual case): every span is kept
    taken: list[tuple[int, int]] = []
    used: set[int] = set()
    for start, end in sorted(spans, key=lambda s: (s[0] - s[1], s[0])):
        if not any(i in used for i in range(start, end)):
            taken.append((start, end))
            used.update(range(start, end))
    return sorted(taken)


def _gap(a0: int, a1: int, b0: int, b1: int) -> int:
    """Distance between two non-overlapping token spans, nearest edge to nearest edge.

    For one-token spans it is the difference of their indexes (adjacent words: 1).
    """
    return b0 - a1 + 1 if b0 >= a1 else a0 - b1 + 1


def _pair(a_spans: list[tuple[int, int]], b_spans: list[tuple[int, int]], window: int,
          order: str) -> list[tuple[int, int]]:
    """Pair every a-hit with its nearest b-hit within ``window`` tokens (nearest edges)."""
    out = set()
    for a0, a1 in a_spans:
        best = None
        for b0, b1 in b_spans:
            if b0 < a1 and a0 < b1:       # the same words cannot be both sides
                continue
            if order == "ab" and b0 < a1:
                continue
            dist = _gap(a0, a1, b0, b1)
            if dist <= window and (best is None or (dist, b0) < best[0]):
                best = ((dist, b0), (b0, b1))
        if best is not None:
            b0, b1 = best[1]
            out.add((min(a0, b0), max(a1, b1)))
    return sorted(out)


class _Context:
    """Per-token facts of a batch that negation and vetoes read.

    Negation, as the rules define it: with ``negation_scope: window``, a cue among the
    ``negation_window`` tokens before the match, within its sentence; with ``clause``,
    a cue anywhere in the clause(s) the match overlaps, outside the match. Clauses are
    sentences split after , ; : and before the subordinators of ``CLAUSE_WORDS``; a
    doc's first token starts a sentence and a clause.
    """

    def __init__(self, arrays: TokenArrays, compiled: CompiledRules, tid: np.ndarray) -> None:
        types = compiled.types
        doc_first = arrays.doc_starts()
        self.sents = arrays.sentence_starts(doc_first)
        cue = types.cue.data[tid]
        # cues before position i: a window or clause test is two subtractions
        self.before = np.concatenate(([0], np.cumsum(cue, dtype=np.int64)))
        self.first_np = self.end_np = np.zeros(0, dtype=np.int64)
        if compiled.negation_scope == "clause":
            self._clauses(types, tid, doc_first)

    def _clauses(self, types, tid: np.ndarray, doc_first: np.ndarray) -> None:  # noqa: ANN001
        """First token and end (exclusive) of every token's clause."""
        n = len(tid)
        pos = np.arange(n, dtype=np.int64)
        boundary = (self.sents == pos) | types.clause_word.data[tid] | (pos == doc_first)
        punct = types.clause_punct.data[tid]
        boundary[1:] |= punct[:-1]
        if n:
            boundary[0] = True
        first = np.maximum.accumulate(np.where(boundary, pos, 0)) if n else pos
        # the end of a clause is the start of the next one (or the end of the batch)
        nxt = np.where(boundary, pos, n)
        nxt = np.minimum.accumulate(nxt[::-1])[::-1]
        end = np.append(nxt[1:], n) if n else nxt
        self.first_np, self.end_np = first, end

    @property
    def sent_starts(self) -> list[int]:
        """``sents`` as a list (for ``_vetoed``), made only when asked for: a list of
        every token of a batch costs more than the matching of most rules."""
        return self.sents.tolist()

    def negated_all(self, starts: np.ndarray, ends: np.ndarray,
                    compiled: CompiledRules) -> np.ndarray:
        """Whether each span (``starts[i]``, ``ends[i]``) is negated (see the class)."""
        before = self.before
        if compiled.negation_scope == "clause":
            lo, hi = self.first_np[starts], self.end_np[ends - 1]
            return before[starts] - before[lo] + before[hi] - before[ends] > 0
        first = np.maximum(self.sents[starts], starts - compiled.negation_window)
        return before[starts] - before[first] > 0


def doc_matches(doc: Doc, compiled: CompiledRules) -> list[_Match]:
    """Return the surviving rule matches of one doc (token spans)."""
    from pipeline.code.vector import vector_matches

    arrays = TokenArrays.from_docs([doc])
    tid = compiled.types.ids(arrays.vocab, arrays.orth, arrays.lemma)
    cr, cs, ce = vector_matches(arrays, compiled, tid, _Context(arrays, compiled, tid))
    return [_Match(compiled.rules[r], s, e) for r, s, e in zip(cr.tolist(), cs.tolist(),
                                                                ce.tolist())]


def _vetoed(match: tuple[Rule, int, int], veto: Rule, spans: list[tuple[int, int]],
            sent_starts: list[int]) -> bool:
    rule, start, end = match
    if rule.code_id != veto.code_id:
        return False
    targets = veto.params.get("rules")
    if targets and rule.id not in targets:  # a targeted veto: only those rules
        return False
    scope = veto.params.get("scope", "match")
    if scope == "segment":
        return True
    if scope == "match":
        return any(s < end and start < e for s, e in spans)
    match_sents = {sent_starts[i] for i in range(start, end)}
    return any(sent_starts[i] in match_sents for s, e in spans for i in range(s, e))


def len_doc(doc: Doc) -> int:
    """Characters in ``doc`` (without building ``doc.text``)."""
    if not len(doc):
        return 0
    last = doc[-1]
    return last.idx + len(last.text_with_ws)


def match_rows(arrays: TokenArrays, compiled: CompiledRules,
               segments: Sequence[tuple[str, str, int, str | None]],
               opening: frozenset[str] | None = None) -> list[tuple]:
    """Return the match rows (``MATCH_COLUMNS`` tuples) of a batch, in doc order.

    Args:
        arrays: the parsed coded segments of one language.
        compiled: the rules of that language.
        segments: per doc of ``arrays``: (segment id, doc id, segment start, text);
            the text gives the evidence when the doc was parsed from it.
        opening: ids of the segments that open their document (``opening.opening_units``);
            None: each document's first row in ``segments``.
    """
    from pipeline.code.sparse import segment_column

    cols = _match_columns(arrays, compiled, segments)
    if cols is None:
        return []
    docs, cr, (source, index), start, end = cols
    code_ids, rule_ids, weights, _ = compiled.rule_columns()
    scores, keep = _opening_scores(compiled, segments, docs, cr, weights, opening)
    if keep is not None:
        docs, cr, start, end, scores = docs[keep], cr[keep], start[keep], end[keep], scores[keep]
        index = index[keep]
    evidence = source.take(index).to_pylist()
    seg_ids = np.asarray(segment_column(segments, 0), dtype=object)
    doc_ids = np.asarray(segment_column(segments, 1), dtype=object)
    # A million tuples of strings and numbers hold no reference cycles, but creating
    # them triggers young-generation collections that scan them all: pause the GC.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return list(zip(seg_ids[docs].tolist(), doc_ids[docs].tolist(), code_ids[cr].tolist(),
                        rule_ids[cr].tolist(), evidence, start.tolist(), end.tolist(),
                        scores.tolist()))
    finally:
        if enabled:
            gc.enable()


def match_frame(arrays: TokenArrays, compiled: CompiledRules,
                segments: Sequence[tuple[str, str, int, str | None]],
                opening: frozenset[str] | None = None, coded=None) -> pd.DataFrame:  # noqa: ANN001
    """The match rows of a batch as a table, in the order of the matches table.

    The rows of ``match_rows`` with int64 start/end and float64 score, sorted by doc
    (the order of ``segments``), then start, end, code id and rule id - the order
    ``match_segments`` and a chunk give them - and built column by column: ids are
    taken from per-segment and per-rule arrays, only the evidence is a string per row.
    ``coded``: the tokens as a chunk entry's string indexes (``sparse.Coded``): the
    matches are then found at the trie's starts only (same rows).
    """
    from pipeline.code.sparse import segment_column

    # Unordered: the sort below puts rows in order, and rows it leaves tied (same doc,
    # start, end, code and rule) are equal in every column (evidence and score follow
    # from the span and the rule), so their order shows nowhere.
    cols = _match_columns(arrays, compiled, segments, in_doc_order=False, coded=coded)
    if cols is None:
        return _empty_matches()
    docs, cr, (source, index), start, end = cols
    code_ids, rule_ids, weights, _ = compiled.rule_columns()
    scores, keep = _opening_scores(compiled, segments, docs, cr, weights, opening)
    if keep is not None:
        docs, cr, start, end, scores = docs[keep], cr[keep], start[keep], end[keep], scores[keep]
        index = index[keep]
    if not len(cr):
        return _empty_matches()
    # code and rule ids ranked as strings compare
    code_rank = pd.factorize(code_ids, sort=True)[0]
    rule_rank, rule_names = pd.factorize(rule_ids, sort=True)
    order = stable_order([docs, start, end, code_rank[cr], rule_rank[cr]])
    docs, cr, start, end, scores = docs[order], cr[order], start[order], end[order], scores[order]

    def text(values: list | pa.Array, rows: np.ndarray) -> ArrowStringArray:
        strings = values if isinstance(values, pa.Array) else arrow_strings(values)
        return ArrowStringArray(strings.take(rows), dtype=STR_DTYPE)

    # ids: a few distinct strings each, and the evidence's distinct forms, taken by index
    # (no Python object per row)
    seg_ids, doc_ids = segment_column(segments, 0), segment_column(segments, 1)
    seg_src, doc_src = getattr(segments, "arrow", None) or (seg_ids, doc_ids)
    frame = pd.DataFrame({
        C.SEGMENT_ID: text(seg_src, docs), C.DOC_ID: text(doc_src, docs),
        C.CODE_ID: text(code_ids.tolist(), cr), C.RULE_ID: text(rule_ids.tolist(), cr),
        C.EVIDENCE: text(source, index[order]), C.START: start, C.END: end, C.SCORE: scores})
    # the ids as integer keys, for aggregate_matches (no factorising them again)
    ids = (seg_ids, doc_ids, code_ids.tolist(), rule_ids.tolist())
    if set().union(*(map(type, values) for values in ids)) <= {str}:  # as the columns hold
        remember_keys(frame, MatchKeys(docs, cr, (seg_ids, doc_ids),
                                       (code_rank, rule_rank, rule_names)))
    return frame


def _match_columns(arrays: TokenArrays, compiled: CompiledRules,
                   segments: Sequence[tuple[str, str, int, str | None]],
                   in_doc_order: bool = True, coded=None) -> tuple | None:  # noqa: ANN001
    """(doc, rule index, evidence, start, end) of every match of a batch; None: none.

    Rows are in doc order (``in_doc_order``; else in no set order, for a caller that
    sorts them); start/end are document offsets (segment start + character offset in
    the segment); the evidence is ``code.evidence.evidence_parts``' (strings, index).
    ``coded``: the tokens as string indexes (``sparse.Coded``), for the sparse path.
    """
    from pipeline.code.sparse import segment_column

    if not len(arrays):
        return None
    from pipeline.code.sparse import doc_index, sparse_batch
    from pipeline.code.vector import vector_matches

    types = compiled.types
    sparse = sparse_batch(arrays, compiled, coded)
    if sparse is not None:  # the same matches, computed at the trie's starts only
        cr, cs, ce = vector_matches(arrays, compiled, None, sparse.context(), sparse.hits())
        if not len(cr):
            return None
        idx, char_end = sparse.offsets, sparse.char_end
    else:
        tid = types.ids(arrays.vocab, arrays.orth, arrays.lemma)
        ctx = _Context(arrays, compiled, tid)
        cr, cs, ce = vector_matches(arrays, compiled, tid, ctx)
        if not len(cr):
            return None
        lengths = types.lengths.data[tid]
        idx = arrays.char_offsets(lengths, arrays.doc_starts())
        char_end = idx + lengths
    docs = doc_index(arrays, cs)
    if in_doc_order:  # one row per match, in doc order (the caller sorts within segments)
        order = np.argsort(docs, kind="stable")
        cr, cs, ce, docs = cr[order], cs[order], ce[order], docs[order]
    c0, c1 = idx[cs], char_end[ce - 1]
    texts = evidence_parts(arrays, segments, docs, (cs, ce), (c0, c1), char_end,
                           compiled.rule_columns()[3][cr])
    base = np.asarray(segment_column(segments, 2), dtype=np.int64)[docs]
    return docs, cr, texts, base + c0, base + c1


def _empty_matches() -> pd.DataFrame:
    # a copy of one made once: building the frame costs ~50 times more than copying it
    if not _EMPTY:
        _EMPTY.append(pd.DataFrame({
            C.SEGMENT_ID: pd.Series(dtype="str"), C.DOC_ID: pd.Series(dtype="str"),
            C.CODE_ID: pd.Series(dtype="str"), C.RULE_ID: pd.Series(dtype="str"),
            C.EVIDENCE: pd.Series(dtype="str"), C.START: pd.Series(dtype="int64"),
            C.END: pd.Series(dtype="int64"), C.SCORE: pd.Series(dtype="float64"),
        })[C.MATCH_COLUMNS])
    return _EMPTY[0].copy()


_EMPTY: list[pd.DataFrame] = []


def match_segments(segments: pd.DataFrame, docs: Sequence[Doc],
                   compiled: CompiledRules, opening: frozenset[str] | None = None,
                   ) -> pd.DataFrame:
    """Apply compiled rules to the coded segments of the compiled language.

    Args:
        segments: segments table (segment_id, doc_id, start, coded, lang).
            Rows with ``coded`` False, or with another ``lang`` than the rules,
            are skipped (a missing ``coded`` column counts as all coded).
        docs: Docs aligned with the segment rows.
        compiled: ``compile_rules(codebook, lang)``.
        opening: ids of the segments that open their document (``first_coded_units``);
            None: the first coded row of each document in ``segments``.

    Returns:
        ``columns.MATCH_COLUMNS``, one row per surviving match, in segment row
        order then text order; ``start``/``end`` are document offsets (segment
        start + character offset in the segment) and ``score`` is the rule weight.

    Raises:
        UsageError: docs are not aligned with segments.
    """
    if len(docs) != len(segments):
        raise UsageError(f"{len(docs)} docs for {len(segments)} segments: not aligned")
    coded = (segments[C.CODED].tolist() if C.CODED in segments.columns
             else [True] * len(segments))
    langs = (segments[C.LANG].tolist() if C.LANG in segments.columns
             else [compiled.lang] * len(segments))
    texts = (segments[C.TEXT].tolist() if C.TEXT in segments.columns
             else [None] * len(segments))
    keep = [k for k, (is_coded, lang) in enumerate(zip(coded, langs, strict=True))
            if bool(is_coded) and lang == compiled.lang]
    seg_ids, doc_ids = segments[C.SEGMENT_ID].tolist(), segments[C.DOC_ID].tolist()
    starts = segments[C.START].tolist()
    arrays = TokenArrays.from_docs([docs[k] for k in keep])
    if opening is None and compiled.opening_factors() is not None:
        opening = first_coded_units(segments)
    rows = match_rows(arrays, compiled, [(seg_ids[k], doc_ids[k], int(starts[k]), texts[k])
                                         for k in keep], opening)
    if not rows:
        return _empty_matches()
    out = pd.DataFrame(rows, columns=C.MATCH_COLUMNS)
    # Stable sort inside each segment; segments keep their row order.
    out["_seg"] = pd.factorize(out[C.SEGMENT_ID])[0]
    out = out.sort_values(["_seg", C.START, C.END, C.CODE_ID, C.RULE_ID], kind="stable")
    return out.drop(columns="_seg").reset_index(drop=True).astype(
        {C.START: "int64", C.END: "int64", C.SCORE: "float64"})
