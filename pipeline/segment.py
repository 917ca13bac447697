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
from itertools import repeat

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pandas.arrays import ArrowStringArray

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
    if all(str(speaker).strip() != "" for speaker in set(speakers)):
        return np.zeros(len(docs), dtype=bool)  # every turn labelled (a few distinct labels)
    labelled = [str(speaker).strip() != "" for speaker in speakers]  # NaN counts as a label
    first: dict[object, int] = {}  # document → its first labelled turn
    for doc, turn, has_label in zip(docs, turns, labelled):
        if has_label and (doc not in first or turn < first[doc]):
            first[doc] = turn
    return np.fromiter(
        # a missing doc_id groups nowhere, so it has no first labelled turn either
        (not has_label and doc is not None and doc == doc and doc in first and turn < first[doc]
         for doc, turn, has_label in zip(docs, turns, labelled)), dtype=bool, count=len(docs))


def _unique_ids(seg_ids: list[str], doc_ids: list, keyed: list[str], documents: pd.DataFrame,
                errors: list[dict] | None, shared_keys: Collection[str] = ()) -> list[str]:
    """Segment ids with CSV id values shared across documents prefixed by the doc id.

    ``seg_ids``, ``doc_ids``: the units' ids (strings) and doc ids. ``keyed`` holds each
    row's CSV id value ("" when the id is not from a CSV).
    ``shared_keys`` are id values known to be used by more than one CSV file of the
    run, also when those files are segmented in separate chunks: they are prefixed
    whether or not the other file is in this call, so ids do not depend on chunking.
    """
    ids = seg_ids
    if not any(keyed):
        return ids
    docs = _series(doc_ids).astype(str).tolist()  # as the segments table's column gives them
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


def _series(values: list) -> pd.Series:
    """``values`` as the column of a segments table built from them."""
    return pd.Series(_typed(C.DOC_ID, values))


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
    if not _in_order(turns[C.DOC_ID], turns[C.TURN]):
        ordered = turns.sort_values([C.DOC_ID, C.TURN], kind="stable")
    columns, keyed, ready = _units(ordered, row_attrs, texts, langs, formats, unit, mode,
                                   candidates)
    if not keyed:
        return _no_units(documents, row_attrs, doc_attrs)
    doc_ids, speakers = columns[C.DOC_ID], columns[C.SPEAKER]
    roles = _roles(speakers, labels)
    # One table built from finished columns in their final order: setting columns one
    # by one, joining and reordering a frame cost more than cutting the units.
    if code_speakers is None:  # _coded_flags' default: respondents
        coded = np.fromiter((role == C.RESPONDENT for role in roles), dtype=bool, count=len(roles))
    else:
        coded = _coded_flags(pd.Series(speakers), pd.Series(roles), code_speakers).to_numpy(bool)
    preamble = _preamble(doc_ids, columns[C.TURN], speakers)
    if preamble.any():
        roles = [C.OTHER if first else role for role, first in zip(roles, preamble.tolist())]
        coded = coded & ~preamble
    columns[C.ROLE], columns[C.CODED] = roles, coded
    columns[C.SEGMENT_ID] = _unique_ids(columns[C.SEGMENT_ID], doc_ids, keyed, documents, errors,
                                        shared_keys)
    extra = [*doc_attrs, *(c for c in row_attrs if c not in doc_attrs)]
    data = {col: ready[col] if col in ready else _typed(col, columns[col], col in _STR_COLUMNS)
            for col in C.SEGMENT_COLUMNS}
    position = _document_rows(doc_ids, data[C.DOC_ID], documents) if doc_attrs else None
    if position is None:
        data.update((col, columns[col]) for col in row_attrs)
        seg = pd.DataFrame(data)
        if doc_attrs:  # ids of another dtype or repeated: merge as before
            seg = _with_document_attributes(seg, documents, doc_attrs)
    else:  # the columns in their final order; a shared column's document values last
        for col in extra:
            data[col] = columns[col] if col in row_attrs else documents[col].array.take(position)
        for col in shared:
            data[f"{col}__doc"] = documents[col].array.take(position)
        seg = pd.DataFrame(data)
    for col in shared:  # the row's own value wins; the document's fills gaps
        row_value = seg[col].where(seg[col].notna() & seg[col].astype(str).ne(""))
        seg[col] = row_value.fillna(seg.pop(f"{col}__doc"))
    if list(seg.columns) != [*C.SEGMENT_COLUMNS, *extra]:
        seg = seg[[*C.SEGMENT_COLUMNS, *extra]]
    for col, dtype in _NUMERIC.items():
        if seg[col].dtype != dtype:
            seg[col] = seg[col].astype(dtype)
    if all(type(doc_id) is str for doc_id in doc_ids):
        # Units were cut from turns in document order, numbered up within each
        # document: already sorted, and the index is a fresh RangeIndex.
        return seg
    return seg.sort_values([C.DOC_ID, C.UNIT_INDEX], kind="stable").reset_index(drop=True)


def _no_units(documents: pd.DataFrame, row_attrs: list[str], doc_attrs: list[str]) -> pd.DataFrame:
    """The empty segments table (typed as pandas types one built from no rows)."""
    names = [c for c in C.SEGMENT_COLUMNS if c not in (C.ROLE, C.CODED)] + row_attrs
    seg = pd.DataFrame([], columns=names)
    seg[C.ROLE] = []
    seg[C.CODED] = _coded_flags(seg[C.SPEAKER], seg[C.ROLE], None).astype(bool)
    seg[C.SEGMENT_ID] = []
    if doc_attrs:
        seg = _with_document_attributes(seg, documents, doc_attrs)
        for col in (c for c in row_attrs if c in doc_attrs):
            row_value = seg[col].where(seg[col].notna() & seg[col].astype(str).ne(""))
            seg[col] = row_value.fillna(seg.pop(f"{col}__doc"))
    extra = [*doc_attrs, *(c for c in row_attrs if c not in doc_attrs)]
    seg = seg[[*C.SEGMENT_COLUMNS, *extra]]
    for col, dtype in _NUMERIC.items():
        if seg[col].dtype != dtype:
            seg[col] = seg[col].astype(dtype)
    return seg.sort_values([C.DOC_ID, C.UNIT_INDEX], kind="stable").reset_index(drop=True)


_NUMERIC = {C.UNIT_INDEX: "int64", C.TURN: "int64", C.START: "int64", C.END: "int64",
            C.TIME_START: "float64", C.TIME_END: "float64"}


def _in_order(docs: pd.Series, turns: pd.Series) -> bool:
    """Rows in (doc_id, turn) order already (str doc ids only: Python orders them as pandas).

    A column of the ``str`` dtype without missing values is compared by Arrow kernels
    (UTF-8 bytes order as Python orders the strings); other columns value by value.
    """
    values = docs.array
    if (isinstance(values, ArrowStringArray) and turns.dtype.kind in "iu" and len(docs) > 1
            and not values._pa_array.null_count):
        ids = values._pa_array.combine_chunks()
        head, tail = ids.slice(0, len(ids) - 1), ids.slice(1)
        number = turns.to_numpy()
        same = pc.equal(head, tail).to_numpy(zero_copy_only=False)
        return bool((pc.less(head, tail).to_numpy(zero_copy_only=False)
                     | (same & (number[:-1] <= number[1:]))).all())
    docs, turns = docs.tolist(), turns.tolist()
    if not all(type(doc_id) is str for doc_id in docs):
        return False
    return all(d < e or (d == e and t <= u)
               for d, e, t, u in zip(docs, docs[1:], turns, turns[1:]))


def _units(ordered: pd.DataFrame, row_attrs: list[str], texts: dict, langs: dict, formats: dict,
           unit: str, mode: str, candidates: tuple[str, ...],
           ) -> tuple[dict[str, list], list[str], dict[str, object]]:
    """The coding units of ``ordered`` (turns by document and turn) as columns → values.

    Plain lists, one DataFrame later: a dict per row and ``itertuples`` cost more than
    cutting the units. ``texts``, ``langs``, ``formats``: doc_id → document text,
    language, format. Returns the columns (without role and coded flag; then
    ``row_attrs``), each unit's CSV id value ("" when its id is not from a CSV) and
    the columns ``_ready`` takes from the table as arrays.
    """
    docs, turns, speakers, t_starts, t_ends, times_start, times_end, unit_keys, *attrs = \
        _row_columns(ordered, [C.DOC_ID, C.TURN, C.SPEAKER, C.START, C.END, C.TIME_START,
                               C.TIME_END, C.UNIT_KEY, *row_attrs])
    if unit == "turn":
        rows, starts, ends, pieces = _turn_units(docs, t_starts, t_ends, texts)
        ks, counts = repeat(0), repeat(1)
    else:
        # One pass cuts the units: (row of ``ordered``, start, end, text, k, units in
        # turn); the other columns are then gathered by that row.
        units: list[tuple[int, int, int, str, int, int]] = []
        for row, (doc_id, t_start, t_end) in enumerate(zip(docs, t_starts, t_ends)):
            if doc_id not in texts:
                continue
            text = texts[doc_id]
            spans = _unit_spans(text, int(t_start), int(t_end), unit, langs[doc_id] or "nl")
            units.extend((row, s, e, text[s:e], k, len(spans)) for k, (s, e) in enumerate(spans))
        rows, starts, ends, pieces, ks, counts = (list(c) for c in zip(*units)) if units else (
            [] for _ in range(6))
    # Every turn one unit (the usual case): the turn columns are the unit columns. (Turn
    # units keep the turns' order, so as many units as turns means every turn.)
    every = len(rows) == len(docs) and (unit == "turn" or rows == list(range(len(docs))))

    def gather(values: list) -> list:
        return values if every else [values[r] for r in rows]

    doc_ids = gather(docs)
    unit_index = _numbered(doc_ids)
    keyed = [str(key or "") for key in gather(unit_keys)]
    if any(keyed) or unit != "turn":
        seg_ids = [(key if unit == "turn" or count == 1 else f"{key}:{k}") if key
                   else f"{doc_id}:{n}"
                   for key, k, count, doc_id, n in zip(keyed, ks, counts, doc_ids, unit_index)]
    else:
        seg_ids = [f"{doc_id}:{n}" for doc_id, n in zip(doc_ids, unit_index)]
    doc_langs = [langs[doc_id] or "nl" for doc_id in doc_ids]
    if mode != "never":
        from pipeline.langid import detect_language

        doc_langs = [detect_language(piece, candidates, lang)
                     if mode == "always" or formats.get(doc_id) == "csv" else lang
                     for piece, lang, doc_id in zip(pieces, doc_langs, doc_ids)]
    sha1 = hashlib.sha1
    out = {
        C.SEGMENT_ID: seg_ids, C.DOC_ID: doc_ids, C.UNIT: [unit] * len(rows),
        C.UNIT_INDEX: unit_index, C.TURN: [int(turn) for turn in gather(turns)],
        C.SPEAKER: [speaker or "" for speaker in gather(speakers)], C.START: starts, C.END: ends,
        C.TIME_START: gather(times_start), C.TIME_END: gather(times_end),
        C.CONTENT_HASH: [sha1(piece.encode("utf-8")).hexdigest()[:16] for piece in pieces],
        C.TEXT: pieces, C.LANG: doc_langs,
    }  # CONTENT_HASH: content_hash, inlined
    for col, values in zip(row_attrs, attrs):
        out[col] = gather(values)
    return out, keyed, _ready(ordered) if every else {}


def _ready(ordered: pd.DataFrame) -> dict[str, object]:
    """Columns of the turns table that are unit columns as they stand (every turn a unit).

    Taken as arrays instead of made again from the lists: doc ids and speakers of the
    ``str`` dtype without missing values, turn numbers and times of their final dtype.
    """
    ready: dict[str, object] = {}
    for col in (C.DOC_ID, C.SPEAKER):
        values = ordered[col].array
        if values.dtype == _STR and not values._pa_array.null_count:
            ready[col] = ArrowStringArray(values._pa_array.combine_chunks(), dtype=_STR)
    for col in (C.TURN, C.TIME_START, C.TIME_END):
        if ordered[col].dtype == _NUMERIC[col]:
            ready[col] = ordered[col].to_numpy()
    return ready


def _turn_units(docs: list, t_starts: list, t_ends: list,
                texts: dict) -> tuple[list[int], list[int], list[int], list[str]]:
    """Rows, starts, ends and texts of the turn units (``_unit_spans`` of each turn, inlined).

    Four lists filled in one loop: it runs once per turn of the corpus.
    """
    rows: list[int] = []
    starts: list[int] = []
    ends: list[int] = []
    pieces: list[str] = []
    for row, (doc_id, start, end) in enumerate(zip(docs, t_starts, t_ends)):
        text = texts.get(doc_id, _MISSING)
        if text is _MISSING:
            continue
        if type(start) is not int:
            start, end = int(start), int(end)
        piece = text[start:end]
        stripped = piece.lstrip()
        start += len(piece) - len(stripped)
        piece = stripped.rstrip()
        if piece:
            rows.append(row)
            starts.append(start)
            ends.append(start + len(piece))
            pieces.append(piece)
    return rows, starts, ends, pieces


_MISSING = object()


def _numbered(doc_ids: list) -> list[int]:
    """Each row's index among the rows of its document (rows of a document in order)."""
    index_in_doc: dict[object, int] = {}
    unit_index = []
    append = unit_index.append
    for doc_id in doc_ids:
        n = index_in_doc.get(doc_id, 0)
        index_in_doc[doc_id] = n + 1
        append(n)
    return unit_index


def _typed(col: str, values: list, strings: bool = False) -> object:
    """A segment column as the array pandas would infer from ``values`` (without inferring).

    Strings (every value a ``str``; ``strings``: known to be) become the ``str``
    dtype's Arrow array and numbers NumPy arrays of their final dtype (numbers
    ``_units`` made are ints); anything else stays a list for pandas to type.
    """
    if col in _NUMERIC:
        kind = _PY_TYPE[_NUMERIC[col]]
        if col in _INT_COLUMNS or all(type(v) is kind for v in values):
            return np.array(values, dtype=_NUMERIC[col])
        return values
    if isinstance(values, list) and values and (strings or all(type(v) is str for v in values)):
        return ArrowStringArray(pa.array(values, type=pa.large_string()), dtype=_STR)
    return values


# Columns ``_units`` makes of str / int values only, whatever the input.
_STR_COLUMNS = frozenset({C.SEGMENT_ID, C.UNIT, C.ROLE, C.CONTENT_HASH, C.TEXT})
_INT_COLUMNS = frozenset({C.UNIT_INDEX, C.TURN, C.START, C.END})


_STR = pd.StringDtype("pyarrow", na_value=np.nan)  # pandas' "str"
_PY_TYPE = {"int64": int, "float64": float}


def _document_rows(doc_ids: list, column: object, documents: pd.DataFrame) -> np.ndarray | None:
    """Row of ``documents`` of each unit's document; None: ids not unique str (merge instead).

    The condition of ``_with_document_attributes``' take, checked without a segments
    table. ``column``: the units' doc id column (``_typed``). A document's units are
    consecutive: the rows are looked up once per run of equal ids.
    """
    ids = documents[C.DOC_ID]
    if ids.dtype != _STR or not isinstance(column, ArrowStringArray):
        return None
    if ids.duplicated().any():
        return None
    row_of = {doc_id: row for row, doc_id in enumerate(ids.tolist())}
    values = column._pa_array.combine_chunks()
    firsts = np.flatnonzero(np.concatenate(([True], pc.not_equal(
        values.slice(1), values.slice(0, len(values) - 1)).to_numpy(zero_copy_only=False))))
    heads = [doc_ids[k] for k in firsts.tolist()]
    if not all(doc_id in row_of for doc_id in heads):
        return None
    return np.repeat(np.asarray([row_of[doc_id] for doc_id in heads], dtype=np.intp),
                     np.diff(np.append(firsts, len(values))))


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
