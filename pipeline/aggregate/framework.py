"""Framework matrices (NVivo) and keyword-in-context listings.

A framework matrix has one row per case (a document or an attribute group) and one
column per theme; each cell holds the strongest exemplar quotes with their segment
ids, so a reader can go from the summary straight back to the transcript.
"""
from __future__ import annotations

import re
from typing import Any

import pandas as pd

from pipeline import columns as C
from pipeline.aggregate._common import apply_level, check_columns, code_order, segment_order
from pipeline.errors import UsageError

KWIC_COLUMNS = [C.SEGMENT_ID, C.DOC_ID, C.SPEAKER, C.CODE_ID, "left", "keyword", "right",
                C.START, C.END]
_TOKEN = re.compile(r"\S+")


def quote(text: str, start: int | None = None, end: int | None = None,
          max_chars: int = 160) -> str:
    """Return a one-line excerpt of ``text`` of at most ``max_chars``, centred on [start, end).

    Offsets are relative to ``text``; without them the excerpt starts at the beginning.
    Ellipses mark cuts, and cuts fall on spaces so words stay whole.
    """
    flat = str(text)
    if len(" ".join(flat.split())) <= max_chars:
        return " ".join(flat.split())
    if start is None or end is None or not 0 <= start <= end <= len(flat):
        start, end = 0, 0
    room = max(0, max_chars - (end - start))
    lo = max(0, start - room // 2)
    hi = min(len(flat), lo + max(max_chars, end - start))
    lo = max(0, hi - max_chars) if hi - lo < max_chars else lo
    if lo > 0:
        space = flat.find(" ", lo)
        lo = space + 1 if 0 <= space < start else lo
    if hi < len(flat):
        space = flat.rfind(" ", end, hi)
        hi = space if space > end else hi
    body = " ".join(flat[lo:hi].split())
    return ("…" if lo > 0 else "") + body + ("…" if hi < len(flat) else "")


def exemplars(segments: pd.DataFrame, codings: pd.DataFrame, *, case: str = C.DOC_ID,
              level: str | int = "top", per_cell: int = 2,
              max_chars: int = 160) -> pd.DataFrame:
    """Return the strongest quotes per case x code as a long table.

    Strength: coding score, then number of rule matches, then document order (so ties
    are broken the same way on every run).

    Returns:
        Columns ``case``, ``code_id``, ``rank`` (1 = strongest), ``segment_id``,
        ``score``, ``quote``.
    """
    if case not in segments.columns:
        raise UsageError(f"cannot use {case!r} as case: no such column in segments")
    check_columns(codings, [C.SEGMENT_ID, C.CODE_ID], "codings")
    seg = segment_order(segments)
    seg = seg.assign(_order=range(len(seg)))
    cod = apply_level(codings, level)
    keep = [C.SEGMENT_ID, C.CODE_ID] + [c for c in (C.SCORE, C.N_MATCHES, C.START, C.END)
                                          if c in cod.columns]
    # the texts join only the kept rows (below): merged into every coding, a million
    # segments' texts would be copied once per coding
    cols = list(dict.fromkeys([C.SEGMENT_ID, C.START, "_order", case]))
    df = cod[keep].merge(seg[cols].rename(columns={C.START: "_seg_start"}),
                         on=C.SEGMENT_ID, how="inner")
    if C.SCORE not in df.columns:
        df[C.SCORE] = 1.0
    if C.N_MATCHES not in df.columns:
        df[C.N_MATCHES] = 1
    df = df.sort_values([C.SCORE, C.N_MATCHES, "_order"], ascending=[False, False, True],
                        kind="mergesort")
    df["rank"] = df.groupby([case, C.CODE_ID]).cumcount() + 1
    df = df[df["rank"] <= per_cell]
    if C.TEXT not in df.columns:
        df = df.assign(**{C.TEXT: seg[C.TEXT].to_numpy()[df["_order"].to_numpy()]})

    none = [None] * len(df)
    spans = [df[col].tolist() if col in df.columns else none for col in (C.START, C.END)]
    quotes = [quote(text, _rel(st, s0), _rel(en, s0), max_chars) for text, st, en, s0
              in zip(df[C.TEXT].tolist(), *spans, df["_seg_start"].tolist())]
    df["quote"] = pd.Series(quotes, index=df.index, dtype=object)
    out = df[[case, C.CODE_ID, "rank", C.SEGMENT_ID, C.SCORE, "quote"]]
    out = out.rename(columns={case: "case"})
    out["case"] = out["case"].astype(str)
    return out.sort_values(["case", C.CODE_ID, "rank"], kind="mergesort").reset_index(drop=True)


def _rel(value: Any, seg_start: Any) -> int | None:
    """An offset relative to its segment's start (None when either is missing)."""
    if value is None or pd.isna(value) or pd.isna(seg_start):
        return None
    return int(value) - int(seg_start)


def framework_matrix(segments: pd.DataFrame, codings: pd.DataFrame, *, case: str = C.DOC_ID,
                     level: str | int = "top", per_cell: int = 2, max_chars: int = 160,
                     codebook: Any = None) -> pd.DataFrame:
    """Build a case x theme framework matrix of exemplar quotes.

    Each cell lists up to ``per_cell`` quotes as ``“quote” [segment_id]``, one per
    line; an empty string means the theme was not coded for that case.
    """
    long = exemplars(segments, codings, case=case, level=level, per_cell=per_cell,
                     max_chars=max_chars)
    cases = sorted(segments[case].astype(str).unique()) if case in segments.columns else []
    themes = code_order(long[C.CODE_ID].unique(), codebook, level)
    if len(long):
        cells = (long.assign(cell=lambda d: "“" + d["quote"].astype(str) + "” ["
                             + d[C.SEGMENT_ID].astype(str) + "]")
                 .groupby(["case", C.CODE_ID])["cell"].agg("\n".join))
        wide = cells.unstack(C.CODE_ID)
    else:   # nothing coded (or nothing left after a filter): an empty grid, not a crash
        wide = pd.DataFrame(dtype=object)
    wide = wide.astype(object).reindex(index=cases, columns=themes)
    wide = wide.where(wide.notna(), "")
    wide.index.name = case
    wide.columns.name = C.CODE_ID
    return wide


def kwic(segments: pd.DataFrame, codings: pd.DataFrame | None = None, *,
         code: str | None = None, term: str | None = None, window: int = 6,
         level: str | int = "code") -> pd.DataFrame:
    """Keyword in context for a code (its evidence spans) or a term.

    Args:
        segments: segments table.
        codings: codings table (needed for ``code``).
        code: list the evidence of this code (sub-codes included at ``level="all"``).
        term: list occurrences of this word or phrase, case-insensitive, on word
            boundaries; ``*`` matches any run of word characters (``eigenaar*``).
        window: tokens of context on each side.
        level: code level used to match ``code``.

    Returns:
        Columns ``segment_id``, ``doc_id``, ``speaker``, ``code_id``, ``left``,
        ``keyword``, ``right``, ``start``, ``end`` (document offsets), in document order.
    """
    if (code is None) == (term is None):
        raise UsageError("kwic needs exactly one of code= or term=")
    if window < 0:
        raise UsageError(f"kwic window must be >= 0 tokens, got {window}")
    seg = segment_order(segments)
    if not seg[C.SEGMENT_ID].is_unique:
        return _kwic_rows(seg.set_index(C.SEGMENT_ID, drop=False), codings, code, term, window,
                          level)
    # per hit: its segment's position; columns read as arrays, not cell by cell
    hits: list[tuple[int, int, int, str]] = []   # segment position, rel start, rel end, code
    starts = seg[C.START].to_numpy()
    if code is not None:
        if codings is None:
            raise UsageError("kwic by code needs the codings table")
        cod = apply_level(codings, level)
        cod = cod[cod[C.CODE_ID] == code]
        at = pd.Index(seg[C.SEGMENT_ID]).get_indexer(cod[C.SEGMENT_ID])
        spans = [cod[col].to_numpy() if col in cod.columns else [None] * len(cod)
                 for col in (C.START, C.END)]
        for k, st, en in zip(at.tolist(), *spans):
            if k < 0:
                continue
            s0 = starts[k]
            if st is None or pd.isna(st) or pd.isna(s0):
                st, en = s0, s0  # no span: show the segment opening
            hits.append((k, int(st) - int(s0), int(en) - int(s0), code))
    else:
        pattern = _term_regex(str(term))
        for k, text in enumerate(seg[C.TEXT].tolist()):
            for m in pattern.finditer(str(text)):
                hits.append((k, m.start(), m.end(), ""))
    ids, docs, speakers, texts = (seg[col].to_numpy() for col in
                                  (C.SEGMENT_ID, C.DOC_ID, C.SPEAKER, C.TEXT))
    rows = []
    for k, rs, re_, cid in hits:
        text = str(texts[k])
        # the last / first ``window`` whitespace-separated tokens (``_TOKEN``)
        left = text[:max(rs, 0)].rsplit(None, window)[-window:] if window else []
        right = text[re_:].split(None, window)[:window] if window else []
        s0 = starts[k]
        rows.append((ids[k], docs[k], speakers[k], cid,
                     " ".join(left), " ".join(text[rs:re_].split()), " ".join(right),
                     int(s0) + rs if not pd.isna(s0) else rs,
                     int(s0) + re_ if not pd.isna(s0) else re_, k))
    out = pd.DataFrame(rows, columns=[*KWIC_COLUMNS, "_o"])
    out = out.sort_values(["_o", C.START], kind="mergesort")
    return out.drop(columns="_o").reset_index(drop=True)


def _kwic_rows(seg: pd.DataFrame, codings: pd.DataFrame | None, code: str | None,
               term: str | None, window: int, level: str | int) -> pd.DataFrame:
    """``kwic`` of segments whose ids repeat, looked up by id (slow; never expected)."""
    hits: list[tuple[str, int, int, str]] = []   # segment id, rel start, rel end, code
    if code is not None:
        if codings is None:
            raise UsageError("kwic by code needs the codings table")
        cod = apply_level(codings, level)
        cod = cod[cod[C.CODE_ID] == code]
        for r in cod.itertuples(index=False):
            sid = getattr(r, C.SEGMENT_ID)
            if sid not in seg.index:
                continue
            s0 = seg.at[sid, C.START]
            st, en = getattr(r, C.START, None), getattr(r, C.END, None)
            if st is None or pd.isna(st) or pd.isna(s0):
                st, en = s0, s0  # no span: show the segment opening
            hits.append((sid, int(st) - int(s0), int(en) - int(s0), code))
    else:
        pattern = _term_regex(str(term))
        for sid, text in zip(seg[C.SEGMENT_ID], seg[C.TEXT]):
            for m in pattern.finditer(str(text)):
                hits.append((sid, m.start(), m.end(), ""))
    rows = []
    for sid, rs, re_, cid in hits:
        text = str(seg.at[sid, C.TEXT])
        left = _TOKEN.findall(text[:max(rs, 0)])[-window:] if window else []
        right = _TOKEN.findall(text[re_:])[:window] if window else []
        s0 = seg.at[sid, C.START]
        rows.append((sid, seg.at[sid, C.DOC_ID], seg.at[sid, C.SPEAKER], cid,
                     " ".join(left), " ".join(text[rs:re_].split()), " ".join(right),
                     int(s0) + rs if not pd.isna(s0) else rs,
                     int(s0) + re_ if not pd.isna(s0) else re_))
    out = pd.DataFrame(rows, columns=KWIC_COLUMNS)
    order = {s: i for i, s in enumerate(seg[C.SEGMENT_ID])}
    out = out.assign(_o=out[C.SEGMENT_ID].map(order)).sort_values(["_o", C.START], kind="mergesort")
    return out.drop(columns="_o").reset_index(drop=True)


def _term_regex(term: str) -> re.Pattern[str]:
    words = term.split()
    if not words:
        raise UsageError("kwic term is empty")
    parts = [re.escape(w).replace(r"\*", r"\w*") if "*" in w else re.escape(w) for w in words]
    return re.compile(r"(?<!\w)" + r"\s+".join(parts) + r"(?!\w)", re.IGNORECASE)
