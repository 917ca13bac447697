"""CSV files: survey-style responses (one turn per row) and metadata.csv."""
from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import pandas as pd

from pipeline import columns as C
from pipeline.errors import InputError

from .decode import decode_bytes
from .labels import strip_span

# Column names an attribute may not take: they already mean something downstream.
RESERVED = frozenset(C.DOCUMENT_COLUMNS + C.TURN_COLUMNS + C.SEGMENT_COLUMNS)
_DELIMITERS = (",", ";", "\t")


def _sniff_delimiter(header_line: str) -> str:
    """Pick the delimiter of the header line (Dutch Excel writes ';')."""
    counts = {d: header_line.count(d) for d in _DELIMITERS}
    best = max(_DELIMITERS, key=lambda d: counts[d])  # ties keep the earlier, i.e. ","
    return best if counts[best] else ","


def read_rows(text: str, path: Path | str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Parse CSV text strictly.

    Args:
        text: Decoded CSV text.
        path: For messages.

    Returns:
        ``(header, rows)``; each row is ``(line number where the record starts,
        values)`` padded to the header length. Blank lines are skipped.

    Raises:
        InputError: Bad quoting, a row with more or fewer fields than the header,
            a duplicated or missing column name; with the line number.
    """
    # Long answers exceed csv's default 128 KiB field limit; raising it is harmless.
    csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))
    delimiter = _sniff_delimiter(text.split("\n", 1)[0])
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    records: list[tuple[int, list[str]]] = []
    while True:
        line = reader.line_num + 1
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise InputError(path, f"malformed CSV ({exc}) in the record starting here",
                             line=line) from None
        if "".join(values).strip():  # not a blank record (any(v.strip() ...), in C)
            records.append((line, values))
    if not records:
        raise InputError(path, "empty file")
    header_line, header = records[0]
    header = [h.strip().lstrip("\ufeff") for h in header]
    rows = records[1:]
    width = len(header)
    for line, values in rows:
        if len(values) > width and any(v.strip() for v in values[width:]):
            raise InputError(path, f"row has {len(values)} fields but the header has {width}",
                             line=line)
        if len(values) < width:
            raise InputError(path, f"row has {len(values)} fields but the header has {width}",
                             line=line)
        del values[width:]
    keep = []
    for i, name in enumerate(header):
        if name:
            keep.append(i)
        elif any(values[i].strip() for _, values in rows):
            raise InputError(path, f"column {i + 1} has values but no name", line=header_line)
    seen: set[str] = set()
    for i in keep:
        if header[i] in seen:
            raise InputError(path, f"duplicate column name {header[i]!r}", line=header_line)
        seen.add(header[i])
    if len(keep) == width:  # every column named (the usual case): rows as they are
        return header, rows
    return ([header[i] for i in keep],
            [(line, [values[i] for i in keep]) for line, values in rows])


def _find_column(header: list[str], wanted: str) -> str | None:
    """Exact column name, else a unique case-insensitive match."""
    if wanted in header:
        return wanted
    folded = [h for h in header if h.casefold() == wanted.casefold()]
    return folded[0] if len(folded) == 1 else None


def csv_document(text: str, path: Path | str, doc_id: str, *, text_column: str = "text",
                 id_column: str = "id") -> tuple[str, dict[str, list], list[str]]:
    """Turn a response CSV into one document: row texts joined by blank lines.

    Args:
        text: Decoded CSV text.
        path: For messages.
        doc_id: Document id for the turns table.
        text_column: Column holding the response text.
        id_column: Column holding the respondent/row id; the 1-based row number
            is used when the file has no such column.

    Returns:
        ``(document text, turns, warnings)``; turns are columns (``columns.TURN_COLUMNS``,
        then every other CSV column as a string attribute column) → values.

    Raises:
        InputError: Missing text column (lists the columns found), duplicate or
            empty id, no non-empty text, or malformed CSV.
    """
    header, rows = read_rows(text, path)
    text_col = _find_column(header, text_column)
    if text_col is None:
        raise InputError(path, f"no text column {text_column!r}; columns found: "
                               + ", ".join(repr(h) for h in header))
    id_col = _find_column(header, id_column)
    warnings: list[str] = []
    attributes: dict[str, str] = {}  # CSV column → attribute column name
    for name in header:
        if name in (text_col, id_col):
            continue
        target = name
        if name in RESERVED:
            target = f"{name}_csv"
            if target in header and target not in (text_col, id_col):
                # two attribute columns of one name: one would be lost
                raise InputError(path, f"column {name!r} is a reserved name and {target!r}, "
                                       "its new name, is taken; rename one of them")
            warnings.append(f"{path}: column {name!r} is a reserved name; kept as {target!r}")
        attributes[name] = target
    t_i = header.index(text_col)
    id_i = header.index(id_col) if id_col is not None else None
    # (column index, values) per attribute, in header order
    attr_values = [(header.index(name), []) for name in attributes]
    parts: list[str] = []
    starts: list[int] = []
    keys: list[str] = []
    seen: dict[str, int] = {}
    pos = 0
    for number, (line, values) in enumerate(rows, start=1):
        span = strip_span(values[t_i], 0, len(values[t_i]))
        if span is None:
            continue
        key = str(number) if id_i is None else values[id_i].strip()
        if not key:
            raise InputError(path, f"empty id in column {id_col!r}", line=line)
        if key in seen:
            raise InputError(path, f"duplicate id {key!r} (first on line {seen[key]})", line=line)
        seen[key] = line
        content = values[t_i][span[0]:span[1]]
        for i, column in attr_values:
            column.append(values[i].strip())
        parts.append(content)
        starts.append(pos)
        keys.append(key)
        pos += len(content) + 2
    if not parts:
        raise InputError(path, f"no non-empty text in column {text_col!r}")
    n = len(parts)
    turns: dict[str, list] = {
        C.DOC_ID: [doc_id] * n, C.TURN: list(range(n)), C.SPEAKER: [""] * n, C.START: starts,
        C.END: [start + len(content) for start, content in zip(starts, parts)],
        C.TIME_START: [math.nan] * n, C.TIME_END: [math.nan] * n, C.UNIT_KEY: keys}
    for target, (_, column) in zip(attributes.values(), attr_values):
        turns[target] = column
    return "\n\n".join(parts), turns, warnings


def read_metadata(path: Path | str) -> pd.DataFrame:
    """Read a metadata CSV: one row per document, keyed by ``doc_id``.

    Args:
        path: The metadata file (``,``, ``;`` or tab separated; any encoding
            ``decode_bytes`` understands).

    Returns:
        DataFrame with ``doc_id`` first and every other column as strings.

    Raises:
        InputError: Unreadable or malformed file, no ``doc_id`` column (lists the
            columns found), an empty or duplicated ``doc_id`` (named, with line).
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(path, f"cannot read metadata ({exc.strerror})") from None
    text, _ = decode_bytes(data, path)
    if not text.strip():
        raise InputError(path, "empty file")
    header, rows = read_rows(text, path)
    key_col = _find_column(header, C.DOC_ID)
    if key_col is None:
        raise InputError(path, f"no {C.DOC_ID!r} column; columns found: "
                               + ", ".join(repr(h) for h in header))
    k = header.index(key_col)
    seen: dict[str, int] = {}
    for line, values in rows:
        key = values[k].strip()
        if not key:
            raise InputError(path, f"empty {C.DOC_ID}", line=line)
        if key in seen:
            raise InputError(path, f"duplicate {C.DOC_ID} {key!r} (first on line {seen[key]})",
                             line=line)
        seen[key] = line
    names = [C.DOC_ID] + [h for h in header if h != key_col]
    order = [k] + [i for i, h in enumerate(header) if h != key_col]
    records = [[values[i].strip() for i in order] for _, values in rows]
    return pd.DataFrame(records, columns=names, dtype=str)
