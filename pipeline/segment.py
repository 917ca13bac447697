"""Segmentation: documents + speaker turns -> coding units.

A coding unit is a speaker turn (default), a paragraph inside a turn, or a sentence.
Interviewer turns are kept as segments (context for KWIC and review) but are not
offered to the coders unless asked for. Segment ids are stable: the same text gives
the same ids on a re-run, and every segment carries a hash of its text so a human
decision made on it can later be recognised as stale.
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Iterable, Sequence

import numpy as np
import pandas as pd

from pipeline import columns as C
from pipeline.errors import UsageError
from pipeline.segment_ids import SegmentIds, unique_across  # noqa: F401 - re-exported
from pipeline.segment_roles import (  # noqa: F401 - re-exported
    _coded_flags, _roles, normalise_label, speaker_role)

UNITS = ("turn", "paragraph", "sentence")
DETECT_MODES = ("csv", "never", "always")
# "V" pairs with "A" in the Dutch vraag/antwoord transcript convention ("V:" / "A:").
DEFAULT_INTERVIEWER_LABELS = (
    "I", "Int", "Interviewer", "Interviewster", "Interviewer voice", "Q", "Moderator",
    "Onderzoeker", "Researcher", "Vraag", "V",
)
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")


def content_hash(text: str) -> str:
    """Return the 16-hex-digit content hash used to detect edited segments."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def _strip_span(text: str, start: int, end: int) -> tuple[int, int]:
    piece = text[start:end]
    lead = len(piece) - len(piece.lstrip())
    trail = len(piece) - len(piece.rstrip())
    return start + lead, end - trail


def _paragraph_spans(text: str, start: int, end: int) -> list[tuple[int, int]]:
    spans, pos = [], start
    for m in _PARAGRAPH_BREAK.finditer(text, start, end):
        spans.append((pos, m.start()))
        pos = m.end()
    spans.append((pos, end))
    return spans


def _sentence_spans(text: str, start: int, end: int, lang: str) -> list[tuple[int, int]]:
    from pipeline.nlp import make_nlp  # spaCy is heavy: load only for sentence units

    nlp = make_nlp(lang)
    doc = nlp.make_doc(text[start:end])
    doc = nlp.get_pipe("sentencizer")(doc)
    return [(start + s.start_char, start + s.end_char) for s in doc.sents]


def _unit_spans(text: str, start: int, end: int, unit: str, lang: str) -> list[tuple[int, int]]:
    if unit == "turn":
        spans = [(start, end)]
    elif unit == "paragraph":
        spans = _paragraph_spans(text, start, end)
    else:
        spans = []
        for p_start, p_end in _paragraph_spans(text, start, end):
            spans.extend(_sentence_spans(text, p_start, p_end, lang))
    stripped = (_strip_span(text, s, e) for s, e in spans)
    return [(s, e) for s, e in stripped if e > s]


def _preamble(docs: list, turns: list, speakers: list) -> np.ndarray:
    """Rows without a speaker before the first labelled turn of a labelled document."""
    labelled = [str(speaker).strip() != "" for speaker in speakers]  # NaN counts as a label
    first: dict[object, int] = {}  # document → its first labelled turn
    for doc, turn, has_label in zip(docs, turns, labelled):
        if has_label and (doc not in first or turn < first[doc]):
            first[doc] = turn
    return np.fromiter(
        # a missing doc_id groups nowhere, so it has no first labelled turn either
        (not has_label and doc is not None and doc == doc and doc in first and turn < first[doc]
         for doc, turn, has_label in zip(docs, turns, labelled)), dtype=bool, count=len(docs))


def _unique_ids(seg: pd.DataFrame, keyed: list[str], documents: pd.DataFrame,
                errors: list[dict] | None, shared_keys: Collection[str] = ()) -> list[str]:
    """Segment ids with CSV id values shared across documents prefixed by the doc id.

    ``keyed`` holds each row's CSV id value ("" when the id is not from a CSV).
    ``shared_keys`` are id values known to be used by more than one CSV file of the
    run, also when those files are segmented in separate chunks: they are prefixed
    whether or not the other file is in this call, so ids do not depend on chunking.
    """
    ids = seg[C.SEGMENT_ID].astype(str).tolist()
    if not any(keyed):
        return ids
    docs = seg[C.DOC_ID].astype(str).tolist()
    owners: dict[str, set[str]] = {}
    for seg_id, doc_id in zip(ids, docs):
        owners.setdefault(seg_id, set()).add(doc_id)
    clash = {i for i, ds in owners.items() if len(ds) > 1}
    shared = {seg_id for seg_id, key in zip(ids, keyed) if key and key in shared_keys}
    clash |= shared
    if not clash:
        return ids
    paths = (dict(zip(documents[C.DOC_ID], documents[C.PATH]))
             if C.PATH in documents.columns else {})
    renamed: dict[str, list[str]] = {}
    out = []
    for seg_id, doc_id, is_key in zip(ids, docs, keyed):
        if is_key and seg_id in clash:
            renamed.setdefault(doc_id, []).append(seg_id)
            seg_id = f"{doc_id}:{seg_id}"
        out.append(seg_id)
    for doc_id, values in renamed.items():
        others = sorted(set().union(*(owners[v] for v in values)) - {doc_id})
        shown = ", ".join(repr(v) for v in values[:5]) + (", ..." if len(values) > 5 else "")
        where = ", ".join(map(repr, others)) if others else "another CSV file of this run"
        message = (f"ids {shown} of {C.DOC_ID} {doc_id!r} are also segment ids of "
                   f"{where}; its {len(values)} segment id(s) were "
                   f"prefixed with {doc_id + ':'!r}")
        if errors is not None:
            errors.append({C.ERROR_FILE: paths.get(doc_id, doc_id), C.ERROR_STAGE: "segment",
                           C.ERROR_SEVERITY: "warning", C.ERROR_MESSAGE: message})
    return _still_unique(out, docs)


def _still_unique(ids: list[str], docs: list[str]) -> list[str]:
    """Last resort after prefixing ("a:1" typed as an id in document b): add a counter."""
    seen: set[str] = set()
    out = []
    for seg_id, doc_id in zip(ids, docs):
        candidate, n = seg_id, 1
        while candidate in seen:
            candidate, n = f"{doc_id}:{seg_id}#{n}", n + 1
        seen.add(candidate)
        out.append(candidate)
    return out


def segment(documents: pd.DataFrame, turns: pd.DataFrame, *, unit: str = "turn",
            interviewer_labels: Iterable[str] = DEFAULT_INTERVIEWER_LABELS,
            code_speakers: Sequence[str] | str | None = None,
            detect_lang: bool | str = False,
            languages: Sequence[str] = ("nl", "en"),
            errors: list[dict] | None = None,
            shared_keys: Collection[str] = ()) -> pd.DataFrame:
    """Cut documents into coding units.

    Args:
        documents: Documents table (``columns.DOCUMENT_COLUMNS`` + attributes).
        turns: Turns table (``columns.TURN_COLUMNS`` + optional row attributes).
        unit: ``turn``, ``paragraph`` or ``sentence``.
        interviewer_labels: Speaker labels that mark the interviewer (compared
            case-insensitively, ignoring a trailing number: "Interviewer 2").
        code_speakers: ``None`` codes respondents only; ``"all"`` codes everybody; a
            list (or comma-separated string) of labels codes exactly those speakers.
        detect_lang: set each segment's ``lang`` by ``langid.detect_language`` (the
            document's language is the default for texts without evidence): ``True``
            or ``"always"`` for every document, ``"csv"`` for CSV documents only (mixed
            survey answers), ``False`` / ``"never"``: the document's language.
        languages: the languages detection may choose from.
        errors: when given, warning rows (``columns.ERROR_COLUMNS``, stage
            "segment") are appended to it: CSV ids made unique (see below).
        shared_keys: CSV id values that other CSV files of the same run use too
            (a streaming run segments chunks separately); prefixed like a clash
            inside this table.

    Returns:
        Segments table: ``columns.SEGMENT_COLUMNS``, then document attributes, then
        row attributes, sorted by document and position.

        In a document with speaker labels, speaker-less turns before the first
        labelled turn (a title, "# Interview 04", date and place) are a preamble:
        kept with role ``other`` and never coded. A CSV row's segment id is its id
        value; an id value used by more than one document of the table (or equal
        to another segment's id) is prefixed ``"<doc_id>:"`` in every document
        that uses it, with a warning row per document.

    Raises:
        UsageError: Unknown unit or detect_lang mode.
    """
    if unit not in UNITS:
        raise UsageError(f"unknown unit {unit!r}; choose one of {', '.join(UNITS)}")
    mode = ("always" if detect_lang else "never") if isinstance(detect_lang, bool) else detect_lang
    if mode not in DETECT_MODES:
        raise UsageError(f"unknown detect_lang {detect_lang!r}; choose one of "
                         f"{', '.join(DETECT_MODES)} (or True/False)")
    candidates = tuple(languages)
    reserved = set(C.SEGMENT_COLUMNS)
    # An attribute that collides with a segment column (a CSV column "start") keeps its
    # data under "<name>_attr" instead of overwriting the pipeline's column.
    doc_renames = {c: f"{c}_attr" for c in documents.columns
                   if c in reserved and c not in C.DOCUMENT_COLUMNS}
    turn_renames = {c: f"{c}_attr" for c in turns.columns
                    if c in reserved and c not in C.TURN_COLUMNS}
    if doc_renames:
        documents = documents.rename(columns=doc_renames)
    if turn_renames:
        turns = turns.rename(columns=turn_renames)
    doc_attrs = [c for c in documents.columns if c not in C.DOCUMENT_COLUMNS]
    row_attrs = [c for c in turns.columns if c not in C.TURN_COLUMNS]
    shared = [c for c in row_attrs if c in doc_attrs]  # e.g. country per answer and per file
    texts = dict(zip(documents[C.DOC_ID], documents[C.TEXT]))
    langs = dict(zip(documents[C.DOC_ID], documents[C.LANG]))
    formats = (dict(zip(documents[C.DOC_ID], documents[C.FORMAT]))
               if C.FORMAT in documents.columns else {})
    labels = list(interviewer_labels)

    ordered = turns
    if not _in_order(turns[C.DOC_ID].tolist(), turns[C.TURN].tolist()):
        ordered = turns.sort_values([C.DOC_ID, C.TURN], kind="stable")
    columns, keyed = _units(ordered, row_attrs, texts, langs, formats, unit, mode, candidates)
    names = [c for c in C.SEGMENT_COLUMNS if c not in (C.ROLE, C.CODED)] + row_attrs
    if keyed:
        seg = pd.DataFrame(columns, columns=names)
    else:  # as pandas types an empty table built from no rows (object columns)
        seg = pd.DataFrame([], columns=names)
    seg[C.ROLE] = _roles(columns[C.SPEAKER], labels) if len(seg) else []
    seg[C.CODED] = _coded_flags(seg[C.SPEAKER], seg[C.ROLE], code_speakers).astype(bool)
    if len(seg):
        preamble = _preamble(columns[C.DOC_ID], columns[C.TURN], columns[C.SPEAKER])
        if preamble.any():
            seg.loc[preamble, C.ROLE] = C.OTHER
            seg.loc[preamble, C.CODED] = False
    seg[C.SEGMENT_ID] = _unique_ids(seg, keyed, documents, errors, shared_keys)
    if doc_attrs:
        seg = _with_document_attributes(seg, documents, doc_attrs)
        for col in shared:  # the row's own value wins; the document's fills gaps
            row_value = seg[col].where(seg[col].notna() & seg[col].astype(str).ne(""))
            seg[col] = row_value.fillna(seg.pop(f"{col}__doc"))
    extra = [*doc_attrs, *(c for c in row_attrs if c not in doc_attrs)]
    seg = seg[[*C.SEGMENT_COLUMNS, *extra]]
    for col, dtype in _NUMERIC.items():
        if seg[col].dtype != dtype:
            seg[col] = seg[col].astype(dtype)
    if len(seg) and all(type(doc_id) is str for doc_id in columns[C.DOC_ID]):
        # Units were cut from turns in document order, numbered up within each
        # document: already sorted, and the index is a fresh RangeIndex.
        return seg
    return seg.sort_values([C.DOC_ID, C.UNIT_INDEX], kind="stable").reset_index(drop=True)


_NUMERIC = {C.UNIT_INDEX: "int64", C.TURN: "int64", C.START: "int64", C.END: "int64",
            C.TIME_START: "float64", C.TIME_END: "float64"}


def _in_order(docs: list, turns: list) -> bool:
    """Rows in (doc_id, turn) order already (str doc ids only: Python orders them as pandas)."""
    if not all(type(doc_id) is str for doc_id in docs):
        return False
    return all(d < e or (d == e and t <= u)
               for d, e, t, u in zip(docs, docs[1:], turns, turns[1:]))


def _units(ordered: pd.DataFrame, row_attrs: list[str], texts: dict, langs: dict, formats: dict,
           unit: str, mode: str, candidates: tuple[str, ...]) -> tuple[dict[str, list], list[str]]:
    """The coding units of ``ordered`` (turns by document and turn) as columns → values.

    Plain lists, one DataFrame later: a dict per row and ``itertuples`` cost more than
    cutting the units. ``texts``, ``langs``, ``formats``: doc_id → document text,
    language, format. Returns the columns (without role and coded flag; then
    ``row_attrs``) and each unit's CSV id value ("" when its id is not from a CSV).
    """
    docs, turns, speakers, t_starts, t_ends, times_start, times_end, unit_keys, *attrs = \
        _row_columns(ordered, [C.DOC_ID, C.TURN, C.SPEAKER, C.START, C.END, C.TIME_START,
                               C.TIME_END, C.UNIT_KEY, *row_attrs])
    # One pass cuts the units: (row of ``ordered``, start, end, text, k, units in turn);
    # the other columns are then gathered by that row.
    units: list[tuple[int, int, int, str, int, int]] = []
    for row, (doc_id, t_start, t_end) in enumerate(zip(docs, t_starts, t_ends)):
        if doc_id not in texts:
            continue
        text = texts[doc_id]
        if unit == "turn":  # _unit_spans of a turn, inlined: it runs once per turn
            start = int(t_start)
            piece = text[start:int(t_end)]
            stripped = piece.lstrip()
            start += len(piece) - len(stripped)
            piece = stripped.rstrip()
            if piece:
                units.append((row, start, start + len(piece), piece, 0, 1))
            continue
        spans = _unit_spans(text, int(t_start), int(t_end), unit, langs[doc_id] or "nl")
        units.extend((row, s, e, text[s:e], k, len(spans)) for k, (s, e) in enumerate(spans))
    rows, starts, ends, pieces, ks, counts = (list(c) for c in zip(*units)) if units else (
        [] for _ in range(6))

    doc_ids = [docs[r] for r in rows]
    index_in_doc: dict[object, int] = {}
    unit_index = []
    for doc_id in doc_ids:
        n = index_in_doc.get(doc_id, 0)
        index_in_doc[doc_id] = n + 1
        unit_index.append(n)
    keyed = [str(unit_keys[r] or "") for r in rows]
    seg_ids = [(key if unit == "turn" or count == 1 else f"{key}:{k}") if key
               else f"{doc_id}:{n}"
               for key, k, count, doc_id, n in zip(keyed, ks, counts, doc_ids, unit_index)]
    doc_langs = [langs[doc_id] or "nl" for doc_id in doc_ids]
    if mode != "never":
        from pipeline.langid import detect_language

        doc_langs = [detect_language(piece, candidates, lang)
                     if mode == "always" or formats.get(doc_id) == "csv" else lang
                     for piece, lang, doc_id in zip(pieces, doc_langs, doc_ids)]
    sha1 = hashlib.sha1
    out = {
        C.SEGMENT_ID: seg_ids, C.DOC_ID: doc_ids, C.UNIT: [unit] * len(rows),
        C.UNIT_INDEX: unit_index, C.TURN: [int(turns[r]) for r in rows],
        C.SPEAKER: [speakers[r] or "" for r in rows], C.START: starts, C.END: ends,
        C.TIME_START: [times_start[r] for r in rows], C.TIME_END: [times_end[r] for r in rows],
        C.CONTENT_HASH: [sha1(piece.encode("utf-8")).hexdigest()[:16] for piece in pieces],
        C.TEXT: pieces, C.LANG: doc_langs,
    }  # CONTENT_HASH: content_hash, inlined
    for col, values in zip(row_attrs, attrs):
        out[col] = [values[r] for r in rows]
    return out, keyed


def _row_columns(table: pd.DataFrame, names: list[str]) -> list[list]:
    """Values of columns ``names`` of ``table`` as lists; a missing column reads as None.

    Read by the column's own name, so CSV attributes such as "age group", "class" or
    "2nd" keep their values (reading rows with ``itertuples`` renamed those and lost them).
    """
    columns = list(table.columns)
    out = []
    for name in names:
        if name in columns:
            out.append(table.iloc[:, columns.index(name)].tolist())
        else:
            out.append([None] * len(table))
    return out


def _with_document_attributes(seg: pd.DataFrame, documents: pd.DataFrame,
                              doc_attrs: list[str]) -> pd.DataFrame:
    """Left-join the documents' attribute columns on ``doc_id`` (a shared name gets "__doc").

    With unique doc ids of one dtype (always so in a run): a positional take, cheaper than
    ``merge``, same rows, order and types; else ``merge`` (it may retype the key column).
    """
    ids = documents[C.DOC_ID]
    if (ids.dtype != seg[C.DOC_ID].dtype or ids.duplicated().any()
            or not seg[C.DOC_ID].isin(ids).all()):
        return seg.merge(documents[[C.DOC_ID, *doc_attrs]], on=C.DOC_ID, how="left",
                         suffixes=("", "__doc"))
    row_of = {doc_id: row for row, doc_id in enumerate(ids.tolist())}
    position = np.fromiter((row_of[doc_id] for doc_id in seg[C.DOC_ID].tolist()),
                           dtype=np.intp, count=len(seg))
    seg = seg.reset_index(drop=True)
    for col in doc_attrs:
        name = f"{col}__doc" if col in seg.columns else col
        seg[name] = documents[col].array.take(position)
    return seg
