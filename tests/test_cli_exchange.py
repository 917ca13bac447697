"""``qcode export`` / ``qcode import`` end to end on tmp_path."""
from __future__ import annotations

import zipfile

import pandas as pd
import xmlschema

from pipeline import columns as C
from pipeline.agreement import to_matrix
from pipeline.cli import main
from pipeline.codebook import load_codebook
from pipeline.exchange import CODEBOOK_XSD, PROJECT_XSD
from test_exchange_fixtures import INT01, make_codebook, make_coded, nvivo_qdpx, zip_members


def test_export_import_round_trip_via_cli(tmp_path, capsys):
    make_codebook(tmp_path)
    coded = make_coded(tmp_path)
    cb = str(tmp_path / "codebook.yaml")
    qdpx, qdc = tmp_path / "out" / "study.qdpx", tmp_path / "out" / "codes.qdc"
    assert main(["export", str(coded), "--qdpx", str(qdpx), "--qdc", str(qdc), "--codebook", cb]) == 0
    out = capsys.readouterr().out
    assert "2 sources, 4 coded selections" in out and "8 codes" in out
    xmlschema.XMLSchema(str(PROJECT_XSD)).validate(zipfile.ZipFile(qdpx).read("project.qde").decode())
    xmlschema.XMLSchema(str(CODEBOOK_XSD)).validate(str(qdc))
    first = qdpx.read_bytes()
    assert main(["export", str(coded), "--qdpx", str(qdpx), "--codebook", cb]) == 0
    assert qdpx.read_bytes() == first                       # deterministic re-export

    imp = tmp_path / "gold"
    assert main(["import", str(qdpx), "--out", str(imp), "--codebook", cb,
                 "--segments", str(coded)]) == 0
    assert "imported 2 texts, 6 codings" in capsys.readouterr().out
    assert (imp / "raw" / "int01.txt").read_text(encoding="utf-8") == INT01
    assert set(load_codebook(imp / "codebook.yaml").codes) == set(load_codebook(cb).codes)
    codings = pd.read_csv(imp / "codings.csv", keep_default_na=False)
    assert len(codings) == 6 and set(codings[C.CODE_ID]) >= {"ownership", "amo.opportunity"}
    # gold.csv is the wide table qcode agreement reads; codings.csv needs the segments.
    gold = to_matrix(pd.read_csv(imp / "gold.csv"), name="gold")
    assert gold.matrix.loc["int01:3", "amo"] and not gold.matrix.loc["int01:3", "agency"]
    assert gold.matrix.loc["survey:1", "shared_leadership"]


def test_import_vendor_file_via_cli(tmp_path, capsys):
    data, _, expected = nvivo_qdpx()
    path = tmp_path / "nvivo.qdpx"
    path.write_bytes(data)
    assert main(["import", str(path), "--out", str(tmp_path / "o")]) == 0
    assert "(offsets: utf16)" in capsys.readouterr().out
    text = (tmp_path / "o" / "raw" / f"{expected['doc_id']}.txt").read_bytes()
    assert b"\r" not in text and not text.startswith(b"\xef\xbb\xbf")


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["export", str(tmp_path)]) == 1
    assert "give --qdpx FILE and/or --qdc FILE" in capsys.readouterr().err
    evil = tmp_path / "evil.qdpx"
    evil.write_bytes(zip_members({"project.qde": "<Project name='x'/>", "/etc/cron.d/x": "x"}))
    assert main(["import", str(evil), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "evil.qdpx: refused" in err and "zip-slip" in err
    assert not (tmp_path / "o").exists()
    assert main(["import", str(tmp_path / "missing.qdpx"), "--out", str(tmp_path / "o")]) == 1
    assert "missing.qdpx: file not found" in capsys.readouterr().err


def _users_by_code(qdpx) -> dict[tuple[str, str], set[str]]:
    """(source name, code name) -> REFI users coding it, read from the written project."""
    from pipeline.exchange.model import walk_codes
    from pipeline.exchange.xml_read import project_from_xml
    from pipeline.exchange.qdpx_io import parse_xml
    project = project_from_xml(parse_xml(zipfile.ZipFile(qdpx).read("project.qde"), "t"), print)
    names = {c.guid: c.name for c, _ in walk_codes(project.codes)}
    out: dict[tuple[str, str], set[str]] = {}
    for src in project.sources:
        for sel in src.selections:
            for c in sel.codings:
                out.setdefault((src.name, names[c.code_guid]), set()).add(project.users[c.user_guid])
    return out


def test_export_uses_the_reviewed_final_coding(tmp_path, capsys):
    from pipeline import review as R
    from pipeline.store import load_coded
    make_codebook(tmp_path)
    coded = make_coded(tmp_path)
    cb = str(tmp_path / "codebook.yaml")
    segs = load_coded(coded).segments.set_index(C.SEGMENT_ID)
    h = segs[C.CONTENT_HASH]
    rows = [("int01:1", h["int01:1"], "ownership", "accept"),
            ("int01:1", h["int01:1"], "agency", "reject"),
            ("int01:3", h["int01:3"], "alignment", "add"),
            ("survey:0", "0" * 16, "amo.opportunity", "accept")]   # stale: text changed since
    pd.DataFrame([{C.CODER: "Eline", R.TIMESTAMP: "2024-01-01T00:00:00+00:00", C.SEGMENT_ID: s,
                   C.CONTENT_HASH: hh, C.CODE_ID: c, R.DECISION: d, R.MEMO: "", R.SOURCE: "r.csv"}
                  for s, hh, c, d in rows]).to_csv(coded / C.REVIEWS_FILE, index=False)
    assert main(["review", "apply", "--coded", str(coded)]) == 2   # 2: a stale decision
    capsys.readouterr()

    qdpx = tmp_path / "final.qdpx"
    assert main(["export", str(coded), "--qdpx", str(qdpx), "--codebook", cb, "--lang", "en"]) == 0
    cap = capsys.readouterr()
    assert "note: exporting the reviewed coding" in cap.out
    assert "1 coding(s) left out" in cap.err and "stale" in cap.err
    users = _users_by_code(qdpx)
    assert users[("int01", "Ownership")] == {"Eline"}           # accepted: the reviewer
    assert ("int01", "Agency") not in users                       # rejected: left out
    assert users[("int01", "Alignment")] == {"Eline"}            # added by the reviewer
    assert ("survey", "Opportunity") not in users                 # stale: left out
    assert users[("int01", "Opportunity")] == {"qcode rules"}    # not reviewed: the method
    assert users[("survey", "Shared leadership")] == {"qcode hybrid"}
    desc = zipfile.ZipFile(qdpx).read("project.qde").decode()
    assert "accepted by Eline (proposed by qcode rules)" in desc and "added by Eline" in desc

    auto = tmp_path / "auto.qdpx"
    assert main(["export", str(coded), "--qdpx", str(auto), "--codebook", cb, "--lang", "en",
                 "--auto"]) == 0
    assert "note:" not in capsys.readouterr().out
    users = _users_by_code(auto)
    assert users[("int01", "Agency")] == {"qcode model v1"} and ("int01", "Alignment") not in users
    assert users[("int01", "Ownership")] == {"qcode rules"}
    xmlschema.XMLSchema(str(PROJECT_XSD)).validate(zipfile.ZipFile(qdpx).read("project.qde").decode())


def test_export_final_without_review_is_a_clear_error(tmp_path, capsys):
    make_codebook(tmp_path)
    coded = make_coded(tmp_path)
    assert main(["export", str(coded), "--qdpx", str(tmp_path / "x.qdpx"), "--final",
                 "--codebook", str(tmp_path / "codebook.yaml")]) == 1
    assert "qcode review apply" in capsys.readouterr().err
    assert not (tmp_path / "x.qdpx").exists()


def test_qdc_round_trip_without_codebook_keeps_ids_labels_and_validates(tmp_path, capsys):
    original = make_codebook(tmp_path)
    qdc = tmp_path / "codes.qdc"
    assert main(["export", "--qdc", str(qdc), "--codebook", str(tmp_path / "codebook.yaml"),
                 "--lang", "en"]) == 0
    assert main(["import", str(qdc), "--out", str(tmp_path / "imp")]) == 0
    assert main(["validate", str(tmp_path / "imp" / "codebook.yaml")]) == 0
    back = load_codebook(tmp_path / "imp" / "codebook.yaml")
    assert list(back.codes) == list(original.codes)          # agency stays agency
    assert back.codes["agency"].label == {"nl": "Handelingsruimte", "en": "Agency"}
    assert back.codes["amo.opportunity"].label == original.codes["amo.opportunity"].label
