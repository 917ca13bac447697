"""Before a run: will its largest files fit in this machine's memory?

A chunk holds whole documents and a document is coded in one piece, so a run's memory
grows with its largest file: about 50 to 60 times the file's size on top of the ~0.3 GB
every run needs (measured in ``benchmarks/RESULTS.md``, "Memory of one large file"). A
file of more than ``RunOptions.part_bytes`` is coded in parts (``chunk_parts``) but read
whole: 6 to 10 times its size, plus a part. When that is more than the memory
available, Linux usually kills the process without a word (or native code crashes)
long before Python can raise a ``MemoryError``, and the whole run is lost. The runner
warns before it starts, naming the files.
"""
from __future__ import annotations

import logging
import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

# Peak RSS of a run ≈ BASE + factor × (the largest file's text bytes); measured for
# surveys (CSV) and transcripts (.txt) of 1 to 30 MB, rounded up (RESULTS.md).
BASE_BYTES = 300_000_000
FACTOR_CACHE = 60      # a run that fills the cache (the default) keeps token arrays to save
FACTOR_NO_CACHE = 50   # --no-cache
# A file coded in parts (``chunk_parts``) is read and segmented whole (this much per
# byte, its document row written included), then coded a part (``RunOptions.part_bytes``)
# at a time. Surveys of 14.7, 29.5 and 88.7 MB: 5-15% below this (RESULTS.md, session 18);
# a transcript of 15.4 MB: 2-3% below (session 21).
READ_FACTOR_CACHE = 10
READ_FACTOR_NO_CACHE = 6
# Address space a run holds beyond its resident memory (libraries, thread stacks, malloc
# arenas): VmPeak - VmHWM measured 0.64-0.91 GB; what ``ulimit -v`` limits.
ADDRESS_OVERHEAD = 900_000_000
_CGROUP = Path("/sys/fs/cgroup")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MemoryNeed:
    """The estimate for a run: bytes needed, bytes available, the files that drive it."""

    need: int
    available: int
    files: tuple[tuple[str, int], ...]   # (file as shown, its size), largest first

    def message(self) -> str:
        """One line for the user: which files, how much memory, what to do."""
        named = ", ".join(f"{shown} ({_size(size)})" for shown, size in self.files)
        several = len(self.files) > 1  # one per worker: --jobs codes them at the same time
        return (f"{named}: coding may need about {_size(self.need)} of memory and "
                f"{_size(self.available)} is available; if the run "
                f"is killed, split the file{'s' if several else ''} (a CSV into files of "
                f"fewer rows), {'use fewer --jobs, ' if several else ''}or code "
                f"{'them' if several else 'it'} on a machine with more memory")


def text_bytes(path: str | Path) -> int:
    """The bytes of text a file gives: its size, or for a .docx its document's XML.

    A .docx is a zip archive: its size on disk says little about its text (compressed,
    and often mostly images), so the uncompressed size of ``word/document.xml`` is
    taken (markup included: an upper bound). 0 for a file that cannot be read (the
    run reports it).
    """
    try:
        if str(path).lower().endswith(".docx"):
            with zipfile.ZipFile(path) as archive:
                return archive.getinfo("word/document.xml").file_size
        return os.path.getsize(path)
    except (OSError, KeyError, zipfile.BadZipFile):
        return 0


def estimate(sizes: Sequence[int], *, jobs: int = 1, cache: bool = True,
             parts: Sequence[bool] = (), part_bytes: int = 0) -> int:
    """Peak memory (bytes) of a run whose files have ``sizes`` (text bytes).

    With ``jobs`` workers (each a process with its own start-up), the ``jobs`` files
    that need most may be coded at the same time. ``parts[i]``: file ``i`` is coded in
    parts of ``part_bytes`` (``chunk_parts``).
    """
    return _total(_needs(sizes, cache, parts, part_bytes), jobs)


def _needs(sizes: Sequence[int], cache: bool, parts: Sequence[bool],
           part_bytes: int) -> list[int]:
    """``file_need`` of every file (``parts[i]``: file ``i`` in parts; missing: not)."""
    return [file_need(size, cache=cache,
                      part_bytes=part_bytes if i < len(parts) and parts[i] else 0)
            for i, size in enumerate(sizes)]


def _total(needs: Sequence[int], jobs: int) -> int:
    """A run's peak: each worker's start-up and the ``jobs`` largest needs at once."""
    jobs = max(1, jobs)
    return BASE_BYTES * jobs + sum(sorted(needs, reverse=True)[:jobs])


def file_need(size: int, *, cache: bool = True, part_bytes: int = 0) -> int:
    """Bytes one file of ``size`` adds to a run's start-up memory; ``part_bytes``: it is
    coded in parts of that size (0: whole)."""
    factor = FACTOR_CACHE if cache else FACTOR_NO_CACHE
    if not part_bytes:
        return factor * size
    read = READ_FACTOR_CACHE if cache else READ_FACTOR_NO_CACHE
    return read * size + factor * min(size, part_bytes)


def available_memory() -> int | None:
    """Bytes this process may still use: the least of the system's available memory,
    a container's (cgroup v2) limit left and the address-space limit (``ulimit -v``,
    less ``ADDRESS_OVERHEAD``). None when none of them can be read.
    """
    found: list[int] = []
    system = _meminfo_available()
    if system is None:  # not Linux: psutil knows the other systems (~15 ms to import)
        try:
            import psutil

            system = int(psutil.virtual_memory().available)
        except (ImportError, OSError):
            pass
    if system is not None:
        found.append(system)
    try:
        limit = (_CGROUP / "memory.max").read_text().strip()
        if limit != "max":
            used = int((_CGROUP / "memory.current").read_text().strip())
            found.append(max(0, int(limit) - used))
    except (OSError, ValueError):
        pass
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY:
            found.append(max(0, int(soft) - ADDRESS_OVERHEAD))
    except (ImportError, OSError, ValueError):
        pass
    return min(found) if found else None


def _meminfo_available() -> int | None:
    """Linux's ``MemAvailable`` (what psutil reports there), None elsewhere."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def check(paths: Sequence[str | Path], shown: Sequence[str], *, jobs: int = 1,
          cache: bool = True, available: int | None = None,
          parts: Sequence[str] = (), part_bytes: int = 0) -> MemoryNeed | None:
    """The estimate of a run over ``paths`` when it is more than the memory available.

    Args:
        paths: The run's input files.
        shown: Each file as the outputs name it.
        jobs: Files coded at the same time (local workers).
        cache: Whether the run fills the cache.
        available: Bytes available (None: ``available_memory()``).
        parts: The files (as in ``paths``) coded in parts of ``part_bytes``.

    Returns:
        None when the run should fit (or the memory cannot be read).
    """
    sizes = [text_bytes(p) for p in paths]
    in_parts = {str(p) for p in parts}
    each = _needs(sizes, cache, [str(p) in in_parts for p in paths], part_bytes)
    need = _total(each, jobs)
    if available is None:
        available = available_memory()
    if available is None or need <= available:
        return None
    order = sorted(range(len(sizes)), key=lambda i: (-each[i], shown[i]))[:max(1, jobs)]
    return MemoryNeed(need, available, tuple((shown[i], sizes[i]) for i in order))


def _size(n: int) -> str:
    if n >= 1e9:
        return f"{n / 1e9:,.1f} GB"
    if n >= 1e6:
        return f"{n / 1e6:,.1f} MB"
    return f"{n / 1e3:,.1f} kB"


def warn(paths: Sequence[str | Path], shown: Sequence[str], *, jobs: int = 1,
         cache: bool = True, parts: Sequence[str] = (),
         part_bytes: int = 0) -> MemoryNeed | None:
    """``check``, logging its message as a warning (the CLI prints it on stderr)."""
    need = check(paths, shown, jobs=jobs, cache=cache, parts=parts, part_bytes=part_bytes)
    if need is not None:
        log.warning(need.message())
    return need
