"""Cache entries of rows tagged by unit, reused unit by unit, written as deltas.

The match cache (units: rules, or codes with exclude rules) and the codings cache
(units: codes) store, per chunk and language, rows that belong to units, each unit
valid for one digest. An entry is a folder of immutable Arrow IPC files (zstd-compressed
buffers); a file's schema metadata lists its units with their digests (also units without rows), and an int
column (``columns.CACHE_UNIT``) tells the unit of each row. A load takes every unit
whose current digest some file has from the newest such file, so a re-code after an
edit writes only a small file with the recomputed units instead of rewriting the
entry; an edit that is undone finds the old rows still there. When stale rows
outnumber the live ones, or files pile up, the live rows are written to one file
and the files read are removed.

A file whose rows are in output order says so (``qcode.ordered``): when a load read
just that one file, its rows come back in that order, stale ones included, with the
units and digests of the stale rows (``replaced``), so a caller whose recomputed rows
turn out equal to the stale ones can keep the loaded rows as they are.

Rows are only ever taken for a unit whose digest matches, files are written
atomically (temp file + rename) and named after the digest of their bytes (checked
on load), so concurrent runs and deleted or damaged files give misses (recomputed),
never wrong rows. The folder can be deleted any time. File formats and frame helpers:
``entry_tables``.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from pipeline import cache_io
from pipeline import columns as C
from pipeline.entry_tables import SUFFIX, _frame, arrow_table, read_table, table_bytes

_META = b"qcode.units"  # schema metadata: [[unit, digest], ...] of the file
_ORDERED = b"qcode.ordered"  # b"1": the file's rows are in output order
MAX_FILES = 8           # compact when an entry would hold more files


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:32]


def _entry_files(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.suffix == SUFFIX and not p.name.startswith(".")]


def read_ahead(folder: Path, found: dict[Path, Any]) -> None:
    """Read and decode the files of an entry as ``TaggedEntry.load`` does, into ``found``
    (path -> (bytes, table, frame)); a file whose bytes fail their digest is left to
    ``load``."""
    try:
        files = _entry_files(folder)
    except OSError:
        return
    for path in files:
        try:
            data = path.read_bytes()
            if path.stem.rpartition("-")[2] == _digest(data):
                table = read_table(data)
                # the pandas frame too: off the coding thread
                found[path] = (data, table, _frame(table))
        except Exception:  # noqa: BLE001 - damaged: load reads and reports it
            continue


class TaggedEntry:
    """One entry folder; ``load`` once, then ``save`` the recomputed units.

    Args:
        folder: the entry's folder (None: disabled, nothing is read or written).
        columns: the table's columns (without ``CACHE_UNIT``).
    """

    def __init__(self, folder: Path | None, columns: list[str]) -> None:
        self.folder = folder
        self.columns = columns
        self.names: list[str] = []           # unit ids of CACHE_UNIT in frames handed out
        self._index: dict[str, int] = {}
        self._read: list[Path] = []          # files read (removed by a compaction)
        self._kept: pd.DataFrame | None = None
        self._live: dict[str, str] = {}      # unit -> digest of the rows in _kept
        self._stored = self._stale = 0
        self._damaged = False
        self._replaced: dict[str, str] | None = None  # see replaced()
        self._in_order = False                          # see in_order()
        self._stale_units: list[tuple[str, str]] = []   # see stale_units()

    def unit_id(self, unit: str) -> int:
        """The ``CACHE_UNIT`` value of ``unit`` in frames of this entry."""
        if unit not in self._index:
            self._index[unit] = len(self.names)
            self.names.append(unit)
        return self._index[unit]

    def load(self, digests: dict[str, str], stale: bool = False,
             ) -> tuple[pd.DataFrame | None, set[str]]:
        """Rows of every unit some file holds with its current digest.

        Args:
            digests: unit -> current digest.
            stale: keep the other rows of the files read, with a negative
                ``CACHE_UNIT`` (``stale_units``; for a caller that reorders the rows
                anyway and can drop them in that step, instead of copying every column
                here to filter them out).

        Returns:
            ``(rows, units)``: rows (``columns`` + ``CACHE_UNIT``; None when there are
            none) and the units they cover (units without rows included).
        """
        if self.folder is None:
            return None, set()
        try:
            files = sorted(_entry_files(self.folder),
                           reverse=True)  # newest first: names start with the time
        except OSError:
            return None, set()
        frames = []
        ordered = False
        replaced: dict[str, str] = {}
        sorted_files: list[bool] = []  # per frame: its file's rows are in output order
        for path in files:
            try:
                # (bytes, table, frame) checked and decoded ahead
                got = cache_io.take(path)
                data, decoded, converted = (
                    got if got is not None else (path.read_bytes(), None, None))
                if got is None and path.stem.rpartition("-")[2] != _digest(data):
                    raise ValueError(f"damaged {path.name}")
                if decoded is None:  # buffers decompressed, not decoded: cheap
                    decoded = read_table(data)
                schema = decoded.schema
                units = [(str(u), str(d)) for u, d in json.loads(schema.metadata[_META])]
                if schema.names != [*self.columns, C.CACHE_UNIT]:
                    raise ValueError(f"columns of {path.name}")
                n_rows = decoded.num_rows
                want = {k: u for k, (u, d) in enumerate(units)
                        if digests.get(u) == d and u not in self._live}
                table = decoded if want else None
                ordered = schema.metadata.get(_ORDERED) == b"1"
                replaced = {u: d for k, (u, d) in enumerate(units) if k not in want}
                if table is not None:
                    local = table.column(C.CACHE_UNIT).to_numpy()
                    if len(local) and (local.min() < 0 or local.max() >= len(units)):
                        raise ValueError(f"unit numbers of {path.name}")
                    wanted = np.zeros(len(units), dtype=bool)
                    wanted[list(want)] = True
                    keep = wanted[local]  # a gather: isin compares every row to every unit
                    # binary columns (CSV lines) stay Arrow-backed: no bytes object per row
                    frame = converted if converted is not None else _frame(table)
                    # a pandas mask: about twice as fast as Table.filter
                    if not stale and not keep.all():
                        frame = frame[keep].reset_index(drop=True)
            except Exception:  # a damaged file can fail in Arrow, zstd or json: a miss
                self._damaged = True
                self._read.append(path)
                continue
            self._read.append(path)
            self._stored += n_rows
            if table is None:
                self._stale += n_rows
                continue
            for k, unit in want.items():
                self._live[unit] = units[k][1]
            remap = np.asarray([self.unit_id(want[k]) if k in want else self._stale_id(unit)
                                for k, unit in enumerate(units)], dtype=np.int64)
            frame[C.CACHE_UNIT] = remap[local if len(local) == len(frame)
                                        else frame[C.CACHE_UNIT].to_numpy()]
            self._stale += n_rows - (int(keep.sum()) if stale else len(frame))
            frames.append(frame)
            sorted_files.append(ordered)
        if frames:
            self._kept = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
        # rows of one file written in output order (some of them, in its order)
        self._in_order = len(frames) == 1 and sorted_files[0] and not self._damaged
        if stale and ordered and len(frames) == 1 and len(self._read) == 1 \
                and not self._damaged:
            self._replaced = replaced
        return self._kept, set(self._live)

    def _stale_id(self, unit: tuple[str, str]) -> int:
        self._stale_units.append(unit)
        return -len(self._stale_units)

    def stale_units(self) -> dict[int, tuple[str, str]]:
        """``CACHE_UNIT`` of the loaded stale rows -> their (unit, digest), newest file
        first: every unit of every file read that was not taken from it (units without
        rows included). Each value is negative, so ``< 0`` still tells stale rows."""
        return {-1 - k: unit for k, unit in enumerate(self._stale_units)}

    def in_order(self) -> bool:
        """Whether the loaded rows are in output order (their live rows are).

        True when they all came from one undamaged file written in output order: its
        rows, or some of them, in its order (a subsequence of ordered rows is ordered).
        """
        return self._in_order

    def replaced(self) -> dict[str, str] | None:
        """Units (-> digest) of the stale rows, when the rows came from one ordered file.

        Set by a ``load(..., stale=True)`` that read exactly one file, undamaged and
        written in output order: the loaded rows are then all of that file's rows in
        its order, and the rows with ``CACHE_UNIT`` -1 are those of these units at
        these digests. None otherwise.
        """
        return self._replaced

    def compacts(self, n_new: int) -> bool:
        """Whether a ``save`` of ``n_new`` rows would write the live rows to one file."""
        return (self._damaged or len(self._read) + 1 > MAX_FILES
                or self._stale > self._stored - self._stale + n_new)

    def save(self, new: pd.DataFrame, units: Iterable[str], digests: dict[str, str],
             every: pd.DataFrame | None = None, ordered: bool = False,
             keep: np.ndarray | None = None) -> None:
        """Store the rows of recomputed ``units``; failures are ignored.

        Args:
            new: their rows (``columns`` + ``CACHE_UNIT`` from ``unit_id``).
            units: the recomputed units (also those without rows).
            digests: unit -> current digest.
            every: the loaded rows and ``new`` together in output order, as a
                compaction stores them (None: loaded rows, then ``new``).
            ordered: ``new`` is in output order too; a file written in output
                order says so (see ``replaced``).
            keep: a mask: the rows are those of ``new`` where it is True (taken
                column by column when written, not as a pandas copy).
        """
        if self.folder is None:
            return
        units = sorted(set(units))
        compact = self.compacts(len(new) if keep is None else int(np.count_nonzero(keep)))
        rows, tags, mask, in_order = new, {u: digests[u] for u in units}, keep, ordered
        if compact and self._kept is not None and len(self._kept):
            kept = self._kept[self._kept[C.CACHE_UNIT].to_numpy() >= 0]
            mask, in_order = None, every is not None
            rows = every if every is not None else pd.concat(
                [kept, new if keep is None else new[keep]], ignore_index=True)
        if compact:
            tags = {**self._live, **tags}
        if not tags:
            return
        self._write(rows, tags, in_order, self._read if compact else [], mask)

    def _write(self, rows: pd.DataFrame, tags: dict[str, str], ordered: bool = False,
               replaces: list[Path] | None = None, keep: np.ndarray | None = None) -> None:
        """Write one file of ``rows`` (``CACHE_UNIT`` re-numbered into ``tags`` order;
        only those where ``keep`` is True, if given), then remove the files it
        ``replaces`` (a compaction).

        The rows become an Arrow table here; encoding and writing it may run on the
        run's I/O thread (``cache_io.behind``): the table is immutable."""
        assert self.folder is not None
        order = list(tags)
        position = {u: k for k, u in enumerate(order)}
        remap = np.array([position.get(u, -1) for u in self.names], dtype=np.int32)
        try:
            ids = rows[C.CACHE_UNIT].to_numpy(dtype=np.int64)
            local = remap[ids] if len(rows) else np.zeros(0, dtype=np.int32)
            if keep is not None:
                local, ids = local[keep], ids[keep]
            if (local < 0).any() or (ids < 0).any():  # (a stale row's id would index from the end)
                raise ValueError("rows of an untagged unit")
            table = arrow_table(rows, self.columns, local, keep)
            meta = {**(table.schema.metadata or {}),
                    _META: json.dumps([[u, tags[u]] for u in order]).encode("utf-8"),
                    **({_ORDERED: b"1"} if ordered else {})}
            table = table.replace_schema_metadata(meta)
        except (TypeError, ValueError, pa.ArrowException):
            return
        cache_io.behind(_store, self.folder, table, list(replaces or []))


def _store(folder: Path, table: pa.Table, replaces: list[Path]) -> bool:
    """Write ``table`` as a new file of the entry in ``folder``; on success remove
    ``replaces``. Returns whether it was written (failures are ignored)."""
    try:
        data = table_bytes(table)
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            # newest last in name order; the content's digest in the name: damage is a miss
            name = f"{time.time_ns():020d}-{os.getpid()}-{_digest(data)}{SUFFIX}"
            os.replace(tmp, folder / name)  # atomic: readers see a whole file or none
        except OSError:
            Path(tmp).unlink(missing_ok=True)
            return False
    except (OSError, TypeError, ValueError, pa.ArrowException):
        return False
    for path in replaces:
        path.unlink(missing_ok=True)
    return True
