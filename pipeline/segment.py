"""Segmentation: documents + speaker turns -> coding units.

A coding unit is a speaker turn (default), a paragraph inside a turn, or a sentence.
Interviewer turns are kept as segments (context for KWIC and review) but are not
offered to the coders unless asked for. Segment ids are stable: the same text gives
the same ids on a re-run, and every segment carries a hash of its text so a human
decision made on it can later be recognised as stale.
"""
from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Sequence
from itertools import repeat
from operator import eq

import numpy as np
import pandas as pd
import pyarrow.compute as pc
from pandas.arrays import ArrowStringArray

from pipeline import columns as C
from pipeline.errors import UsageError
from pipeline.segment_ids import SegmentIds, unique_across  # noqa: F401 - re-exported
from pipeline.segment_units import NUMERIC, STR_COLUMNS, cut_units, document_rows, typed_column
from pipeline.segment_roles import (  # noqa: F401 - re-exported
    _coded_flags, _roles, normalise_label, speaker_role)

UNITS = ("turn", "paragraph", "sentence")
DETECT_MODES = ("csv", "never", "always")
# "V" pairs with "A" in the Dutch vraag/antwoord transcript convention ("V:" / "A:").
DEFAULT_INTERVIEWER_LABELS = (
    "I", "Int", "Interviewer", "Interviewster", "Interviewer voice", "Q", "Moderator",
    "Onderzoeker", "Researcher", "Vraag", "V",
)


def content_hash(text: str) -> str:
    """Return the 16-hex-digit content hash used to detect edited segments."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


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
    return pd.Series(typed_column(C.DOC_ID, values))


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
    columns, keyed, ready = cut_units(ordered, row_attrs, texts, langs, formats, unit, mode,
                                   candidates)
    if not keyed:
        return _no_units(documents, row_attrs, doc_attrs)
    doc_ids, speakers = columns[C.DOC_ID], columns[C.SPEAKER]
    roles = _roles(speakers, labels)
    # One table built from finished columns in their final order: setting columns one
    # by one, joining and reordering a frame cost more than cutting the units.
    if code_speakers is None:  # _coded_flags' default: respondents
        coded = np.fromiter(map(eq, roles, repeat(C.RESPONDENT)), dtype=bool, count=len(roles))
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
    data = {col: ready[col] if col in ready
            else typed_column(col, columns[col], col in STR_COLUMNS) for col in C.SEGMENT_COLUMNS}
    position = document_rows(doc_ids, data[C.DOC_ID], documents) if doc_attrs else None
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
    for col, dtype in NUMERIC.items():
        if seg[col].dtype != dtype:
            seg[col] = seg[col].astype(dtype)
    if set(map(type, doc_ids)) <= {str}:  # every id a str (types gathered in C)
        # Units were cut from turns in document order, numbered up within each
        # document: already sorted, and the index is a fresh RangeIndex.
        return seg
    return seg.sort_values([C.DOC_ID, C.UNIT_INDEX], kind="stable").reset_index(drop=True)


def _no_units(documents: pd.DataFrame, row_attrs: list[str],
              doc_attrs: list[str]) -> pd.DataFrame:
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
    for col, dtype in NUMERIC.items():
        if seg[col].dtype != dtype:
            seg[col] = seg[col].astype(dtype)
    return seg.sort_values([C.DOC_ID, C.UNIT_INDEX], kind="stable").reset_index(drop=True)


def _in_order(docs: pd.Series, turns: pd.Series) -> bool:
    """Rows in (doc_id, turn) order already (str doc ids only: Python orders them as pandas).

    A column of the ``str`` dtype without missing values is compared by Arrow kernels
    (UTF-8 bytes order as Python orders the strings); other columns value by value.
    """
    values = docs.array
    if (isinstance(values, ArrowStringArray) and turns.dtype.kind in "iu" and len(docs) > 1
            and not values.__arrow_array__().null_count):
        ids = values.__arrow_array__().combine_chunks()
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
