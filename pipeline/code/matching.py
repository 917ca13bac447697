"""Applying compiled rules to parsed segments: hits -> rule matches.

Per doc: one trie pass + one Matcher pass give the spans of every rule channel;
then per rule: overlap filtering, proximity pairing, negation, and finally the
exclude rules veto matches of their own code.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
from spacy.tokens import Doc

from pipeline import columns as C
from pipeline.code.compiled import MAIN, SIDE_A, SIDE_B, CompiledRules
from pipeline.codebook import Rule
from pipeline.errors import UsageError

NEGATION_WINDOW = 3      # default: tokens before a match that may hold a negation cue
# negation_scope "clause": a sentence is also split at commas and these subordinators
# (the word starts a new clause), so verb-final Dutch negation is seen.
CLAUSE_WORDS = frozenset({"omdat", "dat", "want", "maar", "terwijl", "als",
                          "because", "but", "that", "while", "if"})
CLAUSE_PUNCT = frozenset({",", ";", ":"})
EVIDENCE_LIMIT = 80      # proximity evidence spans two hits and can be long


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
    taken: list[tuple[int, int]] = []
    used: set[int] = set()
    for start, end in sorted(spans, key=lambda s: (s[0] - s[1], s[0])):
        if not any(i in used for i in range(start, end)):
            taken.append((start, end))
            used.update(range(start, end))
    return sorted(taken)


def _sentence_starts(doc: Doc) -> list[int]:
    """Token index -> index of the first token of its sentence."""
    if not doc.has_annotation("SENT_START"):
        return [0] * len(doc)
    # From the SENT_START array (1 = starts a sentence), without Span/Token objects.
    out, current = [], 0
    for i, flag in enumerate(doc.to_array("SENT_START").tolist()):
        if flag == 1:
            current = i
        out.append(current)
    return out


def _negated(doc: Doc, start: int, sent_starts: list[int], cues: frozenset[str],
             window: int = NEGATION_WINDOW) -> bool:
    first = max(sent_starts[start] if start < len(doc) else 0, start - window)
    return any(_is_cue(doc, i, cues) for i in range(first, start))


def _is_cue(doc: Doc, i: int, cues: frozenset[str]) -> bool:
    return doc[i].lower_ in cues or doc[i].lemma_.lower() in cues


def clause_ids(doc: Doc, sent_starts: list[int]) -> list[int]:
    """Token index -> clause number: sentences split after , ; : and before subordinators."""
    out, clause = [], 0
    for i, token in enumerate(doc):
        if i and (sent_starts[i] == i or token.lower_ in CLAUSE_WORDS
                  or doc[i - 1].lower_ in CLAUSE_PUNCT):
            clause += 1
        out.append(clause)
    return out


def _negated_clause(doc: Doc, start: int, end: int, clauses: list[int],
                    cues: frozenset[str]) -> bool:
    """A cue anywhere in the clause(s) of the match, outside the match itself."""
    wanted = set(clauses[start:end])
    lo, hi = start, end
    while lo > 0 and clauses[lo - 1] in wanted:
        lo -= 1
    while hi < len(doc) and clauses[hi] in wanted:
        hi += 1
    return any(_is_cue(doc, i, cues) for i in (*range(lo, start), *range(end, hi)))


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


def doc_matches(doc: Doc, compiled: CompiledRules) -> list[_Match]:
    """Return the surviving rule matches of one doc (token spans)."""
    hits = compiled.hits(doc)
    if not hits:
        return []
    sent_starts = _sentence_starts(doc)
    clauses: list[int] | None = None
    candidates: list[_Match] = []
    vetoes: list[tuple[Rule, list[tuple[int, int]]]] = []
    for index, rule in enumerate(compiled.rules):
        if rule.kind == "exclude":
            spans = hits.get(compiled.channel(index, MAIN), [])
            if spans:
                vetoes.append((rule, spans))
            continue
        if rule.kind == "proximity":
            a = hits.get(compiled.channel(index, SIDE_A), [])
            b = hits.get(compiled.channel(index, SIDE_B), [])
            spans = _pair(a, b, rule.params["window"], rule.params["order"]) if a and b else []
        else:
            spans = hits.get(compiled.channel(index, MAIN), [])
        if not spans:
            continue
        for start, end in longest_first(spans):
            if rule.negation != "ignore":
                if compiled.negation_scope == "clause":
                    if clauses is None:
                        clauses = clause_ids(doc, sent_starts)
                    negated = _negated_clause(doc, start, end, clauses, compiled.negation_cues)
                else:
                    negated = _negated(doc, start, sent_starts, compiled.negation_cues,
                                       compiled.negation_window)
                if negated != (rule.negation == "require"):
                    continue
            candidates.append(_Match(rule, start, end))
    for veto, spans in vetoes:
        candidates = [m for m in candidates
                      if not _vetoed(m, veto, spans, sent_starts)]
    return _limit(candidates, compiled)


def _limit(candidates: list[_Match], compiled: CompiledRules) -> list[_Match]:
    """Keep at most ``max_matches`` matches per rule: the longest, then the earliest."""
    counts: dict[str, int] = {}
    for m in candidates:
        counts[m.rule.id] = counts.get(m.rule.id, 0) + 1
    over = {m.rule.id: limit for m in candidates
            if (limit := compiled.max_matches(m.rule)) is not None and counts[m.rule.id] > limit}
    if not over:
        return candidates
    drop: set[int] = set()
    for rule_id, limit in over.items():
        mine = [k for k, m in enumerate(candidates) if m.rule.id == rule_id]
        ranked = sorted(mine, key=lambda k: (candidates[k].start - candidates[k].end,
                                             candidates[k].start))
        drop.update(ranked[limit:])
    return [m for k, m in enumerate(candidates) if k not in drop]


def _vetoed(match: _Match, veto: Rule, spans: list[tuple[int, int]],
            sent_starts: list[int]) -> bool:
    if match.rule.code_id != veto.code_id:
        return False
    targets = veto.params.get("rules")
    if targets and match.rule.id not in targets:  # a targeted veto: only those rules
        return False
    scope = veto.params.get("scope", "match")
    if scope == "segment":
        return True
    if scope == "match":
        return any(s < match.end and match.start < e for s, e in spans)
    match_sents = {sent_starts[i] for i in range(match.start, match.end)}
    return any(sent_starts[i] in match_sents for s, e in spans for i in range(s, e))


def len_doc(doc: Doc) -> int:
    """Characters in ``doc`` (without building ``doc.text``)."""
    if not len(doc):
        return 0
    last = doc[-1]
    return last.idx + len(last.text_with_ws)


def _empty_matches() -> pd.DataFrame:
    return pd.DataFrame({
        C.SEGMENT_ID: pd.Series(dtype="str"), C.DOC_ID: pd.Series(dtype="str"),
        C.CODE_ID: pd.Series(dtype="str"), C.RULE_ID: pd.Series(dtype="str"),
        C.EVIDENCE: pd.Series(dtype="str"), C.START: pd.Series(dtype="int64"),
        C.END: pd.Series(dtype="int64"), C.SCORE: pd.Series(dtype="float64"),
    })[C.MATCH_COLUMNS]


def match_segments(segments: pd.DataFrame, docs: Sequence[Doc],
                   compiled: CompiledRules) -> pd.DataFrame:
    """Apply compiled rules to the coded segments of the compiled language.

    Args:
        segments: segments table (segment_id, doc_id, start, coded, lang).
            Rows with ``coded`` False, or with another ``lang`` than the rules,
            are skipped (a missing ``coded`` column counts as all coded).
        docs: Docs aligned with the segment rows.
        compiled: ``compile_rules(codebook, lang)``.

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
    rows = []
    for seg_id, doc_id, seg_start, is_coded, lang, doc, seg_text in zip(
            segments[C.SEGMENT_ID].tolist(), segments[C.DOC_ID].tolist(),
            segments[C.START].tolist(), coded, langs, docs, texts, strict=True):
        if not bool(is_coded) or lang != compiled.lang:
            continue
        base = int(seg_start)
        seen = set()
        text = None  # Doc.text re-joins every token on each access: build it once per doc
        if seg_text is not None and isinstance(seg_text, str) and len(seg_text) == len_doc(doc):
            text = seg_text  # the doc was parsed from this text
        for m in doc_matches(doc, compiled):
            first, last = doc[m.start], doc[m.end - 1]
            c0, c1 = first.idx, last.idx + len(last.text)
            key = (m.rule.code_id, m.rule.id, c0, c1)
            if key in seen:
                continue
            seen.add(key)
            if text is None:
                text = doc.text
            evidence = text[c0:c1]
            if m.rule.kind == "proximity" and len(evidence) > EVIDENCE_LIMIT:
                evidence = evidence[:EVIDENCE_LIMIT - 1] + "…"
            rows.append((seg_id, doc_id, m.rule.code_id, m.rule.id, evidence,
                         base + c0, base + c1, float(m.rule.weight)))
    if not rows:
        return _empty_matches()
    out = pd.DataFrame(rows, columns=C.MATCH_COLUMNS)
    # Stable sort inside each segment; segments keep their row order.
    out["_seg"] = pd.factorize(out[C.SEGMENT_ID])[0]
    out = out.sort_values(["_seg", C.START, C.END, C.CODE_ID, C.RULE_ID], kind="stable")
    return out.drop(columns="_seg").reset_index(drop=True).astype(
        {C.START: "int64", C.END: "int64", C.SCORE: "float64"})
