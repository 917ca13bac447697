"""Coded tables + codebook -> REFI-QDA project (pure), and the export entry points.

Every object gets a GUID derived with uuid5 from its identity (code id, doc id,
span, user), so exporting the same run twice gives byte-identical files and a QDA
tool that imports the second file recognises what it saw in the first.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline import __version__
from pipeline import columns as C
from pipeline.errors import ExchangeError
from pipeline.exchange import qdpx_io
from pipeline.exchange.model import (
    QCase, QCode, QCoding, QProject, QSelection, QSet, QSource,
    QVariable, codebook_to_xml, make_guid, norm_guid, project_to_xml, serialize, tag_description,
)
from pipeline.exchange.text import CODEPOINT, codepoints_to_units

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


def coder_name(method: str, rule: str) -> str:
    """The REFI user a coding is attributed to: it names the method (or the human)."""
    rule = str(rule or "")
    if method == "human" or rule.startswith("human:"):
        return rule.split(":", 1)[1] if rule.startswith("human:") and rule[6:] else "human"
    if method == "ml" or rule.startswith("model:"):
        return f"qcode {rule.replace(':', ' ', 1)}" if rule.startswith("model:") else "qcode model"
    return f"qcode {method or 'rules'}"


# Review status of a final coding (``qcode review apply``) -> who the REFI user is.
REVIEWED = ("accepted", "added")
FINAL_FILE = "final_codings"


def final_user(rec: dict) -> str | None:
    """The reviewing coder of a final coding that a human accepted or added, else None."""
    status = str(rec.get("review", "") or "")
    coder = rec.get(C.CODER)
    if status in REVIEWED and not _blank(coder):
        return str(coder).strip() or None
    return None


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or str(value) == ""


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
    if span not in SPANS:
        raise ExchangeError(f"unknown span {span!r} (allowed: {', '.join(SPANS)})")
    project = QProject(name=name, origin=ORIGIN,
                       codes=codes_from_codebook(codebook, lang),
                       sets=family_sets(codebook, lang))
    guid_of = {cid: code_guid(c) for cid, c in codebook.codes.items()}
    docs = documents.sort_values(C.DOC_ID, kind="stable")
    texts = dict(zip(docs[C.DOC_ID].astype(str), docs[C.TEXT].astype(str)))
    seg_span = {}
    if len(segments):
        seg_span = {str(s): (int(a), int(b)) for s, a, b in
                    zip(segments[C.SEGMENT_ID], segments[C.START], segments[C.END])}

    # Group codings by (doc, span): one selection carries every code applied to it.
    by_span: dict[tuple[str, int, int], list[tuple[str, str, str]]] = {}
    for rec in codings.to_dict("records"):
        doc, code_id = str(rec[C.DOC_ID]), str(rec[C.CODE_ID])
        if doc not in texts:
            raise ExchangeError(f"codings: document {doc!r} is not in the documents table")
        if code_id not in guid_of:
            raise ExchangeError(f"codings: code {code_id!r} is not in the codebook "
                                f"{getattr(codebook, 'path', '')}".rstrip())
        seg = str(rec.get(C.SEGMENT_ID, ""))
        if span == "segment" and seg in seg_span:
            start, end = seg_span[seg]
        else:
            start, end = int(rec[C.START]), int(rec[C.END])
        auto_user = coder_name(str(rec.get(C.METHOD, "rules")), str(rec.get(C.RULE, "")))
        reviewer = final_user(rec)
        user = reviewer or auto_user
        score = rec.get(C.SCORE)
        note = f"{code_id}: {rec.get(C.METHOD, '')} {rec.get(C.RULE, '')}".strip()
        if not _blank(score):
            note += f" score={float(score):.3f}"
        if reviewer is not None:
            status = str(rec.get("review"))
            note = (f"{code_id}: added by {reviewer}" if status == "added"
                    else f"{note}; accepted by {reviewer} (proposed by {auto_user})")
        by_span.setdefault((doc, start, end), []).append((code_id, user, note))

    users: dict[str, str] = {}
    user_guid_of: dict[str, str] = {}
    files: dict[str, bytes] = {}
    order = {cid: n for n, cid in enumerate(codebook.codes)}
    # each document's spans, found once (not by scanning every span for every document:
    # that was 9,100 x 529,178 at a million segments)
    spans_of: dict[str, list[tuple[str, int, int]]] = {}
    for key in by_span:
        spans_of.setdefault(key[0], []).append(key)
    for doc, text in texts.items():
        src_guid = make_guid("source", doc)
        src = QSource(guid=src_guid, name=doc, path=f"internal://{src_guid}.txt")
        files[f"sources/{src_guid}.txt"] = text.encode("utf-8")
        spans = sorted(spans_of.get(doc, []))
        ends = codepoints_to_units(text, [x for _, a, b in spans for x in (a, b)], offsets)
        for n, key in enumerate(spans):
            _, start, end = key
            sel = QSelection(guid=make_guid("selection", f"{doc}:{start}:{end}"),
                             start=ends[2 * n], end=ends[2 * n + 1])
            notes = []
            for code_id, user, note in sorted(by_span[key], key=lambda t: (order[t[0]], t[1])):
                if user not in user_guid_of:
                    user_guid_of[user] = make_guid("user", user)
                user_guid = user_guid_of[user]
                users[user_guid] = user
                sel.codings.append(QCoding(
                    code_guid=guid_of[code_id], user_guid=user_guid,
                    guid=make_guid("coding", f"{doc}:{start}:{end}:{code_id}:{user}")))
                notes.append(note)
            sel.user_guid = sel.codings[0].user_guid
            sel.description = "\n".join(notes)
            src.selections.append(sel)
        project.sources.append(src)
    project.users = dict(sorted(users.items(), key=lambda kv: kv[1]))
    _add_cases(project, docs)
    return project, files


def _add_cases(project: QProject, docs: pd.DataFrame) -> None:
    """One case per document, carrying its metadata attributes as variable values."""
    attrs = _attribute_columns(docs)
    project.variables = [QVariable(make_guid("variable", a), a, "Text") for a in attrs]
    var_guid = {v.name: v.guid for v in project.variables}
    for row in docs.to_dict("records"):
        doc = str(row[C.DOC_ID])
        values = {var_guid[a]: str(row[a]) for a in attrs if not _blank(row[a])}
        project.cases.append(QCase(make_guid("case", doc), doc, values,
                                   [make_guid("source", doc)]))


def project_bytes(project: QProject, files: dict[str, bytes]) -> bytes:
    """The ``.qdpx`` archive bytes of a project and its source files."""
    members = dict(files)
    members["project.qde"] = serialize(project_to_xml(project))
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


def export_qdpx(coded_dir: Path, out: Path, codebook: Any, *, name: str | None = None,
                lang: str | None = None, offsets: str = CODEPOINT, span: str = "segment",
                codings: pd.DataFrame | None = None) -> QProject:
    """Export a coded folder as a ``.qdpx`` project (written atomically).

    ``codings`` replaces the folder's automatic codings (e.g. :func:`load_final`);
    a final coding accepted or added by a reviewer is attributed to that coder.
    """
    from pipeline.store import load_coded

    data = load_coded(coded_dir, skip=("matches",))   # not exported; 1.8 GB at 1M segments
    if C.TEXT not in data.documents.columns or data.documents.empty:
        raise ExchangeError(f"{coded_dir}: no documents table with texts; re-run 'qcode code'")
    chosen = data.codings if codings is None else codings
    project, files = build_project(data.documents, data.segments, chosen, codebook,
                                   name=name or Path(coded_dir).resolve().name, lang=lang,
                                   offsets=offsets, span=span)
    qdpx_io.atomic_write_bytes(out, project_bytes(project, files))
    return project


def export_qdc(out: Path, codebook: Any, *, lang: str | None = None) -> None:
    """Write the codebook alone as a ``.qdc`` file (atomically)."""
    qdpx_io.atomic_write_bytes(out, codebook_bytes(codebook, lang))


def iter_codings(project: QProject) -> Iterable[tuple[str, int, int, str, str]]:
    """Yield ``(source name, start, end, code guid, user name)`` of a project (for tests)."""
    for src in project.sources:
        for sel in src.selections:
            for c in sel.codings:
                yield src.name, sel.start, sel.end, c.code_guid, project.users.get(c.user_guid or "", "")
