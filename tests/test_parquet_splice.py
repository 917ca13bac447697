"""Spliced Parquet files are byte for byte what ParquetWriter writes for the same tables."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.parquet_splice import SpliceError, Splicer, read_footer
from pipeline.thrift_compact import (FALSE, I16, I64, LIST, STRUCT, TRUE, Struct, ThriftError,
                                     read_struct, write_struct)


def _tables(kind: str) -> list[pa.Table]:
    rng = np.random.default_rng(7)
    n = 3000
    frame = pd.DataFrame({
        "id": [f"doc{k // 7}:{k}" for k in range(n)],
        "n": rng.integers(-5, 10**12, n),
        "small": rng.integers(0, 4, n).astype("int8"),
        "score": np.where(rng.random(n) < 0.1, np.nan, rng.random(n)),
        "flag": rng.random(n) < 0.5,
        "maybe": pd.array([None if k % 5 == 0 else bool(k % 2) for k in range(n)], dtype=object),
        "word": rng.choice(["een", "twee", "drie", None], n),          # dictionary-encoded
        "text": [f"unique text {k} " * int(rng.integers(0, 9)) for k in range(n)],  # plain
    })
    cuts = {"plain": [0, 1000, 1001, 2500, n], "empty": [0, 1000, 1000, n],
            "one": [0, n]}[kind]
    schema = pa.Table.from_pandas(frame, preserve_index=False).schema
    tables = [pa.Table.from_pandas(frame.iloc[a:b].reset_index(drop=True), schema=schema,
                                   preserve_index=False) for a, b in zip(cuts, cuts[1:])]
    if len(tables) > 1:  # a later part's own metadata: the file keeps the first part's
        tables[1] = tables[1].replace_schema_metadata({**schema.metadata, b"other": b"x"})
    return tables


def _written(tables: list[pa.Table], path: Path, **kw) -> bytes:
    schema = tables[0].schema
    with pq.ParquetWriter(path, schema, **kw) as out:
        for table in tables:
            out.write_table(table.replace_schema_metadata(schema.metadata), **(
                {"row_group_size": 700} if kw.get("_groups") else {}))
    return path.read_bytes()


def _parts(tables: list[pa.Table], folder: Path, row_group_size: int | None = None) -> list[Path]:
    paths = []
    for k, table in enumerate(tables):
        path = folder / f"part{k}.parquet"
        with pq.ParquetWriter(path, table.schema) as out:
            out.write_table(table, row_group_size=row_group_size)
        paths.append(path)
    return paths


def _spliced(paths: list, dest: Path) -> bytes:
    with open(dest, "wb") as sink:
        splicer = Splicer(sink)
        for path in paths:
            splicer.append(path)
        splicer.close()
    return dest.read_bytes()


@pytest.mark.parametrize("kind", ["plain", "empty", "one"])
def test_spliced_file_equals_the_writers(tmp_path: Path, kind: str) -> None:
    tables = _tables(kind)
    expected = _written(tables, tmp_path / "written.parquet")
    got = _spliced(_parts(tables, tmp_path), tmp_path / "spliced.parquet")
    assert got == expected
    back = pq.read_table(tmp_path / "spliced.parquet")
    assert back.equals(pa.concat_tables(
        [t.replace_schema_metadata(tables[0].schema.metadata) for t in tables]))
    assert back.schema.metadata == tables[0].schema.metadata  # the first part's metadata
    assert pq.ParquetFile(tmp_path / "spliced.parquet").metadata.num_row_groups == len(tables)


def test_parts_of_several_row_groups(tmp_path: Path) -> None:
    tables = _tables("plain")
    expected = tmp_path / "written.parquet"
    with pq.ParquetWriter(expected, tables[0].schema) as out:
        for table in tables:
            out.write_table(table, row_group_size=700)
    got = _spliced(_parts(tables, tmp_path, row_group_size=700), tmp_path / "spliced.parquet")
    assert got == expected.read_bytes()
    assert pq.ParquetFile(tmp_path / "spliced.parquet").metadata.num_row_groups > len(tables)


def test_parts_from_memory_and_schema_metadata(tmp_path: Path) -> None:
    schema = pa.schema([("a", pa.int32()), ("b", pa.string())], metadata={"k": "v", "x": ""})
    tables = [pa.table({"a": pa.array([1, None, 3], pa.int32()), "b": ["x", "y", None]},
                       schema=schema),
              pa.table({"a": pa.array([4], pa.int32()), "b": ["z"]}, schema=schema)]
    expected = _written(tables, tmp_path / "written.parquet")
    buffers = []
    for table in tables:
        sink = pa.BufferOutputStream()
        with pq.ParquetWriter(sink, schema) as out:
            out.write_table(table)
        buffers.append(sink.getvalue())
    assert _spliced(buffers, tmp_path / "spliced.parquet") == expected
    assert pq.read_schema(tmp_path / "spliced.parquet").metadata == schema.metadata


def test_footer_round_trips_through_the_compact_protocol(tmp_path: Path) -> None:
    data = _written(_tables("plain"), tmp_path / "written.parquet")
    with open(tmp_path / "written.parquet", "rb") as fh:
        meta, start = read_footer(fh)
    assert write_struct(meta) == data[start:-8]


def test_unknown_fields_and_types_survive() -> None:
    inner = Struct([[1, I64, -300], [20, STRUCT, Struct([[3, FALSE, False]])]])
    st = Struct([[2, LIST, (STRUCT, [inner] * 20)], [1000, I16, -2],
                 [1001, 11, (8, 5, [(b"k", 7)])], [1002, 7, b"\x00" * 8],
                 [1003, LIST, (TRUE, [1, 2, 1])], [1004, 3, -1], [1005, 11, (0, 0, [])]])
    data = write_struct(st)
    back, end = read_struct(data)
    assert end == len(data) and back == st
    back.set(1000, 5)
    back.set(3, 9, I64)  # a new field goes in id order
    assert [f[0] for f in back.fields][:2] == [2, 3]
    assert read_struct(write_struct(back))[0] == back


def test_damaged_parts_give_clear_errors(tmp_path: Path) -> None:
    good = _parts(_tables("one"), tmp_path)[0]
    data = good.read_bytes()
    bad = tmp_path / "bad.parquet"
    length = int.from_bytes(data[-8:-4], "little")
    cases = {
        "not a Parquet file": b"hello world, not parquet at all",
        "damaged Parquet footer": data[:-8 - length] + b"\x19\xff" * (length // 2)
        + b"\x00" * (length % 2) + data[-8:],
        "does not fit": data[:-8] + (10**9).to_bytes(4, "little") + b"PAR1",
        "too short": b"PAR1",
        "encrypted": data[:-4] + b"PARE",
    }
    for message, content in cases.items():
        bad.write_bytes(content)
        with pytest.raises(SpliceError, match=message), open(tmp_path / "o", "wb") as sink:
            Splicer(sink).append(bad)


def test_a_part_with_another_schema_is_refused(tmp_path: Path) -> None:
    paths = _parts([pa.table({"a": [1]}), pa.table({"a": ["x"]})], tmp_path)
    with open(tmp_path / "o", "wb") as sink, pytest.raises(SpliceError, match="schema differs"):
        splicer = Splicer(sink)
        for path in paths:
            splicer.append(path)
    with pytest.raises(SpliceError, match="no part"):
        Splicer(io.BytesIO()).close()


@pytest.mark.parametrize("data, message", [
    (b"\x15", "ends inside a value"),                 # a field header, then nothing
    (b"\x18\x05ab", "ends inside a string"),          # a 5-byte string with 2 bytes
    (b"\x1e", "unknown Thrift type 14"),
])
def test_malformed_structs_raise_thrift_errors(data: bytes, message: str) -> None:
    with pytest.raises(ThriftError, match=message):
        read_struct(data)
