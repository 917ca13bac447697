"""Bytes → text: encoding detection and normalisation (NFC, LF line ends)."""
from __future__ import annotations

import codecs
import re
import unicodedata
from pathlib import Path

from pipeline.errors import InputError

# Control characters that never occur in real text files; tab, LF, CR, FF and VT do.
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")
# More than this share of stray control characters means binary data decoded by luck.
_MAX_CONTROL_SHARE = 0.01
_CONTROL_BYTES = bytes([*range(0x00, 0x09), *range(0x0e, 0x20), 0x7f])  # _CONTROL as bytes
_ASCII_COMPATIBLE = frozenset({"utf-8", "utf-8-sig", "cp1252"})
_NEWLINES = re.compile(r"\r\n?")

# Leading bytes of binary formats people save or rename as text: (magic, what it is, advice).
_MAGIC = (
    (b"%PDF-", "a PDF file", "export it as .txt or .docx"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Word/Excel file (.doc/.xls)",
     "save it as .docx (or a sheet as .csv)"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image", "transcribe it to .txt or .docx"),
    (b"\xff\xd8\xff", "a JPEG image", "transcribe it to .txt or .docx"),
    (b"GIF87a", "a GIF image", "transcribe it to .txt or .docx"),
    (b"GIF89a", "a GIF image", "transcribe it to .txt or .docx"),
    (b"{\\rtf", "an RTF file", "save it as .docx or .txt"),
)
_ZIP = (b"PK\x03\x04", b"PK\x05\x06")


def sniff_binary(data: bytes) -> tuple[str, str] | None:
    """Recognise a binary file format by its magic bytes.

    Args:
        data: The raw file bytes (only the start is looked at, except for ZIP
            archives, whose member names tell a .docx from an .xlsx).

    Returns:
        ``(what, advice)`` such as ``("a PDF file", "export it as .txt or .docx")``,
        or None when the data does not start like a known binary format.
    """
    head = data[:16].lstrip(b"\xef\xbb\xbf") if data.startswith(b"\xef\xbb\xbf{") else data[:16]
    for magic, what, advice in _MAGIC:
        if head.startswith(magic):
            return what, advice
    if head.startswith(_ZIP):
        if b"word/" in data:
            return "a Word .docx file", "give it the suffix .docx"
        if b"xl/" in data:
            return "an Excel workbook", "save the sheet as .csv (UTF-8)"
        return "a ZIP archive", "unpack it, or export the transcript as .txt or .docx"
    return None


def check_not_binary(data: bytes, path: Path | str, expected: str = "text") -> None:
    """Raise InputError naming the format when ``data`` is a known binary format.

    Args:
        data: The raw file bytes.
        path: For the message.
        expected: What the file's suffix promised ("text", "a .csv file").
    """
    found = sniff_binary(data)
    if found is not None:
        what, advice = found
        raise InputError(path, f"is {what}, not {expected}; {advice}")


def decode_bytes(data: bytes, path: Path | str) -> tuple[str, str]:
    """Decode raw file bytes to normalised text.

    Detection order: UTF-32/UTF-16 byte-order mark, UTF-8 BOM, plain UTF-8,
    then cp1252 (Windows Western European, what Word and Excel write on Dutch
    machines). The result is NFC-normalised, has LF line ends only and no BOM,
    so every offset computed on it is stable.

    Args:
        data: The raw bytes of the file.
        path: The file the bytes came from; only used in error messages.

    Returns:
        ``(text, encoding)`` where encoding is one of ``"utf-8"``, ``"utf-8-sig"``,
        ``"utf-16"``, ``"utf-32"`` or ``"cp1252"``.

    Raises:
        InputError: The data is a known binary format (PDF, ZIP/.docx/.xlsx, old
            .doc, PNG, JPEG, GIF, RTF: named, with what to do), binary (NUL bytes
            without a UTF-16/32 BOM, many control characters) or undecodable
            ("not a text file").
    """
    check_not_binary(data, path)
    text, encoding = _decode(data, path)
    if text.startswith("\ufeff"):
        text = text[1:]
    if text:
        stray = _count_controls(data, text, encoding)
        if stray and stray / len(text) > _MAX_CONTROL_SHARE:
            raise InputError(path, f"not a text file ({stray} control characters)")
    if "\r" in text:
        text = _NEWLINES.sub("\n", text)
    # ASCII text is NFC already; the test is free, normalising a long text is not
    return (text if text.isascii() else unicodedata.normalize("NFC", text)), encoding


def _count_controls(data: bytes, text: str, encoding: str) -> int:
    """Number of ``_CONTROL`` characters in ``text`` (decoded from ``data``)."""
    if encoding in _ASCII_COMPATIBLE:
        # These encodings write U+0000-U+007F as those single bytes, and no other
        # character uses such a byte: counting bytes counts the characters, ~10x
        # faster than scanning the text with the regex.
        return len(data) - len(data.translate(None, _CONTROL_BYTES))
    return len(_CONTROL.findall(text))


def _decode(data: bytes, path: Path | str) -> tuple[str, str]:
    # UTF-32 LE's BOM starts with UTF-16 LE's, so it must be tested first.
    boms = [
        (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"),
    ]
    for bom, name in boms:
        if data.startswith(bom):
            try:
                return data.decode(name), name
            except UnicodeDecodeError as exc:
                raise InputError(path, f"not a text file (invalid {name.upper()} at byte "
                                       f"{exc.start})") from None
    if data.startswith(codecs.BOM_UTF8):
        try:
            return data.decode("utf-8-sig"), "utf-8-sig"
        except UnicodeDecodeError as exc:
            raise InputError(path, f"not a text file (invalid UTF-8 at byte {exc.start})") from None
    if b"\x00" in data:
        raise InputError(path, "not a text file (contains NUL bytes; binary or UTF-16 without BOM)")
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError as exc:
        raise InputError(path, f"not a text file (byte 0x{data[exc.start]:02x} at {exc.start} "
                               "is neither UTF-8 nor cp1252)") from None
