"""CSV lines of a table, byte for byte as ``DataFrame.to_csv`` writes them, but columnar.

``to_csv`` hands every field to Python's ``csv`` writer, which looks at every
character to decide on quoting: for the output tables (long texts and evidence) that
was about a tenth of a coding run's CPU. Here each column is formatted and quoted
with Arrow compute kernels and the rows are joined in one pass; a column of a type
this module does not format the same way (dates, categories, nullable integers,
objects that are not all strings) falls back to ``to_csv`` for the whole table.

What ``to_csv(index=False, header=False, lineterminator="\\n")`` writes, and so what
this writes: integers in decimal, floats as NumPy's ``astype(str)``, booleans as
``True``/``False``, missing values as nothing; a string is quoted (quotes doubled)
when it holds a comma, a quote or ``\\n``.
"""
from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pandas.arrays import ArrowStringArray

# Python's csv writer (QUOTE_MINIMAL) quotes a field holding the delimiter, the quote
# character or a character of the line terminator ("\n": a lone "\r" is not quoted);
# tests/test_csv_rows.py pins this to to_csv.
_NEEDS_QUOTES = r'[,"\n]'


def csv_rows(df: pd.DataFrame) -> bytes:
    """``df.to_csv(index=False, header=False, lineterminator="\\n")`` as UTF-8 bytes.

    Args:
        df: The rows.

    Returns:
        The same bytes as ``to_csv``; made column by column when every column is of
        a type formatted here, else by ``to_csv`` itself.
    """
    fast = _columnar(df)
    if fast is not None:
        return fast
    return df.to_csv(index=False, header=False, lineterminator="\n").encode("utf-8")


def _columnar(df: pd.DataFrame) -> bytes | None:
    """The rows made with Arrow kernels; None: a column needs ``to_csv``."""
    # A lone empty field is written as "" by the csv module: leave one column to it.
    if len(df.columns) < 2 or not len(df) or not df.columns.is_unique:
        return None
    columns = []
    for name in df.columns:
        column = _field_strings(df[name])
        if column is None:
            return None
        columns.append(column)
    # large strings (64-bit offsets): no 2 GB limit on the rows
    columns[-1] = pc.binary_join_element_wise(columns[-1], _large("\n"), _large(""))
    rows = pc.binary_join_element_wise(*columns, _large(","))
    if isinstance(rows, pa.ChunkedArray):
        rows = rows.combine_chunks()
    offsets = np.frombuffer(rows.buffers()[1], dtype=np.int64)
    start, end = int(offsets[rows.offset]), int(offsets[rows.offset + len(rows)])
    return rows.buffers()[2].slice(start, end - start).to_pybytes()


def _field_strings(column: pd.Series) -> pa.Array | None:
    """The column's fields as ``to_csv`` writes them (quoted where needed); None: unsure."""
    dtype = column.dtype
    if dtype == np.bool_:
        return pa.array(np.where(column.to_numpy(), "True", "False"), type=pa.large_string())
    if dtype.kind in "iu" and isinstance(dtype, np.dtype):
        return pa.array(column.to_numpy()).cast(pa.large_string())
    if dtype.kind == "f" and isinstance(dtype, np.dtype):
        return _float_strings(column.to_numpy())
    if not (dtype == object or isinstance(dtype, pd.StringDtype)):
        return None
    strings = _arrow_strings(column)
    if strings is None:
        return None  # not all strings: to_csv formats those values its own way
    if dtype == object and _has_non_str(column):
        return None
    strings = pc.fill_null(strings, "")
    if not _has_special(strings):  # ids, hashes, codes: no field to quote
        return strings
    needs = pc.match_substring_regex(strings, _NEEDS_QUOTES)
    if not pc.any(needs).as_py():
        return strings
    quoted = pc.binary_join_element_wise(
        _large("\""), pc.replace_substring(strings, "\"", "\"\""), _large("\""), _large(""))
    return pc.if_else(needs, quoted, strings)


def _large(text: str) -> pa.Scalar:
    return pa.scalar(text, type=pa.large_string())


def _arrow_strings(column: pd.Series) -> pa.Array | None:
    """The column as one Arrow large-string array (the ``str`` dtype's own, not copied)."""
    values = column.array
    if isinstance(values, ArrowStringArray):
        strings = values.__arrow_array__()
        if pa.types.is_large_string(strings.type):
            return strings.combine_chunks()
    try:
        return pa.array(column, type=pa.large_string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None


def _has_special(strings: pa.Array) -> bool:
    """Whether any field holds a byte that may need quoting (a comma, a quote or a newline).

    One scan of the column's character bytes (UTF-8: these bytes are those characters
    only): most columns hold none, and then no field is matched one by one.
    """
    buffer = strings.buffers()[2]
    if not len(strings) or buffer is None:
        return False
    offsets = np.frombuffer(strings.buffers()[1], dtype=np.int64)
    start, end = int(offsets[strings.offset]), int(offsets[strings.offset + len(strings)])
    data = np.frombuffer(buffer, dtype=np.uint8)[start:end]
    return bool((data == 44).any() or (data == 34).any() or (data == 10).any())


def _float_strings(values: np.ndarray) -> pa.Array:
    """Floats as ``to_csv`` writes them (``astype(str)``; NaN: nothing), each distinct once.

    Scores and times repeat a few values: formatting the distinct ones and taking
    them is many times faster than formatting every row. Distinct by bit pattern, so
    ``-0.0`` and ``0.0`` keep their own text.
    """
    bits = np.ascontiguousarray(values).view(f"i{values.dtype.itemsize}")
    distinct_bits, inverse = np.unique(bits, return_inverse=True)
    distinct = distinct_bits.view(values.dtype)
    text = distinct.astype(str)
    text[np.isnan(distinct)] = ""
    return pa.array(text, type=pa.large_string()).take(pa.array(inverse.ravel()))


def _has_non_str(column: pd.Series) -> bool:
    """Whether an object column holds anything but strings and missing values.

    Arrow would turn a missing value of another kind (``pd.NaT``, ``pd.NA``) into a
    null too; ``to_csv`` writes those as nothing as well, but a float NaN is the only
    missing value the object columns of the output tables hold, so be strict.
    """
    for value in column.tolist():
        if value is None or isinstance(value, str):
            continue
        if isinstance(value, float) and value != value:
            continue
        return True
    return False


class LinesOnThread:
    """``csv_rows(frame)`` computed on its own thread; ``result()`` waits for it.

    The thread reads a shallow copy of ``frame`` (its own column index, the same
    arrays): nothing writes the table meanwhile, and the caller's frame stays its own.
    An error in the thread makes ``result()`` None: the lines are then made by the
    spill, which reports what is wrong.
    """

    def __init__(self, frame: pd.DataFrame) -> None:
        self._frame, self._lines = frame.copy(deep=False), None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._lines = csv_rows(self._frame)
        except Exception:  # noqa: BLE001 - the spill formats the table again and raises
            self._lines = None
        self._frame = None

    def result(self) -> bytes | None:
        """The lines (None: the thread failed)."""
        self._thread.join()
        return self._lines
