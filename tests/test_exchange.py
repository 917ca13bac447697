"""REFI-QDA exchange: offsets, export (XSD-valid, deterministic), round trip,
vendor quirks (NVivo, ATLAS.ti, MAXQDA) and hostile files."""
from __future__ import annotations

import hashlib
import io
import logging
import zipfile
from pathlib import Path

import pandas as pd
import pytest
import xmlschema
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline import columns as C
from pipeline.codebook import load_codebook, validate_codebook
from pipeline.errors import ExchangeError
from pipeline.exchange import (
    CODEBOOK_XSD, PROJECT_XSD, Limits, build_project, codebook_bytes, convert, gold_wide,
    import_refi, project_bytes, read_refi,
)
from pipeline.exchange.import_ import slug
from pipeline.exchange.model import make_guid
from pipeline.exchange.text import (
    CODEPOINT, UTF16, codepoints_to_units, decode_source, normalize_text, units_to_codepoints,
)
from test_exchange_fixtures import (
    INT01, SURVEY, atlas_qdpx, utf16_pos, coded_tables, make_codebook, maxqda_qdpx, nvivo_qdpx, zip_members,
)

def load_codebook_lenient(path: Path):
    """Load an imported codebook that may lack the project's required codes."""
    return load_codebook(path, require_codes=False)


SHARED = Path(__file__).resolve().parents[2] / "shared" / "refi-qda"


@pytest.fixture(scope="module")
def project_schema():
    return xmlschema.XMLSchema(str(PROJECT_XSD))


@pytest.fixture
def codebook(tmp_path):
    return make_codebook(tmp_path)


def _export(codebook, **kw) -> bytes:
    data = coded_tables()
    project, files = build_project(data.documents, data.segments, data.codings, codebook,
                                   name="test", **kw)
    return project_bytes(project, files)


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# ------------------------------------------------------------------ text/offsets
def test_decode_source_handles_boms_and_cp1252():
    assert decode_source(b"\xef\xbb\xbfhi") == ("hi", "utf-8-sig")
    assert decode_source("hé".encode("utf-16"))[0] == "hé"
    assert decode_source("café".encode("cp1252")) == ("café", "cp1252")


def test_utf16_offsets_count_emoji_twice():
    text = "a😀b"
    assert codepoints_to_units(text, [0, 1, 2, 3], UTF16) == [0, 1, 3, 4]
    assert units_to_codepoints(text, [0, 1, 3, 4, 99], UTF16) == [0, 1, 2, 3, 3]
    assert units_to_codepoints(text, [2], UTF16) == [1]   # inside the pair: snap to its start
    assert codepoints_to_units(text, [2], CODEPOINT) == [2]


def test_normalize_crlf_and_nfc_keep_offsets():
    original = "x\r\ne\u0301t\rq\u0301😀"
    norm = normalize_text(original)
    assert norm.text == "x\n\u00e9t\nq\u0301😀"
    assert [norm.map(i) for i in range(len(original) + 1)] == [0, 1, 1, 2, 3, 3, 4, 5, 6, 7, 8]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["a", " ", "\r\n", "\r", "\n", "e\u0301", "é", "😀", "q\u0301",
                                 "\u1100\u1161", "Z"]), max_size=30),
       st.data())
def test_normalize_matches_whole_text_nfc_and_is_monotone(pieces, data):
    import unicodedata

    original = "".join(pieces)
    norm = normalize_text(original)
    expected = unicodedata.normalize("NFC", original.replace("\r\n", "\n").replace("\r", "\n"))
    assert norm.text == expected
    mapped = [norm.map(i) for i in range(len(original) + 1)]
    assert mapped == sorted(mapped) and mapped[-1] == len(norm.text)
    # A span made of whole pieces maps to exactly the normalised piece text.
    i = data.draw(st.integers(0, len(pieces)))
    j = data.draw(st.integers(i, len(pieces)))
    a, b = len("".join(pieces[:i])), len("".join(pieces[:j]))
    piece_text = "".join(pieces[i:j])
    splits_crlf = any(0 < k < len(pieces) and pieces[k - 1] == "\r" and pieces[k] == "\n"
                      for k in (i, j))
    if not splits_crlf:
        want = unicodedata.normalize("NFC", piece_text.replace("\r\n", "\n").replace("\r", "\n"))
        if "\u1161" not in piece_text:  # a Hangul vowel composes with the jamo before it
            assert norm.text[norm.map(a):norm.map(b)] == want


# ------------------------------------------------------------------ export
def test_export_validates_against_the_xsd_and_has_the_expected_shape(codebook, project_schema):
    data = _export(codebook)
    zf = zipfile.ZipFile(io.BytesIO(data))
    names = zf.namelist()
    assert names[0] == "project.qde"
    assert all(n.startswith("sources/") and n.endswith(".txt") for n in names[1:]) and len(names) == 3
    assert {i.date_time for i in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    xml = zf.read("project.qde").decode("utf-8")
    project_schema.validate(xml)
    assert 'plainTextPath="internal://' in xml
    assert '<Code guid="8d2f083a' in xml and 'name="Mogen"' in xml      # nested, label as name
    assert 'color="#E69F00"' in xml and "<Description>Ruimte om zelf te handelen." in xml
    for user in ("qcode rules", "qcode model v1", "qcode hybrid", "anja"):
        assert f'name="{user}"' in xml
    assert 'name="AMO (family)"' in xml and "<TextValue>De Horizon</TextValue>" in xml
    texts = sorted(zf.read(n).decode("utf-8") for n in names[1:])
    assert texts == sorted([INT01, SURVEY])


def test_export_is_byte_identical_on_rerun(codebook):
    assert _export(codebook) == _export(codebook)
    assert codebook_bytes(codebook) == codebook_bytes(codebook)


def test_qdc_validates_against_the_codebook_xsd(codebook):
    xml = codebook_bytes(codebook, lang="en").decode("utf-8")
    xmlschema.XMLSchema(str(CODEBOOK_XSD)).validate(xml)
    assert 'name="Opportunity"' in xml and '<MemberCode guid="' in xml


def test_export_utf16_offsets(codebook):
    xml = zipfile.ZipFile(io.BytesIO(_export(codebook, offsets=UTF16))).read("project.qde").decode()
    # survey:1 starts after "Meer tijd 👩‍🏫.\n\n": 16 code points, 18 UTF-16 units.
    assert 'startPosition="18" endPosition="44"' in xml
    xml_cp = zipfile.ZipFile(io.BytesIO(_export(codebook))).read("project.qde").decode()
    assert 'startPosition="16" endPosition="42"' in xml_cp


def test_export_refuses_unknown_code(codebook):
    data = coded_tables()
    codings = data.codings.copy()
    codings.loc[0, C.CODE_ID] = "nope"
    with pytest.raises(ExchangeError, match="code 'nope' is not in the codebook"):
        build_project(data.documents, data.segments, codings, codebook)


def test_schema_copies_equal_shared():
    if not SHARED.is_dir():
        pytest.skip("../shared/refi-qda not present")
    for name in ("Project-mrt2019.xsd", "Codebook.xsd"):
        ours = (PROJECT_XSD.parent / name).read_bytes()
        assert ours == (SHARED / name).read_bytes()
        assert b"MIT license" in ours


# ------------------------------------------------------------------ round trip
@pytest.mark.parametrize("offsets", [CODEPOINT, UTF16])
def test_round_trip_keeps_texts_and_codings(tmp_path, codebook, offsets):
    path = _write(tmp_path, "p.qdpx", _export(codebook, offsets=offsets))
    result = import_refi(path, tmp_path / "imp", reference=codebook, offsets=offsets)
    data = coded_tables()
    assert result.texts == {"int01": INT01, "survey": SURVEY}
    assert (tmp_path / "imp" / "raw" / "int01.txt").read_text(encoding="utf-8") == INT01
    seg = data.segments.set_index(C.SEGMENT_ID)
    want = sorted((r[C.DOC_ID], int(seg.loc[r[C.SEGMENT_ID], C.START]),
                   int(seg.loc[r[C.SEGMENT_ID], C.END]), r[C.CODE_ID])
                  for r in data.codings.to_dict("records"))
    got = sorted(zip(result.codings[C.DOC_ID], result.codings[C.START], result.codings[C.END],
                     result.codings[C.CODE_ID]))
    assert got == want
    on_disk = pd.read_csv(tmp_path / "imp" / "codings.csv", keep_default_na=False)
    assert list(on_disk.columns) == [C.DOC_ID, C.START, C.END, C.TEXT, C.CODE_ID, C.CODE_NAME, C.CODER]
    for row in on_disk.to_dict("records"):
        assert result.texts[row[C.DOC_ID]][row[C.START]:row[C.END]] == row[C.TEXT]
    assert set(on_disk[C.CODER]) == {"qcode rules", "qcode model v1", "qcode hybrid", "anja"}
    # The imported codebook loads and keeps the exported GUIDs.
    book = load_codebook(tmp_path / "imp" / "codebook.yaml")
    assert set(book.codes) == set(codebook.codes)
    guid = next(g for g, cid in result.code_ids.items() if cid == "amo.opportunity")
    assert book.codes["amo.opportunity"].guid == guid
    assert guid == make_guid("code", "amo.opportunity")


def test_crlf_vendor_file_survives_import_export_import(tmp_path):
    """NVivo file (CRLF, BOM, UTF-16 offsets) -> import -> export -> import: same result."""
    data, _, _ = nvivo_qdpx()
    first = import_refi(_write(tmp_path, "n.qdpx", data), tmp_path / "a")
    book = load_codebook_lenient(tmp_path / "a" / "codebook.yaml")
    docs = pd.DataFrame([{C.DOC_ID: d, C.PATH: f"{d}.txt", C.FORMAT: "txt", C.ENCODING: "utf-8",
                          C.LANG: "nl", C.N_CHARS: len(t), C.SHA256: "", C.TEXT: t}
                         for d, t in first.texts.items()])
    codings = first.codings.assign(**{C.SEGMENT_ID: "", C.METHOD: "human",
                                      C.RULE: "human:" + first.codings[C.CODER]})
    project, files = build_project(docs, pd.DataFrame(columns=C.SEGMENT_COLUMNS), codings, book,
                                   offsets=UTF16)
    second = import_refi(_write(tmp_path, "again.qdpx", project_bytes(project, files)),
                         tmp_path / "b", offsets=UTF16, reference=book)
    assert second.texts == first.texts
    cols = [C.DOC_ID, C.START, C.END, C.TEXT, C.CODE_ID, C.CODER]
    assert second.codings[cols].equals(first.codings[cols])


def test_import_without_reference_derives_ids_from_names(tmp_path, codebook):
    path = _write(tmp_path, "p.qdpx", _export(codebook, lang="en"))
    result = import_refi(path, tmp_path / "imp")
    assert set(result.code_ids.values()) >= {"agency", "amo", "amo.opportunity", "shared_leadership"}
    problems = validate_codebook(tmp_path / "imp" / "codebook.yaml")
    # Only missing required codes could be reported (this export has all of them).
    assert problems == []


def test_gold_wide_maps_selections_to_overlapping_coded_segments(tmp_path, codebook):
    path = _write(tmp_path, "p.qdpx", _export(codebook))
    data = coded_tables()
    result = import_refi(path, tmp_path / "imp", reference=codebook, segments=data.segments)
    gold = pd.read_csv(tmp_path / "imp" / "gold.csv")
    assert list(gold.columns) == [C.SEGMENT_ID, *codebook.codes]
    assert list(gold[C.SEGMENT_ID]) == ["int01:1", "int01:3", "survey:0", "survey:1"]
    row = gold.set_index(C.SEGMENT_ID).loc["int01:3"]
    assert row["amo"] == 1 and row["amo.opportunity"] == 1 and row["agency"] == 0
    assert result.gold is not None and int(result.gold.iloc[:, 1:].to_numpy().sum()) == 6
    # An evidence-only selection still lands on its segment, never on the neighbour.
    codings = pd.DataFrame([{C.DOC_ID: "int01", C.START: INT01.index("zelf"),
                             C.END: INT01.index("zelf") + 4, C.TEXT: "zelf", C.CODE_ID: "agency",
                             C.CODE_NAME: "x", C.CODER: "a"}])
    g = gold_wide(codings, data.segments, ["agency"]).set_index(C.SEGMENT_ID)
    assert g["agency"].to_dict() == {"int01:1": 1, "int01:3": 0}


# ------------------------------------------------------------------ vendors
def test_nvivo_utf16_offsets_crlf_bom_braced_guids(tmp_path, caplog):
    data, _, expected = nvivo_qdpx()
    path = _write(tmp_path, "nvivo.qdpx", data)
    with caplog.at_level(logging.WARNING):
        result = import_refi(path, tmp_path / "imp")
    assert result.offsets == UTF16
    assert result.texts == {expected["doc_id"]: expected["text"]}
    assert list(result.codings[C.TEXT]) == expected["selections"]
    assert list(result.codings[C.CODE_ID]) == ["tijd", "afsluiting"]
    assert set(result.codings[C.CODER]) == {"Anja de Vries"}
    assert "Beleid.pdf" in caplog.text and "no text" in caplog.text       # PDF: skipped, warned
    assert "NVivoExtension" in caplog.text                               # unknown element: warned
    yaml_text = (tmp_path / "imp" / "codebook.yaml").read_text(encoding="utf-8")
    assert "guid: a1b2c3d4-0000-4000-8000-000000000001" in yaml_text
    assert "color: '#FF0000'" in yaml_text and "definition: Tijd als middel" in yaml_text


def test_nvivo_offsets_read_as_codepoints_would_be_wrong(tmp_path):
    data, _, expected = nvivo_qdpx()
    project, originals = read_refi(_write(tmp_path, "n.qdpx", data))
    wrong = convert(project, originals, offsets=CODEPOINT)
    assert list(wrong.codings[C.TEXT]) != expected["selections"]


def test_auto_offsets_detect_utf16_without_nvivo_origin(tmp_path):
    data, xml, _ = nvivo_qdpx()
    raw = "Interviewer: Hoe?\r\nAnja: Ik 😀 kreeg tijd.\r\nAnja: Klaar."
    old_end = utf16_pos(raw, raw.index("Klaar") + 5)
    full = utf16_pos(raw, len(raw))            # one more than the code point length
    assert full == len(raw) + 1
    xml2 = xml.replace('origin="NVivo 14.23.0"', 'origin="Other"').replace(
        f'endPosition="{old_end}"', f'endPosition="{full}"')
    zf = zipfile.ZipFile(io.BytesIO(data))
    members = {n: zf.read(n) for n in zf.namelist()}
    members["project.qde"] = xml2.encode()
    result = import_refi(_write(tmp_path, "o.qdpx", zip_members(members)), tmp_path / "imp")
    assert result.offsets == UTF16
    assert list(result.codings[C.TEXT]) == ["kreeg tijd", "Klaar."]
    assert any("fit UTF-16" in w for w in result.warnings)


def test_atlas_named_project_file_capital_sources_namespace_variant(tmp_path, caplog):
    data, expected = atlas_qdpx()
    with caplog.at_level(logging.WARNING):
        result = import_refi(_write(tmp_path, "atlas.qdpx", data), tmp_path / "imp")
    assert result.offsets == CODEPOINT
    assert list(result.texts) == ["doc one"]
    assert list(result.codings[C.TEXT]) == [expected["selection"]]   # empty selection skipped
    assert list(result.codings[C.CODE_ID]) == ["agency"] and list(result.codings[C.CODER]) == ["coder1"]
    assert "'missing': no text" in caplog.text


def test_maxqda_codable_parent_codes_and_inline_text(tmp_path):
    data, expected = maxqda_qdpx()
    result = import_refi(_write(tmp_path, "mx.qdpx", data), tmp_path / "imp")
    assert result.texts == {"resp 7": expected["text"]}
    got = list(zip(result.codings[C.CODE_ID], result.codings[C.TEXT]))
    assert got == [("amo", expected["text"]), ("amo.motivation", "wil leren"),
                   ("amo.opportunity", "mag het doen")]
    assert set(result.codings[C.CODER]) == {"unknown"}
    book = (tmp_path / "imp" / "codebook.yaml").read_text(encoding="utf-8")
    assert "- id: amo.motivation" in book
    # Another study's codebook: written with required_codes: [] so it validates as is.
    assert "required_codes: []" in book
    assert validate_codebook(tmp_path / "imp" / "codebook.yaml") == []


def test_qdc_import_writes_codebook_only(tmp_path, codebook):
    # Our export carries id, kind and both labels in the Description, so an import
    # without a reference codebook restores them exactly, whatever the name language.
    for lang in ("en", "nl"):
        path = _write(tmp_path, f"cb_{lang}.qdc", codebook_bytes(codebook, lang=lang))
        result = import_refi(path, tmp_path / f"imp_{lang}")
        assert sorted(p.name for p in (tmp_path / f"imp_{lang}").iterdir()) == ["codebook.yaml"]
        assert sorted(result.code_ids.values()) == sorted(codebook.codes)
        book = load_codebook(tmp_path / f"imp_{lang}" / "codebook.yaml")
        assert list(book.codes) == list(codebook.codes)
        for cid, code in codebook.codes.items():
            assert book.codes[cid].label == code.label, cid
            assert book.codes[cid].kind == code.kind
        assert book.codes["agency"].definition == "Ruimte om zelf te handelen."   # tags stripped
        assert validate_codebook(tmp_path / f"imp_{lang}" / "codebook.yaml") == []
    # A reference codebook maps them too (by GUID).
    mapped = import_refi(path, tmp_path / "ref", reference=codebook)
    assert sorted(mapped.code_ids.values()) == sorted(codebook.codes)


def test_qdc_tags_are_ignored_when_they_do_not_fit():
    from pipeline.exchange.import_ import assign_code_ids
    from pipeline.exchange.model import QCode, split_description, tag_description
    desc = tag_description("Een definitie.", {"id": "amo.ability", "label-nl": "Kunnen",
                                              "label-en": "Ability", "kind": "theme"})
    assert desc.endswith("qcode-label-en: Ability")
    assert split_description(desc) == ("Een definitie.", {
        "id": "amo.ability", "kind": "theme", "label-nl": "Kunnen", "label-en": "Ability"})
    assert split_description("Plain text\nover two lines") == ("Plain text\nover two lines", {})
    # A tagged child moved under another parent in the QDA tool: the tag no longer fits.
    child = QCode(guid="c", name="Kunnen", description=desc)
    ids = assign_code_ids([QCode(guid="p", name="Skills", children=[child])])
    assert ids == {"p": "skills", "c": "skills.kunnen"}
    # A tool that edited a tag into nonsense: falls back to the name.
    bad = QCode(guid="b", name="Trust", description="x\n\nqcode-id: Not An Id")
    assert assign_code_ids([bad]) == {"b": "trust"}


def test_slug_and_duplicate_names():
    assert slug("Gedeeld leiderschap!") == "gedeeld_leiderschap"
    assert slug("Zoë") == "zoe" and slug("2nd try") == "c_2nd_try" and slug("???") == "code"


# ------------------------------------------------------------------ hostile
def _assert_nothing_written(out: Path) -> None:
    assert not out.exists() or not any(out.iterdir())


def test_zip_slip_member_is_refused(tmp_path):
    data = zip_members({"project.qde": "<Project name='x'/>", "../../evil.txt": "x"})
    out = tmp_path / "imp"
    with pytest.raises(ExchangeError, match=r"evil.txt.*zip-slip"):
        import_refi(_write(tmp_path, "e.qdpx", data), out)
    _assert_nothing_written(out)


def test_zip_slip_source_path_is_refused(tmp_path):
    xml = ("<Project name='x'><Sources><TextSource guid='b0000000-0000-4000-8000-000000000001' "
           "name='s' plainTextPath='internal://../../../etc/passwd'/></Sources></Project>")
    out = tmp_path / "imp"
    with pytest.raises(ExchangeError, match=r"e.qdpx: refused: source 's'.*zip-slip"):
        import_refi(_write(tmp_path, "e.qdpx", zip_members({"project.qde": xml})), out)
    _assert_nothing_written(out)


def test_external_entity_is_refused(tmp_path):
    xml = ('<?xml version="1.0"?><!DOCTYPE p [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
           "<Project name='&x;'/>")
    with pytest.raises(ExchangeError, match=r"project.qde: refused: .*entities"):
        import_refi(_write(tmp_path, "x.qdpx", zip_members({"project.qde": xml})), tmp_path / "o")
    _assert_nothing_written(tmp_path / "o")


def test_entity_expansion_is_refused(tmp_path):
    xml = ('<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
           "<CodeBook><Codes/></CodeBook>")
    with pytest.raises(ExchangeError, match=r"b.qdc: refused: .*entities"):
        import_refi(_write(tmp_path, "b.qdc", xml.encode()), tmp_path / "o")


def test_too_many_files_and_too_many_bytes_are_refused(tmp_path):
    many = zip_members({"project.qde": "<Project name='x'/>", **{f"sources/{i}.txt": "x"
                                                                  for i in range(5)}})
    path = _write(tmp_path, "many.qdpx", many)
    with pytest.raises(ExchangeError, match=r"many.qdpx: refused: 6 files .*limit 3"):
        import_refi(path, tmp_path / "o", limits=Limits(max_files=3))
    bomb = zip_members({"project.qde": "<Project name='x'/>", "sources/a.txt": "0" * 5_000_000})
    path = _write(tmp_path, "bomb.qdpx", bomb)
    with pytest.raises(ExchangeError, match=r"bomb.qdpx: refused: member 'sources/a.txt'"):
        import_refi(path, tmp_path / "o")
    with pytest.raises(ExchangeError, match=r"bomb.qdpx: refused: \d+ bytes uncompressed"):
        import_refi(path, tmp_path / "o", limits=Limits(max_total_bytes=1000, max_ratio=10**9))
    _assert_nothing_written(tmp_path / "o")


def test_broken_inputs_give_one_line_errors(tmp_path, codebook):
    with pytest.raises(ExchangeError, match=r"junk.qdpx: not a readable .qdpx zip"):
        import_refi(_write(tmp_path, "junk.qdpx", b"not a zip"), tmp_path / "o")
    with pytest.raises(ExchangeError, match=r"bad.qdpx:project.qde: not well-formed XML"):
        import_refi(_write(tmp_path, "bad.qdpx", zip_members({"project.qde": "<Project"})),
                    tmp_path / "o")
    with pytest.raises(ExchangeError, match=r"none.qdpx: no project .qde file"):
        import_refi(_write(tmp_path, "none.qdpx", zip_members({"a.txt": "x"})), tmp_path / "o")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("x")
    path = _write(tmp_path, "p.qdpx", _export(codebook))
    with pytest.raises(ExchangeError, match=r"full: output folder is not empty"):
        import_refi(path, tmp_path / "full")
    assert hashlib.sha256(path.read_bytes()).hexdigest()   # file untouched, readable
