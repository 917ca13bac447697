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
_NEWLINES = re.compile(r"\r\n?")


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
        InputError: The data is binary (NUL bytes without a UTF-16/32 BOM, many
            control characters) or undecodable ("not a text file").
    """
    text, encoding = _decode(data, path)
    if text.startswith("\ufeff"):
        text = text[1:]
    if text:
        stray = len(_CONTROL.findall(text))
        if stray and stray / len(text) > _MAX_CONTROL_SHARE:
            raise InputError(path, f"not a text file ({stray} control characters)")
    text = _NEWLINES.sub("\n", text)
    return unicodedata.normalize("NFC", text), encoding


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
