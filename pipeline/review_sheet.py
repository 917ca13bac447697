"""Reading a coder's filled-in review sheet into review decisions (pure functions).

The sheet is the one :func:`pipeline.review.build_review_table` proposes (written by
:mod:`pipeline.review_io`): per row a proposed code, a ``decision`` cell, an
``add_codes`` cell and a memo. Every row is checked against the current segments and
the codebook; bad rows are reported with their row number and skipped, so one typo
never costs the coder the rest of the sheet.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from pipeline import columns as C
from pipeline.errors import Problem, ReviewError, excerpt
from pipeline.review import (
    ADD_CODES, DECISION, MEMO, REVIEW_COLUMNS, SHEET_DECISIONS, SOURCE, TIMESTAMP, cell_raw,
    content_hash, empty_reviews, strip_markers,
)

_SPLIT_ADDS = re.compile(r"[;,\n]+")   # labels may contain spaces ("Shared leadership")
KEPT_NOTE = "ignored; the row's other decisions are kept"


def code_aliases(codebook: object | None = None, codes: Iterable[str] = ()) -> dict[str, str]:
    """Case-insensitive names a coder may type for a code: its id and every label."""
    out: dict[str, str] = {}
    if codebook is not None:
        for cid, code in codebook.codes.items():   # type: ignore[attr-defined]
            out.setdefault(cid.casefold(), cid)
        for cid, code in codebook.codes.items():   # type: ignore[attr-defined]
            for label in (getattr(code, "label", None) or {}).values():
                if str(label).strip():
                    out.setdefault(" ".join(str(label).split()).casefold(), cid)
    for cid in codes:
        out.setdefault(str(cid).casefold(), str(cid))
    return out


def resolve_add_codes(cell: str, known: set[str], aliases: Mapping[str, str]
                      ) -> tuple[list[str], list[str]]:
    """Split an ``add_codes`` cell into known code ids and the unknown entries.

    Entries are separated by ``;``, ``,`` or new lines and may be code ids or labels
    in any codebook language, in any case; an entry of several space-separated code
    ids (the old format) is accepted too.
    """
    def one(item: str) -> str | None:
        if item in known:
            return item
        cid = aliases.get(" ".join(item.split()).casefold())
        return cid if cid in known else None

    ids: list[str] = []
    unknown: list[str] = []
    for item in (x.strip() for x in _SPLIT_ADDS.split(cell)):
        if not item:
            continue
        cid = one(item)
        parts = item.split()
        if cid is not None:
            ids.append(cid)
        elif len(parts) > 1 and all(one(p) for p in parts):
            ids += [one(p) for p in parts]   # type: ignore[misc]
        else:
            unknown.append(item)
    return list(dict.fromkeys(ids)), unknown


def _cell(value: object) -> str:
    """Return a sheet cell as a stripped string ("" for empty)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return str(value).strip()


def parse_decisions(raw: pd.DataFrame, *, segments: pd.DataFrame, codes: Iterable[str],
                    coder: str, timestamp: str, source: str,
                    text_matches: Mapping[int, bool] | None = None,
                    aliases: Mapping[str, str] | None = None,
                    ) -> tuple[pd.DataFrame, list[Problem]]:
    """Validate the rows of a review sheet and turn them into decisions.

    Invalid rows are reported (one :class:`Problem` per row and reason) and skipped;
    valid rows are kept. A row whose text was edited in the sheet is rejected: the
    coder may have decided on words that are not in the corpus. An unknown code in
    ``add_codes`` is reported (message ending in :data:`KEPT_NOTE`) without
    dropping the row's decision or its other added codes.

    Args:
        raw: sheet rows as strings, with at least segment_id, content_hash, code_id,
            decision, and optionally add_codes, memo, text, and ``row`` (the row
            number in the file, used in messages; default position + 2).
        segments: the current segments table (known ids and content hashes).
        codes: the known code ids.
        coder: who made the decisions.
        timestamp: ISO time recorded with every decision.
        source: file name recorded with every decision.
        text_matches: row number -> whether the text cell still matches the exported
            text (computed by the reader, which knows how the text was written); when
            missing the text cell is compared with the row's content hash.
        aliases: casefolded label or id -> code id (:func:`code_aliases`), so
            ``add_codes`` may name codes by label; default: the ids, any case.

    Returns:
        (decisions with :data:`REVIEW_COLUMNS`, problems).

    Raises:
        ReviewError: the coder name is empty or required columns are missing.
    """
    coder = str(coder).strip()
    if not coder:
        raise ReviewError(f"{source}: --coder must name the coder")
    missing = [c for c in (C.SEGMENT_ID, C.CODE_ID, DECISION) if c not in raw.columns]
    if missing:
        raise ReviewError(f"{source}: missing column(s) {', '.join(missing)}; "
                          "export a fresh file with `qcode review export`")
    known = set(map(str, codes))
    aliases = dict(aliases) if aliases is not None else code_aliases(codes=known)
    current = dict(zip(segments[C.SEGMENT_ID].astype(str),
                       segments[C.CONTENT_HASH].astype(str))) if len(segments) else {}
    problems: list[Problem] = []
    out: list[dict] = []
    for pos, rec in enumerate(raw.to_dict("records")):
        row = int(rec.get("row", pos + 2) or pos + 2)

        def bad(msg: str, row: int = row) -> None:
            problems.append(Problem(path=f"row {row}", message=msg))

        sid, cid = _cell(rec.get(C.SEGMENT_ID)), _cell(rec.get(C.CODE_ID))
        decision = _cell(rec.get(DECISION)).lower()
        adds, unknown = resolve_add_codes(_cell(rec.get(ADD_CODES)), known, aliases)
        memo = _cell(rec.get(MEMO))
        if not (decision or adds or unknown or memo):
            continue  # an undecided row is no decision
        if not sid:
            bad("segment_id is empty")
            continue
        if sid not in current:
            bad(f"unknown segment id {excerpt(sid)!r}")
            continue
        row_hash = _cell(rec.get(C.CONTENT_HASH)) or current[sid]
        text_ok = (text_matches or {}).get(row)
        if text_ok is None and C.TEXT in rec:
            text_ok = content_hash(strip_markers(cell_raw(rec[C.TEXT]))) == row_hash
        if text_ok is False:
            bad(f"the text of segment {excerpt(sid)!r} was edited in the review file; "
                "decisions are only taken on unedited text")
            continue
        if decision and decision not in SHEET_DECISIONS:
            bad(f"decision {excerpt(decision)!r} is not one of {', '.join(SHEET_DECISIONS)}")
            continue
        if cid and cid not in known:
            bad(f"unknown code {excerpt(cid)!r}")
            continue
        if decision and not cid and decision == "reject":
            bad("'reject' needs a proposed code; this row has none")
            continue
        if unknown:
            bad(f"unknown code(s) to add: {excerpt(', '.join(map(repr, unknown)), 80)} "
                f"(not a code id or label; {KEPT_NOTE})")
        base = {C.CODER: coder, TIMESTAMP: timestamp, C.SEGMENT_ID: sid,
                C.CONTENT_HASH: row_hash, SOURCE: source}
        if cid and decision:
            out.append({**base, C.CODE_ID: cid, DECISION: decision, MEMO: memo})
            memo = ""   # the memo is kept once per row
        for a in adds:
            out.append({**base, C.CODE_ID: a, DECISION: "add", MEMO: memo})
            memo = ""
        if (not cid and decision == "accept" and not adds and not unknown) or memo:
            # A segment without proposals confirmed as is (or a memo on its own).
            out.append({**base, C.CODE_ID: "", DECISION: "reviewed", MEMO: memo})
    decisions = pd.DataFrame(out, columns=REVIEW_COLUMNS) if out else empty_reviews()
    return decisions, problems
