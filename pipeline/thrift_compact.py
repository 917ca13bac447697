"""Thrift's compact protocol, read and written without a schema (Parquet footers).

A Parquet footer is a Thrift compact-protocol ``FileMetaData``; ``parquet_splice``
rewrites a few of its fields. ``read_struct`` and ``write_struct`` keep every field,
known or not, in file order, so what they write back is what they read (fields of
newer parquet-format versions survive). Values: ``int`` (integers), ``bool`` (type
TRUE), ``bytes`` (binary, and a double's 8 raw bytes), ``Struct``, for a list/set
``(element type, [values])``, for a map ``(key type, value type, [(key, value)])``.
"""
from __future__ import annotations

__all__ = ["BINARY", "BYTE", "DOUBLE", "FALSE", "I16", "I32", "I64", "LIST", "MAP", "SET",
           "STOP", "STRUCT", "TRUE", "Encoded", "Struct", "ThriftError", "put_struct",
           "read_struct", "write_struct"]

# compact-protocol type ids
STOP, TRUE, FALSE, BYTE, I16, I32, I64, DOUBLE, BINARY, LIST, SET, MAP, STRUCT = range(13)
_INTS = (BYTE, I16, I32, I64)


class ThriftError(ValueError):
    """Bytes that are not a well-formed compact-protocol struct (or a value it cannot write)."""


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
# turns that into a ThriftError; slices, which do not raise, are checked.

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
            raise ThriftError("footer has a malformed number")


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
            raise ThriftError("footer ends inside a string")
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
            raise ThriftError("footer ends inside a double")
        return buf[pos:pos + 8], pos + 8
    raise ThriftError(f"footer has an unknown Thrift type {ftype}")


def read_struct(buf: bytes, pos: int = 0) -> tuple[Struct, int]:
    """Read a compact-protocol struct starting at ``buf[pos]``.

    Returns:
        The struct and the position after its stop byte.

    Raises:
        ThriftError: The bytes are not a well-formed struct.
    """
    try:
        return _struct_at(buf, pos)
    except IndexError:
        raise ThriftError("ends inside a value") from None
    except RecursionError:
        raise ThriftError("structs nested too deep") from None


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
        put_struct(out, value)
    elif isinstance(value, Encoded):  # a list whose elements are already written
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
        raise ThriftError(f"cannot write Thrift type {ftype}")


def _list_header(out: bytearray, etype: int, count: int) -> None:
    if count < 15:
        out.append((count << 4) | etype)
    else:
        out.append(0xF0 | etype)
        _put_varint(out, count)


class Encoded:
    """A list value whose ``count`` elements of type ``etype`` are already serialised."""

    __slots__ = ("count", "data", "etype")

    def __init__(self, etype: int) -> None:
        self.etype, self.count, self.data = etype, 0, bytearray()


def put_struct(out: bytearray, st: Struct) -> None:
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
    put_struct(out, st)
    return bytes(out)
