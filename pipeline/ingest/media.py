"""Subtitle formats (WebVTT, SRT) → speaker turns.

WebVTT is parsed here rather than with webvtt-py: the library silently drops
malformed cue blocks (non-strict) or raises without a line number (strict), and
keeps only one voice per cue, while Teams writes several ``<v>`` spans per cue.
SRT goes through the ``srt`` package, whose errors carry a character offset.
"""
from __future__ import annotations

import html
import re
from pathlib import Path
from typing import NamedTuple

import srt

from pipeline.errors import InputError

from .labels import Turn, _match_label, parse_time

_TS = r"(?:\d+:)?\d{1,2}:\d{2}[.,]\d{1,3}"
_TIMING = re.compile(rf"\s*({_TS})\s*-->\s*({_TS})(?:[ \t].*)?")
_VOICE = re.compile(r"<v(?:\.[\w-]+)*[ \t]+([^>\n]*)>|</v>")
_TAG = re.compile(r"<[^>\n]*>")
_SPACES = re.compile(r"\s+")


class Cue(NamedTuple):
    """One piece of cue text with its speaker and times (seconds)."""

    speaker: str
    text: str
    start: float
    end: float


def build_document(cues: list[Cue]) -> tuple[str, list[Turn]]:
    """Merge consecutive cues of one speaker and lay the turns out as text.

    Each turn becomes one line ``"Name: text"`` (or just ``"text"``), turns
    separated by a blank line; turn offsets point at the text part.

    Args:
        cues: Cues in file order; empty texts are ignored.

    Returns:
        ``(document text, turns)``.
    """
    merged: list[list] = []
    for cue in cues:
        if not cue.text:
            continue
        if merged and merged[-1][0] == cue.speaker:
            merged[-1][1].append(cue.text)
            merged[-1][3] = cue.end
        else:
            merged.append([cue.speaker, [cue.text], cue.start, cue.end])
    parts: list[str] = []
    turns: list[Turn] = []
    pos = 0
    for speaker, texts, t0, t1 in merged:
        prefix = f"{speaker}: " if speaker else ""
        content = " ".join(texts)
        start = pos + len(prefix)
        turns.append(Turn(speaker, start, start + len(content), t0, t1))
        parts.append(prefix + content)
        pos += len(prefix) + len(content) + 2
    return "\n\n".join(parts), turns


def _clean(text: str) -> str:
    """Drop markup tags, decode entities, collapse whitespace (captions wrap lines)."""
    return _SPACES.sub(" ", html.unescape(_TAG.sub("", text))).strip()


def _split_label(text: str, speaker: str) -> tuple[str, str]:
    """Use a leading ``Name:`` in cue text as speaker when no voice tag gave one."""
    if not speaker:
        found = _match_label(text)
        if found:
            return found[0], text[found[1]:].strip()
    return speaker, text


def _voice_pieces(payload: str) -> list[tuple[str, str]]:
    """Split cue payload at ``<v Name>`` spans into ``(speaker, raw text)`` pieces."""
    pieces: list[tuple[str, str]] = []
    speaker, pos = "", 0
    for m in _VOICE.finditer(payload):
        pieces.append((speaker, payload[pos:m.start()]))
        speaker = m.group(1).strip() if m.group(1) is not None else ""
        pos = m.end()
    pieces.append((speaker, payload[pos:]))
    return pieces


def parse_vtt(text: str, path: Path | str) -> tuple[list[Cue], list[str]]:
    """Parse WebVTT text into cues.

    Args:
        text: Decoded file text (LF line ends).
        path: For messages.

    Returns:
        ``(cues, warnings)``. A malformed last block (a file cut off mid-cue) is
        dropped with a warning when earlier cues were read.

    Raises:
        InputError: Missing ``WEBVTT`` header, a malformed cue before the end of
            the file (with its line number), or no cues at all.
    """
    lines = text.split("\n")
    if not lines[0].startswith("WEBVTT"):
        raise InputError(path, "not a WebVTT file (first line must start with WEBVTT)", line=1)
    blocks: list[tuple[int, list[str]]] = []
    current: list[str] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            current = []
            continue
        # As in the WebVTT spec, a timing line that cannot belong to the current block
        # starts a new one (exports that forget the blank line between cues).
        if current and "-->" in line and (len(blocks) == 1 or len(current) > 1
                                          or "-->" in current[0]):
            current = []
        if not current:
            blocks.append((number, current))
        current.append(line)
    cues: list[Cue] = []
    warnings: list[str] = []
    for index, (number, block) in enumerate(blocks[1:], start=1):
        last = index == len(blocks) - 1
        if block[0].startswith(("NOTE", "STYLE", "REGION")):
            continue
        timing_at = 0 if "-->" in block[0] else 1
        timing = _TIMING.fullmatch(block[timing_at]) if len(block) > timing_at else None
        problem = None
        if timing is None:
            problem = "expected a cue timing line 'hh:mm:ss.mmm --> hh:mm:ss.mmm'"
        elif last and block[-1].count("<") > block[-1].count(">"):
            problem = "cue text ends inside a tag"
        if problem:
            if last and cues:
                warnings.append(f"{path}: line {number + timing_at}: {problem}; the file looks "
                                f"truncated, kept the {len(cues)} cues before it")
                break
            raise InputError(path, problem, line=number + timing_at)
        t0, t1 = parse_time(timing.group(1)), parse_time(timing.group(2))
        payload = "\n".join(block[timing_at + 1:])
        for speaker, raw in _voice_pieces(payload):
            speaker, cue_text = _split_label(_clean(raw), _clean(speaker))
            if cue_text:
                cues.append(Cue(speaker, cue_text, t0, t1))
    if not cues:
        raise InputError(path, "no cues with text in the WebVTT file")
    return cues, warnings


def parse_srt(text: str, path: Path | str) -> tuple[list[Cue], list[str]]:
    """Parse SRT text into cues; speaker from a leading ``Name:`` in the cue text.

    Args:
        text: Decoded file text (LF line ends).
        path: For messages.

    Returns:
        ``(cues, warnings)``; unparseable trailing content after at least one cue
        is reported as a warning (truncated file).

    Raises:
        InputError: Unparseable content before the last cue (with its line
            number), or no cues at all.
    """
    subs: list[srt.Subtitle] = []
    warnings: list[str] = []
    try:
        for sub in srt.parse(text):
            subs.append(sub)
    except srt.SRTParseError as exc:
        lines = text.split("\n")
        line = text.count("\n", 0, exc.expected_start) + 1
        while line < len(lines) and not lines[line - 1].strip():
            line += 1  # name the first line with content, not the blank line before it
        if subs and exc.actual_start >= len(text.rstrip()):
            warnings.append(f"{path}: line {line}: unparseable SRT after cue {len(subs)}; the file "
                            f"looks truncated, kept the {len(subs)} cues before it")
        else:
            raise InputError(path, "malformed SRT cue", line=line) from None
    except ValueError as exc:  # srt.TimestampParseError is a ValueError
        raise InputError(path, f"malformed SRT timestamp ({exc})") from None
    lines = text.split("\n")
    for sub in subs:
        # srt folds a cue with a broken index line into the previous cue's text.
        stray = next((ln for ln in sub.content.split("\n") if _TIMING.fullmatch(ln)), None)
        if stray is not None:
            raise InputError(path, "malformed SRT cue (timing line inside cue text; missing "
                                   "blank line or bad index?)", line=lines.index(stray) + 1)
    cues = []
    for sub in subs:
        speaker, cue_text = _split_label(_clean(sub.content), "")
        cues.append(Cue(speaker, cue_text, sub.start.total_seconds(), sub.end.total_seconds()))
    if not any(c.text for c in cues):
        raise InputError(path, "no subtitles with text in the SRT file")
    return cues, warnings

