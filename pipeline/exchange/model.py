"""REFI-QDA project model and its pure conversion to and from XML element trees.

Export builds elements in the namespace of the 2019 schemas, in the element order
the XSD sequences demand. Import is lenient the way real files need: tags are
matched by local name whatever the namespace (version), GUIDs are compared in
lower case without braces, and unknown elements are reported through ``warn``
and skipped.
"""
from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field

PROJECT_NS = "urn:QDA-XML:project:1.0"
CODEBOOK_NS = "urn:QDA-XML:codebook:1.0"
# Fixed namespace for uuid5: the same id always gets the same GUID, so a re-export
# is byte-identical and a QDA tool recognises the codes it saw last time.
GUID_NAMESPACE = uuid.UUID("5b0c2f4e-8f53-4d0c-9a3e-6b1f1c0de5a1")

Warn = Callable[[str], None]


# Our code id, kind and both labels ride along in the code's Description (the REFI
# schemas allow no extension attributes), one "qcode-<key>: <value>" line each after
# a blank line, so an export -> import round trip restores ids and labels exactly.
TAG_KEYS = ("id", "kind", "label-nl", "label-en")
_TAG_LINE = re.compile(r"^qcode-(id|kind|label-nl|label-en):[ \t]*(.*?)[ \t]*$")


def tag_description(text: str, tags: dict[str, str]) -> str:
    """``text`` followed by the ``qcode-<key>: value`` lines of ``tags``."""
    lines = [f"qcode-{k}: {' '.join(str(tags[k]).split())}" for k in TAG_KEYS if tags.get(k)]
    text = (text or "").strip()
    return "\n\n".join(p for p in (text, "\n".join(lines)) if p)


def split_description(text: str) -> tuple[str, dict[str, str]]:
    """Split a code description into its text and the qcode tags at its end."""
    lines = (text or "").replace("\r\n", "\n").split("\n")
    tags: dict[str, str] = {}
    while lines:
        m = _TAG_LINE.match(lines[-1].strip())
        if m is None:
            if lines[-1].strip():
                break
        elif m.group(1) not in tags and m.group(2):
            tags[m.group(1)] = m.group(2)
        lines.pop()
    return "\n".join(lines).strip(), tags


def make_guid(kind: str, key: str) -> str:
    """Return the stable GUID of object ``kind`` with identity ``key``."""
    return str(uuid.uuid5(GUID_NAMESPACE, f"{kind}:{key}"))


def norm_guid(value: str | None) -> str:
    """Normalise a GUID for comparison: lower case, no braces, no whitespace."""
    return (value or "").strip().strip("{}").strip().lower()


@dataclass
class QCode:
    guid: str
    name: str
    codable: bool = True
    description: str = ""
    color: str | None = None
    children: list[QCode] = field(default_factory=list)


@dataclass
class QCoding:
    code_guid: str
    guid: str = ""
    user_guid: str | None = None


@dataclass
class QSelection:
    guid: str
    start: int
    end: int
    codings: list[QCoding] = field(default_factory=list)
    user_guid: str | None = None
    description: str = ""


@dataclass
class QSource:
    guid: str
    name: str
    text: str | None = None            # inline PlainTextContent
    path: str | None = None            # plainTextPath, e.g. internal://<guid>.txt
    selections: list[QSelection] = field(default_factory=list)
    description: str = ""


@dataclass
class QVariable:
    guid: str
    name: str
    type: str = "Text"


@dataclass
class QCase:
    guid: str
    name: str
    values: dict[str, str] = field(default_factory=dict)   # variable guid -> text
    source_guids: list[str] = field(default_factory=list)


@dataclass
class QSet:
    guid: str
    name: str
    description: str = ""
    code_guids: list[str] = field(default_factory=list)
    source_guids: list[str] = field(default_factory=list)


@dataclass
class QProject:
    name: str
    origin: str = ""
    users: dict[str, str] = field(default_factory=dict)   # guid -> name
    codes: list[QCode] = field(default_factory=list)
    variables: list[QVariable] = field(default_factory=list)
    cases: list[QCase] = field(default_factory=list)
    sources: list[QSource] = field(default_factory=list)
    sets: list[QSet] = field(default_factory=list)
    description: str = ""


def walk_codes(codes: list[QCode], parent: QCode | None = None):
    """Yield ``(code, parent)`` depth-first, parents before children."""
    for code in codes:
        yield code, parent
        yield from walk_codes(code.children, code)


# --------------------------------------------------------------------- export
def _sub(parent: ET.Element, tag: str, attrs: dict[str, str | None] | None = None,
         text: str | None = None) -> ET.Element:
    # Unqualified tags; the root carries xmlns (ElementTree's default_namespace
    # option rejects unqualified attributes, which the schemas require).
    el = ET.SubElement(parent, tag,
                       {k: v for k, v in (attrs or {}).items() if v is not None})
    if text is not None:
        el.text = text
    return el


def _code_element(parent: ET.Element, code: QCode) -> None:
    el = _sub(parent, "Code", {"guid": code.guid, "name": code.name,
                                   "isCodable": "true" if code.codable else "false",
                                   "color": code.color})
    if code.description:
        _sub(el, "Description", text=code.description)
    for child in code.children:
        _code_element(el, child)


def project_to_xml(project: QProject) -> ET.Element:
    """Build the ``<Project>`` element tree (element order as the XSD requires)."""
    ns = PROJECT_NS
    root = ET.Element("Project", {"xmlns": ns, "name": project.name, "origin": project.origin})
    if project.users:
        users = _sub(root, "Users")
        for guid, name in project.users.items():
            _sub(users, "User", {"guid": guid, "name": name})
    if project.codes:
        codes = _sub(_sub(root, "CodeBook"), "Codes")
        for code in project.codes:
            _code_element(codes, code)
    if project.variables:
        variables = _sub(root, "Variables")
        for var in project.variables:
            _sub(variables, "Variable", {"guid": var.guid, "name": var.name,
                                             "typeOfVariable": var.type})
    if project.cases:
        cases = _sub(root, "Cases")
        for case in project.cases:
            el = _sub(cases, "Case", {"guid": case.guid, "name": case.name})
            for var_guid, value in case.values.items():
                vv = _sub(el, "VariableValue")
                _sub(vv, "VariableRef", {"targetGUID": var_guid})
                _sub(vv, "TextValue", text=value)
            for src in case.source_guids:
                _sub(el, "SourceRef", {"targetGUID": src})
    if project.sources:
        sources = _sub(root, "Sources")
        for src in project.sources:
            el = _sub(sources, "TextSource", {"guid": src.guid, "name": src.name,
                                                  "plainTextPath": src.path})
            if src.description:
                _sub(el, "Description", text=src.description)
            if src.path is None and src.text is not None:
                _sub(el, "PlainTextContent", text=src.text)
            for sel in src.selections:
                sel_el = _sub(el, "PlainTextSelection", {
                    "guid": sel.guid, "name": None, "startPosition": str(sel.start),
                    "endPosition": str(sel.end), "creatingUser": sel.user_guid})
                if sel.description:
                    _sub(sel_el, "Description", text=sel.description)
                for coding in sel.codings:
                    c_el = _sub(sel_el, "Coding", {"guid": coding.guid,
                                                        "creatingUser": coding.user_guid})
                    _sub(c_el, "CodeRef", {"targetGUID": coding.code_guid})
    if project.sets:
        sets = _sub(root, "Sets")
        for qset in project.sets:
            el = _sub(sets, "Set", {"guid": qset.guid, "name": qset.name})
            if qset.description:
                _sub(el, "Description", text=qset.description)
            for g in qset.code_guids:
                _sub(el, "MemberCode", {"targetGUID": g})
            for g in qset.source_guids:
                _sub(el, "MemberSource", {"targetGUID": g})
    if project.description:
        _sub(root, "Description", text=project.description)
    return root


def codebook_to_xml(codes: list[QCode], sets: list[QSet], origin: str) -> ET.Element:
    """Build the ``<CodeBook>`` element tree of a ``.qdc`` file."""
    ns = CODEBOOK_NS
    root = ET.Element("CodeBook", {"xmlns": ns, "origin": origin})
    codes_el = _sub(root, "Codes")
    for code in codes:
        _code_element(codes_el, code)
    if sets:
        sets_el = _sub(root, "Sets")
        for qset in sets:
            el = _sub(sets_el, "Set", {"guid": qset.guid, "name": qset.name})
            if qset.description:
                _sub(el, "Description", text=qset.description)
            for g in qset.code_guids:   # the codebook schema names it guid, not targetGUID
                _sub(el, "MemberCode", {"guid": g})
    return root


def serialize(root: ET.Element) -> bytes:
    """Serialise deterministically: UTF-8, declaration, indented."""
    ET.indent(root, space="  ")
    body = ET.tostring(root, encoding="unicode")
    return ('<?xml version="1.0" encoding="utf-8"?>\n' + body + "\n").encode("utf-8")


# --------------------------------------------------------------------- import
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
