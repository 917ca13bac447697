"""A whole run's inputs → documents, turns and an errors table."""
from __future__ import annotations

from pathlib import Path
from collections.abc import Sequence
from typing import Callable, NamedTuple

import pandas as pd

from pipeline import columns as C
from pipeline.errors import InputError, UsageError

from .files import METADATA_NAME, assign_doc_ids, canonical_doc_id, discover, read_file
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


def _display(path: Path, root: Path | None) -> str:
    """Path relative to the input folder it was found in, else as given."""
    if root is not None:
        try:
            return path.relative_to(root).as_posix()
        except ValueError:
            pass
    return path.as_posix()


def _find_metadata(inputs: list[Path]) -> list[Path]:
    found = []
    for given in inputs:
        candidate = given / METADATA_NAME if given.is_dir() else given
        if candidate.name.lower() == METADATA_NAME and candidate.is_file():
            found.append(candidate)
    return found


def _load_metadata(paths: list[Path]) -> tuple[pd.DataFrame | None, str]:
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

    meta_paths = [Path(metadata)] if metadata is not None else _find_metadata(inputs)
    meta, meta_name = _load_metadata(meta_paths)

    roots = {p.resolve(): p for p in inputs if p.is_dir()}
    files = discover(inputs)
    docs: list[pd.DataFrame] = []
    turns: list[pd.DataFrame] = []
    seen: dict[str, str] = {}
    failed: set[str] = set()
    file_roots = [next((roots[r] for r in _parents(path) if r in roots), None) for path in files]
    all_shown = [_display(path, root) for path, root in zip(files, file_roots)]
    doc_ids, id_warnings = assign_doc_ids(files, all_shown, [r is not None for r in file_roots])
    for i, path in enumerate(files):
        if progress is not None:
            progress(i, len(files), path)
        shown, doc_id = all_shown[i], doc_ids[i]
        if id_warnings[i]:
            report(shown, "warning", id_warnings[i])
        try:
            got = read_file(path, text_column=text_column, id_column=id_column, doc_id=doc_id)
        except InputError as exc:
            report(shown, "error", str(exc))
            failed.add(doc_id)
            continue
        if doc_id in seen:
            report(shown, "error", f"{path}: duplicate {C.DOC_ID} {doc_id!r} (already read from "
                                   f"{seen[doc_id]}); file skipped")
            continue
        seen[doc_id] = shown
        for warning in got.warnings:
            report(shown, "warning", warning)
        got.documents[C.PATH] = shown
        docs.append(got.documents)
        turns.append(got.turns)

    documents = (pd.concat(docs, ignore_index=True) if docs
                 else pd.DataFrame(columns=C.DOCUMENT_COLUMNS))
    documents = _join_metadata(documents, meta, meta_name, failed, report)
    documents[C.LANG] = _languages(documents, meta, forced, default, report, detect=detect,
                                   languages=languages)
    documents = documents.sort_values(C.DOC_ID, kind="stable").reset_index(drop=True)
    documents[C.N_CHARS] = documents[C.N_CHARS].astype("int64")

    table = (pd.concat(turns, ignore_index=True) if turns
             else pd.DataFrame(columns=C.TURN_COLUMNS))
    extra = [c for c in table.columns if c not in C.TURN_COLUMNS]
    table[extra] = table[extra].fillna("")
    for col in (C.TURN, C.START, C.END):
        table[col] = table[col].astype("int64")
    for col in (C.TIME_START, C.TIME_END):
        table[col] = table[col].astype("float64")
    table = table.sort_values([C.DOC_ID, C.TURN], kind="stable").reset_index(drop=True)
    return IngestResult(documents, table, pd.DataFrame(errors, columns=C.ERROR_COLUMNS))


def _parents(path: Path) -> list[Path]:
    resolved = path.resolve()
    return [resolved, *resolved.parents]


def _join_metadata(documents: pd.DataFrame, meta: pd.DataFrame | None, meta_name: str,
                   failed: set[str], report: Callable[[str, str, str], None]) -> pd.DataFrame:
    if meta is None:
        return documents
    attributes = meta.drop(columns=[c for c in meta.columns if c == C.LANG])
    renames = {c: f"{c}_meta" for c in attributes.columns
               if c != C.DOC_ID and c in C.DOCUMENT_COLUMNS}
    for old, new in renames.items():
        report(meta_name, "warning", f"{meta_name}: column {old!r} is a reserved name; "
                                     f"kept as {new!r}")
    attributes = attributes.rename(columns=renames)
    known = set(meta[C.DOC_ID])
    for doc_id, shown in zip(documents[C.DOC_ID], documents[C.PATH]):
        if doc_id not in known:
            report(shown, "warning", f"no metadata for {C.DOC_ID} {doc_id!r} in {meta_name}")
    present = set(documents[C.DOC_ID])
    for doc_id in meta[C.DOC_ID]:
        if doc_id not in present and doc_id not in failed:
            report(meta_name, "warning", f"{meta_name}: metadata for {C.DOC_ID} {doc_id!r} "
                                         "but no such document was read")
    joined = documents.merge(attributes, on=C.DOC_ID, how="left", validate="one_to_one")
    extra = [c for c in attributes.columns if c != C.DOC_ID]
    joined[extra] = joined[extra].fillna("").astype(str)
    return joined


def _languages(documents: pd.DataFrame, meta: pd.DataFrame | None, forced: str | None,
               default: str, report: Callable[[str, str, str], None], *, detect: bool = False,
               languages: Sequence[str] = ("nl", "en")) -> list[str]:
    if forced is not None:
        return [forced] * len(documents)
    column = None
    if meta is not None:
        column = next((c for c in (C.LANG, "language") if c in meta.columns), None)
    wanted = dict(zip(meta[C.DOC_ID], meta[column])) if column is not None else {}
    result = []
    for doc_id, shown, text in zip(documents[C.DOC_ID], documents[C.PATH], documents[C.TEXT]):
        value = str(wanted.get(doc_id, "") or "").strip()
        if not value:
            code = _detect(text, languages, default) if detect else default
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


def _detect(text: object, languages: Sequence[str], default: str) -> str:
    from pipeline.langid import detect_language

    candidates = [lang for lang in dict.fromkeys(languages) if normalise_lang(lang)]
    if default not in candidates:
        candidates.append(default)
    return detect_language(text if isinstance(text, str) else "", candidates, default)
