"""Parquet files joined without re-encoding: row-group bytes copied, one footer rewritten.

With ``--jobs N`` every worker encodes its chunk's slice of an output table as a
Parquet file of its own (same Arrow schema, same writer properties); ``Splicer`` then
makes the final file by copying each part's row-group bytes after the previous ones
and writing one footer whose byte offsets are shifted and whose row-group ordinals
are renumbered. The result is byte for byte what ``pyarrow.parquet.ParquetWriter``
writes when it is given the parts' tables one after the other: the column-chunk
bytes do not depend on where they sit in the file, only the footer does (tests hold
this). pyarrow has no API for appending encoded row groups
(``FileMetaData.append_row_groups`` copies the metadata without moving offsets).

The footer is a Thrift compact-protocol ``FileMetaData``. ``read_struct`` and
``write_struct`` are a generic reader/writer of that protocol that keep every field,
known or not, in file order, so fields of newer parquet-format versions survive;
only these fields (numbers from parquet-format's ``parquet.thrift``) are changed:

- ``FileMetaData``: 3 ``num_rows``, 4 ``row_groups``;
- ``RowGroup``: 5 ``file_offset``, 7 ``ordinal``;
- ``ColumnChunk``: 2 ``file_offset``, 4 ``offset_index_offset``,
  6 ``column_index_offset``;
- ``ColumnMetaData``: 9 ``data_page_offset``, 10 ``index_page_offset``,
  11 ``dictionary_page_offset``, 14 ``bloom_filter_offset``.

A part's whole body (everything between its leading magic and its footer: row
groups, and page indexes or bloom filters if it has them) is copied, so every offset
moves by the same amount and the file stays valid; only files without page indexes
and bloom filters (the writer's defaults, which the pipeline uses) equal
``ParquetWriter``'s output byte for byte, since that writer puts those after the
last row group.
"""
from __future__ import annotations

import io
import os
import struct as _struct
from pathlib import Path
from typing import BinaryIO

__all__ = ["MAGIC", "SpliceError", "Splicer", "Struct", "copy_bytes", "read_footer",
           "read_struct", "write_struct"]

MAGIC = b"PAR1"

# compact-protocol type ids
STOP, TRUE, FALSE, BYTE, I16, I32, I64, DOUBLE, BINARY, LIST, SET, MAP, STRUCT = range(13)
_INTS = (BYTE, I16, I32, I64)

# the offset fields moved with a part's bytes, by struct
_FILE_NUM_ROWS, _FILE_ROW_GROUPS, _FILE_SCHEMA = 3, 4, 2
_GROUP_COLUMNS, _GROUP_FILE_OFFSET, _GROUP_ORDINAL = 1, 5, 7
_CHUNK_OFFSETS = (2, 4, 6)
_CHUNK_META = 3
_META_OFFSETS = (9, 10, 11, 14)


class SpliceError(ValueError):
    """A part is not a Parquet file this module can splice (damaged or encrypted footer)."""


class Struct:
    """A Thrift struct as read: ``fields`` is ``[field id, type, value]`` in file order.

    Values: ``int`` (integers), ``bool`` (type TRUE), ``bytes`` (binary, and a double's
    8 raw bytes), ``Struct``, or for a list/set ``(element type, [values])`` and for a
    map ``(key type, value type, [(key, value)])``.
    """

    __slots__ = ("fields",)

    def __init__(self, fields: list[list] | None = None) -> None:
        self.fields = fields if fields is not None else []

    def get(self, fid: int, default: object = None) -> object:
        """The value of field ``fid`` (``default`` when absent)."""
        for f in self.fields:
            if f[0] == fid:
                return f[2]
        return default

    def set(self, fid: int, value: object, ftype: int | None = None) -> None:
        """Set field ``fid`` in place (kept where it is; a new field goes in id order)."""
        for f in self.fields:
            if f[0] == fid:
                f[2] = value
                return
        if ftype is None:
            raise KeyError(fid)
        pos = next((k for k, f in enumerate(self.fields) if f[0] > fid), len(self.fields))
        self.fields.insert(pos, [fid, ftype, value])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Struct) and self.fields == other.fields

    def __repr__(self) -> str:
        return f"Struct({self.fields!r})"

# ---------------------------------------------------------------------------- reading

# The readers index past the end of a truncated footer (IndexError): ``read_struct``
# turns that into a SpliceError; slices, which do not raise, are checked.

def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
        if shift > 70:
            raise SpliceError("footer has a malformed number")


def _value(buf: bytes, pos: int, ftype: int) -> tuple[object, int]:
    if ftype in _INTS:
        if ftype == BYTE:
            b = buf[pos]
            return (b - 256 if b > 127 else b), pos + 1
        n, pos = _varint(buf, pos)
        return (n >> 1) ^ -(n & 1), pos
    if ftype == BINARY:
        n, pos = _varint(buf, pos)
        if pos + n > len(buf):
            raise SpliceError("footer ends inside a string")
        return buf[pos:pos + n], pos + n
    if ftype == STRUCT:
        return _struct_at(buf, pos)
    if ftype in (LIST, SET):
        head = buf[pos]
        pos += 1
        etype, size = head & 0x0F, head >> 4
        if size == 15:
            size, pos = _varint(buf, pos)
        items = []
        for _ in range(size):
            if etype in (TRUE, FALSE):  # one byte per element: kept as written
                items.append(buf[pos])
                pos += 1
            else:
                item, pos = _value(buf, pos, etype)
                items.append(item)
        return (etype, items), pos
    if ftype == MAP:
        size, pos = _varint(buf, pos)
        if not size:
            return (0, 0, []), pos
        ktype, vtype = buf[pos] >> 4, buf[pos] & 0x0F
        pos += 1
        pairs = []
        for _ in range(size):
            k, pos = _value(buf, pos, ktype)
            v, pos = _value(buf, pos, vtype)
            pairs.append((k, v))
        return (ktype, vtype, pairs), pos
    if ftype == DOUBLE:
        if pos + 8 > len(buf):
            raise SpliceError("footer ends inside a double")
        return buf[pos:pos + 8], pos + 8
    raise SpliceError(f"footer has an unknown Thrift type {ftype}")


def read_struct(buf: bytes, pos: int = 0) -> tuple[Struct, int]:
    """Read a compact-protocol struct starting at ``buf[pos]``.

    Returns:
        The struct and the position after its stop byte.

    Raises:
        SpliceError: The bytes are not a well-formed struct.
    """
    try:
        return _struct_at(buf, pos)
    except IndexError:
        raise SpliceError("ends inside a value") from None
    except RecursionError:
        raise SpliceError("structs nested too deep") from None


def _struct_at(buf: bytes, pos: int) -> tuple[Struct, int]:
    fields: list[list] = []
    last = 0
    while True:
        head = buf[pos]
        pos += 1
        ftype = head & 0x0F
        if ftype == STOP:
            return Struct(fields), pos
        delta = head >> 4
        if delta:
            fid = last + delta
        else:
            n, pos = _varint(buf, pos)
            fid = (n >> 1) ^ -(n & 1)
        if ftype in (TRUE, FALSE):
            value: object = ftype == TRUE
        else:
            value, pos = _value(buf, pos, ftype)
        fields.append([fid, ftype, value])
        last = fid


# ---------------------------------------------------------------------------- writing

def _put_varint(out: bytearray, n: int) -> None:
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def _zigzag(n: int) -> int:
    return (n << 1) ^ (n >> 63)


def _put_value(out: bytearray, ftype: int, value: object) -> None:
    if ftype in _INTS:
        if ftype == BYTE:
            out.append(value & 0xFF)
        else:
            _put_varint(out, _zigzag(value))
    elif ftype == BINARY:
        _put_varint(out, len(value))
        out += value
    elif ftype == STRUCT:
        _put_struct(out, value)
    elif isinstance(value, _Encoded):  # a list whose elements are already written
        _list_header(out, value.etype, value.count)
        out += value.data
    elif ftype in (LIST, SET):
        etype, items = value
        _list_header(out, etype, len(items))
        for item in items:
            if etype in (TRUE, FALSE):
                out.append(item)
            else:
                _put_value(out, etype, item)
    elif ftype == MAP:
        ktype, vtype, pairs = value
        _put_varint(out, len(pairs))
        if pairs:
            out.append((ktype << 4) | vtype)
            for k, v in pairs:
                _put_value(out, ktype, k)
                _put_value(out, vtype, v)
    elif ftype == DOUBLE:
        out += value
    else:
        raise SpliceError(f"cannot write Thrift type {ftype}")


def _list_header(out: bytearray, etype: int, count: int) -> None:
    if count < 15:
        out.append((count << 4) | etype)
    else:
        out.append(0xF0 | etype)
        _put_varint(out, count)


class _Encoded:
    """A list value whose ``count`` elements of type ``etype`` are already serialised."""

    __slots__ = ("count", "data", "etype")

    def __init__(self, etype: int) -> None:
        self.etype, self.count, self.data = etype, 0, bytearray()


def _put_struct(out: bytearray, st: Struct) -> None:
    last = 0
    for fid, ftype, value in st.fields:
        if ftype in (TRUE, FALSE):
            ftype = TRUE if value else FALSE
        delta = fid - last
        if 0 < delta <= 15:
            out.append((delta << 4) | ftype)
        else:
            out.append(ftype)
            _put_varint(out, _zigzag(fid) & 0xFFFF)
        if ftype not in (TRUE, FALSE):
            _put_value(out, ftype, value)
        last = fid
    out.append(STOP)


def write_struct(st: Struct) -> bytes:
    """Serialise a struct with the compact protocol (the bytes ``read_struct`` read)."""
    out = bytearray()
    _put_struct(out, st)
    return bytes(out)


# ---------------------------------------------------------------------------- files

def read_footer(fh: BinaryIO, name: str = "part") -> tuple[Struct, int]:
    """The ``FileMetaData`` of an open Parquet file and where its footer starts.

    Raises:
        SpliceError: Not a plain Parquet file, or its footer does not parse.
    """
    size = fh.seek(0, os.SEEK_END)
    if size < 12:
        raise SpliceError(f"{name}: too short for a Parquet file ({size} bytes)")
    fh.seek(0)
    head = fh.read(4)
    fh.seek(size - 8)
    tail = fh.read(8)
    if head != MAGIC or tail[4:] != MAGIC:
        what = "encrypted" if tail[4:] == b"PARE" else "not a Parquet file"
        raise SpliceError(f"{name}: {what} (magic {head!r}...{tail[4:]!r})")
    length = int.from_bytes(tail[:4], "little")
    start = size - 8 - length
    if start < 4:
        raise SpliceError(f"{name}: footer length {length} does not fit in {size} bytes")
    fh.seek(start)
    data = fh.read(length)
    try:
        meta, end = read_struct(data)
    except SpliceError as exc:
        raise SpliceError(f"{name}: damaged Parquet footer ({exc})") from None
    if end != length or not isinstance(meta.get(_FILE_ROW_GROUPS), tuple):
        raise SpliceError(f"{name}: damaged Parquet footer (no row groups, or trailing bytes)")
    return meta, start


def _shift(group: Struct, delta: int, ordinal: int) -> None:
    """Move a row group's offsets by ``delta`` bytes and give it ``ordinal``."""
    # An offset of 0 (the file's magic) points at nothing: it means "none" (Arrow
    # writes ColumnChunk.file_offset 0, and data_page_offset 0 for an empty chunk)
    # and stays 0.
    for f in group.fields:
        if f[0] == _GROUP_FILE_OFFSET and f[2]:
            f[2] += delta
        elif f[0] == _GROUP_ORDINAL:
            f[2] = ordinal
    for chunk in group.get(_GROUP_COLUMNS, (0, []))[1]:
        for f in chunk.fields:
            if f[0] in _CHUNK_OFFSETS and f[2]:
                f[2] += delta
            elif f[0] == _CHUNK_META:
                for g in f[2].fields:
                    if g[0] in _META_OFFSETS and g[2]:
                        g[2] += delta


class Splicer:
    """Write one Parquet file from Parquet parts of the same schema, part after part.

    The first part's footer gives the file's schema, key-value metadata (the Arrow
    schema with its metadata) and every other footer field; later parts add their
    row groups only. ``close`` writes the footer.

    Args:
        sink: The file to write, open for binary writing at position 0.
    """

    def __init__(self, sink: BinaryIO) -> None:
        self.sink = sink
        self.sink.write(MAGIC)
        self.pos = len(MAGIC)
        self.meta: Struct | None = None
        # Row groups are serialised as they come (their offsets are known then), so
        # ``close`` - at the very end of a run, when nothing else runs - only joins
        # bytes: a 1M-segment run's footers hold ~70,000 structs.
        self.groups = _Encoded(STRUCT)
        self.rows = 0

    def append(self, path: str | Path | bytes | memoryview) -> None:
        """Copy the row groups of a Parquet file to the end of the sink.

        Args:
            path: The file, or its bytes (any buffer, e.g. a ``pyarrow.Buffer``).

        Raises:
            SpliceError: The part is damaged, encrypted, or has another Parquet schema.
        """
        if isinstance(path, (str, Path)):
            source: BinaryIO = open(path, "rb")  # noqa: SIM115 - closed below
        else:
            source, path = io.BytesIO(memoryview(path)), "part in memory"
        with source as src:
            meta, start = read_footer(src, str(path))
            if self.meta is not None and meta.get(_FILE_SCHEMA) != self.meta.get(_FILE_SCHEMA):
                raise SpliceError(f"{path}: Parquet schema differs from the first part's")
            delta = self.pos - len(MAGIC)
            copy_bytes(src, self.sink, len(MAGIC), start - len(MAGIC))
        self.pos += start - len(MAGIC)
        for group in meta.get(_FILE_ROW_GROUPS)[1]:
            _shift(group, delta, self.groups.count)
            _put_struct(self.groups.data, group)
            self.groups.count += 1
        self.rows += meta.get(_FILE_NUM_ROWS, 0)
        if self.meta is None:
            self.meta = meta

    def close(self) -> None:
        """Write the footer (the sink stays open).

        Raises:
            SpliceError: No part was appended, or too many row groups for Parquet.
        """
        if self.meta is None:
            raise SpliceError("no part to splice")
        if self.groups.count > 32767:  # RowGroup.ordinal is an i16
            raise SpliceError(f"{self.groups.count} row groups: more than a Parquet file holds")
        self.meta.set(_FILE_NUM_ROWS, self.rows, I64)
        self.meta.set(_FILE_ROW_GROUPS, self.groups, LIST)
        footer = write_struct(self.meta)
        data = memoryview(footer + _struct.pack("<I", len(footer)) + MAGIC)
        while data:  # an unbuffered sink may take less than all of it
            data = data[self.sink.write(data):]


def copy_bytes(src: BinaryIO, dst: BinaryIO, offset: int, n: int) -> None:
    """Copy ``n`` bytes of ``src`` from ``offset`` to ``dst``'s position; file to file
    in the kernel (``copy_file_range``): the bytes need not pass through Python."""
    dst.flush()
    try:
        fds = (src.fileno(), dst.fileno())
    except (AttributeError, OSError):  # in memory (io.UnsupportedOperation is an OSError)
        fds = None
    while n > 0 and fds is not None and hasattr(os, "copy_file_range"):
        try:
            step = os.copy_file_range(fds[0], fds[1], n, offset)
        except OSError:  # e.g. a file system without it: copy the rest below
            break
        if step == 0:
            raise SpliceError(f"{getattr(src, 'name', 'part')}: ends while copying")
        offset, n = offset + step, n - step
    src.seek(offset)
    while n > 0:
        block = src.read(min(n, 1 << 20))
        if not block:
            raise SpliceError(f"{getattr(src, 'name', 'part')}: ends while copying")
        dst.write(block)
        n -= len(block)
