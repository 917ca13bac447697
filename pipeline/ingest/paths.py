"""Where an input file was found: its input folder and its path as shown in outputs.

A run shows each file by its path below the input folder it was found in
(``display``); ``file_roots`` finds that folder for every file of a run (9,000 files
at a million segments: it resolves each folder once, not each file).
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def display(path: Path, root: Path | None) -> str:
    """Path relative to the input folder it was found in, else as given."""
    if root is not None:
        # pathlib's strings are normalised (one "/" between parts, none at the end):
        # a path below the folder's string plus "/" is below it part by part, and
        # the rest is ``relative_to``'s answer (~1 us instead of ~8; 9,000 files at 1M)
        full, base = path.as_posix(), root.as_posix()
        if base not in (".", "/") and full.startswith(base + "/"):
            return full[len(base) + 1:]
        try:
            return path.relative_to(root).as_posix()
        except ValueError:
            pass
    return path.as_posix()


def parents(path: Path, dirs: dict[Path, Path] | None = None) -> list[Path]:
    """The resolved path and its ancestors (to find the input folder a file is under).

    Args:
        path: A file.
        dirs: Folder -> resolved folder, filled as files are resolved: a file that is
            not a symbolic link resolves to its resolved folder plus its name, so the
            files of one folder cost one ``realpath`` instead of one each (a
            million-segment corpus has ~9,000 files in a few folders).
    """
    if dirs is None or path.name in ("", ".", "..") or path.is_symlink():
        resolved = path.resolve()
    else:
        folder = dirs.get(path.parent)
        if folder is None:
            folder = dirs[path.parent] = path.parent.resolve()
        resolved = folder / path.name
    return [resolved, *resolved.parents]


def file_roots(files: Sequence[Path], roots: dict[Path, Path]) -> list[Path | None]:
    """The input folder (a value of ``roots``, keyed by resolved path) each file is
    under, None for a file given by itself."""
    dirs: dict[Path, Path] = {}
    # resolved folder -> the root among it and its ancestors (what ``parents`` would
    # give after the file itself): looked up once per folder, not once per file
    under: dict[Path, Path | None] = {}
    found: list[Path | None] = []
    for path in files:
        if path.name in ("", ".", "..") or path.is_symlink():
            found.append(next((roots[r] for r in parents(path) if r in roots), None))
            continue
        folder = dirs.get(path.parent)
        if folder is None:
            folder = dirs[path.parent] = path.parent.resolve()
        resolved = folder / path.name  # as ``parents(path, dirs)`` resolves it
        if resolved in roots:
            found.append(roots[resolved])
            continue
        if folder not in under:
            under[folder] = next((roots[r] for r in (folder, *folder.parents) if r in roots),
                                 None)
        found.append(under[folder])
    return found
