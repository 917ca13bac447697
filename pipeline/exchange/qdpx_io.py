"""File and zip I/O of REFI-QDA exchange: the only module here that touches disk.

Reading treats every archive as hostile: member names that would leave a folder
(zip-slip), too many members, too many uncompressed bytes (zip bombs; checked on
the declared sizes and again while reading, since headers can lie), and XML with
DTD entities (defusedxml) are refused with one-line :class:`ExchangeError`\\ s.
Writing is deterministic (sorted members, fixed timestamps) and atomic.
"""
from __future__ import annotations

import posixpath
import shutil
import tempfile
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import defusedxml
import defusedxml.ElementTree as DET

from pipeline.errors import ExchangeError

PROJECT_MEMBER = "project.qde"
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)   # the earliest zip timestamp; makes output byte-stable


@dataclass(frozen=True)
class Limits:
    """Ceilings for reading an archive. Defaults fit large real projects."""

    max_files: int = 20_000
    max_total_bytes: int = 1 << 30      # 1 GiB uncompressed in all
    max_member_bytes: int = 256 << 20   # 256 MiB per member
    max_ratio: int = 200                # uncompressed/compressed, per member over 1 MiB


def safe_member_name(name: str) -> str | None:
    """Return the normalised member name, or None if it could escape a folder."""
    clean = name.replace("\\", "/")
    if clean.startswith("/") or (len(clean) > 1 and clean[1] == ":"):
        return None
    parts = clean.split("/")
    if any(p == ".." for p in parts):
        return None
    return posixpath.normpath(clean)


def parse_xml(data: bytes, where: str) -> ET.Element:
    """Parse XML bytes safely (no DTD entities, no external references)."""
    try:
        return DET.fromstring(data, forbid_dtd=False, forbid_entities=True,
                              forbid_external=True)
    except defusedxml.DefusedXmlException as exc:
        raise ExchangeError(f"{where}: refused: the XML declares entities or external "
                            f"references ({type(exc).__name__})") from None
    except ET.ParseError as exc:
        raise ExchangeError(f"{where}: not well-formed XML ({exc})") from None


class Archive:
    """A ``.qdpx`` opened for reading, with its member names checked."""

    def __init__(self, path: Path, limits: Limits | None = None) -> None:
        self.path = Path(path)
        self.limits = limits or Limits()
        try:
            self._zip = zipfile.ZipFile(self.path)
        except (zipfile.BadZipFile, OSError) as exc:
            raise ExchangeError(f"{self.path}: not a readable .qdpx zip archive ({exc})") from None
        infos = self._zip.infolist()
        if len(infos) > self.limits.max_files:
            raise ExchangeError(f"{self.path}: refused: {len(infos)} files in the archive "
                                f"(limit {self.limits.max_files})")
        total = 0
        self.members: dict[str, zipfile.ZipInfo] = {}
        for info in infos:
            clean = safe_member_name(info.filename)
            if clean is None:
                raise ExchangeError(f"{self.path}: refused: member {info.filename!r} points "
                                    f"outside the archive folder (zip-slip)")
            total += info.file_size
            if info.file_size > self.limits.max_member_bytes or (
                    info.file_size > (1 << 20)
                    and info.file_size > self.limits.max_ratio * max(info.compress_size, 1)):
                raise ExchangeError(f"{self.path}: refused: member {info.filename!r} "
                                    f"uncompresses to {info.file_size} bytes (zip bomb?)")
            if not info.is_dir():
                self.members[clean] = info
        if total > self.limits.max_total_bytes:
            raise ExchangeError(f"{self.path}: refused: {total} bytes uncompressed "
                                f"(limit {self.limits.max_total_bytes})")
        self._read_total = 0

    def close(self) -> None:
        self._zip.close()

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def project_member(self) -> str:
        """Name of the project XML: ``project.qde``, else the one ``*.qde`` (ATLAS.ti)."""
        qde = sorted(n for n in self.members if n.lower().endswith(".qde"))
        exact = [n for n in qde if n.lower() == "project.qde"]
        if exact:
            return exact[0]
        top = [n for n in qde if "/" not in n] or qde
        if len(top) == 1:
            return top[0]
        if not top:
            raise ExchangeError(f"{self.path}: no project .qde file in the archive")
        raise ExchangeError(f"{self.path}: several .qde files in the archive: {', '.join(top)}")

    def find(self, name: str) -> str | None:
        """Member name matching ``name``, with the folder name in any case (``Sources/``)."""
        if name in self.members:
            return name
        lowered = name.lower()
        for member in self.members:
            if member.lower() == lowered:
                return member
        return None

    def read(self, member: str) -> bytes:
        """Read a member, enforcing the size limits on the actual bytes."""
        info = self.members[member]
        cap = self.limits.max_member_bytes
        with self._zip.open(info) as fh:
            data = fh.read(cap + 1)
        if len(data) > cap:
            raise ExchangeError(f"{self.path}: refused: member {member!r} is larger than "
                                f"{cap} bytes")
        self._read_total += len(data)
        if self._read_total > self.limits.max_total_bytes:
            raise ExchangeError(f"{self.path}: refused: more than "
                                f"{self.limits.max_total_bytes} bytes uncompressed")
        return data


def read_file_limited(path: Path, limits: Limits | None = None) -> bytes:
    """Read a plain file (``.qdc`` / bare ``.qde``) under the member size limit."""
    cap = (limits or Limits()).max_member_bytes
    try:
        with open(path, "rb") as fh:
            data = fh.read(cap + 1)
    except OSError as exc:
        raise ExchangeError(f"{path}: cannot read ({exc.strerror})") from None
    if len(data) > cap:
        raise ExchangeError(f"{path}: refused: larger than {cap} bytes")
    return data


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (the project's one atomic writer)."""
    from pipeline.store import atomic_write_bytes as write

    write(path, data)


def _member(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    info.create_system = 3   # unix; fixed so the bytes do not depend on the OS
    return info


def zip_bytes(members: dict[str, bytes]) -> bytes:
    """Build a deterministic zip: members sorted (project file first), fixed timestamps."""
    import io

    buf = io.BytesIO()
    order = sorted(members, key=lambda n: (n != PROJECT_MEMBER, n))
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in order:
            zf.writestr(_member(name), members[name])
    return buf.getvalue()


def write_archive(path: Path, write_project: Callable[[Callable[[str], object]], None],
                  members: Iterable[tuple[str, bytes]]) -> None:
    """Write a ``.qdpx`` atomically without holding it in memory.

    The file has the bytes of :func:`zip_bytes` given the same project text and members.

    Args:
        path: the archive to write.
        write_project: writes the project XML by calling the function it is given with
            each piece of text, in order.
        members: ``(name, bytes)`` of the other members, sorted by name; produced one
            at a time, so a generator keeps one in memory.
    """
    from pipeline.store import atomic_write

    def writer(tmp: Path) -> None:
        with tempfile.TemporaryFile(dir=tmp.parent) as spool:
            with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
                # Deflated on a thread while the XML is made (zlib lets go of the GIL),
                # and spooled: the zip header records, before the data, whether the
                # member needs zip64, which writestr decides from the size.
                size = 0
                try:
                    with zf.open(_member(PROJECT_MEMBER), "w") as dest:
                        size = _piped(write_project, (spool.write, dest.write))
                except RuntimeError:   # "File size too large": past 2 GiB without zip64
                    if size * 1.05 <= zipfile.ZIP64_LIMIT:
                        raise
                fits = size * 1.05 <= zipfile.ZIP64_LIMIT
                if fits:
                    _add_members(zf, members)
            if not fits:   # over ~2 GB of XML: again, from the spool, with the size known
                spool.seek(0)
                with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
                    info = _member(PROJECT_MEMBER)
                    info.file_size = size   # as writestr sets it
                    with zf.open(info, "w") as dest:
                        shutil.copyfileobj(spool, dest, 1 << 20)
                    _add_members(zf, members)

    atomic_write(path, writer)


def _add_members(zf: zipfile.ZipFile, members: Iterable[tuple[str, bytes]]) -> None:
    last = ""
    for name, data in members:
        if name == PROJECT_MEMBER or not name > last:
            raise ValueError(f"archive members out of order: {name!r} after {last!r}")
        zf.writestr(_member(name), data)
        last = name


def _piped(produce: Callable[[Callable[[str], object]], None],
           sinks: tuple[Callable[[bytes], object], ...], block: int = 1 << 20) -> int:
    """Run ``produce(write)``; its text goes, UTF-8 in blocks, to every sink on a thread.

    Returns the number of bytes. An error of the thread is raised here.
    """
    import queue
    import threading

    blocks: queue.Queue = queue.Queue(maxsize=8)
    failed: list[BaseException] = []

    def drain() -> None:
        while (data := blocks.get()) is not None:
            if failed:
                continue   # keep taking blocks, so the producer is never stuck
            try:
                for sink in sinks:
                    sink(data)
            except BaseException as exc:  # noqa: BLE001 - raised again in the caller
                failed.append(exc)

    thread = threading.Thread(target=drain, name="qcode-deflate", daemon=True)
    thread.start()
    pending: list[bytes] = []
    held = total = 0

    def write(text: str) -> None:
        nonlocal held, total
        if failed:   # the disk is full, say: stop making the rest
            raise failed[0]
        data = text.encode("utf-8")
        pending.append(data)
        held += len(data)
        total += len(data)
        if held >= block:
            blocks.put(b"".join(pending))
            pending.clear()
            held = 0

    try:
        produce(write)
        if pending:
            blocks.put(b"".join(pending))
    finally:
        blocks.put(None)
        thread.join()
    if failed:
        raise failed[0]
    return total


def write_tree(out_dir: Path, files: dict[str, bytes]) -> list[Path]:
    """Write ``files`` (relative POSIX names) under ``out_dir``, each atomically.

    Every name is checked to stay inside ``out_dir`` before anything is written, so
    a bad name cannot leave a half-written folder behind.
    """
    root = Path(out_dir).resolve()
    targets: list[tuple[Path, bytes]] = []
    for rel, data in files.items():
        target = (root / rel).resolve()
        if safe_member_name(rel) is None or not target.is_relative_to(root):
            raise ExchangeError(f"{out_dir}: refused to write {rel!r} outside the output folder")
        targets.append((target, data))
    written = []
    for target, data in sorted(targets):
        atomic_write_bytes(target, data)
        written.append(target)
    return written
