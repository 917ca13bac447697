"""Reading REFI-QDA XML element trees into the project model (pure functions).

Lenient the way real files need: tags are matched by local name whatever the
namespace (version), GUIDs are compared in lower case without braces, and unknown
elements are reported through ``warn`` and skipped.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET

from pipeline.exchange.model import (
    QCase, QCode, QCoding, QProject, QSelection, QSet, QSource, QVariable, Warn,
    norm_guid,
)


def local(tag: object) -> str:
    """Local name of an element tag, whatever its namespace."""
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _children(el: ET.Element, name: str) -> list[ET.Element]:
    return [c for c in el if local(c.tag) == name]


def _child_text(el: ET.Element, name: str) -> str:
    found = _children(el, name)
    return (found[0].text or "") if found else ""


def _attr(el: ET.Element, name: str) -> str | None:
    """Attribute by local name (some tools qualify attributes with a prefix)."""
    if name in el.attrib:
        return el.attrib[name]
    for key, value in el.attrib.items():
        if local(key) == name:
            return value
    return None


class _Skips:
    """Collects unknown/unsupported element names so each is reported once."""

    def __init__(self, warn: Warn) -> None:
        self.warn = warn
        self.counts: dict[str, int] = {}

    def check(self, el: ET.Element, known: set[str], where: str) -> None:
        for child in el:
            name = local(child.tag)
            if name and name not in known:
                key = f"{where}/{name}"
                self.counts[key] = self.counts.get(key, 0) + 1

    def flush(self) -> None:
        for key, n in sorted(self.counts.items()):
            self.warn(f"skipped {n} unsupported element{'s' if n != 1 else ''} <{key}>")


def _parse_code(el: ET.Element, skips: _Skips, warn: Warn) -> QCode | None:
    guid, name = _attr(el, "guid"), _attr(el, "name")
    if not guid:
        warn(f"skipped a <Code> without guid (name {name!r})")
        return None
    skips.check(el, {"Description", "Code", "NoteRef"}, "Code")
    codable = (_attr(el, "isCodable") or "true").strip().lower() in ("true", "1")
    children = [c for c in (_parse_code(ch, skips, warn) for ch in _children(el, "Code")) if c]
    return QCode(guid=norm_guid(guid), name=(name or "").strip() or norm_guid(guid),
                 codable=codable, description=_child_text(el, "Description").strip(),
                 color=_attr(el, "color"), children=children)


def _parse_codes(container: ET.Element | None, skips: _Skips, warn: Warn) -> list[QCode]:
    if container is None:
        return []
    skips.check(container, {"Code"}, "Codes")
    return [c for c in (_parse_code(el, skips, warn) for el in _children(container, "Code")) if c]


def _parse_selection(el: ET.Element, skips: _Skips, warn: Warn, src_name: str) -> QSelection | None:
    try:
        start = int(_attr(el, "startPosition") or "")
        end = int(_attr(el, "endPosition") or "")
    except ValueError:
        warn(f"source {src_name!r}: skipped a selection without valid positions")
        return None
    skips.check(el, {"Description", "Coding", "NoteRef"}, "PlainTextSelection")
    codings = []
    for c in _children(el, "Coding"):
        refs = _children(c, "CodeRef")
        if refs and _attr(refs[0], "targetGUID"):
            codings.append(QCoding(code_guid=norm_guid(_attr(refs[0], "targetGUID")),
                                   guid=norm_guid(_attr(c, "guid")),
                                   user_guid=norm_guid(_attr(c, "creatingUser")) or None))
    return QSelection(guid=norm_guid(_attr(el, "guid")), start=min(start, end), end=max(start, end),
                      codings=codings, user_guid=norm_guid(_attr(el, "creatingUser")) or None,
                      description=_child_text(el, "Description"))


def project_from_xml(root: ET.Element, warn: Warn) -> QProject:
    """Read a ``<Project>`` element tree into a :class:`QProject`."""
    skips = _Skips(warn)
    project = QProject(name=_attr(root, "name") or "", origin=_attr(root, "origin") or "")
    skips.check(root, {"Users", "CodeBook", "Variables", "Cases", "Sources", "Sets",
                       "Description"}, "Project")
    for users in _children(root, "Users"):
        for u in _children(users, "User"):
            project.users[norm_guid(_attr(u, "guid"))] = _attr(u, "name") or _attr(u, "id") or ""
    for cb in _children(root, "CodeBook"):
        for codes in _children(cb, "Codes"):
            project.codes.extend(_parse_codes(codes, skips, warn))
    for sources in _children(root, "Sources"):
        media = {"PDFSource", "PictureSource", "AudioSource", "VideoSource"}
        skips.check(sources, {"TextSource"} | media, "Sources")
        for el in sources:
            if local(el.tag) in media:
                warn(f"source {_attr(el, 'name') or _attr(el, 'guid')!r}: a {local(el.tag)}, "
                     "no text to import; skipped")
        for n, el in enumerate(_children(sources, "TextSource")):
            name = _attr(el, "name") or f"source_{n + 1}"
            skips.check(el, {"Description", "PlainTextContent", "PlainTextSelection",
                             "VariableValue"}, "TextSource")
            content = _children(el, "PlainTextContent")
            src = QSource(guid=norm_guid(_attr(el, "guid")), name=name,
                          text=(content[0].text or "") if content else None,
                          path=_attr(el, "plainTextPath"),
                          description=_child_text(el, "Description"))
            for sel_el in _children(el, "PlainTextSelection"):
                sel = _parse_selection(sel_el, skips, warn, name)
                if sel is not None:
                    src.selections.append(sel)
            project.sources.append(src)
    for variables in _children(root, "Variables"):
        for v in _children(variables, "Variable"):
            project.variables.append(QVariable(norm_guid(_attr(v, "guid")), _attr(v, "name") or "",
                                               _attr(v, "typeOfVariable") or "Text"))
    for cases in _children(root, "Cases"):
        for c in _children(cases, "Case"):
            case = QCase(norm_guid(_attr(c, "guid")), _attr(c, "name") or "")
            for vv in _children(c, "VariableValue"):
                ref = _children(vv, "VariableRef")
                values = [x for x in vv if local(x.tag).endswith("Value")]
                if ref and values:
                    case.values[norm_guid(_attr(ref[0], "targetGUID"))] = values[0].text or ""
            case.source_guids = [norm_guid(_attr(s, "targetGUID")) for s in _children(c, "SourceRef")]
            project.cases.append(case)
    for sets in _children(root, "Sets"):
        project.sets.extend(_parse_sets(sets))
    project.description = _child_text(root, "Description")
    skips.flush()
    return project


def _parse_sets(sets: ET.Element) -> list[QSet]:
    out = []
    for s in _children(sets, "Set"):
        out.append(QSet(
            guid=norm_guid(_attr(s, "guid")), name=_attr(s, "name") or "",
            description=_child_text(s, "Description"),
            code_guids=[norm_guid(_attr(m, "targetGUID") or _attr(m, "guid"))
                        for m in _children(s, "MemberCode")],
            source_guids=[norm_guid(_attr(m, "targetGUID")) for m in _children(s, "MemberSource")]))
    return out


def codebook_from_xml(root: ET.Element, warn: Warn) -> QProject:
    """Read a ``<CodeBook>`` (``.qdc``) tree into a :class:`QProject` without sources."""
    skips = _Skips(warn)
    project = QProject(name="", origin=_attr(root, "origin") or "")
    skips.check(root, {"Codes", "Sets"}, "CodeBook")
    for codes in _children(root, "Codes"):
        project.codes.extend(_parse_codes(codes, skips, warn))
    for sets in _children(root, "Sets"):
        project.sets.extend(_parse_sets(sets))
    skips.flush()
    return project
