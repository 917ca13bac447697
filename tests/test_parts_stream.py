"""PartWriter.stream writes the bytes finalize's merge writes, or leaves it to the merge."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.csv_rows import csv_rows
from pipeline.parts import ChunkSpill, PartWriter


def _chunks(kind: str) -> list[pd.DataFrame]:
    a = pd.DataFrame({"id": ["a1", "a2"], "n": [1, 2], "text": ["x, y", 'say "hi"'],
                      "score": [0.5, np.nan]})
    b = pd.DataFrame({"id": ["b1"], "n": [3], "text": ["line\nbreak"], "score": [1.0]})
    empty = a.iloc[:0]
    if kind == "same":
        return [a, b]
    if kind == "new_column":                    # a later chunk brings an attribute
        return [a, b.assign(country="BE")]
    if kind == "other_type":                    # a later chunk's column has another type
        return [a.assign(n=[None, None]), b]
    if kind == "empty_first":
        return [empty, a, b]
    return [a, empty, b]


def _files(tmp: Path, chunks: list[pd.DataFrame], stream: bool, via_spill: bool,
           memory: bool = False, parquet: bool = False) -> dict:
    writer = PartWriter(tmp)
    if stream:
        writer.stream("t", "t", csv=True)
    spill = ChunkSpill(str(writer.dir), ("t",), ("t",), memory=memory, parquet=parquet)
    for k, df in enumerate(chunks):
        if via_spill or memory:
            res = type("R", (), {"index": k, "t": df})()
            writer.adopt("t", spill(res)["t"])
        else:
            writer.add("t", df)
    staged = writer.finalize("t", "t", csv=True)
    out = {name: path.read_bytes() for name, path in staged.items()}
    writer.close()
    return out


@pytest.mark.parametrize("kind", ["same", "new_column", "other_type", "empty_first",
                                  "empty_middle"])
@pytest.mark.parametrize("via_spill", [False, True])
def test_streamed_files_are_the_merged_files(tmp_path: Path, kind: str, via_spill: bool) -> None:
    chunks = _chunks(kind)
    merged = _files(tmp_path / "merged", chunks, stream=False, via_spill=via_spill)
    streamed = _files(tmp_path / "streamed", chunks, stream=True, via_spill=via_spill)
    assert streamed == merged
    frame = pd.concat(chunks, ignore_index=True)
    if "country" in frame:
        frame["country"] = frame["country"].fillna("")
    assert merged["t.csv"] == frame.to_csv(index=False, lineterminator="\n").encode("utf-8")


@pytest.mark.parametrize("kind", ["same", "new_column", "other_type", "empty_first",
                                  "empty_middle"])
@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("parts", ["memory", "parquet"])
def test_parts_in_memory_or_as_parquet_give_the_same_files(tmp_path: Path, kind: str,
                                                           stream: bool, parts: str) -> None:
    """Parts kept in memory (one job), and parts a pool worker encoded as Parquet
    (spliced or merged), give the bytes of parts merged from Arrow IPC files."""
    chunks = _chunks(kind)
    merged = _files(tmp_path / "merged", chunks, stream=False, via_spill=True)
    assert _files(tmp_path / parts, chunks, stream=stream, via_spill=True,
                  **{parts: True}) == merged


def test_a_splicing_stream_takes_parts_of_every_kind(tmp_path: Path) -> None:
    """After Parquet parts, a part added in the runner (IPC) is encoded by the stream."""
    a, b = _chunks("same")
    c = b.assign(id=["c1"])
    expected = _files(tmp_path / "merged", [a, b, c], stream=False, via_spill=False)
    writer = PartWriter(tmp_path / "out")
    writer.stream("t", "t", csv=True)
    spill = ChunkSpill(str(writer.dir), ("t",), ("t",), parquet=True)
    for k, df in enumerate([a, b]):
        part = spill(type("R", (), {"index": k, "t": df})())["t"]
        assert part.path.endswith(".parquet")
        pd.testing.assert_frame_equal(PartWriter.read(Path(part.path)), df.reset_index(drop=True))
        writer.adopt("t", part)
    assert writer._streams["t"].splicer is not None
    writer.add("t", c, csv_rows(c))  # e.g. renamed segment ids: the runner's own part
    staged = writer.finalize("t", "t", csv=True)
    assert {name: path.read_bytes() for name, path in staged.items()} == expected
    writer.close()


def test_parquet_parts_read_back_with_their_types(tmp_path: Path) -> None:
    from pipeline.parts import spill
    from pipeline.parts_stream import read_part

    df = pd.DataFrame({"k": pd.Categorical(["a", "b", "a"]), "n": [1, 2, 3],
                       "none": [None, None, None]})
    part = spill(tmp_path / "p.arrow", df, None, parquet=True)
    table = read_part(part.path, part.schema)
    assert table.schema.equals(part.schema, check_metadata=True)
    assert [c.num_chunks for c in table.columns] == [1, 1, 1]
    pd.testing.assert_frame_equal(PartWriter.read(Path(part.path)), df)


def test_memory_parts_are_written_when_the_stream_is_dropped(tmp_path: Path) -> None:
    a, b = _chunks("same")
    c = b.assign(country="BE")  # a new column: the stream is dropped at the third part
    writer = PartWriter(tmp_path / "out")
    writer.stream("t", "t", csv=True)
    spill = ChunkSpill(str(writer.dir), ("t",), ("t",), memory=True)
    for k, df in enumerate([a, b]):
        writer.adopt("t", spill(type("R", (), {"index": k, "t": df})())["t"])
    assert not list(Path(writer.dir).glob("t-*.arrow"))  # taken by the stream only
    writer.adopt("t", spill(type("R", (), {"index": 2, "t": c})())["t"])
    files = sorted(p.name for p in Path(writer.dir).glob("t-*"))
    assert files == [f"t-{k:07d}.{ext}" for k in range(3) for ext in ("arrow", "csv")]
    pd.testing.assert_frame_equal(PartWriter.read(Path(writer.dir) / "t-0000001.arrow"),
                                  b.reset_index(drop=True))
    staged = writer.finalize("t", "t", csv=True)
    out = {name: path.read_bytes() for name, path in staged.items()}
    writer.close()
    assert out == _files(tmp_path / "merged", [a, b, c], stream=False, via_spill=True)


def test_reset_drops_the_stream(tmp_path: Path) -> None:
    a, b = _chunks("same")
    writer = PartWriter(tmp_path)
    writer.stream("t", "t", csv=True)
    writer.add("t", a)
    writer.reset("t")
    writer.add("t", b)
    staged = writer.finalize("t", "t", csv=True)
    assert pd.read_parquet(staged["t.parquet"])["id"].tolist() == ["b1"]
    writer.close()


def test_a_failed_background_write_is_raised_by_finalize(tmp_path: Path) -> None:
    class Full:
        def write_table(self, table) -> None:  # noqa: ANN001
            raise OSError("disk full")

        def close(self) -> None:
            pass

    a, b = _chunks("same")
    writer = PartWriter(tmp_path)
    writer.stream("t", "t", csv=True)
    writer.add("t", a, csv_rows(a))
    stream = writer._streams["t"]
    assert stream is not None and stream._thread is not None  # written on its own thread
    real, stream.writer = stream.writer, Full()
    writer.add("t", b, csv_rows(b))
    with pytest.raises(OSError, match="disk full"):
        writer.finalize("t", "t", csv=True)
    real.close()
    writer.close()  # nothing raised twice; the parts folder is gone
    assert not Path(writer.dir).exists()


def test_a_slow_background_writer_holds_back_the_runner(tmp_path: Path) -> None:
    """At most QUEUED_PARTS tables wait for the writing thread: memory stays bounded."""
    import threading

    from pipeline.parts_stream import QUEUED_PARTS

    a, _ = _chunks("same")
    writer = PartWriter(tmp_path)
    writer.stream("t", "t", csv=True)
    writer.add("t", a, csv_rows(a))
    stream = writer._streams["t"]
    release, written = threading.Event(), []

    class Slow:
        def __init__(self, real) -> None:  # noqa: ANN001
            self.real = real

        def write_table(self, table) -> None:  # noqa: ANN001
            release.wait(30)
            written.append(table.num_rows)
            self.real.write_table(table)

        def close(self) -> None:
            self.real.close()

    stream.writer = Slow(stream.writer)
    total = QUEUED_PARTS + 5
    adder = threading.Thread(target=lambda: [writer.add("t", a, csv_rows(a))
                                             for _ in range(total)])
    adder.start()
    adder.join(1.0)
    assert adder.is_alive()                       # held back, not queueing everything
    assert stream._queue.qsize() <= QUEUED_PARTS
    release.set()
    adder.join(30)
    assert not adder.is_alive()
    staged = writer.finalize("t", "t", csv=True)
    merged = _files(tmp_path / "merged", [a] * (total + 1), stream=False, via_spill=False)
    assert {name: path.read_bytes() for name, path in staged.items()} == merged
    writer.close()


@pytest.mark.parametrize("parts", ["memory", "parquet"])
def test_staged_files_are_written_back_as_they_grow(tmp_path: Path, monkeypatch,
                                                    parts: str) -> None:
    """Every WRITEBACK_BYTES the stream starts the staged files' writeback (the CSV's,
    and the spliced Parquet file's): the same bytes, and the end's fsync finds them
    on disk already."""
    import os

    from pipeline import parts_stream

    chunks = _chunks("same")
    expected = _files(tmp_path / "merged", chunks, stream=False, via_spill=True)
    started: list[str] = []
    real = parts_stream._writeback
    monkeypatch.setattr(parts_stream, "WRITEBACK_BYTES", 1)
    monkeypatch.setattr(parts_stream, "_writeback",
                        lambda fd: started.append(os.readlink(f"/proc/self/fd/{fd}")) or real(fd))
    assert _files(tmp_path / parts, chunks, stream=True, via_spill=True,
                  **{parts: True}) == expected
    names = sorted({Path(p).name for p in started})
    assert names == (["t.csv.staged"] if parts == "memory" else ["t.csv.staged",
                                                                   "t.parquet.staged"])
    assert len(started) == len(chunks) * len(names)


def _stored_slices(tmp: Path, chunks: list[pd.DataFrame]) -> list:
    """The files of ``chunks`` merged (one row group per chunk), and per chunk a
    ``GroupSlice`` of its row groups and CSV lines (as ``coded_slices`` makes them)."""
    from pipeline.coded_slices import GroupSlice
    from pipeline.parquet_splice import read_footer

    files = {name: tmp / "stored" / name
             for name in ("t.parquet", "t.csv")}
    (tmp / "stored").mkdir(parents=True)
    for name, data in _files(tmp / "merged", chunks, stream=False, via_spill=False).items():
        files[name].write_bytes(data)
    with open(files["t.parquet"], "rb") as fh:
        footer = read_footer(fh)
    offset = len(files["t.csv"].read_bytes()) - sum(len(csv_rows(df)) for df in chunks)
    slices = []
    for k, df in enumerate(chunks):
        size = len(csv_rows(df))
        slices.append(GroupSlice(files["t.parquet"], k, 1, footer, (files["t.csv"], offset, size)))
        offset += size
    return slices


def _slice_part(writer: PartWriter, k: int, piece, schema):  # noqa: ANN001
    from pipeline.parquet_splice import group_rows
    from pipeline.parts_stream import Part

    rows = group_rows(piece.footer[0], piece.first, piece.count)
    return Part(str(Path(writer.dir) / f"t-{k:07d}.slice.parquet"), schema, rows,
                list(schema.names), slice=piece)


@pytest.mark.parametrize("stream", [True, False])
def test_parts_of_a_stored_files_row_groups_are_spliced_or_written(tmp_path: Path,
                                                                   stream: bool) -> None:
    """``coded_slices``: a splicing stream copies the row groups and CSV lines straight
    from the stored files (no part file); without a stream, the part files are written."""
    import pyarrow.parquet as pq

    a, b = _chunks("same")
    c = b.assign(id=["c1"])
    slices = _stored_slices(tmp_path, [a, b, c])
    schema = pq.read_schema(slices[0].source)
    writer = PartWriter(tmp_path / "out")
    if stream:
        writer.stream("t", "t", csv=True, splice=True)
    for k, piece in enumerate(slices):
        writer.adopt("t", _slice_part(writer, k, piece, schema))
    written = sorted(p.name for p in Path(writer.dir).glob("t-*"))
    assert written == ([] if stream else [f"t-{k:07d}.slice.{ext}" for k in range(3)
                                          for ext in ("csv", "parquet")])
    if not stream:
        pd.testing.assert_frame_equal(PartWriter.read(Path(writer.dir) / "t-0000001.slice.parquet"),
                                      b.reset_index(drop=True))
    staged = writer.finalize("t", "t", csv=True)
    assert {name: path.read_bytes() for name, path in staged.items()} == \
        {name: (tmp_path / "stored" / name).read_bytes() for name in ("t.parquet", "t.csv")}
    assert writer.csv_sizes.get("t", [len(csv_rows(df)) for df in (a, b, c)]) == \
        [len(csv_rows(df)) for df in (a, b, c)]
    writer.close()


def test_stored_row_groups_are_written_when_the_stream_is_dropped(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    a, b = _chunks("same")
    c = b.assign(country="BE")  # a new column: the stream is dropped at the third part
    slices = _stored_slices(tmp_path, [a, b])
    schema = pq.read_schema(slices[0].source)
    writer = PartWriter(tmp_path / "out")
    writer.stream("t", "t", csv=True, splice=True)
    for k, piece in enumerate(slices):
        writer.adopt("t", _slice_part(writer, k, piece, schema))
    assert not list(Path(writer.dir).glob("t-*"))  # taken by the stream only
    writer.add("t", c, csv_rows(c))
    assert {f"t-{k:07d}.slice.parquet" for k in range(2)} <= \
        {p.name for p in Path(writer.dir).glob("t-*")}
    staged = writer.finalize("t", "t", csv=True)
    out = {name: path.read_bytes() for name, path in staged.items()}
    writer.close()
    assert out == _files(tmp_path / "merged2", [a, b, c], stream=False, via_spill=False)


@pytest.mark.parametrize("kind", ["same", "new_column"])
@pytest.mark.parametrize("parts", ["memory", "parquet"])
def test_a_stream_hashes_the_files_it_writes_whole(tmp_path: Path, kind: str, parts: str) -> None:
    """``PartWriter.digests``: the sha256 of the staged files a stream wrote whole (its
    CSV file; its Parquet file when it spliced it), none when finalize merged."""
    import hashlib

    chunks = _chunks(kind)
    writer = PartWriter(tmp_path)
    writer.stream("t", "t", csv=True)
    spill = ChunkSpill(str(writer.dir), ("t",), ("t",), **{parts: True})
    for k, df in enumerate(chunks):
        writer.adopt("t", spill(type("R", (), {"index": k, "t": df})())["t"])
    staged = writer.finalize("t", "t", csv=True)
    real = {name: hashlib.sha256(path.read_bytes()).hexdigest() for name, path in staged.items()}
    if kind == "new_column":  # the stream was dropped: merged, not hashed
        assert writer.digests == {}
    else:
        want = {"t.csv"} | ({"t.parquet"} if parts == "parquet" else set())
        assert set(writer.digests) == want
        assert all(writer.digests[name] == real[name] for name in want)
    writer.close()


def test_a_hashed_sink_writes_and_hashes_all_of_a_partial_writer(tmp_path: Path) -> None:
    import hashlib

    from pipeline.parquet_splice import copy_bytes
    from pipeline.parts_stream import HashedSink

    class Slow:
        """A raw file that takes at most 3 bytes per write."""

        def __init__(self) -> None:
            self.data = bytearray()

        def write(self, data) -> int:
            self.data += bytes(data[:3])
            return min(3, len(data))

        def flush(self) -> None:
            pass

        def fileno(self) -> int:
            raise OSError("no file")

    raw = Slow()
    sink = HashedSink(raw)
    assert sink.write(b"header\n") == 7
    source = tmp_path / "src.bin"
    source.write_bytes(b"0123456789" * 50)
    with open(source, "rb") as src:
        copy_bytes(src, sink, 5, 300)
    assert bytes(raw.data) == b"header\n" + (b"0123456789" * 50)[5:305]
    assert sink.hasher.hexdigest() == hashlib.sha256(bytes(raw.data)).hexdigest()


def test_parts_of_stored_row_groups_do_not_wait_for_the_writer(tmp_path: Path, monkeypatch) -> None:
    """A ``GroupSlice`` holds no rows: handing one over never waits for the writing
    thread (only tables count against ``QUEUED_PARTS``)."""
    import threading

    import pyarrow.parquet as pq

    from pipeline.coded_slices import GroupSlice
    from pipeline.parts_stream import QUEUED_PARTS

    chunks = [df.assign(id=[f"{k}-{i}" for i in range(len(df))])
              for k, df in enumerate(_chunks("same") * (QUEUED_PARTS + 3))]
    slices = _stored_slices(tmp_path, chunks)
    schema = pq.read_schema(slices[0].source)
    release = threading.Event()
    original = GroupSlice.splice
    monkeypatch.setattr(GroupSlice, "splice",
                        lambda self, splicer: release.wait(30) and original(self, splicer))
    writer = PartWriter(tmp_path / "out")
    writer.stream("t", "t", csv=True, splice=True)
    adder = threading.Thread(target=lambda: [writer.adopt("t", _slice_part(writer, k, piece, schema))
                                             for k, piece in enumerate(slices)])
    adder.start()
    adder.join(10)
    assert not adder.is_alive()  # all handed over while the first is still held
    release.set()
    staged = writer.finalize("t", "t", csv=True)
    assert {name: path.read_bytes() for name, path in staged.items()} == \
        {name: (tmp_path / "stored" / name).read_bytes() for name in ("t.parquet", "t.csv")}
    writer.close()
