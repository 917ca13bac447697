"""End-to-end tests of `qcode review export|import|apply|status`."""
from __future__ import annotations

import pandas as pd
import pytest
from openpyxl import load_workbook

from pipeline import columns as C
from pipeline import review as R
from pipeline.cli import main
from pipeline.store import CodedData, output_lock, write_coded

from test_review import make_codings, make_segments


@pytest.fixture
def coded(tmp_path):
    out = tmp_path / "coded"
    write_coded(out, CodedData(documents=pd.DataFrame(columns=C.DOCUMENT_COLUMNS),
                               segments=make_segments(), codings=make_codings(),
                               manifest={"run": 1}))
    return out


def _fill(path, updates):
    """Fill in decision cells of an exported workbook like a coder would."""
    wb = load_workbook(path)
    ws = wb["review"]
    header = [c.value for c in ws[1]]
    for row, values in updates.items():
        for name, value in values.items():
            ws.cell(row=row, column=header.index(name) + 1, value=value)
    wb.save(path)


def test_export_import_apply_roundtrip(coded, tmp_path, capsys):
    sheet = tmp_path / "review.xlsx"
    nocb = ["--codebook", str(tmp_path / "none.yaml")]
    assert main(["review", "export", "--coded", str(coded), "--out", str(sheet), *nocb]) == 0
    assert "3 rows to review" in capsys.readouterr().out
    _fill(sheet, {2: {"decision": "reject", "memo": "only 'we'"},
                  3: {"decision": "accept"},
                  4: {"add_codes": "ownership"}})
    assert main(["review", "import", str(sheet), "--coder", "ann", "--coded", str(coded), *nocb]) == 0
    reviews = pd.read_csv(coded / C.REVIEWS_FILE, dtype=str, keep_default_na=False)
    assert list(reviews.columns) == R.REVIEW_COLUMNS
    assert list(zip(reviews[C.SEGMENT_ID], reviews[C.CODE_ID], reviews[R.DECISION])) == [
        ("d1:1", "agency", "reject"), ("d1:1", "ownership", "accept"), ("d1:2", "ownership", "add")]
    assert set(reviews[C.CODER]) == {"ann"} and set(reviews[R.SOURCE]) == {"review.xlsx"}
    assert main(["review", "apply", "--coded", str(coded)]) == 0
    final = pd.read_parquet(coded / "final_codings.parquet")
    assert list(zip(final[C.SEGMENT_ID], final[C.CODE_ID], final[R.REVIEW_STATUS])) == [
        ("d1:1", "ownership", "accepted"), ("d1:2", "ownership", "added")]
    assert (coded / "final_codings.csv").exists()
    auto = pd.read_csv(coded / "reviewed_auto.csv", keep_default_na=False)
    # d1:2 had no proposal: reviewed (a code was added), auto coded nothing there
    assert sorted(zip(auto[C.SEGMENT_ID], auto[C.CODE_ID])) == [
        ("d1:1", "agency"), ("d1:1", "ownership"), ("d1:2", "")]
    human = pd.read_csv(coded / "reviewed_human.csv", keep_default_na=False)
    assert sorted(zip(human[C.SEGMENT_ID], human[C.CODE_ID])) == [("d1:1", "ownership"), ("d1:2", "ownership")]
    # the auto-vs-review tables feed `qcode agreement` directly
    capsys.readouterr()
    assert main(["agreement", str(coded / "reviewed_auto.csv"), str(coded / "reviewed_human.csv"),
                 "--names", "auto,review", "--reference", "review", "--level", "none",
                 "--boot", "0", "--out", str(tmp_path / "agree.csv")]) == 0
    agree = pd.read_csv(tmp_path / "agree.csv")
    assert {"agency", "ownership"} <= set(agree[C.CODE_ID])
    capsys.readouterr()
    assert main(["review", "status", "--coded", str(coded)]) == 0
    out = capsys.readouterr().out
    assert "3 decision(s)" in out and "agency" in out


def test_import_reports_bad_rows_keeps_good_and_appends_only(coded, tmp_path, capsys):
    sheet = tmp_path / "r.csv"
    nocb = ["--codebook", str(tmp_path / "none.yaml")]
    assert main(["review", "export", "--coded", str(coded), "--out", str(sheet), *nocb]) == 0
    df = pd.read_csv(sheet, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    df.loc[0, "decision"] = "accept"
    df.loc[1, "decision"] = "accept"
    df.loc[1, "text"] = "We mochten NIETS."          # edited text
    df.loc[2, "add_codes"] = "nonexistent"
    df.to_csv(sheet, index=False)
    before = b"coder,timestamp,segment_id,content_hash,code_id,decision,memo,source\n" \
             b"old,2020-01-01,d1:1," + make_segments().loc[1, C.CONTENT_HASH].encode() + \
             b",agency,reject,,x.csv"          # no final newline: appended cleanly
    (coded / C.REVIEWS_FILE).write_bytes(before)
    code = main(["review", "import", str(sheet), "--coder", "bob", "--coded", str(coded), *nocb])
    assert code == 2
    err = capsys.readouterr().err
    assert "r.csv: row 3: the text of segment 'd1:1' was edited" in err
    assert "r.csv: row 4: unknown code(s) to add: 'nonexistent'" in err
    assert "NIETS" not in err
    after = (coded / C.REVIEWS_FILE).read_bytes()
    assert after.startswith(before + b"\n")
    reviews = pd.read_csv(coded / C.REVIEWS_FILE, dtype=str, keep_default_na=False)
    assert list(reviews[C.CODER]) == ["old", "bob"]
    # a re-run of the coder never touches reviews.csv; neither does apply
    assert main(["review", "apply", "--coded", str(coded)]) == 0
    assert (coded / C.REVIEWS_FILE).read_bytes() == after


def test_stale_after_text_change(coded, tmp_path, capsys):
    segs = make_segments()
    old_hash = segs.loc[1, C.CONTENT_HASH]
    (coded / C.REVIEWS_FILE).write_text(
        "coder,timestamp,segment_id,content_hash,code_id,decision,memo,source\n"
        f"ann,2026-01-01,d1:1,{old_hash},ownership,reject,,r.xlsx\n", encoding="utf-8")
    segs.loc[1, C.TEXT] = "We mochten het zelf NIET invullen."
    segs.loc[1, C.CONTENT_HASH] = R.content_hash(segs.loc[1, C.TEXT])
    write_coded(coded, CodedData(documents=pd.DataFrame(columns=C.DOCUMENT_COLUMNS),
                                 segments=segs, codings=make_codings(), manifest={"run": 2}))
    assert main(["review", "apply", "--coded", str(coded)]) == 2
    assert "1 decision(s) are stale" in capsys.readouterr().err
    stale = pd.read_csv(coded / R.STALE_FILE)
    assert list(stale[C.CODE_ID]) == ["ownership"]
    final = pd.read_csv(coded / "final_codings.csv", keep_default_na=False)
    assert dict(zip(final[C.CODE_ID], final[R.REVIEW_STATUS]))["ownership"] == "stale"


def test_errors(coded, tmp_path, capsys):
    assert main(["review", "export", "--coded", str(coded), "--out", str(tmp_path / "r.ods"),
                 "--codebook", str(tmp_path / "x.yaml")]) == 1
    assert "must end in .xlsx or .csv" in capsys.readouterr().err
    (coded / C.REVIEWS_FILE).write_text("coder,decision\nann,accept\n")
    assert main(["review", "apply", "--coded", str(coded)]) == 1
    assert "reviews.csv: missing column(s) timestamp" in capsys.readouterr().err
    (coded / C.REVIEWS_FILE).unlink()
    sheet = tmp_path / "r.csv"
    sheet.write_text("segment_id,code_id,decision\nd1:1,agency,accept\n")
    with output_lock(coded):
        assert main(["review", "import", str(sheet), "--coder", "a", "--coded", str(coded),
                     "--codebook", str(tmp_path / "x.yaml")]) == 1
    assert "another qcode run" in capsys.readouterr().err
    assert not (coded / C.REVIEWS_FILE).exists()


def test_import_add_codes_by_label_and_unknown_label_keeps_row(coded, tmp_path, capsys):
    from test_exchange_fixtures import make_codebook
    make_codebook(tmp_path)
    cb = ["--codebook", str(tmp_path / "codebook.yaml")]
    sheet = tmp_path / "r.csv"
    assert main(["review", "export", "--coded", str(coded), "--out", str(sheet), *cb]) == 0
    df = pd.read_csv(sheet, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    df.loc[0, "decision"] = "reject"
    df.loc[1, "decision"] = "accept"
    df.loc[1, "add_codes"] = "afstemming; Gedeeld Leiderschap; Leiderschapp"   # nl labels + typo
    df.loc[2, "add_codes"] = "Ownership"                                       # en label
    df.to_csv(sheet, index=False)
    capsys.readouterr()
    assert main(["review", "import", str(sheet), "--coder", "ann", "--coded", str(coded), *cb]) == 2
    cap = capsys.readouterr()
    assert "r.csv: row 3: unknown code(s) to add: 'Leiderschapp'" in cap.err
    assert "row's other decisions are kept" in cap.err and "row skipped" not in cap.err
    assert "1 unknown added code(s) ignored" in cap.out and "skipped" not in cap.out
    reviews = pd.read_csv(coded / C.REVIEWS_FILE, dtype=str, keep_default_na=False)
    assert list(zip(reviews[C.SEGMENT_ID], reviews[C.CODE_ID], reviews[R.DECISION])) == [
        ("d1:1", "agency", "reject"), ("d1:1", "ownership", "accept"),
        ("d1:1", "alignment", "add"), ("d1:1", "shared_leadership", "add"),
        ("d1:2", "ownership", "add")]


@pytest.mark.parametrize("argv", [["review"], ["review", "export"], ["review", "import"],
                                  ["review", "apply"], ["review", "status"], ["pseudonymise"]])
def test_help_texts_are_plain_text(argv, capsys):
    assert main([*argv, "--help"]) == 0
    out = capsys.readouterr().out
    assert "usage:" in out
    assert "``" not in out and ":func:" not in out and ":class:" not in out
