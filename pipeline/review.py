"""Human review of automatic codings: pure functions on tables.

Auto-coding is a proposal; the researcher decides. This module builds the review
table (one row per segment x proposed code), validates decisions read back from a
review file, and derives the final coding: automatic codings overridden by the
latest review decisions. A decision records the content hash of the segment it was
made on; when the segment's text has changed since, the decision is *stale*: it is
flagged, never silently applied or dropped.

Reading a filled-in review sheet into decisions is :mod:`pipeline.review_sheet`;
file reading and writing live in :mod:`pipeline.review_io` and the CLI.

reviews.csv (append-only, in the coded folder) has the columns in
:data:`REVIEW_COLUMNS`. ``decision`` is one of:

* ``accept`` -- the proposed code applies to the segment;
* ``reject`` -- it does not;
* ``add`` -- a code the coder added (applies, like ``accept``);
* ``reviewed`` -- ``code_id`` is empty: the coder looked at the segment and
  added nothing (marks the segment as reviewed for agreement).
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline import columns as C
from pipeline.errors import ReviewError, excerpt
from pipeline.segment import content_hash as _segment_hash

# --- columns (extension of pipeline.columns; review tables only) ---------------
TIMESTAMP = "timestamp"      # ISO 8601 UTC time of the import
DECISION = "decision"        # accept | reject | add | reviewed
MEMO = "memo"                # free text of the coder
SOURCE = "source"            # name of the imported review file
CODE_LABEL = "code_label"
ADD_CODES = "add_codes"      # review sheet: code ids or labels to add, ";"- or ","-separated
REVIEW_STATUS = "review"     # final codings: auto | accepted | added | stale
STALE_REASON = "reason"
HIGHLIGHTS = "highlights"    # review table only: [(start, end)] offsets into the segment text

REVIEW_COLUMNS = [C.CODER, TIMESTAMP, C.SEGMENT_ID, C.CONTENT_HASH, C.CODE_ID, DECISION, MEMO, SOURCE]
EXPORT_COLUMNS = [C.SEGMENT_ID, C.DOC_ID, C.SPEAKER, C.CONTENT_HASH, C.CODE_ID, CODE_LABEL,
                  C.METHOD, C.SCORE, C.RULE, C.EVIDENCE, C.TEXT, DECISION, ADD_CODES, MEMO]
EDITABLE_COLUMNS = [DECISION, ADD_CODES, MEMO]
FINAL_COLUMNS = C.CODING_COLUMNS + [REVIEW_STATUS, C.CODER]
STALE_COLUMNS = [C.SEGMENT_ID, C.CODE_ID, C.CODER, TIMESTAMP, DECISION, STALE_REASON]

DECISIONS = ("accept", "reject", "add", "reviewed")
SHEET_DECISIONS = ("accept", "reject")   # what a coder types in the decision column
APPLIES = {"accept": True, "add": True, "reject": False}

FINAL_FILE = "final_codings"   # .parquet + .csv in the coded folder
STALE_FILE = "review_stale.csv"

MARK_OPEN, MARK_CLOSE = "[[", "]]"   # evidence markers in CSV review files
def content_hash(text: str) -> str:
    """Return the segment content hash (the one :mod:`pipeline.segment` stores)."""
    return _segment_hash(str(text))


def empty_reviews() -> pd.DataFrame:
    """Return an empty reviews table with the reviews.csv columns."""
    return pd.DataFrame({c: pd.Series([], dtype=object) for c in REVIEW_COLUMNS})


# --- export ---------------------------------------------------------------------

def _local_spans(spans: Iterable[tuple[int, int]], seg_start: int, seg_len: int) -> list[tuple[int, int]]:
    """Clip document-offset spans to a segment and merge overlaps (segment offsets)."""
    out: list[tuple[int, int]] = []
    for s, e in sorted(spans):
        s, e = max(0, int(s) - seg_start), min(seg_len, int(e) - seg_start)
        if e <= s:
            continue
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    # A span covering the whole segment (a model coding) highlights nothing useful.
    return [] if out == [(0, seg_len)] else out


def build_review_table(segments: pd.DataFrame, codings: pd.DataFrame,
                       matches: pd.DataFrame | None = None, *,
                       labels: Mapping[str, str] | None = None,
                       proposed_only: bool = False) -> pd.DataFrame:
    """Return the review table: one row per segment x proposed code.

    Args:
        segments: the segments table.
        codings: automatic codings (the proposals).
        matches: rule matches; when given, every match of the code in the segment is
            highlighted, else only the best evidence of the coding.
        labels: code id -> label shown next to the id.
        proposed_only: leave out coded segments without any proposal. By default they
            get one row with an empty code so the coder can add codes (recall).

    Returns:
        :data:`EXPORT_COLUMNS` plus :data:`HIGHLIGHTS` (list of (start, end) offsets
        into the row's text), in segment order then code order.
    """
    labels = dict(labels or {})
    segs = segments
    if C.CODED in segs.columns:
        segs = segs[segs[C.CODED].astype(bool)]
    spans: dict[tuple[str, str], list[tuple[int, int]]] = {}
    if matches is not None and len(matches):
        for sid, cid, s, e in zip(matches[C.SEGMENT_ID], matches[C.CODE_ID],
                                  matches[C.START], matches[C.END]):
            spans.setdefault((str(sid), str(cid)), []).append((int(s), int(e)))
    by_seg: dict[str, list[dict]] = {}
    for rec in codings.to_dict("records"):
        by_seg.setdefault(str(rec[C.SEGMENT_ID]), []).append(rec)
    rows = []
    for seg in segs.to_dict("records"):
        sid, text = str(seg[C.SEGMENT_ID]), str(seg[C.TEXT])
        seg_start = int(seg[C.START])
        base = {C.SEGMENT_ID: sid, C.DOC_ID: str(seg[C.DOC_ID]),
                C.SPEAKER: str(seg.get(C.SPEAKER, "") or ""),
                C.CONTENT_HASH: str(seg.get(C.CONTENT_HASH) or content_hash(text)),
                C.TEXT: text, DECISION: "", ADD_CODES: "", MEMO: ""}
        props = sorted(by_seg.get(sid, []), key=lambda r: str(r[C.CODE_ID]))
        for rec in props:
            cid = str(rec[C.CODE_ID])
            found = spans.get((sid, cid)) or [(rec[C.START], rec[C.END])]
            rows.append({**base, C.CODE_ID: cid, CODE_LABEL: labels.get(cid, ""),
                         C.METHOD: str(rec.get(C.METHOD, "")), C.SCORE: float(rec[C.SCORE]),
                         C.RULE: str(rec.get(C.RULE, "")), C.EVIDENCE: str(rec.get(C.EVIDENCE, "")),
                         HIGHLIGHTS: _local_spans(found, seg_start, len(text))})
        if not props and not proposed_only:
            rows.append({**base, C.CODE_ID: "", CODE_LABEL: "", C.METHOD: "", C.SCORE: np.nan,
                         C.RULE: "", C.EVIDENCE: "", HIGHLIGHTS: []})
    return pd.DataFrame(rows, columns=EXPORT_COLUMNS + [HIGHLIGHTS])


REVIEW_BATCH = 20_000   # coded segments per piece of a streamed review file


def review_batches(segments: pd.DataFrame, codings: pd.DataFrame,
                   matches: pd.DataFrame | None = None, *,
                   labels: Mapping[str, str] | None = None, proposed_only: bool = False,
                   batch: int = REVIEW_BATCH) -> Iterator[pd.DataFrame]:
    """:func:`build_review_table` in pieces of ``batch`` coded segments, in order.

    Concatenated, the pieces are the whole table; each is built from its segments'
    codings and matches only, so a file can be written piece by piece (the rows of a
    million segments as Python dicts took tens of GB).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    segs = segments[segments[C.CODED].astype(bool)] if C.CODED in segments.columns else segments
    ids = segs[C.SEGMENT_ID].astype(str)
    if len(segs) <= batch or not ids.is_unique:   # one piece (repeated ids: as a whole)
        yield build_review_table(segs, codings, matches, labels=labels,
                                 proposed_only=proposed_only)
        return
    value_set = pa.array(ids, type=pa.large_string())

    def located(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Each row's segment position, rows sorted by it (stable), and those positions."""
        where = pc.index_in(pa.array(table[C.SEGMENT_ID].astype(str), type=pa.large_string()),
                            value_set=value_set).fill_null(-1).to_numpy()
        order = np.argsort(where, kind="stable")
        return order, np.asarray(where)[order]

    pieces = [(codings, *located(codings))]
    if matches is not None and len(matches):
        pieces.append((matches, *located(matches)))
    empty = True
    for lo in range(0, len(segs), batch):
        hi = lo + batch
        taken = [table.iloc[np.sort(order[np.searchsorted(at, lo):np.searchsorted(at, hi)])]
                 for table, order, at in pieces]
        piece = build_review_table(segs.iloc[lo:hi], taken[0], taken[1] if len(taken) > 1
                                   else None, labels=labels, proposed_only=proposed_only)
        if len(piece):   # an empty piece has untyped columns: concatenated, they widen
            empty = False
            yield piece
    if empty:
        yield build_review_table(segs.iloc[:0], codings.iloc[:0], None, labels=labels,
                                 proposed_only=proposed_only)


def mark_text(text: str, spans: Iterable[tuple[int, int]]) -> str:
    """Return ``text`` with ``[[`` ``]]`` around each span (CSV highlighting)."""
    out, pos = [], 0
    for s, e in spans:
        out += [text[pos:s], MARK_OPEN, text[s:e], MARK_CLOSE]
        pos = e
    out.append(text[pos:])
    return "".join(out)


def strip_markers(text: str) -> str:
    """Remove the evidence markers added by :func:`mark_text`."""
    return str(text).replace(MARK_OPEN, "").replace(MARK_CLOSE, "")


# --- reading reviews back ------------------------------------------------------

def cell_raw(value: object) -> str:
    """Return a cell as a string without stripping (text must compare exactly)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return str(value)


def validate_reviews(reviews: pd.DataFrame, path: object) -> pd.DataFrame:
    """Check a reviews table read from disk and return it with string columns.

    Raises:
        ReviewError: a column is missing or a decision is unknown (naming the row).
    """
    missing = [c for c in REVIEW_COLUMNS if c != SOURCE and c not in reviews.columns]
    if missing:
        raise ReviewError(f"{path}: missing column(s) {', '.join(missing)}")
    df = reviews.copy()
    for col in REVIEW_COLUMNS:
        if col not in df.columns:
            df[col] = ""
        df[col] = [cell_raw(v) for v in df[col]]
    bad = ~df[DECISION].isin(DECISIONS)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0]) + 2
        raise ReviewError(f"{path}, row {row}: unknown decision "
                          f"{excerpt(df[DECISION].iloc[row - 2])!r}")
    return df[REVIEW_COLUMNS]


# --- final coding -----------------------------------------------------------------

def _ordered(reviews: pd.DataFrame) -> pd.DataFrame:
    """Reviews in decision order: by timestamp, then by order in the file."""
    df = reviews.reset_index(drop=True)
    return df.iloc[np.argsort(df[TIMESTAMP].astype(str).to_numpy(), kind="stable")]


def classify(reviews: pd.DataFrame, segments: pd.DataFrame) -> pd.DataFrame:
    """Return the reviews with a ``stale`` reason ("" when the decision is current).

    A decision is stale when its segment no longer exists or its text changed.
    """
    current = dict(zip(segments[C.SEGMENT_ID].astype(str),
                       segments[C.CONTENT_HASH].astype(str))) if len(segments) else {}
    reasons = []
    for sid, h in zip(reviews[C.SEGMENT_ID].astype(str), reviews[C.CONTENT_HASH].astype(str)):
        if sid not in current:
            reasons.append("segment no longer exists")
        elif current[sid] != h:
            reasons.append("segment text changed since the decision")
        else:
            reasons.append("")
    out = reviews.copy()
    out[STALE_REASON] = reasons
    return out


@dataclass
class FinalCoding:
    """Result of :func:`final_codings`."""

    codings: pd.DataFrame   # FINAL_COLUMNS
    stale: pd.DataFrame     # STALE_COLUMNS: latest decisions not applied


def final_codings(codings: pd.DataFrame, reviews: pd.DataFrame,
                  segments: pd.DataFrame) -> FinalCoding:
    """Return automatic codings overridden by the latest current review decisions.

    Per segment x code the latest decision applies when it was made on the current
    text of the segment. When the latest decision is stale it is listed in
    ``stale``; the latest current one (if any) still applies and otherwise the
    automatic coding stays, marked ``stale`` in the review column.
    """
    seg_idx = segments.set_index(segments[C.SEGMENT_ID].astype(str))
    rev = classify(_ordered(reviews[reviews[C.CODE_ID].astype(str) != ""]), segments)
    applied: dict[tuple[str, str], dict] = {}
    stale_latest: dict[tuple[str, str], dict] = {}
    for rec in rev.to_dict("records"):
        key = (str(rec[C.SEGMENT_ID]), str(rec[C.CODE_ID]))
        if rec[STALE_REASON]:
            stale_latest[key] = rec
        else:
            applied[key] = rec
            stale_latest.pop(key, None)   # a newer current decision supersedes
    out = []
    auto_keys = set()
    for rec in codings.to_dict("records"):
        key = (str(rec[C.SEGMENT_ID]), str(rec[C.CODE_ID]))
        auto_keys.add(key)
        d = applied.get(key)
        if d is not None and not APPLIES[d[DECISION]]:
            continue
        status = "accepted" if d is not None else ("stale" if key in stale_latest else "auto")
        out.append({**{c: rec.get(c) for c in C.CODING_COLUMNS}, REVIEW_STATUS: status,
                    C.CODER: d[C.CODER] if d is not None else ""})
    for key, d in applied.items():
        if key in auto_keys or not APPLIES[d[DECISION]]:
            continue
        seg = seg_idx.loc[key[0]]
        out.append({C.SEGMENT_ID: key[0], C.DOC_ID: str(seg[C.DOC_ID]), C.CODE_ID: key[1],
                    C.METHOD: "human", C.SCORE: 1.0, C.RULE: f"human:{d[C.CODER]}",
                    C.RULES: "", C.EVIDENCE: "", C.N_MATCHES: 0,
                    C.START: int(seg[C.START]), C.END: int(seg[C.END]),
                    REVIEW_STATUS: "added", C.CODER: d[C.CODER]})
    final = pd.DataFrame(out, columns=FINAL_COLUMNS)
    final = _sort_like_segments(final, segments)
    stale = pd.DataFrame([{c: d[c] for c in STALE_COLUMNS} for d in stale_latest.values()],
                         columns=STALE_COLUMNS)
    return FinalCoding(final, stale.sort_values([C.SEGMENT_ID, C.CODE_ID], kind="stable")
                       .reset_index(drop=True))


def _sort_like_segments(df: pd.DataFrame, segments: pd.DataFrame) -> pd.DataFrame:
    """Sort a codings-like table by doc, segment order, code (the codings order)."""
    order = {sid: i for i, sid in enumerate(segments[C.SEGMENT_ID].astype(str))}
    key = df[C.SEGMENT_ID].astype(str).map(order).fillna(len(order)).astype(int)
    return (df.assign(_k=key).sort_values([C.DOC_ID, "_k", C.CODE_ID], kind="stable")
            .drop(columns="_k").reset_index(drop=True))


# --- agreement input ----------------------------------------------------------------

AUTO_CODER, REVIEW_CODER = "auto", "review"


@dataclass
class ReviewComparison:
    """Auto-coding vs the reviewed coding on the fully reviewed segments.

    ``auto`` and ``review`` are long coding tables (segment_id, doc_id, code_id,
    coder; a row with an empty code_id marks a segment without codes), the input
    shape of :func:`pipeline.agreement.to_matrix`; pass ``segments`` as its
    ``segments`` argument so both are complete over the same units.
    """

    auto: pd.DataFrame
    review: pd.DataFrame
    segments: list[str]

    def matrices(self, codes: Iterable[str] | None = None) -> dict[str, pd.DataFrame]:
        """Aligned boolean matrices {"auto": ..., "review": ...} for ``agreement()``."""
        from pipeline.agreement import align, to_matrix
        mats = [to_matrix(df, name=name, source=name, segments=self.segments)
                for name, df in ((AUTO_CODER, self.auto), (REVIEW_CODER, self.review))]
        aligned, _ = align(mats, list(codes) if codes is not None else None)
        return {AUTO_CODER: aligned[0], REVIEW_CODER: aligned[1]}


def auto_vs_review(codings: pd.DataFrame, reviews: pd.DataFrame,
                   segments: pd.DataFrame) -> ReviewComparison:
    """Compare auto-coding with the latest current review decisions.

    A segment counts as reviewed when it has at least one current decision and
    every automatic proposal on it has one (a half-reviewed segment would count
    undecided proposals as wrong or right without anyone saying so). On a reviewed
    segment the review's codes are the accepted and added ones. Stale decisions
    are left out. This is the input of ``qcode agreement`` for auto vs reviewed.
    """
    cols = [C.SEGMENT_ID, C.DOC_ID, C.CODE_ID, C.CODER]
    rev = classify(_ordered(reviews), segments)
    rev = rev[rev[STALE_REASON] == ""]
    latest: dict[tuple[str, str], bool] = {}
    for rec in rev[rev[C.CODE_ID].astype(str) != ""].to_dict("records"):
        latest[(str(rec[C.SEGMENT_ID]), str(rec[C.CODE_ID]))] = APPLIES[rec[DECISION]]
    proposals: dict[str, list[str]] = {}
    for sid, cid in zip(codings[C.SEGMENT_ID].astype(str), codings[C.CODE_ID].astype(str)):
        proposals.setdefault(sid, []).append(cid)
    touched = set(rev[C.SEGMENT_ID].astype(str))
    doc_of = dict(zip(segments[C.SEGMENT_ID].astype(str), segments[C.DOC_ID].astype(str)))
    reviewed = [sid for sid in doc_of if sid in touched
                and all((sid, cid) in latest for cid in proposals.get(sid, []))]
    auto_rows, review_rows = [], []
    for sid in reviewed:
        a = sorted(set(proposals.get(sid, [])))
        r = sorted(cid for (s, cid), ok in latest.items() if s == sid and ok)
        auto_rows += [(sid, doc_of[sid], c, AUTO_CODER) for c in a or [""]]
        review_rows += [(sid, doc_of[sid], c, REVIEW_CODER) for c in r or [""]]
    return ReviewComparison(pd.DataFrame(auto_rows, columns=cols),
                            pd.DataFrame(review_rows, columns=cols), reviewed)


def review_summary(comparison: ReviewComparison) -> pd.DataFrame:
    """Per code: how well auto-coding matches the review.

    Columns: code_id, n_segments (fully reviewed), tp, fp, fn, precision, recall.
    High precision and recall over enough segments suggest the code can be left to
    auto-coding; ``qcode agreement`` adds kappa and confidence intervals.
    """
    n = len(comparison.segments)
    a = set(zip(comparison.auto[C.SEGMENT_ID], comparison.auto[C.CODE_ID]))
    r = set(zip(comparison.review[C.SEGMENT_ID], comparison.review[C.CODE_ID]))
    rows = []
    for cid in sorted({c for _, c in a | r if c}):
        ac, rc = {s for s, c in a if c == cid}, {s for s, c in r if c == cid}
        tp, fp, fn = len(ac & rc), len(ac - rc), len(rc - ac)
        rows.append({C.CODE_ID: cid, "n_segments": n, "tp": tp, "fp": fp, "fn": fn,
                     "precision": tp / (tp + fp) if tp + fp else np.nan,
                     "recall": tp / (tp + fn) if tp + fn else np.nan})
    return pd.DataFrame(rows, columns=[C.CODE_ID, "n_segments", "tp", "fp", "fn",
                                       "precision", "recall"])
