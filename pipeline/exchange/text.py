"""Source text decoding and offset conversion between QDA tools and the pipeline.

The pipeline's offsets index an NFC, LF-normalised Python string (code points).
QDA tools disagree: the REFI-QDA text and QualCoder count code points in the file
as written, NVivo counts UTF-16 code units (an emoji is two) and keeps CRLF as two
characters. Everything here is pure: strings and integers in, strings and
integers out.
"""
from __future__ import annotations

import bisect
import codecs
import unicodedata
from dataclasses import dataclass

CODEPOINT = "codepoint"
UTF16 = "utf16"
OFFSET_UNITS = (CODEPOINT, UTF16)


def decode_source(data: bytes) -> tuple[str, str]:
    """Decode a source text file; return ``(text, encoding)``.

    A BOM decides (UTF-8, UTF-16 LE/BE); without one the bytes must be UTF-8, and
    cp1252 is the fallback because Windows tools still write it. The BOM is dropped:
    no tool counts it as a character.
    """
    for bom, enc in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
                     (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(bom):
            return data.decode(enc), enc
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace"), "cp1252"


def unit_index(text: str, unit: str) -> list[int]:
    """Return, for each code point index ``i`` (0..len), its offset in ``unit``.

    Only needed for UTF-16: code points above U+FFFF take two units.
    """
    out = [0] * (len(text) + 1)
    pos = 0
    for i, ch in enumerate(text):
        out[i] = pos
        pos += 2 if (unit == UTF16 and ord(ch) > 0xFFFF) else 1
    out[len(text)] = pos
    return out


def units_to_codepoints(text: str, offsets: list[int], unit: str) -> list[int]:
    """Convert offsets counted in ``unit`` to code point indexes into ``text``.

    An offset that falls inside a surrogate pair snaps to the start of the
    character; offsets beyond the end clamp to ``len(text)``.
    """
    if unit == CODEPOINT:
        return [max(0, min(o, len(text))) for o in offsets]
    table = unit_index(text, unit)
    return [max(0, min(bisect.bisect_right(table, o) - 1, len(text))) for o in offsets]


def codepoints_to_units(text: str, offsets: list[int], unit: str) -> list[int]:
    """Convert code point indexes into ``text`` to offsets counted in ``unit``."""
    if unit == CODEPOINT:
        return list(offsets)
    table = unit_index(text, unit)
    return [table[max(0, min(o, len(text)))] for o in offsets]


def utf16_length(text: str) -> int:
    """Length of ``text`` in UTF-16 code units."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


@dataclass(frozen=True)
class Normalized:
    """A text normalised like ingest does (LF line ends, NFC) plus an offset map."""

    original: str
    text: str
    _lf: str
    _lf_map: tuple[int, ...]       # original index -> index in the LF-only text
    _chunks: tuple[int, ...]       # chunk starts in the LF-only text
    _chunk_out: tuple[int, ...]    # their starts in the NFC text

    def map(self, offset: int) -> int:
        """Map an offset into ``original`` to the matching offset into ``text``."""
        offset = max(0, min(offset, len(self.original)))
        lf_pos = self._lf_map[offset]
        k = bisect.bisect_right(self._chunks, lf_pos) - 1
        start = self._chunks[k]
        if lf_pos == start:
            return self._chunk_out[k]
        end = self._chunks[k + 1] if k + 1 < len(self._chunks) else len(self._lf)
        chunk = self._lf[start:end]
        if unicodedata.is_normalized("NFC", chunk):
            return self._chunk_out[k] + (lf_pos - start)
        # Inside a chunk that composes: the prefix's NFC length is where it lands.
        inner = len(unicodedata.normalize("NFC", chunk[: lf_pos - start]))
        return self._chunk_out[k] + min(inner, len(unicodedata.normalize("NFC", chunk)))


def normalize_text(original: str) -> Normalized:
    """Normalise ``original`` to LF line ends and NFC, keeping an offset map.

    CRLF and lone CR become LF (an offset pointing between CR and LF lands on the
    LF). For NFC the text is cut before every ASCII character: no composition takes
    an ASCII character as its second part, so normalising the pieces separately
    gives the same string as normalising the whole, and offsets only move inside a
    piece that changes.
    """
    lf_chars: list[str] = []
    lf_map = [0] * (len(original) + 1)
    i = 0
    while i < len(original):
        ch = original[i]
        lf_map[i] = len(lf_chars)
        if ch == "\r":
            if i + 1 < len(original) and original[i + 1] == "\n":
                lf_map[i + 1] = len(lf_chars)
                i += 1
            lf_chars.append("\n")
        else:
            lf_chars.append(ch)
        i += 1
    lf_map[len(original)] = len(lf_chars)
    lf = "".join(lf_chars)

    chunks = [0] + [j for j in range(1, len(lf)) if ord(lf[j]) < 128]
    chunk_out: list[int] = []
    pieces: list[str] = []
    pos = 0
    for n, start in enumerate(chunks):
        end = chunks[n + 1] if n + 1 < len(chunks) else len(lf)
        piece = lf[start:end]
        if not piece.isascii():
            piece = unicodedata.normalize("NFC", piece)
        chunk_out.append(pos)
        pieces.append(piece)
        pos += len(piece)
    text = "".join(pieces)
    return Normalized(original, text, lf, tuple(lf_map), tuple(chunks), tuple(chunk_out))
