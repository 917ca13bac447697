"""sha256 of files remembered across runs, by what ``os.stat`` tells of them.

A re-code hashes the corpus's files (the chunk-cache keys, ``chunk_keys``) and the
files of the cache entries it takes (each is checked against its ``meta.json``):
about 0.1 s of a 100,000-segment re-code that codes almost nothing, growing with the
corpus. ``DigestMemo`` keeps, in ``<cache>/digests-v1.json``, a
file's sha256 under its device and inode with the size, modification time and
change time it had when it was hashed. A later run that finds the same inode with
the same size and times takes the digest instead of reading the file; any other
file is hashed as before.

Writing to a file sets its modification time, so a changed file is hashed again.
Only a program that sets the time back (``touch -d``, ``cp -p`` over the file)
could hide a change from it, so an input file must also keep its change time,
which no program can set. A cache entry's change time moves whenever a run links
it into an output folder; entries are held to their size and modification time
(nothing but a run writes into the cache, and an output linked to an entry that is
changed by hand gets a new modification time).

The memo trusts the file system the way make and git do: bytes that change with no
write at all (a failing disk) are not noticed once a file's digest is remembered.
A write may leave the modification time as it was when it falls in the same tick
of the file system's clock as the write before (2 s on FAT). So, like git for its
index, the memo keeps the digest only of a file last written at least ``RACY_NS``
before it was read: a later write then always gives the file a later time. A run
that stores entries hashes them again on their next use, and remembers them then.

The file may be deleted any time. Its first line is the sha256 of the rest, so that a
damaged file is started again rather than giving a wrong digest. Runs that
share a cache folder each add their records (``save`` merges what another run
wrote since it read the file).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path

FILE = "digests-v1.json"
RACY_NS = 2_000_000_000     # a file written more recently than this is hashed each time
LIMIT = 50_000              # records kept; beyond it, only those the last run used
_BLOCK = 1 << 20

# (device, inode) -> (size, mtime ns, ctime ns, sha256 hex) of the files hashed in this
# process, as their stat was before and after hashing (``DigestMemo.remember``)
_NOTED: dict[tuple[int, int], tuple[int, int, int, str]] = {}


def _sig(st: os.stat_result) -> tuple[int, int, int]:
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns


def hash_file(path: str | os.PathLike[str]) -> tuple[str, int]:
    """sha256 (hex) and length of a file's bytes; the file's stat is noted for
    ``DigestMemo.remember`` when no write changed it while it was read.

    Raises:
        OSError: the file cannot be read.
    """
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        before = os.fstat(fh.fileno())
        for block in iter(lambda: fh.read(_BLOCK), b""):
            digest.update(block)
            size += len(block)
        after = os.fstat(fh.fileno())
    hexdigest = digest.hexdigest()
    if _sig(before) == _sig(after) and size == after.st_size:
        if len(_NOTED) > LIMIT:
            _NOTED.clear()
        _NOTED[(after.st_dev, after.st_ino)] = (*_sig(after), hexdigest)
    return hexdigest, size


class DigestMemo:
    """The digests of ``<cache_dir>/digests-v1.json`` (None: no memo, every file hashed).

    ``lookup`` gives a remembered digest, ``remember`` keeps one just hashed (of a file
    old enough) and ``save`` writes those kept.
    """

    def __init__(self, cache_dir: str | os.PathLike[str] | None) -> None:
        self.path = Path(cache_dir) / FILE if cache_dir is not None else None
        self._records: dict[str, list] | None = None
        self._seen: int | None = None          # mtime of the file when it was read
        self._new: dict[str, list] = {}
        self._used: set[str] = set()
        self._load()  # now, not on a thread of ``store.file_digests``

    def _load(self) -> dict[str, list]:
        if self._records is None:
            self._records = {}
            if self.path is not None:
                with contextlib.suppress(OSError, ValueError):
                    self._seen = self.path.stat().st_mtime_ns
                    self._records = _read(self.path)
        return self._records

    def lookup(self, path: str | os.PathLike[str], *, ctime: bool = True) -> str | None:
        """The remembered sha256 of the file at ``path``, or None (hash it).

        ``ctime``: the change time must be the remembered one too (input files; not
        the cache's entries, which a run links into its outputs).
        """
        if self.path is None:
            return None
        try:
            st = os.stat(path)
        except OSError:
            return None
        key = f"{st.st_dev}:{st.st_ino}"
        got = self._new.get(key) or self._load().get(key)
        if not isinstance(got, list) or len(got) != 4:
            return None
        size, mtime, changed, digest = got
        if size != st.st_size or mtime != st.st_mtime_ns or (ctime and changed != st.st_ctime_ns):
            return None
        self._used.add(key)
        return digest if isinstance(digest, str) else None

    def remember(self, path: str | os.PathLike[str], started_ns: int) -> None:
        """Keep the digest ``hash_file`` noted of ``path`` (just hashed, from
        ``started_ns``) if the file has not changed since and was last written
        ``RACY_NS`` before that."""
        if self.path is None:
            return
        try:
            st = os.stat(path)
        except OSError:
            return
        record = _NOTED.get((st.st_dev, st.st_ino))
        if record is None or record[:3] != _sig(st) or started_ns - record[1] <= RACY_NS:
            return
        key = f"{st.st_dev}:{st.st_ino}"
        self._new[key] = list(record)
        self._used.add(key)

    def save(self) -> None:
        """Write the records made since loading, with those another run wrote since
        (atomically; failures are ignored: the memo only saves time)."""
        if self.path is None or not self._new:
            return
        records = dict(self._load())
        with contextlib.suppress(OSError, ValueError):
            if self.path.stat().st_mtime_ns != self._seen:  # another run saved since
                records.update(_read(self.path))
        records.update(self._new)
        if len(records) > LIMIT:
            records = {key: records[key] for key in self._used if key in records}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{FILE}.", dir=self.path.parent)
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(_encode(records))
                os.replace(tmp, self.path)
            finally:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
        except OSError:
            return
        self._records, self._new = records, {}
        with contextlib.suppress(OSError):
            self._seen = self.path.stat().st_mtime_ns


def _encode(records: dict[str, list]) -> bytes:
    """The file's bytes: the sha256 of the records' JSON on the first line, then the JSON."""
    text = json.dumps(records, separators=(",", ":")).encode("utf-8")
    return hashlib.sha256(text).hexdigest().encode("ascii") + b"\n" + text


def _read(path: Path) -> dict[str, list]:
    """The records of the file; {} when it is damaged (its digest does not match)."""
    data = path.read_bytes()
    digest, _, text = data.partition(b"\n")
    if hashlib.sha256(text).hexdigest().encode("ascii") != digest:
        return {}
    got = json.loads(text)
    return got if isinstance(got, dict) else {}
