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
