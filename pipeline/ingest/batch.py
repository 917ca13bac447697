"""A whole run's inputs → documents, turns and an errors table."""
from __future__ import annotations

from pathlib import Path
from collections.abc import Sequence
from typing import Callable, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
from pandas.arrays import ArrowStringArray

from pipeline import columns as C
from pipeline.errors import InputError, PipelineError, UsageError

from .files import METADATA_NAME, assign_doc_ids, canonical_doc_id, discover, read_parts
from .paths import display, file_roots, parents  # noqa: F401 - re-exported
from .tables import read_metadata

STAGE = "ingest"
_LANGS = {
    "nl": "nl", "nl-nl": "nl", "nl-be": "nl", "nld": "nl", "dut": "nl", "dutch": "nl",
    "nederlands": "nl", "vlaams": "nl", "flemish": "nl",
    "en": "en", "en-gb": "en", "en-us": "en", "eng": "en", "english": "en", "engels": "en",
}


class IngestResult(NamedTuple):
    """Documents (sorted by doc_id), turns (by doc_id, turn) and error/warning rows."""

    documents: pd.DataFrame
    turns: pd.DataFrame
    errors: pd.DataFrame


def normalise_lang(value: object) -> str | None:
    """Map a language name or tag to ``"nl"``/``"en"``; None when unknown.

    Accepts nl, nl-NL, nl_BE, Dutch, Nederlands, Vlaams, Flemish, en, en-GB,
    English, Engels (case-insensitive).
    """
    return _LANGS.get(str(value).strip().lower().replace("_", "-"))


def find_metadata(inputs: list[Path]) -> list[Path]:
    """The ``metadata.csv`` files among the inputs (in an input folder, or given as a file)."""
    found = []
    for given in inputs:
        candidate = given / METADATA_NAME if given.is_dir() else given
        if candidate.name.lower() == METADATA_NAME and candidate.is_file():
            found.append(candidate)
    return found


def load_metadata(paths: list[Path]) -> tuple[pd.DataFrame | None, str]:
    """Read and merge metadata files; returns (table or None, the files' names joined by " + ").

    Raises:
        InputError: a doc_id is listed in more than one of the files (or twice in one).
    """
    if not paths:
        return None, ""
    tables = [read_metadata(p) for p in paths]
    merged = pd.concat(tables, ignore_index=True).fillna("")
    # A document whose stem is shared is "school_a__interview"; "school_a/interview.txt" too.
    merged[C.DOC_ID] = merged[C.DOC_ID].map(canonical_doc_id)
    dupes = merged[C.DOC_ID][merged[C.DOC_ID].duplicated()]
    if not dupes.empty:
        raise InputError(" + ".join(map(str, paths)),
                         f"duplicate {C.DOC_ID} {dupes.iloc[0]!r} across metadata files")
    return merged, " + ".join(p.as_posix() for p in paths)


def shared_csv_keys(files: Sequence[Path], *, text_column: str = "text",
                    id_column: str = "id") -> frozenset[str]:
    """CSV id values that more than one of ``files`` uses (read before any chunk runs).

    Two survey exports that both number their rows 1, 2, ... give clashing segment
    ids; a streaming run must prefix them in every chunk, not only where both files
    happen to share a chunk. A file that cannot be read is skipped here (the run
    reports it when it reads the file).
    """
    csvs = [p for p in map(Path, files) if p.suffix.lower() == ".csv"]
    if len(csvs) < 2:
        return frozenset()
    users: dict[str, int] = {}
    for path in csvs:
        try:
            turns = read_parts(path, text_column=text_column, id_column=id_column).turns
        except PipelineError:
            continue
        for key in set(map(str, turns[C.UNIT_KEY])) - {""}:
            users[key] = users.get(key, 0) + 1
    return frozenset(k for k, n in users.items() if n > 1)


class FilesRead(NamedTuple):
    """What ``read_files`` read: one documents and one turns table of every file read."""

    documents: pd.DataFrame  # DOCUMENT_COLUMNS, in path order; ``path`` as shown
    turns: pd.DataFrame      # ``turns_table``: typed, sorted by document and turn
    read: dict[str, int]     # doc_id → index in ``paths`` of the file it was read from
    failed: list[str]        # doc ids of files that could not be read


def read_files(paths: Sequence[Path | str], doc_ids: Sequence[str], shown: Sequence[str],
               id_warnings: Sequence[str], *, text_column: str, id_column: str,
               report: Callable[[int, str, str, str], None],
               progress: Callable[[int, int, Path], None] | None = None) -> FilesRead:
    """Read files one by one; a bad file or a repeated doc_id becomes an error row.

    Args:
        paths: The files, in path order.
        doc_ids: Their doc ids (``assign_doc_ids``).
        shown: Their paths as shown in outputs (set as the documents' ``path``).
        id_warnings: ``assign_doc_ids``'s warnings ("" for none), reported first.
        text_column: CSV text column.
        id_column: CSV id column.
        report: Called as ``report(i, file, severity, message)`` for file ``paths[i]``.
        progress: Called as ``progress(i, n, path)`` before reading each file.
    """
    # Values are gathered as plain lists and become one DataFrame per table at the end:
    # per-file frames and their concatenation cost more than reading the files.
    docs: dict[str, list] = {c: [] for c in C.DOCUMENT_COLUMNS}
    turns: dict[str, list] = {c: [] for c in C.TURN_COLUMNS}
    read: dict[str, int] = {}
    failed: list[str] = []
    for i, path in enumerate(paths):
        if progress is not None:
            progress(i, len(paths), path)
        doc_id = doc_ids[i]
        if id_warnings[i]:
            report(i, shown[i], "warning", id_warnings[i])
        try:
            got = read_parts(Path(path), text_column=text_column, id_column=id_column,
                             doc_id=doc_id)
        except InputError as exc:
            report(i, shown[i], "error", str(exc))
            failed.append(doc_id)
            continue
        if doc_id in read:
            report(i, shown[i], "error", f"{Path(path)}: duplicate {C.DOC_ID} {doc_id!r} (already "
                                         f"read from {shown[read[doc_id]]}); file skipped")
            continue
        read[doc_id] = i
        for warning in got.warnings:
            report(i, shown[i], "warning", warning)
        for col, values in docs.items():
            values.append(shown[i] if col == C.PATH else got.document[col])
        _extend_turns(turns, got.turns)
    documents = pd.DataFrame(docs) if read else pd.DataFrame(columns=C.DOCUMENT_COLUMNS)
    # Each file's turns are numbered up from 0, so with the files in doc_id order (as a
    # streaming chunk reads them) the table is sorted already.
    ids = docs[C.DOC_ID]
    in_order = all(a < b for a, b in zip(ids, ids[1:]))
    return FilesRead(documents, turns_table(turns if read else None, presorted=in_order),
                     read, failed)


def _extend_turns(turns: dict[str, list], more: dict[str, list]) -> None:
    """Append a file's turn columns; attribute columns one side lacks are "" there.

    Columns keep the order in which they first appear, as concatenating the files'
    tables one by one would give.
    """
    n_before = len(turns[C.TURN])
    n_more = len(more[C.TURN])
    for col, values in more.items():
        column = turns.get(col)
        if column is None:
            column = turns[col] = [""] * n_before
        column.extend(values)
    for col, column in turns.items():
        if col not in more:
            column.extend([""] * n_more)


def ingest(inputs: list[Path | str] | Path | str, *, metadata: Path | str | None = None,
           text_column: str = "text", id_column: str = "id", default_lang: str = "nl",
           lang: str | None = None, detect: bool = False,
           languages: Sequence[str] = ("nl", "en"),
           progress: Callable[[int, int, Path], None] | None = None) -> IngestResult:
    """Read every input file; bad files become error rows and the batch goes on.

    Args:
        inputs: Files and/or folders (see ``discover``).
        metadata: A metadata CSV (``doc_id`` + attributes). When None, a
            ``metadata.csv`` in an input folder (or given as an input) is used.
        text_column: CSV text column.
        id_column: CSV id column.
        default_lang: Language of documents without one in the metadata.
        lang: Language of every document, overriding the metadata.
        detect: When neither ``lang`` nor the metadata gives a document's
            language, detect it from its text (``langid.detect_language`` over
            ``languages``, ``default_lang`` without evidence); a warning row when
            the result differs from ``default_lang``.
        languages: Candidate languages for ``detect`` (the codebook's).
        progress: Called as ``progress(i, n, path)`` before reading each file.

    Returns:
        ``IngestResult(documents, turns, errors)``. Documents carry the metadata
        attributes as string columns. ``errors`` has ``columns.ERROR_COLUMNS``:
        severity "error" for a skipped file, "warning" for a problem in a file
        that was read (no metadata, metadata for a missing document, an unknown
        language, a detected language, a truncated subtitle file, file name stems
        shared by files in different folders: their doc_id is the path,
        ``school_a__interview``).

    Raises:
        UsageError: ``lang`` or ``default_lang`` is not a known language.
        InputError: An input does not exist, or the metadata file is unusable.
    """
    if isinstance(inputs, (str, Path)):
        inputs = [inputs]
    inputs = [Path(p) for p in inputs]
    default = normalise_lang(default_lang)
    if default is None:
        raise UsageError(f"unknown default language {default_lang!r}; use nl or en")
    forced = None
    if lang is not None:
        forced = normalise_lang(lang)
        if forced is None:
            raise UsageError(f"unknown language {lang!r}; use nl or en")
    errors: list[dict] = []

    def report(file: str, severity: str, message: str) -> None:
        errors.append({C.ERROR_FILE: file, C.ERROR_STAGE: STAGE, C.ERROR_SEVERITY: severity,
                       C.ERROR_MESSAGE: message})

    meta_paths = [Path(metadata)] if metadata is not None else find_metadata(inputs)
    meta, meta_name = load_metadata(meta_paths)

    roots = {p.resolve(): p for p in inputs if p.is_dir()}
    files = discover(inputs)
    found_in = file_roots(files, roots)
    all_shown = [display(path, root) for path, root in zip(files, found_in)]
    doc_ids, id_warnings = assign_doc_ids(files, all_shown, [r is not None for r in found_in])
    documents, table, _, read_failed = read_files(
        files, doc_ids, all_shown, id_warnings, text_column=text_column, id_column=id_column,
        report=lambda _i, file, severity, message: report(file, severity, message),
        progress=progress)
    failed = set(read_failed)

    documents = join_metadata(documents, meta, meta_name, failed, report)
    documents[C.LANG] = document_languages(documents, meta, forced, default, report,
                                           detect=detect, languages=languages)
    documents = documents.sort_values(C.DOC_ID, kind="stable").reset_index(drop=True)
    documents[C.N_CHARS] = documents[C.N_CHARS].astype("int64")
    return IngestResult(documents, table, pd.DataFrame(errors, columns=C.ERROR_COLUMNS))


def turns_table(turns: dict[str, list] | None, *, presorted: bool = False) -> pd.DataFrame:
    """One typed turns table of turn columns (``read_files``), sorted by document and turn.

    Args:
        turns: ``columns.TURN_COLUMNS`` then attribute columns → equally long lists;
            None when no file was read.
        presorted: The rows are in (doc_id, turn) order already (no sort needed).
    """
    if turns is None:
        table = pd.DataFrame(columns=C.TURN_COLUMNS)
        for col in (C.TURN, C.START, C.END):
            table[col] = table[col].astype("int64")
        for col in (C.TIME_START, C.TIME_END):
            table[col] = table[col].astype("float64")
        return table.sort_values([C.DOC_ID, C.TURN], kind="stable").reset_index(drop=True)
    # numbers as typed arrays and strings as Arrow arrays: inferring them from lists
    # costs more than making them
    table = pd.DataFrame({col: np.array(values, dtype=_NUMBERS[col]) if col in _NUMBERS
                          else _strings(values) for col, values in turns.items()})
    if presorted:
        return table
    return table.sort_values([C.DOC_ID, C.TURN], kind="stable").reset_index(drop=True)


def _strings(values: list) -> object:
    """A column of only ``str`` values as the ``str`` dtype's Arrow array; else ``values``."""
    if values and set(map(type, values)) == {str}:  # the types gathered in C
        return ArrowStringArray(pa.array(values, type=pa.large_string()), dtype=_STR)
    return values


_STR = pd.StringDtype("pyarrow", na_value=np.nan)  # pandas' "str"
_NUMBERS = {C.TURN: np.int64, C.START: np.int64, C.END: np.int64, C.TIME_START: np.float64,
            C.TIME_END: np.float64}


def join_metadata(documents: pd.DataFrame, meta: pd.DataFrame | None, meta_name: str,
                   failed: set[str], report: Callable[[str, str, str], None]) -> pd.DataFrame:
    """Left-join the metadata attributes onto ``documents`` (string columns).

    Reports reserved column names (renamed ``<name>_meta``), documents without
    metadata and metadata rows for documents neither read nor in ``failed``.
    """
    if meta is None:
        return documents
    attributes = meta.drop(columns=[c for c in meta.columns if c == C.LANG])
    renames = {c: f"{c}_meta" for c in attributes.columns
               if c != C.DOC_ID and c in C.DOCUMENT_COLUMNS}
    for old, new in renames.items():
        report(meta_name, "warning", f"{meta_name}: column {old!r} is a reserved name; "
                                     f"kept as {new!r}")
    if renames:
        attributes = attributes.rename(columns=renames)
    known = set(meta[C.DOC_ID].tolist())
    doc_ids = documents[C.DOC_ID].tolist()
    for doc_id, shown in zip(doc_ids, documents[C.PATH].tolist()):
        if doc_id not in known:
            report(shown, "warning", f"no metadata for {C.DOC_ID} {doc_id!r} in {meta_name}")
    present = set(doc_ids)
    for doc_id in meta[C.DOC_ID].tolist():
        if doc_id not in present and doc_id not in failed:
            report(meta_name, "warning", f"{meta_name}: metadata for {C.DOC_ID} {doc_id!r} "
                                         "but no such document was read")
    extra = [c for c in attributes.columns if c != C.DOC_ID]
    joined = _take_join(documents, attributes, extra)
    if joined is None:
        joined = documents.merge(attributes, on=C.DOC_ID, how="left", validate="one_to_one")
    elif all(doc_id in known for doc_id in doc_ids) and not any(
            attributes[c].hasnans for c in extra):
        return joined  # str columns taken without a gap: nothing to fill or convert
    joined[extra] = joined[extra].fillna("").astype(str)
    return joined


def _take_join(documents: pd.DataFrame, attributes: pd.DataFrame,
               extra: list[str]) -> pd.DataFrame | None:
    """``documents.merge(attributes, on=doc_id, how="left")`` by a positional take.

    Used for what a run joins (unique string doc ids, string attribute columns whose
    names are new to ``documents``); None otherwise, and ``merge`` does it (and
    raises on duplicated ids). A left join then keeps the documents' rows and order,
    gives NaN where a document has no metadata, and a fresh RangeIndex.
    """
    ids, keys = documents[C.DOC_ID], attributes[C.DOC_ID]
    if (len(documents) == 0 or ids.dtype != "str" or keys.dtype != "str"
            or any(attributes[c].dtype != "str" or c in documents.columns for c in extra)
            or ids.duplicated().any() or keys.duplicated().any()):
        return None
    row_of = {key: row for row, key in enumerate(keys.tolist())}
    position = np.fromiter((row_of.get(doc_id, -1) for doc_id in ids.tolist()),
                           dtype=np.intp, count=len(ids))
    joined = documents.reset_index(drop=True)
    for col in extra:
        joined[col] = attributes[col].array.take(position, allow_fill=True)
    return joined


def document_languages(documents: pd.DataFrame, meta: pd.DataFrame | None, forced: str | None,
                       default: str, report: Callable[[str, str, str], None], *,
                       detect: bool = False,
                       languages: Sequence[str] = ("nl", "en")) -> list[str]:
    """Each document's language: ``forced``, else the metadata's, else detected/``default``."""
    if forced is not None:
        return [forced] * len(documents)
    column = None
    if meta is not None:
        column = next((c for c in (C.LANG, "language") if c in meta.columns), None)
    wanted = (dict(zip(meta[C.DOC_ID].tolist(), meta[column].tolist()))
              if column is not None else {})
    result = []
    formats = (documents[C.FORMAT].tolist() if C.FORMAT in documents.columns
               else [""] * len(documents))
    for doc_id, shown, text, fmt in zip(documents[C.DOC_ID].tolist(),
                                        documents[C.PATH].tolist(),
                                        documents[C.TEXT].tolist(), formats):
        value = str(wanted.get(doc_id, "") or "").strip()
        if not value:
            code = _detect(text, languages, default, fmt == "csv") if detect else default
            if code != default:
                report(shown, "warning", f"language of {doc_id} detected as {code} (no metadata)")
            result.append(code)
            continue
        code = normalise_lang(value)
        if code is None:
            report(shown, "warning", f"unknown language {value!r} for {C.DOC_ID} {doc_id!r}; "
                                     f"using {default!r}")
            code = default
        result.append(code)
    return result


def _detect(text: object, languages: Sequence[str], default: str, survey: bool) -> str:
    from pipeline.langid import detect_language

    candidates = [lang for lang in dict.fromkeys(languages) if normalise_lang(lang)]
    if default not in candidates:
        candidates.append(default)
    # a survey's answers (joined by blank lines) are counted one by one: segmenting
    # detects each answer's language again, from the same counts (``langid.remembering``)
    return detect_language(text if isinstance(text, str) else "", candidates, default,
                           pieces=survey)
