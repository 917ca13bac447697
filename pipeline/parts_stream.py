"""A streamed output table: parts appended to the staged Parquet and CSV files as they come.

``parts.PartWriter.stream`` asks for a table's final files to be written while its
parts arrive; ``Stream`` does the writing (on a thread of its own) and, when the
writer must fall back to merging the parts at the end, writes the files of parts it
took straight from memory. ``Part``, ``write_part``, ``encode_part`` and ``read_part``
are the part files both use.

Two ways of writing the staged Parquet file, chosen by the first part: a part still
in memory or an Arrow IPC file (chunks coded in this process) is encoded here, by a
``ParquetWriter``; a part a pool worker encoded as Parquet already is spliced in
(``parquet_splice``: its row-group bytes copied, one footer written at the end), so
the encoding is spread over the workers and the runner only copies bytes. Both give
the same file; a splicing stream encodes any other kind of part itself.
"""
from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline import columns as C
from pipeline.parquet_splice import Splicer, copy_bytes

QUEUED_PARTS = 4   # parts waiting for the writing thread, at most
PARQUET_SUFFIX = ".parquet"  # a part a worker encoded (else an Arrow IPC file)
WRITEBACK_BYTES = 16 << 20   # staged bytes between two writeback starts (``_writeback``)


@dataclass
class Part:
    """A spilled part file (picklable: workers hand it to the writer in the runner).

    A part made in the runner's own process may still be in memory (``table`` set,
    with its CSV lines in ``csv``): ``PartWriter.adopt`` writes its file only if a
    stream does not take it (see ``ChunkSpill.memory``). So may a part whose rows are
    row groups of a stored file (``slice``: a ``coded_slices.GroupSlice``), which a
    splicing stream copies from that file.
    """

    path: str
    schema: pa.Schema
    rows: int
    columns: list[str]
    table: pa.Table | None = None
    csv: bytes | None = None
    slice: Any = None


def is_parquet(path: str | Path) -> bool:
    """Whether a part file is Parquet (``encode_part``), not Arrow IPC (``write_part``)."""
    return str(path).endswith(PARQUET_SUFFIX)


def write_part(path: Path, table: pa.Table, csv_rows: bytes | None) -> None:
    """The part file of ``table`` and its CSV sidecar (None: no sidecar)."""
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as out:
        out.write_table(table)
    _sidecar(path, csv_rows)


def encode_part(path: Path, table: pa.Table, csv_rows: bytes | None) -> None:
    """The part file of ``table`` as Parquet, as the stream's writer would encode it.

    ``ParquetWriter`` with the defaults ``Stream`` uses and the table's own schema:
    its row-group bytes are those the runner's writer would write for the table, so
    a stream splices them in (``parquet_splice``) instead of encoding the table again.
    Takes tables whose columns are one chunk each (``single_chunk``): read back and
    combined, such a part is the table that was written, chunks included.
    """
    with pq.ParquetWriter(str(path), table.schema,
                          write_statistics=C.parquet_statistics(table.schema.names)) as out:
        out.write_table(table)
    _sidecar(path, csv_rows)


def single_chunk(table: pa.Table) -> bool:
    """Whether every column of ``table`` is one chunk (or the table has no rows)."""
    return table.num_rows == 0 or all(col.num_chunks == 1 for col in table.columns)


def read_part(path: str | Path, schema: pa.Schema | None = None) -> pa.Table:
    """A part file's table, as it was given to ``write_part`` or ``encode_part``.

    Args:
        path: The part file.
        schema: The part's schema (``Part.schema``): a Parquet part is cast back to
            it where Parquet keeps another type (e.g. a dictionary's index width).
    """
    if not is_parquet(path):  # zero-copy: the table's buffers keep the mapping alive
        return pa.ipc.open_file(pa.memory_map(str(path))).read_all()
    table = pq.ParquetFile(str(path)).read(use_threads=False).combine_chunks()
    if schema is not None and not table.schema.equals(schema):
        if not table.schema.remove_metadata().equals(schema.remove_metadata()):
            table = table.cast(schema.remove_metadata())
        table = table.replace_schema_metadata(schema.metadata)
    return table


def _sidecar(path: Path, csv_rows: bytes | None) -> None:
    sidecar = path.with_suffix(".csv")
    if csv_rows is not None:
        sidecar.write_bytes(csv_rows)
    else:  # a table re-added after a reset (the model pass) must not keep old rows
        sidecar.unlink(missing_ok=True)


class Stream:
    """A table's staged files, written part by part as ``PartWriter.finalize`` writes them.

    The Parquet encoding (most of the cost) and the CSV copy run on a thread of their
    own, one part after the other in the order given: Arrow encodes without holding
    the GIL, so the files are written while the next chunk is coded. ``close`` waits
    for the thread and raises what it raised.

    Args:
        schema: The first part's schema (with its metadata): the files' schema.
        parquet: Staged Parquet path.
        csv: Staged CSV path (None: no CSV).
        splice: The parts are Parquet files already (``encode_part``, in the pool
            workers): splice their row groups in instead of encoding them.
    """

    def __init__(self, schema: pa.Schema, parquet: Path, csv: Path | None,
                 splice: bool = False) -> None:
        self.schema = schema
        self.parquet, self.csv_path = parquet, csv
        self.parts: list[Path] = []
        # parts taken from memory, not written: (part without its table, the offset
        # and length of its CSV lines in the staged CSV or None)
        self.memory: list[tuple[Part, int, int | None]] = []
        self.sliced: list[Part] = []  # parts spliced from stored files, not written
        # every part's rows in the order they went in, and whether it came from memory:
        # the staged file's row groups are theirs in this order (``write_memory_parts``)
        self._rows: list[tuple[bool, int]] = []
        self.csv_sizes: list[int] = []  # CSV bytes of every part written, in order
        self._csv_size = 0
        self.writer: pq.ParquetWriter | None = None
        self.splicer: Splicer | None = None
        self._spliced: HashedSink | None = None   # the splicer's file, once closed
        if splice:  # hashed as written: the run's commit need not read it again
            self.splicer = Splicer(HashedSink(open(parquet, "wb", buffering=0)))  # noqa: SIM115
        else:
            self.writer = pq.ParquetWriter(
                parquet, schema, write_statistics=C.parquet_statistics(schema.names))
        self.csv = HashedSink(open(csv, "wb")) if csv is not None else None  # noqa: SIM115
        if self.csv is not None:
            self._csv_size = self.csv.write(header(list(schema.names)))
        # bounded: when the encoding falls behind (many workers, one writer), the
        # runner waits instead of holding ever more tables in memory
        self._queue: queue.Queue = queue.Queue()
        # parts of stored files' row groups (``GroupSlice``s) are a few numbers each:
        # they do not count against the bound, so the runner never waits to hand them
        # over while the thread copies the bytes of earlier ones
        self._room = threading.Semaphore(QUEUED_PARTS)
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._unsynced = 0  # bytes staged since the last writeback start

    def write(self, path: Path, part: Part | None = None) -> bool:
        """Append a part as ``finalize`` would; False: it would not (drop the stream).

        Args:
            path: The part's file.
            part: The part; one still in memory (``Part.table``) is taken from there.
        """
        assert self.writer is not None or self.splicer is not None
        if part is not None and part.slice is not None:
            return self._write_slice(path, part)
        in_memory = part is not None and part.table is not None
        if in_memory:
            table = part.table
        elif self.splicer is not None and is_parquet(path) and part is not None:
            table = None  # spliced as it is: the worker encoded it with its schema
        else:
            table = read_part(path, part.schema if part is not None else None)
        schema = part.schema if table is None else table.schema
        if not schema.remove_metadata().equals(self.schema.remove_metadata()):
            return False
        rows: Path | bytes = path.with_suffix(".csv")
        if in_memory:
            rows = part.csv
            if self.csv is not None and rows is None:
                return False
            self.memory.append((Part(part.path, part.schema, part.rows, part.columns),
                                self._csv_size, None if rows is None else len(rows)))
        elif self.csv is not None and not rows.exists():
            return False  # finalize would serialise the rows: leave it to finalize
        if self.csv is not None:
            self.csv_sizes.append(len(rows) if in_memory else rows.stat().st_size)
            self._csv_size += self.csv_sizes[-1]
        if self._thread is None:
            self._thread = threading.Thread(target=self._drain, daemon=True)
            self._thread.start()
        if table is not None:
            table = table.replace_schema_metadata(self.schema.metadata)
        self._rows.append((in_memory, table.num_rows if table is not None else part.rows))
        self._room.acquire()
        self._queue.put((path if table is None else table, rows))
        self.parts.append(path)
        return True

    def _write_slice(self, path: Path, part: Part) -> bool:
        """``write`` of a part of a stored file's row groups (``Part.slice``)."""
        if self.splicer is None \
                or not part.schema.remove_metadata().equals(self.schema.remove_metadata()) \
                or (self.csv is not None and part.slice.csv is None):
            return False
        if self.csv is not None:
            self.csv_sizes.append(part.slice.csv[2])
            self._csv_size += self.csv_sizes[-1]
        if self._thread is None:
            self._thread = threading.Thread(target=self._drain, daemon=True)
            self._thread.start()
        self._queue.put((part.slice, None))
        self.parts.append(path)
        self.sliced.append(part)
        self._rows.append((False, part.rows))
        return True

    def write_memory_parts(self) -> None:
        """Write the files of the parts taken from memory, from the closed staged files.

        Each part went into the Parquet file as its own row groups (in order) and its
        CSV lines at a known offset; the part file gets the part's own schema. A part
        of a stored file's row groups is written from that file. The row groups of parts
        that were files already (or slices) are passed over by their rows: a renamed
        chunk's part, written by the runner, may come between two parts from memory.
        """
        for part in self.sliced:
            part.slice.write(Path(part.path))
        self.sliced = []
        if not self.memory:
            return
        source = pq.ParquetFile(self.parquet)
        meta = source.metadata
        groups = iter(range(source.num_row_groups))
        csv = open(self.csv_path, "rb") if self.csv_path is not None else None  # noqa: SIM115
        memory = iter(self.memory)
        try:
            for from_memory, rows in self._rows:
                if not from_memory:  # its row groups passed over (empty ones skipped)
                    n = 0
                    while n < rows:
                        n += meta.row_group(next(groups)).num_rows
                    if n != rows:
                        raise ValueError("row groups of the staged file do not add up")
                    continue
                part, offset, size = next(memory)
                tables, n = [], 0
                while n < part.rows:  # the part's row groups (empty ones skipped)
                    group = source.read_row_group(next(groups), use_threads=False)
                    tables.append(group)
                    n += group.num_rows
                if n != part.rows:
                    raise ValueError(f"row groups of {part.path} do not add up")
                table = pa.concat_tables(tables) if tables else part.schema.empty_table()
                lines = None
                if size is not None and csv is not None:
                    csv.seek(offset)
                    lines = csv.read(size)
                write_part(Path(part.path),
                            table.replace_schema_metadata(part.schema.metadata), lines)
        finally:
            if csv is not None:
                csv.close()
        self.memory = []
        self._rows = []

    def _drain(self) -> None:
        """The writing thread: parts in order until ``None``; after an error, none."""
        while (item := self._queue.get()) is not None:
            data, rows = item
            if not hasattr(data, "splice"):
                self._room.release()
            if self._error is not None:
                continue
            try:
                if isinstance(data, pa.Table):
                    self._unsynced += self._encode(data)
                elif hasattr(data, "splice"):  # a GroupSlice: copied from its file
                    assert self.splicer is not None
                    before = self.splicer.pos
                    data.splice(self.splicer)
                    self._unsynced += self.splicer.pos - before
                    if self.csv is not None:
                        self._unsynced += data.copy_csv(self.csv)
                else:
                    assert self.splicer is not None
                    before = self.splicer.pos
                    self.splicer.append(data)
                    self._unsynced += self.splicer.pos - before
                if self.csv is not None and isinstance(rows, bytes):
                    self._unsynced += self.csv.write(rows)
                elif self.csv is not None and rows is not None:  # a worker's lines: copied
                    with open(rows, "rb") as src:
                        size = src.seek(0, 2)
                        copy_bytes(src, self.csv, 0, size)
                    self._unsynced += size
                if self._unsynced >= WRITEBACK_BYTES:
                    self._start_writeback()
            except BaseException as exc:  # noqa: BLE001 - raised again by close()
                self._error = exc

    def _start_writeback(self) -> None:
        """Have the kernel start writing the staged files to disk now (not waiting).

        ``store.commit_staged`` fsyncs them at the end of the run; without this, a
        run's outputs (~1 GB at a million segments) are all still in the page cache
        then (the kernel writes dirty pages back after 30 s), and the run waits for
        the disk at its very end while its cores are idle.
        """
        self._unsynced = 0
        if self.csv is not None:
            self.csv.flush()
            _writeback(self.csv.fileno())
        if self.splicer is not None:
            _writeback(self.splicer.sink.fileno())

    def _encode(self, table: pa.Table) -> int:
        """Encode a table as the file's next row groups (a splicing stream splices the
        file its own writer would write for it alone: the same row-group bytes).

        Returns:
            Bytes added to a spliced file (0 for the writer's: its file is not ours to sync).
        """
        if self.writer is not None:
            self.writer.write_table(table)
            return 0
        assert self.splicer is not None
        sink = pa.BufferOutputStream()
        with pq.ParquetWriter(sink, self.schema,
                              write_statistics=C.parquet_statistics(self.schema.names)) as out:
            out.write_table(table)
        before = self.splicer.pos
        self.splicer.append(sink.getvalue())
        return self.splicer.pos - before

    def digests(self) -> dict[Path, str]:
        """sha256 of the staged files whose every byte this stream wrote (after ``close``):
        the CSV file, and the Parquet file of a splicing stream (Arrow's writer writes the
        other itself)."""
        found = {}
        if self.csv is not None:
            found[self.csv_path] = self.csv.hasher.hexdigest()
        if self._spliced is not None:
            found[self.parquet] = self._spliced.hasher.hexdigest()
        return found

    def close(self) -> None:
        """Write what is queued, close the files (finalize, if it merges, opens them
        again from scratch); raise the error of a failed write."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        if self.splicer is not None:
            splicer, self.splicer = self.splicer, None
            self._spliced = splicer.sink
            try:
                if splicer.meta is not None and self._error is None:
                    splicer.close()
            finally:
                splicer.sink.close()
        if self.csv is not None:
            self.csv.close()
        error, self._error = self._error, None
        if error is not None:
            raise error


class HashedSink:
    """A binary file being written from its start, and the sha256 of what was written.

    ``copy_bytes`` copies into it by ``write`` (not ``copy_file_range``, whose bytes
    would bypass the hash).
    """

    hashed = True

    def __init__(self, fh) -> None:  # noqa: ANN001 - a binary file object
        import hashlib

        self.fh = fh
        self.hasher = hashlib.sha256()

    def write(self, data) -> int:  # noqa: ANN001 - bytes-like
        """Write all of ``data`` (an unbuffered file may take part of it per call)."""
        view = memoryview(data).cast("B")
        total = len(view)
        while view:
            n = self.fh.write(view)
            self.hasher.update(view[:n])
            view = view[n:]
        return total

    def flush(self) -> None:
        self.fh.flush()

    def fileno(self) -> int:
        return self.fh.fileno()

    def close(self) -> None:
        self.fh.close()


def _sync_file_range():  # noqa: ANN202 - a ctypes function or None
    """libc's ``sync_file_range`` (Linux), or None where there is none."""
    try:
        import ctypes

        fn = ctypes.CDLL(None, use_errno=True).sync_file_range
    except Exception:  # noqa: BLE001 - no libc, no such function (not Linux): no hint
        return None
    fn.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
    fn.restype = ctypes.c_int
    return fn


_SYNC_FILE_RANGE: list = []  # [function or None], looked up on first use
_SYNC_FILE_RANGE_WRITE = 2   # <fcntl.h>: start writing dirty pages, do not wait


def _writeback(fd: int) -> None:
    """Start writing a file's dirty pages to disk (no wait, no dropped pages); a hint:
    nothing happens where it is not supported, and a failure is ignored."""
    if not _SYNC_FILE_RANGE:
        _SYNC_FILE_RANGE.append(_sync_file_range())
    fn = _SYNC_FILE_RANGE[0]
    if fn is not None:
        fn(fd, 0, 0, _SYNC_FILE_RANGE_WRITE)  # the whole file; ctypes releases the GIL


def header(columns: list[str]) -> bytes:
    """The header line ``to_csv`` writes for these columns."""
    return pd.DataFrame(columns=columns).to_csv(index=False, lineterminator="\n").encode("utf-8")
