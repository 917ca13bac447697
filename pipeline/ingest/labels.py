"""Speaker labels in plain-text transcripts and splitting a text into turns.

A label is a short name followed by a colon at the start of a line
(``I:``, ``R1:``, ``Anja de Vries:``, ``[00:01:02] Anja:``, ``**Anja:**``). The
hard part is *not* taking ordinary sentences with a colon for labels, so a
candidate must look like a name: 1–4 words, every word capitalised (name
particles such as "van", "de" allowed), or a known role label; optionally with a
role in parentheses (``Anna (I)``), as "Surname, First name" or "Role - Name".
"""
from __future__ import annotations

import math
import re
from functools import lru_cache
from typing import NamedTuple

MAX_LABEL_CHARS = 40
MAX_LABEL_WORDS = 4

_TS = r"(?:\d{1,2}:)?\d{1,2}:\d{2}(?:[.,]\d{1,3})?"
# Anchored at a line start; the label text itself is validated by is_label().
_LINE_LABEL = re.compile(
    r"[ \t]*"
    r"(?:(?:\[(?P<ts1>" + _TS + r")\]|\((?P<ts2>" + _TS + r")\))[ \t]*"
    r"|(?P<ts3>" + _TS + r")[ \t]+)?"
    r"(?:\*\*(?P<b1>[^*\n]{1,40}?):\*\*"          # **Name:**
    r"|\*\*(?P<b2>[^*\n]{1,40}?)\*\*[ \t]*:"      # **Name**:
    r"|(?P<plain>[^:*\n]{1,40}?):)"                # Name:
    # A colon inside a time or URL ("10:30", "http://") is not a label colon.
    r"(?=[ \t]|$)"
)
# The same pattern matched in a whole text at a line start (``$`` is a line end). No
# part of it matches "\n", so a match equals ``_LINE_LABEL.match(line)`` without
# copying the line out of the text.
_TEXT_LABELS = re.compile(r"^" + _LINE_LABEL.pattern, re.MULTILINE)
# The same after a newline: the literal "\n" in front lets ``finditer`` jump from line
# end to line end in C (a match never holds a second "\n", so matches cannot hide the
# next line's label).
_NEXT_LABELS = re.compile(r"\n" + _LINE_LABEL.pattern, re.MULTILINE)
_TIME_PARTS = re.compile(r"(?:(\d+):)?(\d+):(\d+)(?:[.,](\d+))?")

# Role labels used in transcripts, matched case-insensitively, optionally numbered (R1, P 2).
KNOWN_LABELS = frozenset({
    "i", "r", "q", "a", "p", "m", "int", "interviewer", "interviewster", "interviewee",
    "respondent", "resp", "moderator", "onderzoeker", "deelnemer", "participant",
    "spreker", "speaker", "geïnterviewde", "vraag", "antwoord", "question", "answer",
})
# Lower-case words allowed inside a capitalised name ("Jan van der Berg").
_PARTICLES = frozenset({
    "van", "de", "der", "den", "het", "ter", "ten", "te", "op", "in", "'t", "’t",
    "von", "zu", "da", "di", "del", "della", "du", "le", "la", "el", "bin", "al",
})
# Capitalised words that start sentences with a colon ("Kortom: ...") rather than name a speaker.
_NOT_LABELS = frozenset({
    "ja", "nee", "nou", "dus", "maar", "en", "of", "want", "kortom", "daarom", "oftewel",
    "bijvoorbeeld", "zoals", "namelijk", "conclusie", "let", "zie", "tip", "noot", "opmerking",
    "dat", "dit", "die", "wat", "hoe", "waarom", "toen", "nu", "dan", "eerst", "ten", "tot",
    "eerste", "tweede", "derde", "vierde", "laatste", "vervolgens", "daarna", "ook", "samengevat",
    "yes", "no", "so", "but", "and", "or", "because", "well", "note", "example", "see",
    "then", "now", "first", "second", "third", "last", "finally", "summary", "conclusion", "however", "also", "ok", "okay", "oké",
    "ps", "nb", "eg", "ie", "http", "https", "mailto", "www",
    "let op", "zie ook", "met andere woorden", "for example", "in short", "in other words",
})
_WORD = re.compile(r"[^\W\d_][\w.'’\-]*|\d+", re.UNICODE)


class Turn(NamedTuple):
    """A turn found in a text: content span ``text[start:end]`` (stripped)."""

    speaker: str
    start: int
    end: int
    time_start: float = math.nan
    time_end: float = math.nan


def is_label(label: str, *, bold: bool = False) -> bool:
    """Return whether ``label`` (the text before a line-start colon) names a speaker.

    Besides a bare name or role, Teams/Zoom forms are labels: a role in parentheses
    after the name (``Anna Pieters (interviewer)``, ``Anna (I)``), "Surname,
    First name" (``Pieters, Anna (Onderzoeker)``) and a role joined to the name by
    a dash (``Interviewer - Anna``).

    Args:
        label: Candidate label without the colon.
        bold: The label is typeset bold (Markdown ``**``, Word bold run), which is
            strong evidence, so capitalisation is not required.

    Returns:
        True for ``I``, ``R1``, ``Interviewer``, ``Anja``, ``Anja de Vries``;
        False for ``Nou ja, het punt is`` or ``Kortom``.
    """
    return _is_label(label, bold)


# A transcript repeats a handful of labels ("I", "R") on every other line: the verdict
# is a pure function of the string, so it is worked out once per distinct label.
@lru_cache(maxsize=1 << 14)
def _is_label(label: str, bold: bool) -> bool:
    label = label.strip()
    if not label or len(label) > MAX_LABEL_CHARS:
        return False
    paren = _PAREN_SUFFIX.search(label)
    if paren and paren.start() > 0:
        inner = paren.group(1).split()
        if not inner or len(inner) > 3 or not all(_WORD.fullmatch(w) for w in inner):
            return False
        label = label[:paren.start()].strip()
    parts = _DASH.split(label)
    if len(parts) == 2:  # "Interviewer - Anna" / "Anna - Respondent": one side is a role
        return any(_base(x) in KNOWN_LABELS for x in parts) and all(
            _is_name(x, bold) for x in parts)
    if len(parts) > 2:
        return False
    if label.count(",") == 1:  # "Pieters, Anna": both sides names, not a clause
        surname, first = (x.strip() for x in label.split(","))
        return (_is_name(surname, bold=False) and _is_name(first, bold=False)
                and len(surname.split()) + len(first.split()) <= MAX_LABEL_WORDS)
    return _is_name(label, bold)


_PAREN_SUFFIX = re.compile(r"\s*[(\[]([^()\[\]]*)[)\]]\s*$")
_DASH = re.compile(r"\s+[-\u2013\u2014|]\s+")


def _base(label: str) -> str:
    return re.sub(r"[\s\d]+$", "", label.strip()).lower()


def _is_name(label: str, bold: bool) -> bool:
    """The original label test: a role label, or 1-4 capitalised name words."""
    label = label.strip()
    words = label.split()
    if not words or len(label) > MAX_LABEL_CHARS or len(words) > MAX_LABEL_WORDS:
        return False
    if not all(_WORD.fullmatch(w) for w in words) or not any(c.isalpha() for c in label):
        return False
    if _base(label) in KNOWN_LABELS:
        return True
    if " ".join(words).lower().rstrip(".") in _NOT_LABELS:
        return False
    if bold:
        return True
    if not words[0][0].isupper():
        return False
    return all(w[0].isupper() or w.isdigit() or w.lower() in _PARTICLES for w in words[1:])


def parse_time(value: str) -> float:
    """Convert ``[hh:]mm:ss[.mmm]`` to seconds (NaN if it does not parse)."""
    m = _TIME_PARTS.fullmatch(value.strip())
    if not m:
        return math.nan
    h, mi, s, frac = m.groups()
    seconds = int(h or 0) * 3600 + int(mi) * 60 + int(s)
    return seconds + (int(frac) / 10 ** len(frac) if frac else 0.0)


class _Label(NamedTuple):
    line_start: int      # offset of the line holding the label
    content_start: int   # offset just after the colon (or closing **)
    speaker: str
    time_start: float


def _match_label(line: str) -> tuple[str, int, float] | None:
    """Return ``(speaker, end of label in line, time)`` if ``line`` starts with a label."""
    m = _LINE_LABEL.match(line)
    found = _label_of(m) if m else None
    return (found[0], m.end(), found[1]) if found else None


def _label_of(m: re.Match[str]) -> tuple[str, float] | None:
    """``(speaker, time)`` of a ``_LINE_LABEL`` match whose label text names a speaker."""
    plain = m.group("plain")
    speaker = (m.group("b1") or m.group("b2") or plain or "").strip()
    if not _is_label(speaker, plain is None):
        return None
    ts = m.group("ts1") or m.group("ts2") or m.group("ts3")
    return speaker, parse_time(ts) if ts else math.nan


@lru_cache(maxsize=1 << 14)
def _candidate_label(matched: str) -> tuple[str, float] | None:
    """``_label_of`` the match whose text is ``matched``, worked out once per distinct text.

    Matching ``_LINE_LABEL`` on the matched text alone gives the same groups (the
    lookahead that ended the match holds at the end of the string too), so the
    verdict is a function of the text: "I:" and "R:" lines cost a lookup.
    """
    m = _LINE_LABEL.match(matched)
    return _label_of(m) if m else None


def strip_span(text: str, start: int, end: int) -> tuple[int, int] | None:
    """Shrink ``[start, end)`` to exclude surrounding whitespace; None if nothing is left."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if start < end else None


_BLANK_LINES = re.compile(r"\n[ \t]*\n\s*")


def paragraphs(text: str, start: int = 0, end: int | None = None) -> list[Turn]:
    """Split ``text[start:end]`` on blank lines into speaker-less turns."""
    end = len(text) if end is None else end
    turns: list[Turn] = []
    pos = start
    for sep in _BLANK_LINES.finditer(text, start, end):
        span = strip_span(text, pos, sep.start())
        if span:
            turns.append(Turn("", *span))
        pos = sep.end()
    span = strip_span(text, pos, end)
    if span:
        turns.append(Turn("", *span))
    return turns


def split_turns(text: str, forced: dict[int, int] | None = None) -> list[Turn]:
    """Split a transcript into turns at speaker labels.

    Lines without a label continue the current turn. Text before the first label,
    or a text without labels, becomes speaker-less turns split on blank lines.

    Args:
        text: The document text (LF line ends).
        forced: Labels found by formatting (Word bold runs): line start offset →
            length of the label including its colon. They win over the text rules.

    Returns:
        Turns in document order; spans exclude label, timestamp and ``**`` markers.
    """
    labels = _text_labels(text, forced or {})
    if not labels:
        return paragraphs(text)
    turns = paragraphs(text, 0, labels[0].line_start)
    ends = [label.line_start for label in labels[1:]]
    ends.append(len(text))
    for label, end in zip(labels, ends):
        # strip_span inlined: this loop runs once per turn of the corpus
        start = label.content_start
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if start < end:  # a label with nothing after it ("I:" then the next label) is no turn
            turns.append(Turn(label.speaker, start, end, label.time_start))
    return turns


def _found_labels(text: str) -> list[_Label]:
    """``_text_labels`` without forced labels: the line-start matches the text rules accept."""
    labels: list[_Label] = []
    first = _TEXT_LABELS.match(text, 0)
    matches = _NEXT_LABELS.finditer(text)
    for m in (first, *matches) if first else matches:
        start = m.start()
        pos = start if m is first else start + 1  # the line start, after the "\n"
        found = _candidate_label(text[pos:m.end()])
        if found:
            labels.append(_Label(pos, m.end(), *found))
    return labels


def turn_lists(text: str) -> tuple[list[str], list[int], list[int], list[float]]:
    """``split_turns(text)`` (no forced labels) as columns: speakers, starts, ends, times.

    The same turns, without a ``_Label`` and a ``Turn`` tuple per turn: reading a
    corpus calls this once per file, and those objects cost more than finding the labels.
    """
    found_at: list[tuple[int, int, str, float]] = []  # line start, content start, label
    first = _TEXT_LABELS.match(text, 0)
    matches = _NEXT_LABELS.finditer(text)
    for m in (first, *matches) if first else matches:
        pos = m.start() if m is first else m.start() + 1  # the line start, after the "\n"
        found = _candidate_label(text[pos:m.end()])
        if found:
            found_at.append((pos, m.end(), *found))
    # text before the first label (all of it without labels): speaker-less paragraphs
    before = paragraphs(text, 0, found_at[0][0] if found_at else None)
    speakers = [""] * len(before)
    starts = [turn.start for turn in before]
    ends = [turn.end for turn in before]
    times = [math.nan] * len(before)
    line_ends = [label[0] for label in found_at[1:]]
    line_ends.append(len(text))
    for (_, start, speaker, time), end in zip(found_at, line_ends):
        # strip_span inlined: this loop runs once per turn of the corpus
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if start < end:  # a label with nothing after it ("I:" then the next label) is no turn
            speakers.append(speaker)
            starts.append(start)
            ends.append(end)
            times.append(time)
    return speakers, starts, ends, times


def _text_labels(text: str, forced: dict[int, int]) -> list[_Label]:
    """The labels of ``text`` in order: ``forced`` ones, and those the text rules find."""
    if not forced:
        return _found_labels(text)
    labels: list[_Label] = []
    match, find = _TEXT_LABELS.match, text.find
    pos = 0
    while pos >= 0:  # pos: each line start; matching there beats scanning every offset
        m = None if pos in forced else match(text, pos)
        if m:
            found = _candidate_label(m.group())
            if found:
                speaker, time = found
                labels.append(_Label(pos, m.end(), speaker, time))
        pos = find("\n", pos) + 1 or -1
    for pos, colon in forced.items():
        # only a line start can hold a label (as when the text is walked line by line)
        if pos == 0 or (0 < pos <= len(text) and text[pos - 1] == "\n"):
            line_end = text.find("\n", pos)
            line = text[pos:line_end if line_end >= 0 else len(text)]
            labels.append(_Label(pos, pos + colon, line[: colon - 1].strip(), math.nan))
    return sorted(labels, key=lambda label: label.line_start)
