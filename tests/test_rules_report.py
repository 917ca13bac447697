"""`qcode rules-report`: which rules fire, which never do."""
import pandas as pd

from pipeline import columns as C
from pipeline.cli import main
from pipeline.codebook import load_codebook
from pipeline.rules_report import rules_report, summarise
from test_cli_coding import MINI_CODEBOOK


def test_counts_never_fired_and_vetoes(tmp_path):
    (tmp_path / "cb.yaml").write_text(MINI_CODEBOOK)
    book = load_codebook(tmp_path / "cb.yaml")
    matches = pd.DataFrame({C.SEGMENT_ID: ["d:1", "d:1", "d:3"], C.RULE_ID: ["agency.nl.1"] * 2
                            + ["amo.opportunity.nl.1"]})
    codings = pd.DataFrame({C.RULES: ["agency.nl.1", ""]})
    segments = pd.DataFrame({C.CODED: [True, False], C.LANG: ["nl", "en"]})
    report = rules_report(book, matches, codings, segments).set_index(C.RULE_ID)
    assert report.loc["agency.nl.1", "n_matches"] == 2
    assert report.loc["agency.nl.1", "n_segments"] == 1
    assert report.loc["agency.nl.1", "n_codings"] == 1
    assert report.loc["ownership.nl.1", "fired"] == False  # noqa: E712 - object column
    assert report.loc["agency.en.1", "lang_in_data"] == False  # noqa: E712 - no coded English
    assert report.loc["ownership.nl.2", "kind"] == "exclude"
    assert pd.isna(report.loc["ownership.nl.2", "n_matches"])
    lines = summarise(report.reset_index())
    assert "agency: 1 of 1 rules fired; most: agency.nl.1 (2)" in lines
    assert "  never fired: ownership.nl.1" in lines


def test_cli_rules_report_end_to_end(tmp_path, capsys):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "a.txt").write_text("I: Vraag?\nR: We mochten het zelf invullen.\n", encoding="utf-8")
    (tmp_path / "cb.yaml").write_text(MINI_CODEBOOK)
    cb, out = str(tmp_path / "cb.yaml"), str(tmp_path / "coded")
    assert main(["code", str(raw), "--out", out, "--codebook", cb, "--quiet"]) == 0
    assert main(["rules-report", "--coded", out, "--codebook", cb,
                 "--out", str(tmp_path / "rr.csv")]) == 0
    printed = capsys.readouterr().out
    assert "agency: 1 of 1 rules fired" in printed
    table = pd.read_csv(tmp_path / "rr.csv")
    assert set(table[C.CODE_ID]) >= {"agency", "ownership", "amo.opportunity"}
