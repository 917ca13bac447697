"""Chunked output tables: Parquet row groups and CSV appended chunk by chunk.

A streaming run hands every chunk's slice of a table to ``PartWriter.add``, which
spills it to a part file in a hidden folder inside the output folder. ``finalize``
then streams the parts, in chunk order, into one Parquet file (one row group per
chunk, written with ``pyarrow.parquet.ParquetWriter``) and one CSV, both as temp
files next to their targets, ready for ``store.commit_staged`` to rename into place.

Why parts instead of writing the final file straight away: attribute columns (CSV
row columns, metadata) are only known once every chunk has been read, and a Parquet
file has one schema. Only one chunk is in memory at a time, in both passes.

Parts are tables of ``pa.Table.from_pandas(df, preserve_index=False)`` (what
``to_parquet(index=False)`` converts): Arrow IPC files, uncompressed and
memory-mapped, or, where a pool worker made them (``ChunkSpill.parquet``), Parquet
files encoded as the final file's writer would encode them, which a stream splices
into the final file without encoding them again (``parts_stream``). A part that
already has the final columns and types goes to the Parquet writer as it is, the
table ``from_pandas`` would build from the part read back; the others take the
pandas path (missing columns filled). CSV rows a worker already serialised (or
took from cache) are copied when the part has the final columns.
"""
from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline import columns as C
from pipeline.csv_rows import csv_rows as format_rows
from pipeline.parts_stream import (PARQUET_SUFFIX, Part, Stream, encode_part, header,
                                   is_parquet, read_part, single_chunk, write_part)

__all__ = ["PARTS_PREFIX", "ChunkSpill", "Part", "PartWriter", "part_path", "spill"]

PARTS_PREFIX = ".qcode-parts-"
UNCODED_TABLES = ("codings", "matches")  # not spilled for a chunk that was not coded


def part_path(folder: str | Path, name: str, k: int) -> Path:
    """The file of the ``k``-th part of table ``name`` in a parts folder."""
    return Path(folder) / f"{name}-{k:07d}.arrow"


def spill(path: str | Path, df: pd.DataFrame, csv_rows: bytes | None = None,
          write: bool = True, parquet: bool = False) -> Part:
    """Write a chunk of a table as a part file (and its CSV lines as a sidecar).

    Runs wherever the chunk is: in a pool worker, the conversion to Arrow (and the CSV
    lines) cost the runner nothing; ``PartWriter.adopt`` then only records the part.

    Args:
        path: ``part_path`` of the part.
        df: The chunk's rows.
        csv_rows: The rows' CSV lines (see ``PartWriter.add``); None removes a sidecar
            a previous part of that name left.
        write: False: keep the table and lines in the returned part, unwritten.
        parquet: Encode the part as Parquet (``encode_part``: the file is ``path``
            with the suffix ``.parquet``), so that a stream splices it into the final
            file; a table with columns of several chunks is written as IPC still.
    """
    # one thread: the conversion runs beside the other workers, not alone
    table = pa.Table.from_pandas(df.reset_index(drop=True), preserve_index=False, nthreads=1)
    if not write:
        return Part(str(path), table.schema, table.num_rows, list(df.columns), table, csv_rows)
    if parquet and single_chunk(table):
        path = Path(path).with_suffix(PARQUET_SUFFIX)
        encode_part(path, table, csv_rows)
    else:
        write_part(Path(path), table, csv_rows)
    return Part(str(path), table.schema, table.num_rows, list(df.columns))


@dataclass
class ChunkSpill:
    """Spill a chunk result's tables where the chunk ran (picklable, sent to workers).

    Chunk ``k``'s slice of a table is that table's ``k``-th part (every chunk adds
    one part per table, in order), so a worker can name its files before the runner
    sees the result. The CSV lines of the ``csv`` tables are made here too: the
    runner's final merge then only copies bytes.

    Args:
        folder: The writer's parts folder.
        tables: Names of the result's tables to spill.
        csv: Tables whose CSV lines are made (``<name>_csv`` of the result if set).
        memory: The chunks run in the writer's process: parts stay in memory, and
            the writer writes a part's file only when a stream does not take it
            (a streamed part is in the staged files; see ``PartWriter.adopt``).
        parquet: The chunks run in other processes (pool workers): each encodes
            its parts as Parquet, so the runner's streams only splice bytes and the
            encoding is spread over the workers.
    """

    folder: str
    tables: tuple[str, ...]
    csv: tuple[str, ...] = ()
    memory: bool = False
    parquet: bool = False

    def __call__(self, result) -> dict[str, Part]:  # noqa: ANN001 - a chunk.ChunkResult
        """Write the parts of ``result`` and return them by table name."""
        parts: dict[str, Part] = {}
        for name in self.tables:
            if name in UNCODED_TABLES and result.stats.get("uncoded") \
                    or name == "segments" and result.stats.get("segments_taken"):
                continue  # a chunk that was not coded: its rows come from elsewhere
            df = getattr(result, name)
            rows = getattr(result, f"{name}_csv", None) if name in self.csv else None
            if rows is None and name in self.csv:
                rows = format_rows(df)
            parts[name] = spill(part_path(self.folder, name, result.index), df, rows,
                                write=not self.memory, parquet=self.parquet)
        return parts




class PartWriter:
    """Spill chunks of named tables to disk and merge them into final files.

    Args:
        out_dir: The output folder; parts live in a hidden sub-folder of it (same
            file system, so the final rename is atomic) that ``close`` removes.
    """

    def __init__(self, out_dir: str | Path) -> None:
        self.out = Path(out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.dir = Path(tempfile.mkdtemp(prefix=PARTS_PREFIX, dir=self.out))
        self.parts: dict[str, list[Path]] = {}
        self.columns: dict[str, list[str]] = {}
        self.schemas: dict[Path, tuple[pa.Schema, int]] = {}  # part -> (schema, rows)
        self._plans: dict[str, tuple[str, bool]] = {}         # name -> (file_base, csv)
        self._streams: dict[str, Stream | None] = {}         # None: merged by finalize
        self._splice: set[str] = set()
        # name -> CSV bytes of every part in its final CSV file (streamed or merged)
        self.csv_sizes: dict[str, list[int]] = {}
        # final file name -> sha256 of a staged file a stream wrote whole (hashed as it
        # was written: ``store.commit_staged`` need not read it again)
        self.digests: dict[str, str] = {}

    def stream(self, name: str, file_base: str, *, csv: bool = True,
               splice: bool = False) -> None:
        """Write the final files of ``name`` while its parts arrive, not all at the end.

        Each part is appended to the staged Parquet (and CSV) file as it is added, as
        ``finalize`` would append it if the first part's columns and types are the
        final ones; ``finalize`` then only closes the files. When they are not (a
        later part brings a column or another type, or a part has no CSV lines),
        the stream is dropped and ``finalize`` merges the parts as usual. With a
        process pool, this takes the merge off the end of the run.

        Args:
            name: Table name used in ``add``, before its first part.
            file_base: As for ``finalize``.
            csv: As for ``finalize`` (must be the same there).
            splice: Splice the Parquet file whatever the first part (parts taken from
                stored files come as Parquet, others are encoded alone and spliced).
        """
        self._plans[name] = (file_base, csv)
        if splice:
            self._splice.add(name)

    def add(self, name: str, df: pd.DataFrame, csv_rows: bytes | None = None) -> None:
        """Append a chunk of table ``name`` (chunks must arrive in output order).

        Args:
            name: Table name.
            df: The chunk's rows.
            csv_rows: ``df.to_csv(index=False, header=False, lineterminator="\\n")``
                already made (by a worker, or from cache): used as is when the final
                columns are the chunk's, instead of serialising the rows again.
        """
        path = part_path(self.dir, name, len(self.parts.get(name, [])))
        self.adopt(name, spill(path, df, csv_rows))

    def adopt(self, name: str, part: Part) -> None:
        """Append a part already written (by ``spill``, maybe in a worker) to ``name``.

        Args:
            name: Table name.
            part: What ``spill`` returned for the file ``part_path(self.dir, name, k)``
                (or its ``.parquet`` twin), ``k`` the number of parts of ``name`` so far.
        """
        paths = self.parts.setdefault(name, [])
        path = Path(part.path)
        paths.append(path)
        self.schemas[path] = (part.schema, part.rows)
        known = self.columns.setdefault(name, [])
        known.extend(c for c in part.columns if c not in known)
        stream = None
        if name in self._plans:
            if name not in self._streams:
                self._streams[name] = None
                if part.rows:  # an empty first part has guessed types: merge at the end
                    base, csv = self._plans[name]
                    self._streams[name] = Stream(
                        part.schema, self.dir / f"{base}.parquet.staged",
                        self.dir / f"{base}.csv.staged" if csv else None,
                        splice=name in self._splice or (part.table is None
                                                         and is_parquet(path)))
            stream = self._streams[name]
        if stream is not None and stream.write(path, part):
            return
        if part.table is not None:  # not streamed: finalize merges it from its file
            write_part(path, part.table, part.csv)
        elif part.slice is not None:
            part.slice.write(path)
        if stream is not None:
            self._drop(name, keep=True)

    def reset(self, name: str) -> None:
        """Forget the parts of ``name`` (to add other rows for it; no stream then)."""
        self._drop(name)
        self.parts[name], self.columns[name] = [], []

    def _drop(self, name: str, keep: bool = False) -> None:
        """Close the stream of ``name``; ``keep``: its parts are merged by finalize,
        so the files of parts it took from memory are written (from the staged ones)."""
        stream = self._streams.get(name)
        self._streams[name] = None  # a close that raises is not retried
        if stream is not None:
            stream.close()
            if keep:
                stream.write_memory_parts()

    @staticmethod
    def read(path: Path) -> pd.DataFrame:
        """A part as a DataFrame, converted as ``pd.read_parquet`` converts a table."""
        return pd.read_parquet(path) if is_parquet(path) else pd.read_feather(path)

    def _schema(self, name: str, columns: list[str]) -> pa.Schema:
        """First non-null Arrow type of every column over the parts, in column order."""
        types: dict[str, pa.DataType] = {}
        metadata = None
        # Parts with rows first: an empty chunk (only a broken file) has guessed types.
        paths = self.parts[name]
        with_rows = [p for p in paths if self.schemas[p][1]]
        for path in [*with_rows, *paths]:
            schema = self.schemas[path][0]
            if metadata is None and path in with_rows:
                metadata = schema.metadata
            for fld in schema:
                if fld.name in columns and fld.name not in types and fld.type != pa.null():
                    types[fld.name] = fld.type
            if len(types) == len(columns):
                break
        if metadata is None and self.parts[name]:
            metadata = self.schemas[self.parts[name][0]][0].metadata
        return pa.schema([(c, types.get(c, pa.string())) for c in columns], metadata=metadata)

    def finalize(self, name: str, file_base: str, *, csv: bool = True,
                 fill: object = "") -> dict[str, Path]:
        """Merge the parts of ``name`` into ``<file_base>.parquet`` (+ ``.csv``) temp files.

        Args:
            name: Table name used in ``add``.
            file_base: Output file name without suffix (``segments``).
            csv: Also write the CSV.
            fill: Value of a column a chunk did not have (attributes are strings).

        Returns:
            Final file name -> staged temp path (inside the output folder).
        """
        columns = self.columns.get(name, [])
        schema = self._schema(name, columns)
        pq_tmp = self.dir / f"{file_base}.parquet.staged"
        csv_tmp = self.dir / f"{file_base}.csv.staged"
        for final in (f"{file_base}.parquet", f"{file_base}.csv"):
            self.digests.pop(final, None)  # of an earlier finalize of these files
        stream = self._streams.get(name)
        if stream is not None:
            # the streamed bytes are the merge's when every part went in and the first
            # part's schema (metadata included) is the final one
            done = (stream.parts == self.parts.get(name) and (csv, file_base) == (
                stream.csv is not None, self._plans[name][0])
                and schema.equals(stream.schema, check_metadata=True))
            sizes = list(stream.csv_sizes)
            self._drop(name, keep=not done)
            if done:
                self.csv_sizes[name] = sizes
                hashed = stream.digests()
                for final, staged in ((f"{file_base}.parquet", pq_tmp),
                                      (f"{file_base}.csv", csv_tmp)):
                    if staged in hashed:
                        self.digests[final] = hashed[staged]
                return {f"{file_base}.parquet": pq_tmp,
                        **({f"{file_base}.csv": csv_tmp} if csv else {})}
        csv_fh = open(csv_tmp, "wb") if csv else None  # noqa: SIM115
        sizes: list[int] = []  # CSV bytes of every part (``coded_slices.layout``)
        try:
            with pq.ParquetWriter(pq_tmp, schema,
                                  write_statistics=C.parquet_statistics(schema.names)) as writer:
                for k, path in enumerate(self.parts.get(name, [])):
                    table = read_part(path, self.schemas[path][0])
                    final = table.schema.remove_metadata().equals(schema.remove_metadata())
                    rows = path.with_suffix(".csv")
                    made = csv_fh is not None and final and rows.exists()
                    df = None
                    if not final or (csv_fh is not None and not made):
                        df = self.read(path)
                        for col in columns:
                            if col not in df.columns:
                                df[col] = fill
                        df = df[columns]
                        table = pa.Table.from_pandas(df, schema=schema, preserve_index=False)
                    writer.write_table(table.replace_schema_metadata(schema.metadata))
                    if csv_fh is None:
                        continue
                    if k == 0:
                        csv_fh.write(header(columns))
                    # rows serialised with the final columns (``made``): the same bytes
                    sizes.append(csv_fh.write(rows.read_bytes() if made else format_rows(df)))
                if not self.parts.get(name):
                    writer.write_table(schema.empty_table())
        finally:
            if csv_fh is not None:
                csv_fh.close()
        if csv:  # each part is one or more row groups of its own, as in a stream
            self.csv_sizes[name] = sizes
        staged = {f"{file_base}.parquet": pq_tmp}
        if csv:
            staged[f"{file_base}.csv"] = csv_tmp
        return staged

    def close(self) -> None:
        """Remove the parts folder (and any staged file not yet renamed)."""
        for name in list(self._streams):
            try:
                self._drop(name)
            except Exception:  # noqa: BLE001 - not finalized: the run failed already
                pass
        shutil.rmtree(self.dir, ignore_errors=True)
