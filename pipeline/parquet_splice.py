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

The footer is a Thrift compact-protocol ``FileMetaData``, read and written by
``thrift_compact`` (a generic reader/writer that keeps every field, known or not, in
file order, so fields of newer parquet-format versions survive); only these fields
(numbers from parquet-format's ``parquet.thrift``) are changed:

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

from pipeline.thrift_compact import (I64, LIST, STRUCT, Encoded, Struct, ThriftError, put_struct,
                                     read_struct, write_struct)

__all__ = ["MAGIC", "SpliceError", "Splicer", "copy_bytes", "group_rows", "read_footer"]

MAGIC = b"PAR1"

# the offset fields moved with a part's bytes, by struct
_FILE_NUM_ROWS, _FILE_ROW_GROUPS, _FILE_SCHEMA = 3, 4, 2
_GROUP_COLUMNS, _GROUP_FILE_OFFSET, _GROUP_ORDINAL = 1, 5, 7
_CHUNK_OFFSETS = (2, 4, 6)
_CHUNK_META = 3
_META_OFFSETS = (9, 10, 11, 14)
_META_DATA_OFFSET, _META_DICTIONARY_OFFSET, _META_COMPRESSED_SIZE = 9, 11, 7
_GROUP_NUM_ROWS = 3


class SpliceError(ValueError):
    """A part is not a Parquet file this module can splice (damaged or encrypted footer)."""


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
    except ThriftError as exc:
        raise SpliceError(f"{name}: damaged Parquet footer ({exc})") from None
    if end != length or not isinstance(meta.get(_FILE_ROW_GROUPS), tuple):
        raise SpliceError(f"{name}: damaged Parquet footer (no row groups, or trailing bytes)")
    return meta, start


def group_rows(meta: Struct, first: int, count: int, name: str = "part") -> int:
    """The rows of row groups ``first`` .. ``first + count - 1`` of a file's ``FileMetaData``.

    Raises:
        SpliceError: The file has fewer row groups.
    """
    groups = meta.get(_FILE_ROW_GROUPS, (0, []))[1]
    if first < 0 or count < 0 or first + count > len(groups):
        raise SpliceError(f"{name}: no row groups {first}..{first + count - 1}")
    return sum(group.get(_GROUP_NUM_ROWS, 0) for group in groups[first:first + count])


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


def _copied(value: object) -> object:
    """A deep copy of a value read by ``thrift_compact`` (``_shift`` changes groups)."""
    if isinstance(value, Struct):
        return Struct([[f[0], f[1], _copied(f[2])] for f in value.fields])
    if isinstance(value, (tuple, list)):
        return type(value)(_copied(v) for v in value)
    return value


def _extent(group: Struct) -> tuple[int, int]:
    """The bytes of a row group's column chunks: (first, end), from its column metadata
    (each chunk starts at its dictionary page, else its first data page)."""
    begin = end = None
    for chunk in group.get(_GROUP_COLUMNS, (0, []))[1]:
        meta = chunk.get(_CHUNK_META)
        if meta is None:
            raise SpliceError("a column chunk without its metadata")
        at = meta.get(_META_DICTIONARY_OFFSET) or meta.get(_META_DATA_OFFSET)
        size = meta.get(_META_COMPRESSED_SIZE)
        if at is None or size is None:
            raise SpliceError("a column chunk without page offsets")
        begin = at if begin is None else min(begin, at)
        end = at + size if end is None else max(end, at + size)
    if begin is None:
        raise SpliceError("a row group without columns")
    return begin, end


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
        self.groups = Encoded(STRUCT)
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
            put_struct(self.groups.data, group)
            self.groups.count += 1
        self.rows += meta.get(_FILE_NUM_ROWS, 0)
        if self.meta is None:
            self.meta = meta

    def append_groups(self, path: str | Path, first: int, count: int,
                      footer: tuple[Struct, int] | None = None) -> int:
        """Copy row groups ``first`` .. ``first + count - 1`` of a Parquet file to the end
        of the sink, as ``append`` copies a whole file's (the same bytes per column chunk).

        Args:
            path: The file.
            first, count: The row groups.
            footer: ``read_footer`` of the file, when the caller has it (it is not
                changed: the groups and the file's metadata are copied).

        Returns:
            The rows copied.

        Raises:
            SpliceError: The file is damaged, has another schema, or fewer row groups.
        """
        with open(path, "rb") as src:
            meta, start = footer if footer is not None else read_footer(src, str(path))
            if self.meta is not None and meta.get(_FILE_SCHEMA) != self.meta.get(_FILE_SCHEMA):
                raise SpliceError(f"{path}: Parquet schema differs from the first part's")
            groups = meta.get(_FILE_ROW_GROUPS, (0, []))[1]
            if first < 0 or count < 0 or first + count > len(groups):
                raise SpliceError(f"{path}: no row groups {first}..{first + count - 1}")
            chosen = [_copied(group) for group in groups[first:first + count]]
            if not chosen:
                return 0
            begin, end = _extent(chosen[0])[0], _extent(chosen[-1])[1]
            if not len(MAGIC) <= begin < end <= start:
                raise SpliceError(f"{path}: row group bytes {begin}..{end} outside the body")
            delta = self.pos - begin
            copy_bytes(src, self.sink, begin, end - begin)
        self.pos += end - begin
        rows = 0
        for group in chosen:
            _shift(group, delta, self.groups.count)
            put_struct(self.groups.data, group)
            self.groups.count += 1
            rows += group.get(_GROUP_NUM_ROWS, 0)
        self.rows += rows
        if self.meta is None:  # its fields' values are replaced by ``close``, not changed
            self.meta = Struct([list(f) for f in meta.fields])
        return rows

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
    in the kernel (``copy_file_range``): the bytes need not pass through Python, unless
    ``dst`` hashes what is written to it (``parts_stream.HashedSink``)."""
    dst.flush()
    try:
        fds = (src.fileno(), dst.fileno())
    except (AttributeError, OSError):  # in memory (io.UnsupportedOperation is an OSError)
        fds = None
    if getattr(dst, "hashed", False):  # the bytes must pass its ``write`` (a HashedSink)
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
