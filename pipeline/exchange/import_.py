"""REFI-QDA project -> codebook YAML, UTF-8 texts and a human codings table.

The conversion (:func:`convert`) is pure; :func:`import_refi` reads the file through
``qdpx_io``, converts, and only then writes, so a refused or broken file leaves
nothing half-written. Offsets in the codings table index the written texts, which
are normalised like ingest does (NFC, LF), so ``qcode code DIR/raw`` segments the
same strings the human coded.
"""
from __future__ import annotations

import io
import logging
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from pipeline import columns as C
from pipeline.codebook import REQUIRED_CODES
from pipeline.errors import ExchangeError
from pipeline.exchange import qdpx_io
from pipeline.exchange.model import QCode, QProject, make_guid, split_description, walk_codes
from pipeline.exchange.xml_read import codebook_from_xml, local, project_from_xml
from pipeline.exchange.text import (
    CODEPOINT, OFFSET_UNITS, UTF16, decode_source, normalize_text, units_to_codepoints, utf16_length,
)

log = logging.getLogger(__name__)
CODING_TABLE_COLUMNS = [C.DOC_ID, C.START, C.END, C.TEXT, C.CODE_ID, C.CODE_NAME, C.CODER]
_ID_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")
_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@dataclass
class ImportResult:
    """What an import produced (also what :func:`import_refi` wrote)."""

    codebook_yaml: str
    texts: dict[str, str]                 # doc_id -> normalised text
    codings: pd.DataFrame                 # CODING_TABLE_COLUMNS
    code_ids: dict[str, str]              # normalised GUID -> code id
    offsets: str = CODEPOINT
    warnings: list[str] = field(default_factory=list)
    gold: pd.DataFrame | None = None      # wide gold table when segments were given


# ------------------------------------------------------------------- code ids
def slug(name: str) -> str:
    """A code-id part from a name: ASCII, lower case, ``[a-z][a-z0-9_]*``."""
    ascii_ = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    s = re.sub(r"[^a-z0-9]+", "_", ascii_.lower()).strip("_")
    if not s:
        return "code"
    return s if s[0].isalpha() else f"c_{s}"


def _reference_index(reference: Any) -> tuple[dict[str, str], dict[str, str]]:
    by_guid, by_name = {}, {}
    for cid, code in reference.codes.items():
        if getattr(code, "guid", None):
            by_guid[code.guid.strip("{}").lower()] = cid
        by_name.setdefault(cid.casefold(), cid)
        for label in (code.label or {}).values():
            by_name.setdefault(label.casefold(), cid)
    return by_guid, by_name


def _tagged_id(code: QCode, parent: QCode | None, ids: dict[str, str],
               reference: Any) -> str | None:
    """The ``qcode-id`` a code exported by qcode carries, when it fits where it is."""
    cid = split_description(code.description)[1].get("id", "")
    if not _ID_RE.match(cid):
        return None
    if reference is not None and cid not in reference.codes:
        return None
    expected_parent = cid.rsplit(".", 1)[0] if "." in cid else None
    actual_parent = ids.get(parent.guid) if parent is not None else None
    return cid if expected_parent == actual_parent else None


def assign_code_ids(codes: list[QCode], reference: Any = None) -> dict[str, str]:
    """Map every code GUID to a code id.

    With a ``reference`` codebook, a code whose GUID (or name, matched against ids
    and labels) is known there keeps that id, so imported gold lines up with the
    auto-coding. Others get ``<parent id>.<slug of name>``, made unique.
    """
    by_guid, by_name = _reference_index(reference) if reference is not None else ({}, {})
    ids: dict[str, str] = {}
    used: set[str] = set()
    if reference is not None:
        # Codes exported by us carry GUIDs derived from their ids.
        for cid in reference.codes:
            by_guid.setdefault(make_guid("code", cid), cid)
    for code, parent in walk_codes(codes):
        cid = by_guid.get(code.guid) or _tagged_id(code, parent, ids, reference) \
            or by_name.get(code.name.casefold())
        if cid is None or cid in used:
            base = slug(code.name) if parent is None else f"{ids[parent.guid]}.{slug(code.name)}"
            cid, n = base, 1
            while cid in used or (reference is not None and cid in reference.codes):
                n += 1
                cid = f"{base}_{n}"
        ids[code.guid] = cid
        used.add(cid)
    return ids


def _color(value: str | None) -> str | None:
    if not value:
        return None
    v = value.strip().lstrip("#")
    if re.fullmatch(r"[0-9A-Fa-f]{3}", v):
        v = "".join(ch * 2 for ch in v)
    return f"#{v.upper()}" if re.fullmatch(r"[0-9A-Fa-f]{6}", v) else None


def codebook_document(project: QProject, ids: dict[str, str], reference: Any = None,
                      name: str = "") -> dict[str, Any]:
    """The codebook YAML document (a dict) of an imported project.

    Without a reference every imported code is written with its name as label in
    both languages and its description as definition. With one, every reference
    code is written (so the required codes are there and the file validates),
    imported descriptions fill empty definitions, and imported codes the reference
    lacks are added under their parents. Rules are not written: gold has no rules.
    """
    entries: dict[str, dict[str, Any]] = {}
    if reference is not None:
        for cid, code in reference.codes.items():
            entries[cid] = {"id": cid, "kind": code.kind, "label": dict(code.label),
                            "color": code.color, "guid": code.guid,
                            "definition": code.definition}
    for code, _ in walk_codes(project.codes):
        cid = ids[code.guid]
        text, tags = split_description(code.description)
        label = {"nl": tags.get("label-nl") or code.name, "en": tags.get("label-en") or code.name}
        kind = tags.get("kind") if tags.get("kind") in ("theme", "facet") else "theme"
        entry = entries.setdefault(cid, {"id": cid, "kind": kind, "label": label,
                                         "definition": text or code.name})
        entry["guid"] = code.guid if _UUID_RE.match(code.guid) else entry.get("guid")
        entry["color"] = entry.get("color") or _color(code.color)
        if text and not entry.get("definition"):
            entry["definition"] = text
    roots: list[dict[str, Any]] = []
    nodes: dict[str, dict[str, Any]] = {}
    for cid, entry in entries.items():
        node = {k: v for k, v in entry.items() if v not in (None, "", {})}
        nodes[cid] = node
        parent = cid.rsplit(".", 1)[0] if "." in cid else None
        (nodes[parent].setdefault("children", []) if parent in nodes else roots).append(node)
    settings: dict[str, Any] = {"default_lang": "nl", "languages": ["nl", "en"]}
    if reference is not None:
        settings = {"default_lang": reference.settings.default_lang,
                    "languages": list(reference.settings.languages)}
    if any(code_id not in entries for code_id in REQUIRED_CODES):
        # Another study's codebook: it cannot be held to this study's required codes.
        settings["required_codes"] = []
    return {"version": 1, "name": name or project.name or "Imported codebook",
            "description": f"Imported from {project.origin or 'a REFI-QDA file'}",
            "settings": settings, "codes": roots}


# ------------------------------------------------------------------- sources
def safe_doc_id(name: str, used: set[str]) -> str:
    """A file-stem doc id from a source name: no folders, no odd characters, unique."""
    stem = name.replace("\\", "/").rsplit("/", 1)[-1]
    stem = re.sub(r"\.(txt|docx?|rtf|pdf|odt|md)$", "", stem, flags=re.I)
    stem = re.sub(r"[^\w\- ]+", "_", unicodedata.normalize("NFC", stem)).strip(" ._") or "source"
    doc_id, n = stem, 1
    while doc_id.casefold() in used:
        n += 1
        doc_id = f"{stem}_{n}"
    used.add(doc_id.casefold())
    return doc_id


def choose_offsets(project: QProject, originals: dict[str, str], requested: str,
                   warn) -> str:
    """Decide the offset unit: as requested, else NVivo -> UTF-16, else code points.

    With ``auto``, selections that only fit the UTF-16 length of their text also
    switch to UTF-16 (tools that do not say they are NVivo but count like it).
    """
    if requested in OFFSET_UNITS:
        return requested
    if "nvivo" in project.origin.lower():
        return UTF16
    for src in project.sources:
        text = originals.get(src.guid)
        if text is None:
            continue
        if any(sel.end > len(text) for sel in src.selections) and all(
                sel.end <= utf16_length(text) for sel in src.selections):
            warn(f"source {src.name!r}: offsets exceed the text length in code points but fit "
                 "UTF-16 units; reading all offsets as UTF-16 (NVivo style)")
            return UTF16
    return CODEPOINT


def convert(project: QProject, originals: dict[str, str | None], *, offsets: str = "auto",
            reference: Any = None, warn=None) -> ImportResult:
    """Convert a parsed project and its decoded source texts (by GUID) to tables."""
    warnings: list[str] = []

    def _warn(msg: str) -> None:
        warnings.append(msg)
        if warn:
            warn(msg)

    ids = assign_code_ids(project.codes, reference)
    names = {code.guid: code.name for code, _ in walk_codes(project.codes)}
    codable = {code.guid: code.codable for code, _ in walk_codes(project.codes)}
    present = {g: t for g, t in originals.items() if t is not None}
    unit = choose_offsets(project, present, offsets, _warn)
    texts: dict[str, str] = {}
    rows: list[dict[str, Any]] = []
    used: set[str] = set()
    skipped_empty = 0
    for src in project.sources:
        original = originals.get(src.guid)
        if original is None:
            _warn(f"source {src.name!r}: no text (not a plain-text source or file missing); skipped"
                  + (f" with {len(src.selections)} selections" if src.selections else ""))
            continue
        doc_id = safe_doc_id(src.name, used)
        norm = normalize_text(original)
        texts[doc_id] = norm.text
        for sel in src.selections:
            if not sel.codings:
                skipped_empty += 1
                continue
            a, b = units_to_codepoints(original, [sel.start, sel.end], unit)
            if max(sel.start, sel.end) > (utf16_length(original) if unit == UTF16 else len(original)):
                _warn(f"source {src.name!r}: selection {sel.start}-{sel.end} is beyond the text "
                      f"end; clipped")
            start, end = norm.map(a), norm.map(b)
            for coding in sel.codings:
                if coding.code_guid not in ids:
                    _warn(f"source {src.name!r}: coding refers to unknown code {coding.code_guid}; "
                          "skipped")
                    continue
                if not codable.get(coding.code_guid, True):
                    _warn(f"code {names[coding.code_guid]!r} is marked not codable but has codings; "
                          "kept")
                    codable[coding.code_guid] = True   # warn once
                user = coding.user_guid or sel.user_guid or ""
                rows.append({C.DOC_ID: doc_id, C.START: start, C.END: end,
                             C.TEXT: norm.text[start:end], C.CODE_ID: ids[coding.code_guid],
                             C.CODE_NAME: names[coding.code_guid],
                             C.CODER: project.users.get(user, "") or "unknown"})
    if skipped_empty:
        log.info("%d selections without codings skipped", skipped_empty)
    codings = pd.DataFrame(rows, columns=CODING_TABLE_COLUMNS)
    if len(codings):
        codings = (codings.drop_duplicates([C.DOC_ID, C.START, C.END, C.CODE_ID, C.CODER])
                   .sort_values([C.DOC_ID, C.START, C.END, C.CODE_ID, C.CODER], kind="stable")
                   .reset_index(drop=True))
    for col in (C.START, C.END):
        codings[col] = codings[col].astype("int64")
    doc = codebook_document(project, ids, reference)
    text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100)
    return ImportResult(codebook_yaml=text, texts=texts, codings=codings, code_ids=ids,
                        offsets=unit, warnings=warnings)


def gold_wide(codings: pd.DataFrame, segments: pd.DataFrame, code_ids: list[str] | None = None,
              *, doc_ids: list[str] | None = None, coder: str | None = None) -> pd.DataFrame:
    """Gold in the wide format of ``qcode agreement``: ``segment_id`` + 0/1 per code.

    A segment gets a code when a selection with that code overlaps it by at least
    one non-space character. Only segments of imported documents (and, when the
    segments table has ``coded``, coded ones) are listed: those the human saw.
    """
    docs = set(doc_ids) if doc_ids is not None else set(codings[C.DOC_ID])
    segs = segments[segments[C.DOC_ID].astype(str).isin(docs)]
    if C.CODED in segs.columns:
        segs = segs[segs[C.CODED].astype(bool)]
    if coder is not None:
        codings = codings[codings[C.CODER] == coder]
    codes = list(code_ids) if code_ids is not None else sorted(set(codings[C.CODE_ID]))
    out = pd.DataFrame(0, index=pd.Index(segs[C.SEGMENT_ID].astype(str), name=C.SEGMENT_ID),
                       columns=codes, dtype="int64")
    by_doc = {d: g for d, g in codings.groupby(C.DOC_ID)}
    for seg in segs.itertuples(index=False):
        rec = seg._asdict()
        doc_codings = by_doc.get(str(rec[C.DOC_ID]))
        if doc_codings is None:
            continue
        s, e = int(rec[C.START]), int(rec[C.END])
        text = str(rec.get(C.TEXT, ""))
        for c in doc_codings.itertuples(index=False):
            lo, hi = max(s, int(c.start)), min(e, int(c.end))
            if hi > lo and (not text or text[lo - s:hi - s].strip()) and c.code_id in out.columns:
                out.loc[str(rec[C.SEGMENT_ID]), c.code_id] = 1
    return out.reset_index()


# ------------------------------------------------------------------- file I/O
def read_refi(path: Path, limits: qdpx_io.Limits | None = None, warn=None
              ) -> tuple[QProject, dict[str, str | None]]:
    """Read a ``.qdpx`` (or ``.qdc`` / bare ``.qde``) into a project and decoded texts."""
    path = Path(path)
    warn = warn or (lambda m: None)
    if path.suffix.lower() in (".qdc", ".qde", ".xml"):
        root = qdpx_io.parse_xml(qdpx_io.read_file_limited(path, limits), str(path))
        return _project_from_root(root, path, lambda m: warn(f"{path}: {m}")), {}
    with qdpx_io.Archive(path, limits) as archive:
        member = archive.project_member()
        where = f"{path}:{member}"
        root = qdpx_io.parse_xml(archive.read(member), where)
        project = _project_from_root(root, path, lambda m: warn(f"{where}: {m}"))
        originals: dict[str, str | None] = {}
        for src in project.sources:
            originals[src.guid] = _source_text(archive, src, path)
    return project, originals


def _project_from_root(root, path: Path, warn) -> QProject:
    kind = local(root.tag)
    if kind == "Project":
        return project_from_xml(root, warn)
    if kind == "CodeBook":
        return codebook_from_xml(root, warn)
    raise ExchangeError(f"{path}: root element <{kind}> is neither <Project> nor <CodeBook>")


def _source_text(archive: qdpx_io.Archive, src, path: Path) -> str | None:
    if src.path:
        scheme, _, rest = src.path.partition("://")
        if scheme.lower() != "internal":
            return src.text   # relative:// or absolute:// point outside the archive: never read
        if qdpx_io.safe_member_name(rest) is None:
            raise ExchangeError(f"{path}: refused: source {src.name!r} path {src.path!r} points "
                                "outside the archive (zip-slip)")
        member = archive.find(f"sources/{rest}") or archive.find(rest)
        if member is not None:
            return decode_source(archive.read(member))[0]
    return src.text


def import_refi(path: Path, out_dir: Path, *, offsets: str = "auto", reference: Any = None,
                segments: pd.DataFrame | None = None, limits: qdpx_io.Limits | None = None,
                force: bool = False) -> ImportResult:
    """Import a ``.qdpx``/``.qdc`` into ``out_dir`` (codebook.yaml, raw/, codings.csv).

    With ``segments`` (a run's segments table) also writes ``gold.csv`` in the wide
    format ``qcode agreement`` reads. Everything is parsed and checked before the
    first byte is written.

    Raises:
        ExchangeError: unreadable or hostile file, or a non-empty ``out_dir``
            without ``force``.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not force:
        raise ExchangeError(f"{out_dir}: output folder is not empty (use --force to overwrite)")
    project, originals = read_refi(path, limits, warn=log.warning)
    result = convert(project, originals, offsets=offsets, reference=reference,
                     warn=lambda m: log.warning("%s: %s", path, m))
    files = {"codebook.yaml": result.codebook_yaml.encode("utf-8")}
    if originals or project.sources:
        files.update({f"raw/{doc}.txt": text.encode("utf-8") for doc, text in result.texts.items()})
        files["codings.csv"] = _csv(result.codings)
    if segments is not None:
        result.gold = gold_wide(result.codings, segments,
                                list(reference.codes) if reference is not None else None,
                                doc_ids=list(result.texts))
        files["gold.csv"] = _csv(result.gold)
    qdpx_io.write_tree(out_dir, files)
    return result


def _csv(df: pd.DataFrame) -> bytes:
    buf = io.StringIO()
    df.to_csv(buf, index=False, lineterminator="\n")
    return buf.getvalue().encode("utf-8")
