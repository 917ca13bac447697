"""Coded tables + codebook -> REFI-QDA project (pure), and the export entry points.

Every object gets a GUID derived with uuid5 from its identity (code id, doc id,
span, user), so exporting the same run twice gives byte-identical files and a QDA
tool that imports the second file recognises what it saw in the first.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline import __version__
from pipeline import columns as C
from pipeline.errors import ExchangeError
from pipeline.exchange import qdpx_io
from pipeline.exchange.model import (
    QCase, QCode, QProject, QSet, QSource, QVariable, codebook_to_xml, make_guid, norm_guid,
    project_to_xml, serialize, tag_description, write_project_xml,
)
from pipeline.exchange.selections import WHO, CodingRows, blank
from pipeline.exchange.text import CODEPOINT

ORIGIN = f"qcode {__version__}"
SPANS = ("segment", "evidence")


def code_guid(code: Any) -> str:
    """GUID of a codebook code: the one it carries (kept from an import), else derived."""
    return norm_guid(code.guid) if getattr(code, "guid", None) else make_guid("code", code.id)


def _label(code: Any, lang: str | None) -> str:
    labels = getattr(code, "label", {}) or {}
    for key in (lang, "nl", "en"):
        if key and labels.get(key):
            return labels[key]
    return code.id


def codes_from_codebook(codebook: Any, lang: str | None = None) -> list[QCode]:
    """Return the codebook as nested :class:`QCode` (names are labels in ``lang``)."""
    lang = lang or codebook.settings.default_lang
    nodes: dict[str, QCode] = {}
    roots: list[QCode] = []
    for code_id, code in codebook.codes.items():   # parents come before children
        labels = getattr(code, "label", {}) or {}
        tags = {"id": code_id, "kind": getattr(code, "kind", "") or "",
                "label-nl": labels.get("nl", ""), "label-en": labels.get("en", "")}
        node = QCode(guid=code_guid(code), name=_label(code, lang), codable=True,
                     description=tag_description(code.definition or "", tags), color=code.color)
        nodes[code_id] = node
        (nodes[code.parent].children if code.parent in nodes else roots).append(node)
    return roots


def family_sets(codebook: Any, lang: str | None = None) -> list[QSet]:
    """One set per top-level code with children: the code family."""
    lang = lang or codebook.settings.default_lang
    sets = []
    for top in codebook.top_level():
        members = [cid for cid, c in codebook.codes.items()
                   if cid == top or top in codebook.ancestors(cid)]
        if len(members) < 2:
            continue
        sets.append(QSet(guid=make_guid("set", top), name=f"{_label(codebook.codes[top], lang)} (family)",
                         description=f"Code family '{top}' of the qcode codebook.",
                         code_guids=[code_guid(codebook.codes[m]) for m in members]))
    return sets


FINAL_FILE = "final_codings"


def _attribute_columns(documents: pd.DataFrame) -> list[str]:
    return [c for c in documents.columns if c not in C.DOCUMENT_COLUMNS]


def build_project(documents: pd.DataFrame, segments: pd.DataFrame, codings: pd.DataFrame,
                  codebook: Any, *, name: str = "qcode", lang: str | None = None,
                  offsets: str = CODEPOINT, span: str = "segment",
                  ) -> tuple[QProject, dict[str, bytes]]:
    """Build the REFI-QDA project of a coding run.

    Args:
        documents: documents table with ``text``; attribute columns become variables.
        segments: segments table (the coded spans with ``span="segment"``).
        codings: codings table.
        codebook: the loaded ``Codebook`` the run used.
        name: project name.
        lang: label language for code names (default: the codebook's default).
        offsets: ``"codepoint"`` (REFI-QDA, QualCoder) or ``"utf16"`` (NVivo).
        span: ``"segment"`` codes the whole coding unit, ``"evidence"`` only the
            best evidence span of the coding.

    Returns:
        The project and the source files (``sources/<guid>.txt`` -> UTF-8 bytes).

    Raises:
        ExchangeError: a coding names a document or code that is not there.
    """
    project, texts, rows = _plan(documents, segments, codings, codebook, name=name, lang=lang,
                                 span=span)
    project.sources = list(rows.sources(offsets))
    files = {f"sources/{make_guid('source', doc)}.txt": text.encode("utf-8")
             for doc, text in texts.items()}
    return project, files


def _plan(documents: pd.DataFrame, segments: pd.DataFrame, codings: pd.DataFrame,
          codebook: Any, *, name: str, lang: str | None, span: str,
          ) -> tuple[QProject, dict[str, str], CodingRows]:
    """The project without its sources, the texts by document, and the sorted codings."""
    if span not in SPANS:
        raise ExchangeError(f"unknown span {span!r} (allowed: {', '.join(SPANS)})")
    project = QProject(name=name, origin=ORIGIN,
                       codes=codes_from_codebook(codebook, lang),
                       sets=family_sets(codebook, lang))
    docs = documents.sort_values(C.DOC_ID, kind="stable")
    texts = dict(zip(docs[C.DOC_ID].astype(str), docs[C.TEXT].astype(str)))
    rows = CodingRows(codings, segments, texts,
                      {cid: code_guid(c) for cid, c in codebook.codes.items()},
                      span=span, codebook_path=str(getattr(codebook, "path", "")))
    project.users = {make_guid("user", user): user for user in rows.users}
    _add_cases(project, docs)
    return project, texts, rows


def _add_cases(project: QProject, docs: pd.DataFrame) -> None:
    """One case per document, carrying its metadata attributes as variable values."""
    attrs = _attribute_columns(docs)
    project.variables = [QVariable(make_guid("variable", a), a, "Text") for a in attrs]
    var_guid = {v.name: v.guid for v in project.variables}
    for row in docs[[C.DOC_ID, *attrs]].to_dict("records"):   # not the texts
        doc = str(row[C.DOC_ID])
        values = {var_guid[a]: str(row[a]) for a in attrs if not blank(row[a])}
        project.cases.append(QCase(make_guid("case", doc), doc, values,
                                   [make_guid("source", doc)]))


def project_bytes(project: QProject, files: dict[str, bytes]) -> bytes:
    """The ``.qdpx`` archive bytes of a project and its source files."""
    members = dict(files)
    members[qdpx_io.PROJECT_MEMBER] = serialize(project_to_xml(project))
    return qdpx_io.zip_bytes(members)


def codebook_bytes(codebook: Any, lang: str | None = None) -> bytes:
    """The ``.qdc`` bytes of a codebook."""
    root = codebook_to_xml(codes_from_codebook(codebook, lang), family_sets(codebook, lang), ORIGIN)
    return serialize(root)


def has_final(coded_dir: Path) -> bool:
    """Whether ``qcode review apply`` wrote a final coding into the coded folder."""
    return any((Path(coded_dir) / f"{FINAL_FILE}{ext}").exists() for ext in (".parquet", ".csv"))


def load_final(coded_dir: Path) -> tuple[pd.DataFrame, int]:
    """The reviewed final coding of a coded folder, without stale codings.

    Returns:
        (codings to export, number of stale codings left out). A stale coding is an
        automatic one whose latest review decision was taken on text that has since
        changed: nobody has decided on the current text, so it is not exported.

    Raises:
        ExchangeError: there is no final coding (run ``qcode review apply``).
    """
    folder = Path(coded_dir)
    pq, csv = folder / f"{FINAL_FILE}.parquet", folder / f"{FINAL_FILE}.csv"
    if pq.exists():
        df = pd.read_parquet(pq)
    elif csv.exists():
        df = pd.read_csv(csv, keep_default_na=False)
    else:
        raise ExchangeError(f"{folder}: no {FINAL_FILE}.parquet/.csv; run 'qcode review apply' "
                            "first (or export the automatic codings with --auto)")
    status = df["review"].astype(str) if "review" in df.columns else pd.Series("", index=df.index)
    stale = status == "stale"
    return df[~stale].reset_index(drop=True), int(stale.sum())


@dataclass(frozen=True)
class Exported:
    """What :func:`export_qdpx` wrote."""

    path: Path
    sources: int
    selections: int
    codings: int
    users: tuple[str, ...]


def export_qdpx(coded_dir: Path, out: Path, codebook: Any, *, name: str | None = None,
                lang: str | None = None, offsets: str = CODEPOINT, span: str = "segment",
                codings: pd.DataFrame | None = None) -> Exported:
    """Export a coded folder as a ``.qdpx`` project (written atomically).

    ``codings`` replaces the folder's automatic codings (e.g. :func:`load_final`);
    a final coding accepted or added by a reviewer is attributed to that coder.
    The file is the one ``project_bytes(*build_project(...))`` gives, written one
    source at a time: the whole project as objects, XML tree and bytes took 9.6 GB
    at a million segments.
    """
    from pipeline.store import load_coded

    # not the matches (1.8 GB at a million segments), nor the segments' texts
    data = load_coded(coded_dir, skip=("matches",), columns={
        "segments": [C.SEGMENT_ID, C.START, C.END],
        "codings": [C.SEGMENT_ID, C.DOC_ID, C.CODE_ID, C.START, C.END, C.SCORE, *WHO]})
    if C.TEXT not in data.documents.columns or data.documents.empty:
        raise ExchangeError(f"{coded_dir}: no documents table with texts; re-run 'qcode code'")
    project, texts, rows = _plan(data.documents, data.segments,
                                 data.codings if codings is None else codings, codebook,
                                 name=name or Path(coded_dir).resolve().name, lang=lang, span=span)
    del data, codings   # the plan holds what the sources need
    counts = {"sources": 0, "selections": 0, "codings": 0}

    def sources() -> Iterator[QSource]:
        for src in rows.sources(offsets):
            counts["sources"] += 1
            counts["selections"] += len(src.selections)
            counts["codings"] += sum(len(sel.codings) for sel in src.selections)
            yield src

    members = sorted((f"sources/{make_guid('source', doc)}.txt", doc) for doc in texts)
    qdpx_io.write_archive(out, lambda write: write_project_xml(project, sources(), write),
                          ((member, texts[doc].encode("utf-8")) for member, doc in members))
    return Exported(Path(out), users=tuple(project.users.values()), **counts)


def export_qdc(out: Path, codebook: Any, *, lang: str | None = None) -> None:
    """Write the codebook alone as a ``.qdc`` file (atomically)."""
    qdpx_io.atomic_write_bytes(out, codebook_bytes(codebook, lang))


def iter_codings(project: QProject) -> Iterable[tuple[str, int, int, str, str]]:
    """Yield ``(source name, start, end, code guid, user name)`` of a project (for tests)."""
    for src in project.sources:
        for sel in src.selections:
            for c in sel.codings:
                yield src.name, sel.start, sel.end, c.code_guid, project.users.get(c.user_guid or "", "")
