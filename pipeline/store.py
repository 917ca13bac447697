"""The coded folder on disk: atomic writes, a run lock, and loading it back.

Every file is written to a temporary name in the same folder, flushed and fsynced,
then renamed over the target, so a reader (or a crash) only ever sees the old or the
new version of a file, never half of one. ``write_coded`` stages all outputs of a run
first and renames them into place one after another with the manifest last; the
manifest records each output's sha256, so ``load_coded`` can tell a consistent
folder from one interrupted in that short window.

``reviews.csv`` (human decisions) is never written here: only appended to by
``qcode review import``.
"""
from __future__ import annotations

import contextlib
import fcntl
import io
import json
import os
import tempfile
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd

from pipeline import columns as C
from pipeline.errors import InputError, LockError, UsageError

LOCK_NAME = ".qcode.lock"
# Built from a previous run's codings; a new run makes them stale, so it removes them
# (the human decisions they came from stay in reviews.csv and are re-applied).
COMMIT_JOURNAL = ".qcode-commit.json"   # a commit's renames and manifest, while it runs
DERIVED_FILES = ("final_codings.parquet", "final_codings.csv", "review_stale.csv",
                 "reviewed_auto.csv", "reviewed_human.csv", "agreement.csv")


def _fsync_dir(folder: Path) -> None:
    # The rename itself must reach the disk, or a power cut can undo it.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _shared_mode() -> int:
    # mkstemp creates 0600; outputs are meant for colleagues, so honour the umask
    # like an ordinary open() would.
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write(path: str | Path, writer: Callable[[Path], None], *,
                 private: bool = False) -> Path:
    """Write a file atomically through ``writer(temp_path)``.

    Args:
        path: Final location of the file.
        writer: Callable that writes the complete content to the temporary path it is
            given (for example ``df.to_parquet``).
        private: keep the file readable by its owner only (0600), e.g. a
            pseudonymisation key; otherwise the usual umask applies.

    Returns:
        The final path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        writer(tmp_path)
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp_path, 0o600 if private else _shared_mode())
        os.replace(tmp_path, path)
        _fsync_dir(path.parent)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path: str | Path, data: bytes, *, private: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically (``private``: owner-only, 0600)."""
    return atomic_write(path, lambda p: p.write_bytes(data), private=private)


def atomic_write_text(path: str | Path, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (LF line ends, no BOM)."""
    return atomic_write_bytes(path, text.encode(encoding))


def _csv_bytes(df: pd.DataFrame) -> bytes:
    buf = io.StringIO()
    df.to_csv(buf, index=False, lineterminator="\n")
    return buf.getvalue().encode("utf-8")


def _parquet_bytes(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False, write_statistics=C.parquet_statistics(list(df.columns)))
    return buf.getvalue()


def write_table(df: pd.DataFrame, base: str | Path, *, csv: bool = True,
                parquet: bool = True) -> list[Path]:
    """Write a table atomically as ``base.parquet`` and/or ``base.csv``.

    Args:
        df: The table.
        base: Path without suffix.
        csv: Also write a CSV (UTF-8, LF) for spreadsheet users.
        parquet: Write Parquet (typed, the format the pipeline reads back).

    Returns:
        The paths written.
    """
    base = Path(base)
    written = []
    if parquet:
        written.append(atomic_write_bytes(base.with_suffix(".parquet"), _parquet_bytes(df)))
    if csv:
        written.append(atomic_write_bytes(base.with_suffix(".csv"), _csv_bytes(df)))
    return written


@dataclass
class CodedData:
    """Everything a coding run produces; what ``load_coded`` gives back."""

    documents: pd.DataFrame
    segments: pd.DataFrame
    codings: pd.DataFrame
    matches: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=C.MATCH_COLUMNS))
    errors: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=C.ERROR_COLUMNS))
    manifest: dict[str, Any] = field(default_factory=dict)


def _outputs(data: CodedData) -> dict[str, bytes]:
    files = {
        f"{C.DOCUMENTS_FILE}.parquet": _parquet_bytes(data.documents),
        f"{C.SEGMENTS_FILE}.parquet": _parquet_bytes(data.segments),
        f"{C.SEGMENTS_FILE}.csv": _csv_bytes(data.segments),
        f"{C.CODINGS_FILE}.parquet": _parquet_bytes(data.codings),
        f"{C.CODINGS_FILE}.csv": _csv_bytes(data.codings),
        f"{C.MATCHES_FILE}.parquet": _parquet_bytes(data.matches),
        C.ERRORS_FILE: _csv_bytes(data.errors.reindex(columns=C.ERROR_COLUMNS)),
    }
    return files


def write_coded(out_dir: str | Path, data: CodedData) -> dict[str, Any]:
    """Write a complete coded folder; the manifest goes last and lists output hashes.

    Args:
        out_dir: Target folder (created if needed). ``reviews.csv`` in it is left alone.
        data: Tables and manifest of the run.

    Returns:
        The manifest as written (with an ``outputs`` map of file name to sha256).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = _outputs(data)
    # Stage everything first: if serialising fails, nothing in the folder has changed.
    staged: dict[str, Path] = {}
    try:
        for name, payload in files.items():
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=out)
            staged[name] = Path(tmp)
            with os.fdopen(fd, "wb") as fh:
                fh.write(payload)
        return commit_staged(out, staged, data.manifest)
    finally:
        for tmp in staged.values():
            tmp.unlink(missing_ok=True)


def _file_sha256(path: Path) -> str:
    from pipeline.digest_memo import hash_file

    return hash_file(path)[0]


def file_digests(paths: list[Path], fsync: bool = False, memo=None,  # noqa: ANN001
                 ctime: bool = True) -> list[str]:
    """sha256 (hex) of every file of ``paths``, in order; each file fsynced first if asked.

    Files are hashed on up to two threads: ``hashlib`` and ``fsync`` release the GIL,
    so the outputs of a run (tens of MB) take about half the wall time of one thread.
    ``memo``: a ``digest_memo.DigestMemo`` that gives the digests of files it knows
    (``ctime``: as its ``lookup``) and keeps those of the files hashed here.

    Raises:
        OSError: a file cannot be read (or synced).
    """
    def one(path: Path) -> str:
        if memo is not None:
            known = memo.lookup(path, ctime=ctime)
            if known is not None:
                return known
        if fsync:
            with open(path, "rb+") as fh:
                os.fsync(fh.fileno())
        started = time.time_ns()
        digest = _file_sha256(path)
        if memo is not None:
            memo.remember(path, started)
        return digest

    if len(paths) < 2:
        return [one(path) for path in paths]
    from concurrent.futures import ThreadPoolExecutor

    def size(k: int) -> int:
        try:
            return os.path.getsize(paths[k])
        except OSError:
            return 0  # hashed anyway: its error is raised there

    # largest first: the threads end together (name order put both big CSV files,
    # ~0.7 of 1 GB at a million segments, after the smaller files on one thread)
    order = sorted(range(len(paths)), key=size, reverse=True)
    with ThreadPoolExecutor(max_workers=min(2, os.cpu_count() or 1)) as pool:
        found = dict(zip(order, pool.map(one, [paths[k] for k in order])))
    return [found[k] for k in range(len(paths))]


def commit_staged(out_dir: str | Path, staged: dict[str, Path],
                  manifest: dict[str, Any], digests: dict[str, str] | None = None,
                  ) -> dict[str, Any]:
    """Move fully written temp files into place, then write the manifest last.

    Used by ``write_coded`` and by streaming runs, whose outputs are written chunk
    by chunk into temp files inside ``out_dir`` (same file system: renames are atomic).

    Args:
        out_dir: The coded folder.
        staged: Final file name -> temp file holding its complete content.
        manifest: Manifest of the run; an ``outputs`` map (name -> sha256) is added.
        digests: File name -> sha256 already computed from the very bytes of its
            staged file (the table cache checks the files it hands over): not hashed
            again.

    Returns:
        The manifest as written.
    """
    out = Path(out_dir)
    manifest = dict(manifest)
    mode = _shared_mode()
    known = {name: d for name, d in (digests or {}).items() if name in staged}
    names = sorted(staged)
    todo = [name for name in names if name not in known]
    for name in known:  # the others are synced as they are hashed
        with open(staged[name], "rb+") as fh:
            os.fsync(fh.fileno())
    hashed = dict(zip(todo, file_digests([staged[name] for name in todo], fsync=True)))
    for tmp in staged.values():
        os.chmod(tmp, mode)
    manifest["outputs"] = {name: known.get(name) or hashed[name] for name in names}
    text = json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n"
    # the renames and the manifest as one step: a run killed among them leaves the journal,
    # and the next run (or load) on the folder carries out the rest (``finish_commit``)
    journal = {"renames": [[_relative(tmp, out), name] for name, tmp in staged.items()],
               "manifest": text}
    atomic_write_text(out / COMMIT_JOURNAL, json.dumps(journal))
    _carry_out(out, journal)
    return manifest


def _relative(path: Path, folder: Path) -> str:
    """``path`` relative to ``folder``; staged files are always inside it (renames stay
    on one file system), so anything else is a bug, not bad input."""
    try:
        return Path(path).relative_to(folder).as_posix()
    except ValueError:  # the same place, named another way (relative, a link)
        return Path(os.path.realpath(path)).relative_to(os.path.realpath(folder)).as_posix()


def _within(staged: str) -> bool:
    """True if a journal's staged path names a file inside the output folder (a run
    stages its files there, and a journal edited by hand must not move others in)."""
    parts = PurePosixPath(staged).parts
    return bool(parts) and not PurePosixPath(staged).is_absolute() and ".." not in parts \
        and "\\" not in staged and ":" not in staged


def _carry_out(out: Path, journal: dict[str, Any]) -> None:
    """Rename a commit's staged files that are still staged, delete the derived files,
    write the manifest and drop the journal (again from the start after a kill: each
    step can be done twice)."""
    for tmp, name in journal["renames"]:
        source = out / tmp
        if source.exists():
            os.replace(source, out / name)
    for name in DERIVED_FILES:
        (out / name).unlink(missing_ok=True)
    _fsync_dir(out)
    atomic_write_text(out / C.MANIFEST_FILE, journal["manifest"])
    (out / COMMIT_JOURNAL).unlink(missing_ok=True)
    _fsync_dir(out)


def finish_commit(out_dir: str | Path) -> bool:
    """Finish the commit of a run killed while it renamed its files into ``out_dir``
    (call it holding the folder's lock); True if there was one.

    Raises:
        InputError: The journal is damaged (it is written whole, so only by hand).
    """
    out = Path(out_dir)
    path = out / COMMIT_JOURNAL
    try:
        journal = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return False
    except (OSError, ValueError) as exc:
        raise InputError(path, f"cannot be read ({type(exc).__name__}); delete it and run "
                         "'qcode code' again") from exc
    renames = journal.get("renames") if isinstance(journal, dict) else None
    if not (isinstance(renames, list) and isinstance(journal.get("manifest"), str)
            and all(isinstance(r, list) and len(r) == 2 and all(isinstance(v, str) for v in r)
                    and Path(r[1]).name == r[1] and r[1] not in ("", ".", "..")
                    and _within(r[0]) for r in renames)):
        raise InputError(path, "not a commit journal; delete it and run 'qcode code' again")
    _carry_out(out, journal)
    return True


def _read_table(folder: Path, base: str, required: bool = True,
                columns: Collection[str] | None = None) -> pd.DataFrame | None:
    pq, csv = folder / f"{base}.parquet", folder / f"{base}.csv"
    try:
        if pq.exists():
            if columns is not None:   # those the file has, in its order
                import pyarrow.parquet as papq

                columns = [c for c in papq.read_schema(pq).names if c in set(columns)]
            return pd.read_parquet(pq, columns=columns)
        if csv.exists():
            wanted = None if columns is None else set(columns).__contains__
            return pd.read_csv(csv, keep_default_na=False, usecols=wanted)
    except Exception as exc:  # pyarrow/pandas raise many types for a damaged file
        raise InputError(pq if pq.exists() else csv, f"cannot be read ({type(exc).__name__})") from exc
    if required:
        raise InputError(folder, f"no {base}.parquet or {base}.csv here; run 'qcode code' first")
    return None


_SKIPPABLE = {"documents", "matches"}


def load_coded(coded_dir: str | Path, *, verify: bool = True, skip: Collection[str] = (),
               columns: dict[str, Collection[str]] | None = None) -> CodedData:
    """Load a coded folder written by ``write_coded`` (or by hand, as CSV).

    Args:
        coded_dir: The folder (``data/coded`` by default in the CLI).
        verify: Check the outputs against the hashes in the manifest, so a folder left
            inconsistent by an interrupted run is reported instead of analysed.
        skip: Optional tables not to read (``"documents"``, ``"matches"``); they come back
            empty, with their columns. The matches of a million segments take ~2 GB in
            memory, which a caller that only aggregates codings does not need.
        columns: Table name -> the only columns to read of it (those the file has);
            e.g. ``{"segments": [...]}`` leaves out the segment texts.

    Returns:
        The tables and the manifest.

    Raises:
        InputError: Folder or required table missing, unreadable, or inconsistent.
    """
    folder = Path(coded_dir)
    if not folder.is_dir():
        raise InputError(folder, "coded folder not found; run 'qcode code' first")
    if (folder / COMMIT_JOURNAL).exists():  # a run was killed while committing
        with output_lock(folder):  # which finishes it
            pass
    manifest: dict[str, Any] = {}
    mpath = folder / C.MANIFEST_FILE
    if mpath.exists():
        try:
            manifest = json.loads(mpath.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(mpath, f"not valid JSON ({exc})") from exc
        if verify:
            outputs = manifest.get("outputs", {})
            # streamed, on two threads: the CSV files alone are 0.7 GB at a million segments
            present = [name for name in outputs if (folder / name).is_file()]
            found = dict(zip(present, file_digests([folder / name for name in present])))
            for name, digest in outputs.items():
                if found.get(name) != digest:
                    raise InputError(folder / name, "does not match manifest.json (interrupted or "
                                                    "edited run?); re-run 'qcode code'")
    if isinstance(skip, str):   # skip="matches" means the table, not its letters
        skip = (skip,)
    unknown = sorted(set(skip) - _SKIPPABLE)
    if unknown:
        raise UsageError(f"load_coded cannot skip {', '.join(unknown)}; "
                         f"allowed: {', '.join(sorted(_SKIPPABLE))}")
    columns = columns or {}
    segments = _read_table(folder, C.SEGMENTS_FILE, columns=columns.get("segments"))
    codings = _read_table(folder, C.CODINGS_FILE, columns=columns.get("codings"))
    documents = (None if "documents" in skip else _read_table(
        folder, C.DOCUMENTS_FILE, required=False, columns=columns.get("documents")))
    matches = None if "matches" in skip else _read_table(
        folder, C.MATCHES_FILE, required=False, columns=columns.get("matches"))
    errors_path = folder / C.ERRORS_FILE
    errors = (pd.read_csv(errors_path, keep_default_na=False) if errors_path.exists()
              else pd.DataFrame(columns=C.ERROR_COLUMNS))
    return CodedData(
        documents=documents if documents is not None else pd.DataFrame(columns=C.DOCUMENT_COLUMNS),
        segments=segments,
        codings=codings,
        matches=matches if matches is not None else pd.DataFrame(columns=C.MATCH_COLUMNS),
        errors=errors,
        manifest=manifest,
    )


@contextlib.contextmanager
def output_lock(out_dir: str | Path) -> Iterator[Path]:
    """Hold an exclusive lock on an output folder for the duration of a run.

    An OS-level ``flock`` is used so the lock disappears with the process, even when
    it is killed; a stale lock file never blocks the next run. A commit that such a
    process left half done is finished first (``finish_commit``).

    Raises:
        LockError: Another process holds the lock.
        InputError: A commit journal in the folder is damaged.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    lock_path = out / LOCK_NAME
    fh = open(lock_path, "a+")  # noqa: SIM115 - held open for the lock's lifetime
    try:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            raise LockError(f"{out}: another qcode run ({holder}) is writing this folder; "
                            "wait for it to finish or choose another --out") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()}")
        fh.flush()
        finish_commit(out)  # of a run killed while it renamed its outputs
        yield out
    finally:
        fh.close()


class LazyCodedData:
    """``CodedData`` of a streaming run: errors and manifest in memory, the big tables
    read from the folder on first access (a million-segment run never holds them)."""

    def __init__(self, out_dir: str | Path, errors: pd.DataFrame, manifest: dict[str, Any]) -> None:
        self.out_dir = Path(out_dir)
        self.errors = errors
        self.manifest = manifest
        self._loaded: CodedData | None = None

    def __getattr__(self, name: str) -> Any:
        if name in ("documents", "segments", "codings", "matches"):
            if self._loaded is None:
                self._loaded = load_coded(self.out_dir, verify=False)
            return getattr(self._loaded, name)
        raise AttributeError(name)
