"""Builders shared by the exchange tests: a tiny codebook and coded run, and
REFI-QDA files that mimic each vendor's quirks (no test functions here)."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import columns as C
from pipeline.codebook import load_codebook
from pipeline.segment import content_hash
from pipeline.store import CodedData, write_coded

CODEBOOK_YAML = """\
version: 1
name: Test codebook
settings: {default_lang: nl, languages: [nl, en]}
codes:
  - id: agency
    label: {nl: Handelingsruimte, en: Agency}
    color: "#E69F00"
    definition: Ruimte om zelf te handelen.
  - id: ownership
    label: {nl: Eigenaarschap, en: Ownership}
    definition: Zich eigenaar voelen van de vernieuwing.
  - id: alignment
    label: {nl: Afstemming, en: Alignment}
    definition: Afstemming tussen vernieuwing en school.
  - id: shared_leadership
    label: {nl: Gedeeld leiderschap, en: Shared leadership}
    definition: Leiderschap dat gedeeld wordt.
  - id: amo
    label: {nl: AMO, en: AMO}
    color: "#56B4E9"
    definition: Ability, motivation, opportunity.
    children:
      - id: amo.ability
        label: {nl: Kunnen, en: Ability}
        definition: Kennis en vaardigheden.
      - id: amo.motivation
        label: {nl: Willen, en: Motivation}
        definition: Motivatie.
      - id: amo.opportunity
        label: {nl: Mogen, en: Opportunity}
        definition: Tijd, ruimte en middelen.
"""

# Emoji (2 UTF-16 units), a ZWJ sequence, a precomposed letter and a combining
# sequence that NFC cannot compose (q + acute): offsets must survive all of them.
INT01 = ("I: Hoe begon het?\n\n"
         "R: We mochten het zelf invullen 😀.\n\nDat was fijn.\n\n"
         "I: En de tijd?\n\n"
         "R: Daar had ik geen uren voor. Zoë en q\u0301 ook niet.")
SURVEY = "Meer tijd 👩\u200d🏫.\n\nSamenwerken met collega's."


def make_codebook(tmp_path: Path):
    path = tmp_path / "codebook.yaml"
    path.write_text(CODEBOOK_YAML, encoding="utf-8")
    return load_codebook(path)


def _segment(doc: str, idx: int, text: str, start: int, end: int, speaker: str,
             role: str) -> dict:
    return {C.SEGMENT_ID: f"{doc}:{idx}", C.DOC_ID: doc, C.UNIT: "turn", C.UNIT_INDEX: idx,
            C.TURN: idx, C.SPEAKER: speaker, C.ROLE: role, C.CODED: role == C.RESPONDENT,
            C.START: start, C.END: end, C.TIME_START: np.nan, C.TIME_END: np.nan,
            C.CONTENT_HASH: content_hash(text[start:end]), C.LANG: "nl",
            C.TEXT: text[start:end]}


def coded_tables() -> CodedData:
    docs = pd.DataFrame([
        {C.DOC_ID: "int01", C.PATH: "int01.txt", C.FORMAT: "txt", C.ENCODING: "utf-8",
         C.LANG: "nl", C.N_CHARS: len(INT01), C.SHA256: "0" * 64, C.TEXT: INT01,
         "country": "NL", "school": "De Horizon"},
        {C.DOC_ID: "survey", C.PATH: "survey.csv", C.FORMAT: "csv", C.ENCODING: "utf-8",
         C.LANG: "nl", C.N_CHARS: len(SURVEY), C.SHA256: "1" * 64, C.TEXT: SURVEY,
         "country": "BE", "school": None},
    ])
    segs = []
    pos = 0
    for idx, (speaker, content) in enumerate([
            ("I", "Hoe begon het?"), ("R", "We mochten het zelf invullen 😀.\n\nDat was fijn."),
            ("I", "En de tijd?"), ("R", "Daar had ik geen uren voor. Zoë en q\u0301 ook niet.")]):
        start = INT01.index(content, pos)
        pos = start + len(content)
        segs.append(_segment("int01", idx, INT01, start, pos, speaker,
                             C.INTERVIEWER if speaker == "I" else C.RESPONDENT))
    for idx, content in enumerate(["Meer tijd 👩\u200d🏫.", "Samenwerken met collega's."]):
        start = SURVEY.index(content)
        segs.append(_segment("survey", idx, SURVEY, start, start + len(content), "", C.RESPONDENT))
    segments = pd.DataFrame(segs)
    span = {s[C.SEGMENT_ID]: (s[C.START], s[C.END]) for s in segs}

    def coding(seg, code, method="rules", rule="rule:x", score=1.0, evidence=None):
        doc = seg.split(":")[0]
        text = INT01 if doc == "int01" else SURVEY
        a, b = span[seg]
        if evidence:
            a = text.index(evidence, a)
            b = a + len(evidence)
        return {C.SEGMENT_ID: seg, C.DOC_ID: doc, C.CODE_ID: code, C.METHOD: method,
                C.SCORE: score, C.RULE: rule, C.RULES: rule.split(":", 1)[1],
                C.EVIDENCE: text[a:b], C.N_MATCHES: 1, C.START: a, C.END: b}

    codings = pd.DataFrame([
        coding("int01:1", "ownership", evidence="zelf invullen", rule="rule:ownership.nl.1"),
        coding("int01:1", "agency", method="ml", rule="model:v1", score=0.8),
        coding("int01:3", "amo.opportunity", evidence="geen uren", rule="rule:amo.opportunity.nl.1"),
        coding("int01:3", "amo", method="human", rule="human:anja"),
        coding("survey:0", "amo.opportunity", evidence="tijd 👩\u200d🏫"),
        coding("survey:1", "shared_leadership", method="hybrid", rule="rule:sl.nl.1", score=0.7),
    ])
    return CodedData(documents=docs, segments=segments, codings=codings,
                     manifest={"codebook_hash": "test"})


def make_coded(tmp_path: Path) -> Path:
    out = tmp_path / "coded"
    write_coded(out, coded_tables())
    return out


# ------------------------------------------------------------- vendor files
def zip_members(members: dict[str, bytes | str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data.encode("utf-8") if isinstance(data, str) else data)
    return buf.getvalue()


G = {  # GUIDs written the way the vendors do (upper case, braces) in the fixtures
    "user": "2F5E0E7C-6A1B-4C55-9D1E-0A0B0C0D0E01",
    "code_a": "A1B2C3D4-0000-4000-8000-000000000001",
    "code_b": "A1B2C3D4-0000-4000-8000-000000000002",
    "code_c": "A1B2C3D4-0000-4000-8000-000000000003",
    "src1": "B0000000-0000-4000-8000-000000000001",
    "src2": "B0000000-0000-4000-8000-000000000002",
    "src3": "B0000000-0000-4000-8000-000000000003",
}


def utf16_pos(text: str, index: int) -> int:
    return len(text[:index].encode("utf-16-le")) // 2


def nvivo_qdpx() -> tuple[bytes, str, dict]:
    """NVivo: origin NVivo, UTF-16 offsets, CRLF text with BOM, braces + upper case
    GUIDs, 1.0 namespace, a PDF source (no text) and an unknown element."""
    text = "Interviewer: Hoe?\r\nAnja: Ik 😀 kreeg tijd.\r\nAnja: Klaar."
    sel1 = text.index("kreeg tijd")
    sel2 = text.index("Klaar")
    spans = {"tijd": (utf16_pos(text, sel1), utf16_pos(text, sel1 + len("kreeg tijd"))),
             "klaar": (utf16_pos(text, sel2), utf16_pos(text, sel2 + len("Klaar")))}
    xml = f"""<?xml version="1.0" encoding="utf-8"?>
<Project xmlns="urn:QDA-XML:project:1.0" name="Studie" origin="NVivo 14.23.0">
  <Users><User guid="{{{G['user']}}}" name="Anja de Vries"/></Users>
  <CodeBook><Codes>
    <Code guid="{{{G['code_a']}}}" name="Tijd" isCodable="true" color="#ff0000">
      <Description>Tijd als middel</Description>
    </Code>
    <Code guid="{{{G['code_b']}}}" name="Afsluiting" isCodable="true"/>
  </Codes></CodeBook>
  <Sources>
    <TextSource guid="{{{G['src1']}}}" name="Interview 1.docx" plainTextPath="internal://{G['src1']}.txt">
      <PlainTextSelection guid="{{C0000000-0000-4000-8000-000000000001}}" startPosition="{spans['tijd'][0]}" endPosition="{spans['tijd'][1]}" creatingUser="{{{G['user']}}}">
        <Coding guid="{{D0000000-0000-4000-8000-000000000001}}" creatingUser="{{{G['user']}}}"><CodeRef targetGUID="{{{G['code_a']}}}"/></Coding>
      </PlainTextSelection>
      <PlainTextSelection guid="{{C0000000-0000-4000-8000-000000000002}}" startPosition="{spans['klaar'][0]}" endPosition="{spans['klaar'][1]}">
        <Coding guid="{{D0000000-0000-4000-8000-000000000002}}" creatingUser="{{{G['user']}}}"><CodeRef targetGUID="{G['code_b'].lower()}"/></Coding>
        <NVivoExtension foo="bar"/>
      </PlainTextSelection>
    </TextSource>
    <PDFSource guid="{{{G['src2']}}}" name="Beleid.pdf" path="internal://beleid.pdf"/>
  </Sources>
</Project>"""
    data = zip_members({"project.qde": xml,
                        f"sources/{G['src1']}.txt": b"\xef\xbb\xbf" + text.encode("utf-8"),
                        "sources/beleid.pdf": b"%PDF-1.4"})
    expected = {"doc_id": "Interview 1", "text": text.replace("\r\n", "\n"),
                "selections": ["kreeg tijd", "Klaar"]}
    return data, xml, expected


def atlas_qdpx() -> tuple[bytes, dict]:
    """ATLAS.ti: project file named after the project, ``Sources/`` capitalised, a
    newer namespace version, lower-case GUIDs, a selection without codings and a
    TextSource whose file is missing."""
    text = "Ze zeiden: wij beslissen zelf.\nEn dat klopte."
    a = text.index("wij beslissen zelf")
    xml = f"""<?xml version="1.0" encoding="utf-8"?>
<Project xmlns="urn:QDA-XML:project:1.5" name="My Study" origin="ATLAS.ti 23">
  <Users><User guid="{G['user'].lower()}" name="coder1"/></Users>
  <CodeBook><Codes>
    <Code guid="{G['code_a'].lower()}" name="Agency!" isCodable="true"/>
  </Codes></CodeBook>
  <Sources>
    <TextSource guid="{G['src1'].lower()}" name="doc one.txt" plainTextPath="internal://{G['src1'].lower()}.txt">
      <PlainTextSelection guid="c0000000-0000-4000-8000-000000000001" startPosition="{a}" endPosition="{a + 18}" creatingUser="{G['user'].lower()}">
        <Coding guid="d0000000-0000-4000-8000-000000000001" creatingUser="{G['user'].lower()}"><CodeRef targetGUID="{G['code_a'].lower()}"/></Coding>
      </PlainTextSelection>
      <PlainTextSelection guid="c0000000-0000-4000-8000-000000000002" startPosition="0" endPosition="2"/>
    </TextSource>
    <TextSource guid="{G['src2'].lower()}" name="missing" plainTextPath="internal://gone.txt"/>
  </Sources>
</Project>"""
    data = zip_members({"My Study.qde": xml, f"Sources/{G['src1'].lower()}.txt": text})
    return data, {"text": text, "selection": "wij beslissen zelf"}


def maxqda_qdpx() -> tuple[bytes, dict]:
    """MAXQDA: parent codes marked codable and coded themselves, nested codes, no
    namespace at all, inline PlainTextContent, codings without a user."""
    text = "Ik wil leren. Ik mag het doen."
    xml = f"""<?xml version="1.0" encoding="utf-8"?>
<Project name="mx" origin="MAXQDA 2022">
  <CodeBook><Codes>
    <Code guid="{G['code_a']}" name="AMO" isCodable="true">
      <Code guid="{G['code_b']}" name="Motivation" isCodable="true"/>
      <Code guid="{G['code_c']}" name="Opportunity" isCodable="true"/>
    </Code>
  </Codes></CodeBook>
  <Sources>
    <TextSource guid="{G['src1']}" name="resp 7">
      <PlainTextContent>{text}</PlainTextContent>
      <PlainTextSelection guid="C0000000-0000-4000-8000-000000000001" startPosition="0" endPosition="30">
        <Coding guid="D0000000-0000-4000-8000-000000000001"><CodeRef targetGUID="{G['code_a']}"/></Coding>
      </PlainTextSelection>
      <PlainTextSelection guid="C0000000-0000-4000-8000-000000000002" startPosition="3" endPosition="12">
        <Coding guid="D0000000-0000-4000-8000-000000000002"><CodeRef targetGUID="{G['code_b']}"/></Coding>
      </PlainTextSelection>
      <PlainTextSelection guid="C0000000-0000-4000-8000-000000000003" startPosition="17" endPosition="29">
        <Coding guid="D0000000-0000-4000-8000-000000000003"><CodeRef targetGUID="{G['code_c']}"/></Coding>
      </PlainTextSelection>
    </TextSource>
  </Sources>
</Project>"""
    return zip_members({"project.qde": xml}), {"text": text}
