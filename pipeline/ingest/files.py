"""Finding input files and reading one file into a document and its turns."""
from __future__ import annotations

import hashlib
import io
import math
import os
import re
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from pipeline import columns as C
from pipeline.errors import InputError

from .decode import decode_bytes, sniff_binary
from .labels import Turn, is_label, split_turns, turn_lists
from .media import build_document, parse_srt, parse_vtt
from .tables import csv_document

SUPPORTED_SUFFIXES = (".txt", ".md", ".docx", ".vtt", ".srt", ".csv")
METADATA_NAME = "metadata.csv"


class Ingested(NamedTuple):
    """One file read: a one-row documents table, its turns, and non-fatal warnings."""

    documents: pd.DataFrame
    turns: pd.DataFrame
    warnings: list[str]


class FileParts(NamedTuple):
    """One file read as plain values, for callers that build one table of many files.

    ``document`` maps ``columns.DOCUMENT_COLUMNS`` to the file's values; ``turns``
    maps ``columns.TURN_COLUMNS`` (then CSV attribute columns) to equally long lists.
    """

    document: dict[str, object]
    turns: dict[str, list]
    warnings: list[str]


def is_skipped_name(name: str) -> bool:
    """Files that are never documents: metadata.csv, README*, the pseudonymisation report,
    hidden, ``_x``, Word ``~$`` locks."""
    return (name.lower() in (METADATA_NAME, "pseudonymisation_report.csv")
            or name.upper().startswith("README")
            or name.startswith((".", "_", "~$")))


def name_suffix(name: str) -> str:
    """``Path(name).suffix`` of a file name (no "/"), without making a ``Path``."""
    i = name.rfind(".")
    return name[i:] if 0 < i < len(name) - 1 else ""


def discover(inputs: list[Path | str]) -> list[Path]:
    """Expand files and folders to the input files of a run.

    Folders are searched recursively (hidden and ``_``-prefixed folders are
    skipped) for supported suffixes. Skipped names (``metadata.csv``,
    ``README*``, hidden files, ``_``/``~$`` prefixes) are dropped everywhere, so
    a shell glob like ``data/raw/*`` works. A file named explicitly is kept even
    with an unknown suffix: ``read_file`` then reports it.

    Args:
        inputs: Files and/or folders.

    Returns:
        Unique paths, sorted by their string form.

    Raises:
        InputError: An input does not exist.
    """
    found: dict[Path, Path] = {}
    for given in map(Path, inputs):
        if given.is_dir():
            for root, dirs, files in os.walk(given):
                dirs[:] = sorted(d for d in dirs if not d.startswith((".", "_")))
                # the walked folder made and resolved once: ~9,000 files sit in a few
                base = folder = None
                for name in files:
                    if (name_suffix(name).lower() in SUPPORTED_SUFFIXES
                            and not is_skipped_name(name)):
                        if base is None:
                            base = Path(root)
                        path = base / name
                        if os.path.islink(os.path.join(root, name)):  # resolves to its target
                            found.setdefault(path.resolve(), path)
                            continue
                        if folder is None:
                            folder = base.resolve()
                        found.setdefault(folder / name, path)
        elif given.is_file():
            if not is_skipped_name(given.name):
                found.setdefault(given.resolve(), given)
        else:
            raise InputError(given, "no such file or folder")
    return sorted(found.values(), key=lambda p: p.as_posix())


def assign_doc_ids(paths: list[Path | str], shown: list[str],
                   rooted: list[bool] | None = None) -> tuple[list[str], list[str | None]]:
    """Document ids of a run's files: the file stem, unless stems collide.

    Files with the same stem in different folders (``school_a/interview.txt``,
    ``school_b/interview.txt``) all get their path relative to the input folder,
    suffix dropped, ``/`` replaced by ``__`` (``school_a__interview``); files named
    one by one (no input folder) use the path below their common folder. A file at
    the top of its input folder keeps its stem, so two files with one stem in one
    folder (``int1.txt``, ``int1.docx``) still share an id: the later one is skipped
    as a duplicate.

    Args:
        paths: The files (as found by ``discover``).
        shown: Each file's path as shown in outputs (relative to its input folder
            when it was found in one).
        rooted: Whether ``shown`` is relative to an input folder; default: it is
            when it differs from the path as given.

    Returns:
        ``(doc_ids, warnings)``; a warning (or None) per file.
    """
    paths = [Path(p) for p in paths]
    if rooted is None:
        rooted = [s != p.as_posix() for p, s in zip(paths, shown)]
    groups: dict[str, list[int]] = {}
    for k, path in enumerate(paths):
        groups.setdefault(path.stem, []).append(k)
    ids = [p.stem for p in paths]
    warnings: list[str | None] = [None] * len(paths)
    for stem, members in groups.items():
        if len(members) < 2:
            continue
        parts = {k: list(Path(shown[k]).parts) for k in members if rooted[k]}
        loose = [k for k in members if not rooted[k]]  # named one by one: below their common folder
        full = {k: list(paths[k].resolve().parts) for k in loose}
        common = 0
        while len(loose) > 1 and all(len(x) > common + 1 and x[common] == full[loose[0]][common]
                                     for x in full.values()):
            common += 1
        parts.update({k: full[k][common:] if len(loose) > 1 else full[k][-1:] for k in loose})
        for k in members:
            pieces = [x for x in parts[k][:-1] if x not in (".", "..", "/")]
            ids[k] = "__".join([*pieces, Path(parts[k][-1]).stem])
        for k in members:
            if ids[k] != stem:
                others = ", ".join(repr(shown[j]) for j in members if j != k)
                warnings[k] = (f"{shown[k]}: other files have the same name stem {stem!r} "
                               f"({others}); {C.DOC_ID} is {ids[k]!r}")
    return ids, warnings


def canonical_doc_id(value: str) -> str:
    """A metadata ``doc_id`` given as a path (``school_a/interview.txt``) in doc id form."""
    value = value.strip()
    if "/" not in value and "\\" not in value:
        return value
    path = Path(value.replace("\\", "/"))
    parts = [x for x in path.parts if x not in (".", "/")]
    last = parts[-1]
    if Path(last).suffix.lower() in SUPPORTED_SUFFIXES:
        last = Path(last).stem
    return "__".join([*parts[:-1], last])


def _docx_text(data: bytes, path: Path) -> tuple[str, dict[int, int]]:
    """Body text of a .docx, plus labels given by a leading bold run or a table column.

    Paragraphs and tables are read in document order. A table row whose first cell
    is a speaker label and whose next cell has text becomes ``"Label: text"``
    (transcripts exported as a speaker | text table; a leading time cell is
    skipped, a header row such as "Spreker | Tekst" dropped); in any other table
    each cell's paragraphs are read as paragraphs.
    """
    import docx  # python-docx is slow to import; only pay for it when a .docx shows up

    found = sniff_binary(data)
    if found is not None and found[0] != "a Word .docx file":
        raise InputError(path, f"is {found[0]}, not a .docx file; {found[1]}")
    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as exc:  # noqa: BLE001 - zipfile, lxml and python-docx each raise their own types
        raise InputError(path, f"not a valid .docx file ({type(exc).__name__})") from None
    lines: list[str] = []
    forced: dict[int, int] = {}
    pos = 0

    def add(text: str, label_end: int | None) -> None:
        nonlocal pos
        if label_end is not None:
            forced[pos] = label_end
        lines.append(text)
        pos += len(text) + 1

    def paragraph_text(paragraph) -> str:  # noqa: ANN001
        return paragraph.text.replace("\r\n", "\n").replace("\r", "\n")

    def walk(parent) -> None:  # noqa: ANN001 - a Document body or a table cell
        for kind, block in _blocks(parent):
            if kind == "p":
                text = paragraph_text(block)
                add(text, _bold_label_end(block, text))
            else:
                table(block)

    def table(tbl) -> None:  # noqa: ANN001
        for r, row in enumerate(tbl.rows):
            cells = _distinct_cells(row)
            texts = [_cell_text(c) for c in cells]
            while len(texts) > 2 and _TIME_CELL.fullmatch(texts[0]):
                cells, texts = cells[1:], texts[1:]
            if len(texts) >= 2 and texts[1] and _table_label(texts[0]):
                label = texts[0].strip().rstrip(":").strip()
                if r == 0 and texts[1].strip().casefold() in _HEADER_WORDS:
                    continue  # "Spreker | Tekst" header row
                rest = "\n".join(t for t in texts[1:] if t)
                first, *more = rest.split("\n")
                add(f"{label}: {first}", len(label) + 1)
                for line in more:
                    add(line, None)
                continue
            for cell in cells:
                walk(cell)

    walk(document)
    return "\n".join(lines), forced


_TIME_CELL = re.compile(r"\s*[\[(]?(?:\d{1,2}:)?\d{1,2}:\d{2}(?:[.,]\d{1,3})?[\])]?\s*")
_HEADER_WORDS = frozenset({"text", "tekst", "transcript", "transcriptie", "uitspraak", "utterance",
                           "inhoud", "content", "antwoord", "answer", "what was said"})
_SENTENCE_PUNCT = re.compile(r"[.!?;]\s|[.!?;]$|\.\.\.")


_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


def _blocks(parent) -> list[tuple[str, object]]:  # noqa: ANN001
    """``("p", Paragraph)`` and ``("tbl", Table)`` of a document body or table cell, in order."""
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    element = parent.element.body if hasattr(parent, "paragraphs") and not hasattr(
        parent, "_tc") else parent._tc  # noqa: SLF001
    blocks: list[tuple[str, object]] = []
    children = list(element.iterchildren())
    while children:
        child = children.pop(0)
        if child.tag == f"{_W}p":
            blocks.append(("p", Paragraph(child, parent)))
        elif child.tag == f"{_W}tbl":
            blocks.append(("tbl", Table(child, parent)))
        elif child.tag == f"{_W}sdt":  # a content control: read what it wraps, in place
            content = child.find(f"{_W}sdtContent")
            if content is not None:
                children[:0] = list(content.iterchildren())
    return blocks


def _distinct_cells(row) -> list:  # noqa: ANN001
    """The row's cells, a horizontally merged cell once."""
    cells, seen = [], set()
    for cell in row.cells:
        if id(cell._tc) in seen:  # noqa: SLF001
            continue
        seen.add(id(cell._tc))  # noqa: SLF001
        cells.append(cell)
    return cells


def _cell_text(cell) -> str:  # noqa: ANN001
    return "\n".join(p.text for p in cell.paragraphs).replace("\r", "\n").strip()


def _table_label(text: str) -> bool:
    """A first table cell that names a speaker: short, one line, no sentence punctuation."""
    label = text.strip().rstrip(":").strip()
    if not label or "\n" in label or _SENTENCE_PUNCT.search(label):
        return False
    return is_label(label, bold=True)


def _bold_label_end(paragraph, text: str) -> int | None:
    """Length of a bold ``Name:`` label (colon included) at the paragraph start, if any."""
    bold = ""
    for run in paragraph.runs:
        if not run.text:
            continue
        if not run.bold:
            break
        bold += run.text
    if not bold.strip() or not text.startswith(bold):
        return None
    stripped = bold.rstrip()
    if stripped.endswith(":"):
        colon = len(stripped) - 1
    else:
        rest = text[len(bold):]
        after = rest.lstrip(" \t")
        if not after.startswith(":"):
            return None
        colon = len(bold) + (len(rest) - len(after))
    label = text[:colon].strip().strip("*").strip()
    return colon + 1 if is_label(label, bold=True) else None


def turn_columns(doc_id: str, turns: list[Turn]) -> dict[str, list]:
    """``columns.TURN_COLUMNS`` → values of a document's turns (no unit keys)."""
    n = len(turns)
    speakers, starts, ends, times_start, times_end = (
        [list(values) for values in zip(*turns)] if turns else [[], [], [], [], []])
    return {C.DOC_ID: [doc_id] * n, C.TURN: list(range(n)), C.SPEAKER: speakers,
            C.START: starts, C.END: ends, C.TIME_START: times_start, C.TIME_END: times_end,
            C.UNIT_KEY: [""] * n}


def text_turn_columns(doc_id: str, text: str) -> dict[str, list]:
    """``turn_columns(doc_id, split_turns(text))``, made from ``labels.turn_lists``."""
    speakers, starts, ends, times = turn_lists(text)
    n = len(speakers)
    return {C.DOC_ID: [doc_id] * n, C.TURN: list(range(n)), C.SPEAKER: speakers,
            C.START: starts, C.END: ends, C.TIME_START: times, C.TIME_END: [math.nan] * n,
            C.UNIT_KEY: [""] * n}


def read_file(path: Path | str, *, text_column: str = "text", id_column: str = "id",
              doc_id: str | None = None) -> Ingested:
    """Read one input file into a document and its speaker turns.

    Args:
        path: A .txt, .md, .docx, .vtt, .srt or .csv file. The file is only read.
        text_column: CSV only: the column with the response text.
        id_column: CSV only: the id column (row number when absent).
        doc_id: The document id (default: the file stem; see ``assign_doc_ids``).

    Returns:
        ``Ingested(documents, turns, warnings)``: ``documents`` has one row with
        ``columns.DOCUMENT_COLUMNS`` (``lang`` is ``""``; ``ingest`` fills it),
        ``turns`` has ``columns.TURN_COLUMNS`` (+ CSV attribute columns) and
        ``text[start:end]`` of each turn is its content.

    Raises:
        InputError: Unknown suffix, unreadable, empty, binary or malformed file.
    """
    parts = read_parts(path, text_column=text_column, id_column=id_column, doc_id=doc_id)
    return Ingested(pd.DataFrame([parts.document], columns=C.DOCUMENT_COLUMNS),
                    turns_frame(parts.turns), parts.warnings)


def turns_frame(turns: dict[str, list]) -> pd.DataFrame:
    """A turns table of ``FileParts.turns`` columns (CSV attributes keep their order)."""
    return pd.DataFrame(turns)


def read_parts(path: Path | str, *, text_column: str = "text", id_column: str = "id",
               doc_id: str | None = None) -> FileParts:
    """``read_file`` without the DataFrames: the same values and errors as plain columns.

    A run reads hundreds of files; building two small DataFrames per file cost more
    than parsing it, so ``read_files`` collects these and builds one table per batch.
    """
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if f".{fmt}" not in SUPPORTED_SUFFIXES:
        raise InputError(path, f"unsupported file type {path.suffix or '(no suffix)'!r}; "
                               f"expected one of {', '.join(SUPPORTED_SUFFIXES)}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(path, f"cannot read file ({exc.strerror})") from None
    if not data.strip():
        raise InputError(path, "empty file")
    doc_id = path.stem if doc_id is None else doc_id
    warnings: list[str] = []
    if fmt == "docx":
        encoding = "docx"  # zipped XML: there is no text encoding to detect
        text, forced = _docx_text(data, path)
        turns = turn_columns(doc_id, split_turns(text, forced))
    else:
        text, encoding = decode_bytes(data, path)
        if not text.strip():
            raise InputError(path, "empty file")
        if fmt in ("txt", "md"):
            turns = text_turn_columns(doc_id, text)
        elif fmt in ("vtt", "srt"):
            cues, warnings = (parse_vtt if fmt == "vtt" else parse_srt)(text, path)
            text, found = build_document(cues)
            turns = turn_columns(doc_id, found)
        else:
            text, turns, warnings = csv_document(text, path, doc_id, text_column=text_column,
                                                 id_column=id_column)
    if not text.strip() or not turns[C.TURN]:
        raise InputError(path, "empty file (no text)")
    document = {C.DOC_ID: doc_id, C.PATH: str(path), C.FORMAT: fmt, C.ENCODING: encoding,
                C.LANG: "", C.N_CHARS: len(text), C.SHA256: hashlib.sha256(data).hexdigest(),
                C.TEXT: text}
    return FileParts(document, turns, warnings)
