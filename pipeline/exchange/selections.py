"""Codings -> REFI-QDA sources and selections, one document at a time (pure).

A coding run of a million segments has millions of codings. They are validated,
located and sorted as columns (no row dicts); the Python objects of the project
(:class:`QSource`, :class:`QSelection`, :class:`QCoding`) are made for one document
at a time, so an export can serialise each source and let it go.
"""
from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pipeline import columns as C
from pipeline.errors import ExchangeError
from pipeline.exchange.model import QCoding, QSelection, QSource, make_guid
from pipeline.exchange.text import codepoints_to_units

# Review status of a final coding (``qcode review apply``) -> who the REFI user is.
REVIEWED = ("accepted", "added")
# Columns that decide a coding's user and the method part of its note.
WHO = (C.METHOD, C.RULE, "review", C.CODER)


def coder_name(method: str, rule: str) -> str:
    """The REFI user a coding is attributed to: it names the method (or the human)."""
    rule = str(rule or "")
    if method == "human" or rule.startswith("human:"):
        return rule.split(":", 1)[1] if rule.startswith("human:") and rule[6:] else "human"
    if method == "ml" or rule.startswith("model:"):
        return f"qcode {rule.replace(':', ' ', 1)}" if rule.startswith("model:") else "qcode model"
    return f"qcode {method or 'rules'}"


def final_user(rec: dict) -> str | None:
    """The reviewing coder of a final coding that a human accepted or added, else None."""
    status = str(rec.get("review", "") or "")
    coder = rec.get(C.CODER)
    if status in REVIEWED and not blank(coder):
        return str(coder).strip() or None
    return None


def blank(value: object) -> bool:
    """Whether a cell is empty: None, NaN or the empty string."""
    return value is None or (isinstance(value, float) and math.isnan(value)) or str(value) == ""


@dataclass(frozen=True)
class _Who:
    """What one combination of method, rule, review status and coder gives a coding."""

    method: Any
    rule: Any
    auto_user: str
    reviewer: str | None
    status: str

    @property
    def user(self) -> str:
        return self.reviewer or self.auto_user


def _factor(values: pd.Series) -> tuple[np.ndarray, list]:
    codes, uniques = pd.factorize(values, use_na_sentinel=False)
    return codes.astype(np.int64, copy=False), list(uniques)


class CodingRows:
    """The codings of an export as sorted columns, turned into sources per document.

    Args:
        codings: codings table (automatic, or a reviewed final coding).
        segments: segments table; with ``span="segment"`` a coding covers its segment.
        texts: document id -> text, in the order the sources are written.
        code_guids: the codebook's code ids -> GUIDs, in codebook order.
        span: ``"segment"`` or ``"evidence"``.
        codebook_path: named in the error for an unknown code.

    Raises:
        ExchangeError: a coding names a document or code that is not there (the first
            such row, as a row-by-row check would find it).
    """

    def __init__(self, codings: pd.DataFrame, segments: pd.DataFrame, texts: dict[str, str],
                 code_guids: dict[str, str], *, span: str, codebook_path: str = "") -> None:
        self.texts = texts
        self.code_ids = list(code_guids)
        self.code_guids = list(code_guids.values())
        n = len(codings)
        doc_code, doc_values = _factor(codings[C.DOC_ID])
        doc_pos = {doc: k for k, doc in enumerate(texts)}
        self.doc_names = [str(v) for v in doc_values]
        doc_at = np.array([doc_pos.get(d, -1) for d in self.doc_names], dtype=np.int64)
        code_code, code_values = _factor(codings[C.CODE_ID])
        code_rank = {cid: k for k, cid in enumerate(self.code_ids)}
        code_at = np.array([code_rank.get(str(v), -1) for v in code_values], dtype=np.int64)
        docs = doc_at[doc_code] if n else np.zeros(0, dtype=np.int64)
        codes = code_at[code_code] if n else np.zeros(0, dtype=np.int64)
        bad = (docs < 0) | (codes < 0)
        if bad.any():
            row = int(np.argmax(bad))
            if docs[row] < 0:
                raise ExchangeError(f"codings: document {self.doc_names[doc_code[row]]!r} is not "
                                    "in the documents table")
            raise ExchangeError(f"codings: code {str(code_values[code_code[row]])!r} is not in the "
                                f"codebook {codebook_path}".rstrip())
        self.codes = codes
        self._who(codings)
        self.starts, self.ends = self._spans(codings, segments, span)
        self.scores = codings[C.SCORE].to_numpy() if C.SCORE in codings.columns else None
        # Sources in text order; in each, spans by (start, end), then codes in codebook
        # order and users by name; ties keep the row order (a stable sort of the rows).
        self.order = np.lexsort((np.arange(n), self.user_rank[self.who], codes,
                                 self.ends, self.starts, docs))
        self.bounds = np.searchsorted(docs[self.order], np.arange(len(texts) + 1))

    def _who(self, codings: pd.DataFrame) -> None:
        """Group rows by what decides their user, and name each group's user once."""
        key = np.zeros(len(codings), dtype=np.int64)
        for name in WHO:
            if name in codings.columns:
                codes, uniques = _factor(codings[name])
                # factorised again at each step, so the combined key stays below len(rows)
                key = pd.factorize(key * max(len(uniques), 1) + codes)[0]
        _, first, self.who = np.unique(key, return_index=True, return_inverse=True)
        self.who = self.who.astype(np.int64, copy=False).reshape(-1)
        self.groups: list[_Who] = []
        for row in first.tolist():   # the values as a row-by-row reading gave them
            rec = codings.iloc[[row]].to_dict("records")[0]
            self.groups.append(_Who(
                method=rec.get(C.METHOD, ""), rule=rec.get(C.RULE, ""),
                auto_user=coder_name(str(rec.get(C.METHOD, "rules")), str(rec.get(C.RULE, ""))),
                reviewer=final_user(rec), status=str(rec.get("review"))))
        self.users = sorted({g.user for g in self.groups})
        rank = {u: k for k, u in enumerate(self.users)}
        self.user_rank = np.array([rank[g.user] for g in self.groups], dtype=np.int64)

    @staticmethod
    def _spans(codings: pd.DataFrame, segments: pd.DataFrame,
               span: str) -> tuple[np.ndarray, np.ndarray]:
        """Each coding's (start, end): its segment's with ``span="segment"``, else its own."""
        n = len(codings)
        found = np.full(n, -1, dtype=np.int64)
        if span == "segment" and C.SEGMENT_ID in codings.columns and len(segments) and n:
            import pyarrow as pa
            import pyarrow.compute as pc

            segs = segments
            if not segs[C.SEGMENT_ID].astype(str).is_unique:   # a dict of them kept the last
                segs = segs.drop_duplicates(C.SEGMENT_ID, keep="last")

            def strings(values: pd.Series) -> pa.Array:
                return pa.array(values.astype(str), type=pa.large_string(), from_pandas=True)

            found = pc.index_in(strings(codings[C.SEGMENT_ID]),
                                value_set=strings(segs[C.SEGMENT_ID])).fill_null(-1).to_numpy()
            found = np.asarray(found, dtype=np.int64)
            seg_start = segs[C.START].to_numpy(dtype=np.int64)[found]
            seg_end = segs[C.END].to_numpy(dtype=np.int64)[found]
        inside = found >= 0
        if inside.all():
            return (seg_start, seg_end) if n else (found, found)
        own_start = codings[C.START].to_numpy(dtype=np.int64)
        own_end = codings[C.END].to_numpy(dtype=np.int64)
        if not inside.any():
            return own_start, own_end
        return np.where(inside, seg_start, own_start), np.where(inside, seg_end, own_end)

    def _note(self, code_id: str, who: _Who, score: Any) -> str:
        note = f"{code_id}: {who.method} {who.rule}".strip()
        if not blank(score):
            note += f" score={float(score):.3f}"
        if who.reviewer is not None:
            note = (f"{code_id}: added by {who.reviewer}" if who.status == "added"
                    else f"{note}; accepted by {who.reviewer} (proposed by {who.auto_user})")
        return note

    def sources(self, offsets: str) -> Iterator[QSource]:
        """Yield one :class:`QSource` per document, in the order of ``texts``.

        Args:
            offsets: unit of the selections' positions (``"codepoint"`` or ``"utf16"``).
        """
        guids = [make_guid("user", g.user) for g in self.groups]
        users = [g.user for g in self.groups]
        for d, (doc, text) in enumerate(self.texts.items()):
            src_guid = make_guid("source", doc)
            src = QSource(guid=src_guid, name=doc, path=f"internal://{src_guid}.txt")
            rows = self.order[self.bounds[d]:self.bounds[d + 1]]
            if len(rows):
                self._selections(src, doc, text, rows, offsets, guids, users)
            yield src

    def _selections(self, src: QSource, doc: str, text: str, rows: np.ndarray, offsets: str,
                    guids: list[str], users: list[str]) -> None:
        starts, ends = self.starts[rows].tolist(), self.ends[rows].tolist()
        codes, who = self.codes[rows].tolist(), self.who[rows].tolist()
        scores = self.scores[rows].tolist() if self.scores is not None else [None] * len(rows)
        heads = [k for k in range(len(rows))
                 if k == 0 or starts[k] != starts[k - 1] or ends[k] != ends[k - 1]]
        units = codepoints_to_units(text, [x for k in heads for x in (starts[k], ends[k])],
                                    offsets)
        heads.append(len(rows))
        for n in range(len(heads) - 1):
            start, end = starts[heads[n]], ends[heads[n]]
            sel = QSelection(guid=make_guid("selection", f"{doc}:{start}:{end}"),
                             start=units[2 * n], end=units[2 * n + 1])
            notes = []
            for k in range(heads[n], heads[n + 1]):
                code_id, group = self.code_ids[codes[k]], who[k]
                sel.codings.append(QCoding(
                    code_guid=self.code_guids[codes[k]], user_guid=guids[group],
                    guid=make_guid("coding", f"{doc}:{start}:{end}:{code_id}:{users[group]}")))
                notes.append(self._note(code_id, self.groups[group], scores[k]))
            sel.user_guid = sel.codings[0].user_guid
            sel.description = "\n".join(notes)
            src.selections.append(sel)
