"""Chunks whose coding rows a stored entry already holds, taken from its files.

``coded_files`` takes a stored entry's files whole when no coding of the corpus can
have changed. An edit that adds a word found in a few documents fails that test,
but only the chunks with such a document can change: in every other chunk no added
item can have a hit (``coded_files.may_occur`` on that chunk's words), so its rows
of ``codings`` and ``matches`` are the entry's rows of that chunk. Such chunks are
not coded (``ChunkTask.reuse``); their rows come from the entry's files as Parquet
row groups copied without decoding (``parquet_splice.Splicer.append_groups``) and
as the byte range of their ``codings.csv`` lines, and the output files are spliced
from those parts and the coded chunks' (the same bytes as a run that codes them all).

After a transcript is added, removed or edited, the corpus is another one (another
``tables_key``), but most chunks keep their keys (``chunk_plan``): ``moved`` finds
them by key in the newest entry of the same coding state, whatever its corpus. Those
chunks still give their documents and segments (from their chunk entries), but are
not matched or aggregated, and their coding rows are copied as above.

The entry records, per chunk, its row groups in both files, its CSV byte range, its
counts and its chunk key (``layout``): a chunk's part is written as at least one row
group of its own, so the groups follow from the parts' row counts. An entry without it (written
before, or by a run whose stream was merged at the end) gives no slices.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline import columns as C

TABLE_FILES = {"codings": f"{C.CODINGS_FILE}.parquet", "matches": f"{C.MATCHES_FILE}.parquet"}
CSV_FILE = f"{C.CODINGS_FILE}.csv"
SEGMENTS_FILE, SEGMENTS_CSV = f"{C.SEGMENTS_FILE}.parquet", f"{C.SEGMENTS_FILE}.csv"


def layout(files: dict[str, Path], rows: dict[str, list[int]], csv_sizes: list[int],
           tokens: list[int], per_code: list[dict[str, int]],
           keys: list[str | None] | None = None,
           renamed: list[bool] | None = None) -> list[dict] | None:
    """Every chunk's row groups, CSV byte range and counts in a run's coding files.

    Args:
        files: file name -> the run's output file (``TABLE_FILES`` and ``CSV_FILE``).
        rows: table name -> rows of every chunk's part, in order.
        csv_sizes: bytes of every chunk's ``codings.csv`` lines, in order.
        tokens, per_code: every chunk's counts, in order.
        keys: every chunk's chunk-cache key (None: not cacheable), in order.
        renamed: whether the run renamed some of each chunk's segment ids (an id an
            earlier chunk had), in order.

    Returns:
        Per chunk ``{"matches": [first, count], "codings": [first, count], "csv":
        [offset, size], "tokens": n, "per_code": {...}}`` (and ``"key"``,
        ``"renamed"`` when given), or None when the files are not laid out one part
        after the other.
    """
    n = len(tokens)
    if len(per_code) != n or set(rows) != set(TABLE_FILES):
        return None
    out: list[dict[str, Any]] = [{"tokens": int(t), "per_code": dict(p)}
                                 for t, p in zip(tokens, per_code)]
    tables = {name: files.get(file) for name, file in TABLE_FILES.items()}
    return out if _placed(out, tables, rows, files.get(CSV_FILE), csv_sizes, keys,
                          renamed) else None


def tables_layout(files: dict[str, Path], rows: list[int], csv_sizes: list[int],
                  keys: list[str | None], renamed: list[bool]) -> list[dict] | None:
    """``layout`` of a run's segments files (``segments.parquet``, ``segments.csv``):
    per chunk ``{"segments": [first, count], "csv": [offset, size], "key": ...,
    "renamed": ...}``, or None (``table_cache`` keeps it with the files)."""
    out: list[dict[str, Any]] = [{} for _ in rows]
    tables = {"segments": files.get(SEGMENTS_FILE)}
    return out if _placed(out, tables, {"segments": rows}, files.get(SEGMENTS_CSV), csv_sizes,
                          keys, renamed) else None


def _placed(out: list[dict[str, Any]], tables: dict[str, Path | None],
            rows: dict[str, list[int]], csv: Path | None, csv_sizes: list[int],
            keys: list[str | None] | None, renamed: list[bool] | None) -> bool:
    """Put every chunk's row groups of ``tables``, its byte range of ``csv`` (after the
    header) and its key and renames into ``out``; False when the files are not laid
    out one part after the other (then ``out`` is of no use)."""
    import pyarrow.parquet as pq

    n = len(out)
    if any(len(got) != n for got in (*rows.values(), csv_sizes)) \
            or any(got is not None and len(got) != n for got in (keys, renamed)):
        return False
    if keys is not None and renamed is not None:
        for info, key, moved in zip(out, keys, renamed):
            info.update(key=key, renamed=bool(moved))
    try:
        for name, file in tables.items():
            meta = pq.ParquetFile(file).metadata
            groups = [meta.row_group(g).num_rows for g in range(meta.num_row_groups)]
            at = 0
            for k, want in enumerate(rows[name]):
                first, got = at, 0
                while at < len(groups) and (at == first or got < want):
                    got += groups[at]
                    at += 1
                if got != want or at == first:
                    return False
                out[k][name] = [first, at - first]
            if at != len(groups):
                return False
        offset = Path(csv).stat().st_size - sum(csv_sizes)  # after the header
    except (OSError, ValueError, KeyError, TypeError):
        return False
    if offset < 0:
        return False
    for k, size in enumerate(csv_sizes):
        out[k]["csv"] = [offset, int(size)]
        offset += size
    return True


@dataclass
class Slices:
    """The chunks of a run whose coding rows are a stored entry's (``find``).

    Attributes:
        files: file name -> the run's checked link to (or copy of) the entry's file,
            which a later run pruning the entry does not take away.
        chunks: chunk index -> its ``layout`` in the entry.
        schemas: table name -> the Arrow schema of the entry's file.
        tables, csv: table name -> its file, its CSV file (the coding files, unless
            ``table_cache`` gives the segments files).
    """

    files: dict[str, Path]
    chunks: dict[int, dict[str, Any]]
    schemas: dict[str, Any]
    footers: dict[str, Any] = field(default_factory=dict)  # name -> read_footer of its file
    # table name -> its file, and -> its CSV file (whose range is a chunk's "csv")
    tables: dict[str, str] = field(default_factory=lambda: dict(TABLE_FILES))
    csv: dict[str, str] = field(default_factory=lambda: {"codings": CSV_FILE})

    def part(self, name: str, k: int, folder: Path):  # noqa: ANN201 - a parts_stream.Part
        """Chunk ``k``'s rows of table ``name``, for ``PartWriter.adopt``: a part whose
        file (``folder``) is written only if no stream splices the rows straight from the
        entry's files (``GroupSlice``)."""
        from pipeline.parquet_splice import group_rows, read_footer
        from pipeline.parts_stream import Part

        first, count = self.chunks[k][name]
        source = self.files[self.tables[name]]
        if name not in self.footers:  # parsed once, not once per chunk
            with open(source, "rb") as fh:
                self.footers[name] = read_footer(fh, str(source))
        rows = group_rows(self.footers[name][0], first, count, str(source))
        csv = None
        if name in self.csv:
            offset, size = self.chunks[k]["csv"]
            csv = (self.files[self.csv[name]], offset, size)
        schema = self.schemas[name]
        dest = Path(folder) / f"{name}-{k:07d}.slice.parquet"
        return Part(str(dest), schema, rows, list(schema.names),
                    slice=GroupSlice(source, first, count, self.footers[name], csv))


@dataclass
class GroupSlice:
    """Row groups ``first`` .. ``first + count - 1`` of a Parquet file (its footer read),
    and the byte range of their CSV lines (``csv``: file, offset, size; None: no CSV)."""

    source: Path
    first: int
    count: int
    footer: Any
    csv: tuple[Path, int, int] | None = None

    def splice(self, splicer) -> None:  # noqa: ANN001 - a parquet_splice.Splicer
        """Copy the row groups to the end of ``splicer``'s file."""
        splicer.append_groups(self.source, self.first, self.count, self.footer)

    def copy_csv(self, out) -> int:  # noqa: ANN001 - a binary file
        """Copy the CSV lines to ``out``; their size."""
        from pipeline.parquet_splice import copy_bytes

        if self.csv is None:
            return 0
        path, offset, size = self.csv
        with open(path, "rb") as src:
            copy_bytes(src, out, offset, size)
        return size

    def write(self, dest: Path) -> None:
        """The part's own Parquet file ``dest`` (with its CSV lines beside it, if any)."""
        from pipeline.parquet_splice import Splicer

        with open(dest, "wb", buffering=0) as fh:
            splicer = Splicer(fh)
            self.splice(splicer)
            splicer.close()
        if self.csv is not None:
            with open(dest.with_suffix(".csv"), "wb") as out:
                self.copy_csv(out)


def find(entries: list[tuple[Path, dict, dict]], book, words_of, n_chunks: int,  # noqa: ANN001
         dest: Path, memo=None) -> Slices | None:
    """The newest entry of which some chunks' rows are this run's.

    Args:
        entries: (folder, meta, items the codebook adds to its state per language)
            of the entries whose state differs from the codebook's by additions only,
            newest first (``coded_files.CodedFiles.find`` found them).
        book: the codebook.
        words_of: (chunk index, languages) -> the chunk's words, or None when they
            are not known for those languages.
        n_chunks: the run's number of chunks.
        dest: a folder of the run for the links to the entry's files.
        memo: the run's ``digest_memo.DigestMemo`` (``coded_files.fetch_files``).

    Returns:
        The entry's files (linked and checked) and its chunks where no added item can
        have a hit, or None.
    """
    from pipeline.coded_files import may_occur

    for path, meta, added in entries:
        chunks = meta.get("chunks")
        if not isinstance(chunks, list) or len(chunks) != n_chunks \
                or not all(_valid(info) for info in chunks):
            continue
        langs = sorted(lang for lang, items in added.items() if items)
        free = {}
        for k, info in enumerate(chunks):
            words = words_of(k, langs)
            if words is not None and not may_occur(book, added, words):
                free[k] = info
        found = _fetched(path, meta, free, dest, memo) if free else None
        if found is not None:
            return found
    return None


def moved(entries: list[tuple[Path, dict]], keys: list[str | None], dest: Path,
          memo=None) -> Slices | None:  # noqa: ANN001
    """The newest entry of another corpus (same coding state) holding some of this run's
    chunks, found by their chunk keys: a transcript was added, removed or edited since.

    A chunk's coding rows follow from its key (its files, settings and code) and the
    coding state, except its segment ids where a run renamed one (an id of an earlier
    chunk, ``run_stream._unique_ids``): chunks the entry's run renamed are left out, and
    this run codes a sliced chunk after all if it renames one (``run_stream``).

    Args:
        entries: (folder, meta) of the entries with the codebook's state, newest first.
        keys: the chunk-cache key of every chunk of the run, in order (None: none).
        dest: a folder of the run for the links to the entry's files.
        memo: the run's ``digest_memo.DigestMemo``.

    Returns:
        The entry's files and this run's chunks (by index) it holds, or None.
    """
    for path, meta in entries:
        chunks = meta.get("chunks")
        if not isinstance(chunks, list):
            continue
        stored = {info["key"]: info for info in chunks
                  if _valid(info) and isinstance(info.get("key"), str)
                  and info.get("renamed") is False}
        held = {k: stored[key] for k, key in enumerate(keys) if key in stored}
        found = _fetched(path, meta, held, dest, memo) if held else None
        if found is not None:
            return found
    return None


def _fetched(path: Path, meta: dict, chunks: dict[int, dict], dest: Path,
             memo=None) -> Slices | None:  # noqa: ANN001
    """``Slices`` of ``chunks`` in the entry at ``path``, its files linked and checked
    (pruning the entry cannot take them then); None when they are damaged."""
    import pyarrow.parquet as pq

    from pipeline.coded_files import fetch_files

    got = fetch_files(path, meta, dest, memo)
    if got is None:
        return None
    try:
        schemas = {name: pq.read_schema(got[0][file]) for name, file in TABLE_FILES.items()}
        chunks = with_rows(chunks, {name: got[0][file] for name, file in TABLE_FILES.items()})
    except (OSError, ValueError):
        return None
    return Slices(got[0], chunks, schemas) if chunks else None


def with_rows(chunks: dict[int, dict], files: dict[str, Path]) -> dict[int, dict]:
    """The ``chunks`` whose row groups hold rows in every one of ``files`` (table name ->
    Parquet file). A chunk without rows in a table (a lone unreadable file, or matches
    without a coding) is coded instead: an empty row group has no bytes to copy.

    Raises:
        OSError, ValueError: a file cannot be read as Parquet.
    """
    import pyarrow.parquet as pq

    counts = {}
    for name, file in files.items():
        meta = pq.ParquetFile(file).metadata
        counts[name] = [meta.row_group(g).num_rows for g in range(meta.num_row_groups)]
    return {k: info for k, info in chunks.items()
            if all(info[name][0] + info[name][1] <= len(counts[name])
                   and all(counts[name][info[name][0]:info[name][0] + info[name][1]])
                   for name in files)}


def is_range(value: object) -> bool:
    """Whether a layout's field is ``[first, count]`` (or ``[offset, size]``) as written."""
    return (isinstance(value, list) and len(value) == 2
            and all(isinstance(v, int) and v >= 0 for v in value))


def _valid(info: object) -> bool:
    """Whether a chunk's ``layout`` has the fields and types ``layout`` writes."""
    return (isinstance(info, dict)
            and all(is_range(info.get(name)) for name in (*TABLE_FILES, "csv"))
            and all(info[name][1] > 0 for name in TABLE_FILES)
            and isinstance(info.get("tokens"), int) and isinstance(info.get("per_code"), dict)
            and all(isinstance(k, str) and isinstance(v, int)
                    for k, v in info["per_code"].items()))
