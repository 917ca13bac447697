"""Cutting turns into coding units: the columns of a segments table, built as arrays.

Split from ``segment``: ``cut_units`` cuts the units of a turns table (one loop over the
turns for turn units) and ``typed_column`` / ``_ready`` give each column as the array pandas
would type it, so ``segment`` builds its table once from finished columns.
"""
from __future__ import annotations

import hashlib
import re
from itertools import repeat
from operator import getitem, sub

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pandas.arrays import ArrowStringArray

from pipeline import columns as C

_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")


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


NUMERIC = {C.UNIT_INDEX: "int64", C.TURN: "int64", C.START: "int64", C.END: "int64",
            C.TIME_START: "float64", C.TIME_END: "float64"}


def cut_units(ordered: pd.DataFrame, row_attrs: list[str], texts: dict, langs: dict,
              formats: dict, unit: str, mode: str, candidates: tuple[str, ...],
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
        if values.dtype == _STR and not values.__arrow_array__().null_count:
            ready[col] = ArrowStringArray(values.__arrow_array__().combine_chunks(), dtype=_STR)
    for col in (C.TURN, C.TIME_START, C.TIME_END):
        if ordered[col].dtype == NUMERIC[col]:
            ready[col] = ordered[col].to_numpy()
    return ready


def _turn_units(docs: list, t_starts: list, t_ends: list,
                texts: dict) -> tuple[list[int], list[int], list[int], list[str]]:
    """Rows, starts, ends and texts of the turn units (``_unit_spans`` of each turn, inlined).

    Four lists filled in one loop: it runs once per turn of the corpus. The usual case
    (every turn's document is there, int offsets within its text, turns that are
    stripped already and not empty, as ``ingest`` gives them) is made by C-level maps
    instead, the loop's result without a Python step per turn.
    """
    fast = _stripped_turns(docs, t_starts, t_ends, texts)
    if fast is not None:
        return fast
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


def _stripped_turns(docs: list, t_starts: list, t_ends: list,
                    texts: dict) -> tuple[list[int], list[int], list[int], list[str]] | None:
    """``_turn_units``' result when every turn is a unit as it stands; None: use the loop."""
    if not docs or set(map(type, t_starts)) != {int} or set(map(type, t_ends)) != {int}:
        return None
    doc_texts = list(map(texts.get, docs, repeat(_MISSING)))
    if _MISSING in doc_texts:  # a turn of an unknown document (compared by identity)
        return None
    pieces = list(map(getitem, doc_texts, map(slice, t_starts, t_ends)))
    # the loop's units when no piece is empty or has whitespace to strip and none was
    # cut short by the end of its text (then its start and end are the turn's own)
    if (not all(pieces) or list(map(str.strip, pieces)) != pieces
            or list(map(len, pieces)) != list(map(sub, t_ends, t_starts))):
        return None
    return list(range(len(docs))), list(t_starts), list(t_ends), pieces


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


def typed_column(col: str, values: list, strings: bool = False) -> object:
    """A segment column as the array pandas would infer from ``values`` (without inferring).

    Strings (every value a ``str``; ``strings``: known to be) become the ``str``
    dtype's Arrow array and numbers NumPy arrays of their final dtype (numbers
    ``cut_units`` made are ints); anything else stays a list for pandas to type.
    """
    if col in NUMERIC:
        kind = _PY_TYPE[NUMERIC[col]]
        if col in _INT_COLUMNS or set(map(type, values)) <= {kind}:
            return np.array(values, dtype=NUMERIC[col])
        return values
    if isinstance(values, list) and values and (strings or set(map(type, values)) == {str}):
        return ArrowStringArray(pa.array(values, type=pa.large_string()), dtype=_STR)
    return values


# Columns ``cut_units`` makes of str / int values only, whatever the input.
STR_COLUMNS = frozenset({C.SEGMENT_ID, C.UNIT, C.ROLE, C.CONTENT_HASH, C.TEXT})
_INT_COLUMNS = frozenset({C.UNIT_INDEX, C.TURN, C.START, C.END})


_STR = pd.StringDtype("pyarrow", na_value=np.nan)  # pandas' "str"
_PY_TYPE = {"int64": int, "float64": float}


def document_rows(doc_ids: list, column: object, documents: pd.DataFrame) -> np.ndarray | None:
    """Row of ``documents`` of each unit's document; None: ids not unique str (merge instead).

    The condition of ``_with_document_attributes``' take, checked without a segments
    table. ``column``: the units' doc id column (``typed_column``). A document's units are
    consecutive: the rows are looked up once per run of equal ids.
    """
    ids = documents[C.DOC_ID]
    if ids.dtype != _STR or not isinstance(column, ArrowStringArray):
        return None
    if ids.duplicated().any():
        return None
    row_of = {doc_id: row for row, doc_id in enumerate(ids.tolist())}
    values = column.__arrow_array__().combine_chunks()
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
