"""The tables of cache entry files: Arrow IPC bytes, Arrow tables and pandas frames.

``tagged_store`` entries are written from pandas frames (``arrow_table``) as Arrow
IPC files with zstd buffers (``table_bytes``) and read back without decoding
(``read_table``, ``_frame``); ``take_rows`` reorders such frames column by column.
Arrow IPC, not Parquet: a re-code reads every entry of the corpus, and an IPC file's
buffers are the table's own (decompressed, not decoded), which made reading them
about forty times faster than decoding the same rows from Parquet.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from pipeline import columns as C


def _arrow_binary(kind: pa.DataType) -> pd.ArrowDtype | None:
    """``to_pandas`` dtype of a column type: large binary stays Arrow (else the default)."""
    return pd.ArrowDtype(kind) if pa.types.is_large_binary(kind) else None


def _frame(table: pa.Table) -> pd.DataFrame:
    """The pandas frame of an entry's table; binary columns (CSV lines) stay Arrow.

    Without the stored pandas metadata: an entry's files are written by
    ``arrow_table`` without an index, so that metadata only repeats what the column
    types say (the same frame), and reading it back costs more than the conversion."""
    return table.to_pandas(types_mapper=_arrow_binary, ignore_metadata=True)


SUFFIX = ".arrow"


def read_table(data: bytes) -> pa.Table:
    """The table of an entry file's bytes (Arrow IPC file format)."""
    return pa.ipc.open_file(pa.BufferReader(data)).read_all()


def table_bytes(table: pa.Table) -> bytes:
    """An entry file's bytes: ``table`` in the Arrow IPC file format, zstd buffers.

    One thread: the writes run behind the coding (``cache_io.behind``), and the
    ``--jobs`` workers share the cores."""
    sink = pa.BufferOutputStream()
    options = pa.ipc.IpcWriteOptions(compression="zstd", use_threads=False)
    with pa.ipc.new_file(sink, table.schema, options=options) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


_SCHEMAS: dict[tuple, pa.Schema] = {}   # (columns, dtypes) -> from_pandas' schema


def arrow_table(rows: pd.DataFrame, columns: list[str], units: np.ndarray,
                keep: np.ndarray | None = None) -> pa.Table:
    """``pa.Table.from_pandas(rows[columns].assign(CACHE_UNIT=units), preserve_index=False)``.

    Without a frame copy and pandas' conversion layer per call: when every column is
    Arrow-backed or a NumPy number, the table's schema (with its pandas metadata)
    depends only on the names and dtypes, so it is made once from an empty frame and
    the columns' own arrays are put under it. Any other column: ``from_pandas``.
    With ``keep`` (a mask of ``rows``), of those rows only (``units`` are theirs).
    """
    dtypes = dict(zip(rows.columns, rows.dtypes.tolist()))  # one look-up, not a Series each
    key = (tuple(columns), tuple(str(dtypes[name]) for name in columns), units.dtype.str)
    schema = _SCHEMAS.get(key)
    if schema is None:
        empty = rows.iloc[:0][columns].assign(**{C.CACHE_UNIT: units[:0]})
        plain = all(isinstance(empty[name].array, pd.arrays.ArrowExtensionArray)
                    or empty[name].dtype.kind in "iufb" for name in empty.columns)
        # an empty frame's types are a full one's only for typed columns
        schema = _SCHEMAS[key] = _pandas_table(empty).schema if plain else None
    if schema is not None:
        # the kept rows' positions once for every column: a few rows of a large table are
        # taken (a mask would be read whole by every column's filter)
        at = None if keep is None else np.flatnonzero(keep)
        try:
            arrays = [_arrow_column(rows[name], at) for name in columns] + [pa.array(units)]
            return pa.Table.from_arrays(arrays, schema=schema)
        except (TypeError, ValueError, pa.ArrowException):
            pass
    frame = rows[columns] if keep is None else rows[columns][keep].reset_index(drop=True)
    return _pandas_table(frame.assign(**{C.CACHE_UNIT: units}))


def _pandas_table(frame: pd.DataFrame) -> pa.Table:
    # one thread: a delta is small, and pyarrow's default starts a thread pool
    # per call for frames of more than 100 rows a column (most of the cost)
    return pa.Table.from_pandas(frame, preserve_index=False, nthreads=1)


def _arrow_column(values: pd.Series, at: np.ndarray | None = None,
                  ) -> pa.ChunkedArray | pa.Array:
    """A column as ``from_pandas`` converts it (NaN is null in a float column); with
    ``at`` (ascending positions), those rows only."""
    if isinstance(values.array, pd.arrays.ArrowExtensionArray):
        data = values.array.__arrow_array__()
        return data if at is None else data.take(at)
    data = values.to_numpy()
    return pa.array(data if at is None else data[at], from_pandas=True)


def _one_chunk(values: pd.arrays.ArrowExtensionArray) -> pa.Array | pa.ChunkedArray:
    """The column's Arrow data, its chunks joined: a take from several chunks (cached rows
    and new ones concatenated) cost ~45% more than joining them and taking from one."""
    data = values.__arrow_array__()
    if isinstance(data, pa.ChunkedArray) and data.num_chunks > 1:
        return data.combine_chunks()
    return data


def take_rows(frame: pd.DataFrame, order: np.ndarray) -> pd.DataFrame:
    """``frame.take(order).reset_index(drop=True)``, column by column.

    Arrow-backed columns (ids, evidence, CSV lines) are taken by Arrow's own kernel,
    without pandas' per-column checks and block handling; the other columns as
    pandas takes them. Same values, dtypes and column index.
    """
    indices = pa.array(np.asarray(order, dtype=np.int64))
    data = {}
    for k, name in enumerate(frame.columns):
        column = frame.iloc[:, k]
        values = column.array
        if type(values) is pd.arrays.ArrowStringArray:
            data[k] = pd.arrays.ArrowStringArray(_one_chunk(values).take(indices),
                                                 dtype=values.dtype)
        elif type(values) is pd.arrays.ArrowExtensionArray:
            data[k] = pd.arrays.ArrowExtensionArray(_one_chunk(values).take(indices))
        else:
            data[k] = column.take(order).reset_index(drop=True)
    out = pd.DataFrame(data, copy=False)
    out.columns = frame.columns
    return out
