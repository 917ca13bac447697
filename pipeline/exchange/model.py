"""REFI-QDA project model and its pure conversion to XML element trees.

Export builds elements in the namespace of the 2019 schemas, in the element order
the XSD sequences demand. Reading XML back into this model is
:mod:`pipeline.exchange.xml_read`.
"""
from __future__ import annotations

import hashlib
import re
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
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


_NAMESPACE_BYTES = GUID_NAMESPACE.bytes


def make_guid(kind: str, key: str) -> str:
    """Return the stable GUID of object ``kind`` with identity ``key``.

    ``str(uuid.uuid5(GUID_NAMESPACE, f"{kind}:{key}"))``, computed without the UUID
    object: an export of a million segments makes several million of them.
    """
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + f"{kind}:{key}".encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50   # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80   # RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


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
    return _project_tree(project, with_sources=bool(project.sources))[0]


def _source_element(src: QSource) -> ET.Element:
    el = ET.Element("TextSource", {k: v for k, v in (("guid", src.guid), ("name", src.name),
                                                       ("plainTextPath", src.path)) if v is not None})
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
            c_el = _sub(sel_el, "Coding", {"guid": coding.guid, "creatingUser": coding.user_guid})
            _sub(c_el, "CodeRef", {"targetGUID": coding.code_guid})
    return el


def _project_tree(project: QProject, *, with_sources: bool,
                  ) -> tuple[ET.Element, ET.Element | None]:
    """The ``<Project>`` tree and its ``<Sources>`` element (None without sources)."""
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
    holder = _sub(root, "Sources") if with_sources else None
    for src in project.sources:
        holder.append(_source_element(src))
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
    return root, holder


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


XML_DECLARATION = '<?xml version="1.0" encoding="utf-8"?>\n'
INDENT = "  "


def serialize(root: ET.Element) -> bytes:
    """Serialise deterministically: UTF-8, declaration, indented."""
    ET.indent(root, space=INDENT)
    body = ET.tostring(root, encoding="unicode")
    return (XML_DECLARATION + body + "\n").encode("utf-8")


def write_project_xml(project: QProject, sources: Iterable[QSource],
                      write: Callable[[str], object]) -> None:
    """Write ``serialize(project_to_xml(...))`` of ``project`` with ``sources``, piece by piece.

    The same text as the whole tree gives, but only one source's elements exist at a
    time: a million coded segments made a tree of several GB. ``project.sources``
    must be empty; the sources come from the iterable, in order.

    Args:
        project: the project without its sources.
        sources: its sources, produced one at a time (a generator).
        write: called with each piece of the XML text, in order.
    """
    if project.sources:
        raise ValueError("write_project_xml takes the sources separately")
    pending = iter(sources)
    current = next(pending, None)
    root, holder = _project_tree(project, with_sources=current is not None)
    ET.indent(root, space=INDENT)
    write(XML_DECLARATION)
    if holder is None:
        write(ET.tostring(root, encoding="unicode") + "\n")
        return
    # The root's start tag: ElementTree writes a childless element as "<tag attrs />".
    empty = ET.tostring(ET.Element(root.tag, root.attrib), encoding="unicode")
    write(empty[:-len(" />")] + ">" + root.text)
    for child in root:
        if child is not holder:
            write(ET.tostring(child, encoding="unicode"))   # with its tail (the indent)
            continue
        # What ET.indent gives each <TextSource> in the whole tree (level 2 under <Sources>).
        write("<Sources>\n" + INDENT * 2)
        while current is not None:
            following = next(pending, None)
            element = _source_element(current)
            ET.indent(element, space=INDENT, level=2)
            element.tail = "\n" + INDENT * (2 if following is not None else 1)
            write(ET.tostring(element, encoding="unicode"))
            current = following
        write("</Sources>" + holder.tail)
    write("</Project>\n")


# --------------------------------------------------------------------- import
