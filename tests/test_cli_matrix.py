"""End-to-end tests of ``qcode matrix`` on a small coded folder."""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from openpyxl import load_workbook
from test_aggregate import write_coded_fixture

from pipeline.cli import main

CODEBOOK = Path(__file__).resolve().parent.parent / "codebook.yaml"


@pytest.fixture()
def coded(tmp_path):
    return write_coded_fixture(tmp_path / "coded")


def test_matrix_writes_csv_per_matrix_and_a_workbook(tmp_path, coded, capsys):
    out, xlsx = tmp_path / "m", tmp_path / "m.xlsx"
    rc = main(["matrix", "--coded", str(coded), "--out", str(out), "--by", "country",
               "--by", "country,sector", "--value", "share", "--level", "top",
               "--codebook", str(CODEBOOK), "--xlsx", str(xlsx), "--kwic", "ownership"])
    assert rc == 0
    assert "6 segments, 9 codings" in capsys.readouterr().out
    share = pd.read_csv(out / "code_by_country_share.csv", index_col=0)
    assert share.loc["ownership", "BE"] == 0.6667               # CSV: 4 decimals
    assert share.loc["alignment", "NL"] == 0            # codebook code never applied
    two = pd.read_csv(out / "code_by_country_sector_share.csv", header=[0, 1], index_col=0)
    assert ("BE", "secondary") in two.columns
    kwic = pd.read_csv(out / "kwic.csv")
    assert kwic["keyword"].tolist() == ["zelf invullen", "Eigenaarschap", "eigenaarschap"]
    fw = pd.read_csv(out / "framework.csv", index_col=0, keep_default_na=False)
    assert "[b:0]" in fw.loc["b", "ownership"]
    wb = load_workbook(xlsx)
    assert "codebook" in wb.sheetnames and "framework" in wb.sheetnames
    assert wb["code_by_country_share"].freeze_panes == "B2"
    assert wb.properties.modified.year == 1980    # no wall-clock time in the file


def test_workbook_is_byte_identical_between_runs(tmp_path, coded, monkeypatch):
    import time
    args = ["matrix", "--coded", str(coded), "--out", str(tmp_path / "m"), "--by", "country",
            "--codebook", str(CODEBOOK), "-q"]
    assert main(args + ["--xlsx", str(tmp_path / "a.xlsx")]) == 0
    time.sleep(2.1)     # zip timestamps have a 2-second resolution
    assert main(args + ["--xlsx", str(tmp_path / "b.xlsx")]) == 0
    assert (tmp_path / "a.xlsx").read_bytes() == (tmp_path / "b.xlsx").read_bytes()
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    assert main(args + ["--xlsx", str(tmp_path / "c.xlsx")]) == 0
    assert load_workbook(tmp_path / "c.xlsx").properties.created.year == 2023


def test_matrix_filters_and_term_kwic(tmp_path, coded):
    out = tmp_path / "m"
    assert main(["matrix", "--coded", str(coded), "--out", str(out), "--where", "country=BE",
                 "--method", "rules", "--kwic", "eigenaar*", "--kwic-window", "1", "-q"]) == 0
    out = out / "country=BE+method=rules"    # filtered runs write to a subfolder named after the filter
    docs = pd.read_csv(out / "code_by_document_segments.csv", index_col=0)
    assert list(docs.columns) == ["b", "Total"]
    assert "amo" in docs.index and docs.loc["amo", "b"] == 1    # motivation (human) dropped
    kwic = pd.read_csv(out / "kwic.csv")
    assert kwic["right"].tolist()[-1] == "groeide"


@pytest.mark.parametrize("args, message", [
    (["--by", "region"], "cannot group by 'region'"),
    (["--where", "country"], "--where needs COL=VALUE"),
    (["--level", "leaves"], "--level must be one of"),
    (["--per-cell", "0"], "--per-cell must be at least 1"),
])
def test_matrix_user_errors_exit_1_with_a_message(tmp_path, coded, capsys, args, message):
    assert main(["matrix", "--coded", str(coded), "--out", str(tmp_path / "m"), *args]) == 1
    assert message in capsys.readouterr().err


def test_matrix_missing_coded_folder(tmp_path, capsys):
    assert main(["matrix", "--coded", str(tmp_path / "nope")]) == 1
    assert "coded folder not found" in capsys.readouterr().err


def test_filtered_run_writes_a_subfolder_and_keeps_the_unfiltered_files(tmp_path, coded, capsys):
    out = tmp_path / "m"
    assert main(["matrix", "--coded", str(coded), "--out", str(out), "-q"]) == 0
    before = (out / "code_by_document_segments.csv").read_text()
    assert main(["matrix", "--coded", str(coded), "--out", str(out), "--where", "country=BE|NL",
                 "--speaker", "R"]) == 0
    assert (out / "code_by_document_segments.csv").read_text() == before
    sub = out / "country=BE,NL+speaker=R"
    assert list(pd.read_csv(sub / "code_by_document_segments.csv", index_col=0).columns) == [
        "b", "Total"]
    assert str(sub / "framework.csv") in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["country=BE,NL+speaker=R"]


def test_filter_matching_no_segments_is_a_usage_error(tmp_path, coded, capsys):
    out = tmp_path / "m"
    assert main(["matrix", "--coded", str(coded), "--out", str(out), "--where", "country=DE"]) == 1
    err = capsys.readouterr().err
    assert "no segments match country=DE" in err and "Traceback" not in err
    assert not out.exists()


def test_kwic_without_hits_says_so(tmp_path, coded, capsys):
    out = tmp_path / "m"
    assert main(["matrix", "--coded", str(coded), "--out", str(out), "--kwic", "zzzz*", "-q"]) == 0
    assert "no KWIC hits for zzzz*" in capsys.readouterr().err
    assert pd.read_csv(out / "kwic.csv").empty


def test_csv_shares_are_rounded_to_4_decimals(tmp_path, coded):
    out = tmp_path / "m"
    assert main(["matrix", "--coded", str(coded), "--out", str(out), "--value", "share",
                 "--by", "country", "-q"]) == 0
    for name in ("code_by_country_share", "code_by_document_share", "cooccurrence_pairs",
                 "cooccurrence_c"):
        text = (out / f"{name}.csv").read_text()
        decimals = [len(m) for m in re.findall(r"\.(\d+)", text)]
        assert decimals and max(decimals) <= 4, name
    share = pd.read_csv(out / "code_by_country_share.csv", index_col=0)
    assert share.loc["ownership", "BE"] == 0.6667


def test_no_help_text_shows_a_doubled_percent_sign(capsys):
    """argparse %-formats help strings but not descriptions: '%%' in a description shows literally."""
    from pipeline.cli import build_parser

    import argparse

    parser = build_parser()
    names = [n for a in parser._actions if isinstance(a, argparse._SubParsersAction)
             for n in a.choices]
    assert "agreement" in names and "matrix" in names
    for name in names:
        with pytest.raises(SystemExit):
            parser.parse_args([name, "--help"])
        shown = capsys.readouterr().out
        assert "%%" not in shown, name
    with pytest.raises(SystemExit):
        parser.parse_args(["agreement", "--help"])
    assert "bootstrap 95% CIs" in " ".join(capsys.readouterr().out.split())
