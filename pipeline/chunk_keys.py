"""The key of a chunk-cache entry, and an entry moved to the paths of another run.

``chunk_key`` names what shapes a chunk's documents, segments and error rows: its files'
bytes and order, their paths as shown, the run's ingest and segmentation settings,
the package versions and the source of the code that builds an entry (``_versions``,
``_source_digest``, also used by the other caches' keys). ``relocated`` rewrites an
entry's error messages for a run that gives the same files by other paths, and moves
its error rows to the files' positions in the run.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from pipeline import columns as C

if TYPE_CHECKING:
    from pipeline.chunk_cache import ChunkEntry


def chunk_key(files: list[tuple[int, str, str]], settings: dict[str, Any],
              memo=None) -> str | None:  # noqa: ANN001
    """Key of a chunk: its files' order, paths as shown and bytes + the run's settings.

    Not the files' positions in the run: a file added or removed before the chunk moves
    those, not what the chunk holds (an entry keeps the positions it was made with, and
    ``relocated`` moves its error rows to the run's).

    A file found in an input folder is keyed by its path below that folder, not by
    the path it was given as: ``data/raw`` and ``/home/me/project/data/raw`` (or the
    project folder moved, or a notebook's ``../data/raw``) share entries, as the
    outputs they give are the same but for the paths error messages start with
    (``relocated`` rewrites those). A file named by itself is shown as given, so that
    path is in the key.

    Args:
        files: (position in path order, path, path as shown) of the chunk's files (the
            positions are not used).
        settings: JSON-able values of everything else that shapes ingest/segment.
        memo: a ``digest_memo.DigestMemo``: the files' digests it knows are not hashed.

    Returns:
        A hex digest; None when a file cannot be read (the normal path reports it).
    """
    h = hashlib.sha256()
    versions = [*_versions(), _source_digest()]
    h.update(json.dumps([versions, settings], sort_keys=True, default=str).encode("utf-8"))
    for i, (_, path, shown) in enumerate(files):
        got = _file_digest(path, memo)
        if got is None:
            return None
        # ``rooted`` as ``ingest.assign_doc_ids`` tells (ids of files sharing a stem)
        rooted = shown != Path(path).as_posix()
        h.update(json.dumps([i, shown, rooted, got[0]]).encode("utf-8"))
        h.update(got[1])
    return h.hexdigest()


def relocated(entry: ChunkEntry, given: list[str],
              positions: list[int] | None = None) -> ChunkEntry | None:
    """``entry`` for a run given its files and metadata by other paths, or at other
    positions (files added or removed before them), or None.

    ``given``: the chunk's files' paths as given, then the run's metadata name
    (``RunContext.meta_name``). Error rows name those in known places only: an ingest
    message starts with its file's path (``path:`` or ``path, line``); a metadata
    warning has the metadata's name as its file, at its start, or after " in " at its
    end. Those are rewritten; an old path anywhere else makes the entry a miss.
    ``positions``: the files' positions in this run, which order the error rows: the
    rows' positions are moved to them (an entry that does not know its own is a miss).
    """
    if positions is not None and entry.positions != list(positions):
        from pipeline.chunk import ORDER

        if len(entry.positions) != len(positions):
            return None
        moved = dict(zip(entry.positions, positions))
        entry.errors = [{**row, ORDER: (row[ORDER][0], moved.get(row[ORDER][1], row[ORDER][1]))}
                        for row in entry.errors]
        entry.positions = list(positions)
    if entry.given == given:
        return entry
    if len(entry.given) != len(given) or not given:
        return None
    *old_files, old_meta = entry.given
    *new_files, new_meta = given
    moved = {old: new for old, new in zip(old_files, new_files) if old != new}
    olds = [*moved, old_meta] if old_meta != new_meta else list(moved)
    errors = []
    for row in entry.errors:
        file, message = row.get(C.ERROR_FILE), str(row.get(C.ERROR_MESSAGE, ""))
        head = tail = ""
        for old, new in [*moved.items(), (old_meta, new_meta)]:
            if old and old != new and message.startswith(old) \
                    and message[len(old):len(old) + 1] in (":", ","):
                head, message = new, message[len(old):]
                break
        if old_meta and old_meta != new_meta:
            file = new_meta if file == old_meta else file
            if message.endswith(f" in {old_meta}"):
                tail, message = f" in {new_meta}", message[:-len(old_meta) - 4]
        if any(old and old in message for old in olds):
            return None
        errors.append({**row, C.ERROR_FILE: file, C.ERROR_MESSAGE: head + message + tail})
    entry.errors, entry.given = errors, list(given)
    return entry


_DIGESTS: dict[tuple, tuple[int, bytes]] = {}  # (path, stat) -> (size, sha256) in this process


def _file_digest(path: str, memo=None) -> tuple[int, bytes] | None:  # noqa: ANN001
    """(size, sha256 digest) of a file's bytes; None when it cannot be read.

    Kept per path, size, change times and inode, so that the parts of a large
    file (``chunk_parts``: each has a key, computed by the runner and again by the
    worker) hash it once per process; a file written since has another time. Across
    runs, ``memo`` (a ``digest_memo.DigestMemo``) keeps them.
    """
    from pipeline.digest_memo import hash_file

    try:
        st = os.stat(path)
        memo_key = (path, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
        got = _DIGESTS.get(memo_key)
        if got is None:
            known = memo.lookup(path) if memo is not None else None
            if known is not None:
                got = (st.st_size, bytes.fromhex(known))
            else:
                started = time.time_ns()
                hexdigest, size = hash_file(path)
                got = (size, bytes.fromhex(hexdigest))
                if memo is not None:
                    memo.remember(path, started)
            if len(_DIGESTS) > 4096:
                _DIGESTS.clear()
            if got[0] == st.st_size:  # not written while it was read
                _DIGESTS[memo_key] = got
        return got
    except OSError:
        return None


@lru_cache(maxsize=1)
def _versions() -> tuple[str, ...]:
    """The entry format, this package's and the libraries' versions (once per process:
    each look-up scans the installed distributions)."""
    from importlib import metadata

    from pipeline import __version__
    from pipeline.chunk_cache import SUBDIR

    found = [SUBDIR, __version__]
    for name in ("pandas", "pyarrow", "spacy", "spacy-lookups-data", "numpy"):
        try:
            found.append(metadata.version(name))
        except metadata.PackageNotFoundError:
            found.append("none")
    return tuple(found)


@lru_cache(maxsize=1)
def _source_digest() -> str:
    """Digest of the code that builds an entry (ingest, segmentation, parsing).

    The package version does not change with every edit of a working copy; hashing the
    source files makes a changed ingest or segmenter give new keys, never stale tables.
    """
    from pipeline.chunk_cache import SOURCES

    root = Path(__file__).resolve().parent
    return files_digest([*root.joinpath("ingest").glob("*.py"), *root.joinpath("data").glob("*"),
                         *(root / name for name in SOURCES)])


def files_digest(files: Iterable[Path]) -> str:
    """sha256 over the names and bytes of ``files`` (sorted; an unreadable file counts as "?")."""
    h = hashlib.sha256()
    for path in sorted(files):
        h.update(path.name.encode("utf-8"))
        try:
            h.update(path.read_bytes())
        except OSError:
            h.update(b"?")
    return h.hexdigest()


def frame_digest(frame: pd.DataFrame | None) -> str:
    """Digest of a table's columns, dtypes and values (the metadata table of a run)."""
    if frame is None:
        return "none"
    h = hashlib.sha256(repr([list(frame.columns), [str(t) for t in frame.dtypes]]).encode())
    h.update(frame.to_csv(index=True, lineterminator="\n").encode("utf-8"))
    return h.hexdigest()
