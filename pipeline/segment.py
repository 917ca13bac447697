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
from collections.abc import Iterable, Sequence

import pandas as pd

from pipeline import columns as C
from pipeline.errors import UsageError

UNITS = ("turn", "paragraph", "sentence")
DETECT_MODES = ("csv", "never", "always")
DEFAULT_INTERVIEWER_LABELS = (
    "I", "Int", "Interviewer", "Interviewster", "Interviewer voice", "Q", "Moderator",
    "Onderzoeker", "Researcher", "Vraag",
)
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")
_TRAILING_NUMBER = re.compile(r"[\s_-]*\d+$")


def content_hash(text: str) -> str:
    """Return the 16-hex-digit content hash used to detect edited segments."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def normalise_label(label: object) -> str:
    """Normalise a speaker label for comparison ("Interviewer 2" -> "interviewer")."""
    text = str(label or "").strip().strip("*[]():").strip()
    text = _TRAILING_NUMBER.sub("", text)
    return text.casefold()


def speaker_role(label: object, interviewer_labels: Iterable[str]) -> str:
    """Return ``"interviewer"`` or ``"respondent"`` for a speaker label."""
    known = {normalise_label(x) for x in interviewer_labels}
    return C.INTERVIEWER if normalise_label(label) in known and normalise_label(label) else C.RESPONDENT


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


def _coded_flags(speakers: pd.Series, roles: pd.Series,
                 code_speakers: Sequence[str] | str | None) -> pd.Series:
    if code_speakers is None:
        return roles.eq(C.RESPONDENT)
    if isinstance(code_speakers, str):
        if code_speakers.strip().lower() == "all":
            return pd.Series(True, index=speakers.index)
        code_speakers = [x for x in code_speakers.split(",") if x.strip()]
    wanted = {normalise_label(x) for x in code_speakers}
    if "all" in wanted:
        return pd.Series(True, index=speakers.index)
    return speakers.map(normalise_label).isin(wanted)


def segment(documents: pd.DataFrame, turns: pd.DataFrame, *, unit: str = "turn",
            interviewer_labels: Iterable[str] = DEFAULT_INTERVIEWER_LABELS,
            code_speakers: Sequence[str] | str | None = None,
            detect_lang: bool | str = False,
            languages: Sequence[str] = ("nl", "en")) -> pd.DataFrame:
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

    Returns:
        Segments table: ``columns.SEGMENT_COLUMNS``, then document attributes, then
        row attributes, sorted by document and position.

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
    if mode != "never":
        from pipeline.langid import detect_language
    reserved = set(C.SEGMENT_COLUMNS)
    # An attribute that collides with a segment column (a CSV column "start") keeps its
    # data under "<name>_attr" instead of overwriting the pipeline's column.
    documents = documents.rename(columns={c: f"{c}_attr" for c in documents.columns
                                          if c in reserved and c not in C.DOCUMENT_COLUMNS})
    turns = turns.rename(columns={c: f"{c}_attr" for c in turns.columns
                                  if c in reserved and c not in C.TURN_COLUMNS})
    doc_attrs = [c for c in documents.columns if c not in C.DOCUMENT_COLUMNS]
    row_attrs = [c for c in turns.columns if c not in C.TURN_COLUMNS]
    shared = [c for c in row_attrs if c in doc_attrs]  # e.g. country per answer and per file
    texts = dict(zip(documents[C.DOC_ID], documents[C.TEXT]))
    langs = dict(zip(documents[C.DOC_ID], documents[C.LANG]))
    formats = (dict(zip(documents[C.DOC_ID], documents[C.FORMAT]))
               if C.FORMAT in documents.columns else {})
    labels = list(interviewer_labels)

    rows: list[dict] = []
    ordered = turns.sort_values([C.DOC_ID, C.TURN], kind="stable")
    index_in_doc: dict[str, int] = {}
    for turn in ordered.itertuples(index=False):
        t = turn._asdict()
        doc_id = t[C.DOC_ID]
        if doc_id not in texts:
            continue
        text, lang = texts[doc_id], langs[doc_id] or "nl"
        spans = _unit_spans(text, int(t[C.START]), int(t[C.END]), unit, lang)
        key = str(t.get(C.UNIT_KEY) or "")
        detect = mode == "always" or (mode == "csv" and formats.get(doc_id) == "csv")
        for k, (s, e) in enumerate(spans):
            n = index_in_doc.get(doc_id, 0)
            index_in_doc[doc_id] = n + 1
            if key:
                seg_id = key if unit == "turn" or len(spans) == 1 else f"{key}:{k}"
            else:
                seg_id = f"{doc_id}:{n}"
            piece = text[s:e]
            row = {
                C.SEGMENT_ID: seg_id, C.DOC_ID: doc_id, C.UNIT: unit, C.UNIT_INDEX: n,
                C.TURN: int(t[C.TURN]), C.SPEAKER: t[C.SPEAKER] or "",
                C.START: s, C.END: e,
                C.TIME_START: t[C.TIME_START], C.TIME_END: t[C.TIME_END],
                C.CONTENT_HASH: content_hash(piece), C.TEXT: piece,
                C.LANG: detect_language(piece, candidates, lang) if detect else lang,
            }
            for col in row_attrs:
                row[col] = t.get(col)
            rows.append(row)

    seg = pd.DataFrame(rows, columns=[c for c in C.SEGMENT_COLUMNS if c not in (C.ROLE, C.CODED)]
                       + row_attrs)
    seg[C.ROLE] = [speaker_role(s, labels) for s in seg[C.SPEAKER]] if len(seg) else []
    seg[C.CODED] = _coded_flags(seg[C.SPEAKER], seg[C.ROLE], code_speakers).astype(bool)
    if doc_attrs:
        seg = seg.merge(documents[[C.DOC_ID, *doc_attrs]], on=C.DOC_ID, how="left",
                        suffixes=("", "__doc"))
        for col in shared:  # the row's own value wins; the document's fills gaps
            row_value = seg[col].where(seg[col].notna() & seg[col].astype(str).ne(""))
            seg[col] = row_value.fillna(seg.pop(f"{col}__doc"))
    extra = [*doc_attrs, *(c for c in row_attrs if c not in doc_attrs)]
    seg = seg[[*C.SEGMENT_COLUMNS, *extra]]
    seg[C.UNIT_INDEX] = seg[C.UNIT_INDEX].astype("int64")
    seg[C.TURN] = seg[C.TURN].astype("int64")
    seg[C.START] = seg[C.START].astype("int64")
    seg[C.END] = seg[C.END].astype("int64")
    seg[C.TIME_START] = seg[C.TIME_START].astype("float64")
    seg[C.TIME_END] = seg[C.TIME_END].astype("float64")
    return seg.sort_values([C.DOC_ID, C.UNIT_INDEX], kind="stable").reset_index(drop=True)
