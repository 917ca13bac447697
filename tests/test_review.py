"""Tests of pipeline.review (pure review tables) and pipeline.review_io."""
from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from pipeline import columns as C
from pipeline import review as R
from pipeline import review_sheet as RS
from pipeline import review_io as RIO
from pipeline.errors import ReviewError

DOC = "I: Hoe ging het?\nAnja: We mochten het zelf invullen.\nAnja: De directie besliste alles."


def make_segments() -> pd.DataFrame:
    s1, s2 = DOC.index("We mochten"), DOC.index("De directie")
    spans = [(3, 16, "I", "interviewer", False), (s1, DOC.index("\n", s1), "Anja", "respondent", True),
             (s2, len(DOC), "Anja", "respondent", True)]
    rows = []
    for i, (s, e, spk, role, coded) in enumerate(spans):
        text = DOC[s:e]
        rows.append({C.SEGMENT_ID: f"d1:{i}", C.DOC_ID: "d1", C.UNIT: "turn", C.UNIT_INDEX: i,
                     C.TURN: i, C.SPEAKER: spk, C.ROLE: role, C.CODED: coded, C.START: s,
                     C.END: e, C.TIME_START: np.nan, C.TIME_END: np.nan,
                     C.CONTENT_HASH: R.content_hash(text), C.LANG: "nl", C.TEXT: text})
    return pd.DataFrame(rows, columns=C.SEGMENT_COLUMNS)


def make_codings() -> pd.DataFrame:
    s = DOC.index("zelf invullen")
    return pd.DataFrame([
        {C.SEGMENT_ID: "d1:1", C.DOC_ID: "d1", C.CODE_ID: "ownership", C.METHOD: "rules",
         C.SCORE: 1.0, C.RULE: "rule:ownership.nl.1", C.RULES: "ownership.nl.1",
         C.EVIDENCE: "zelf invullen", C.N_MATCHES: 1, C.START: s, C.END: s + 13},
        {C.SEGMENT_ID: "d1:1", C.DOC_ID: "d1", C.CODE_ID: "agency", C.METHOD: "rules",
         C.SCORE: 0.6, C.RULE: "rule:agency.nl.1", C.RULES: "agency.nl.1",
         C.EVIDENCE: "We", C.N_MATCHES: 1, C.START: 23, C.END: 25},
    ], columns=C.CODING_COLUMNS)


CODES = ["agency", "ownership", "alignment"]


def decision(sid, code, dec, ts, h=None, coder="ann"):
    segs = make_segments().set_index(C.SEGMENT_ID)
    return {C.CODER: coder, R.TIMESTAMP: ts, C.SEGMENT_ID: sid,
            C.CONTENT_HASH: h or segs.loc[sid, C.CONTENT_HASH], C.CODE_ID: code,
            R.DECISION: dec, R.MEMO: "", R.SOURCE: "f.xlsx"}


def test_content_hash_matches_segment_module():
    from pipeline.segment import content_hash
    assert R.content_hash("abc") == content_hash("abc") and len(R.content_hash("x")) == 16


def test_build_review_table_rows_and_highlights():
    table = R.build_review_table(make_segments(), make_codings())
    # interviewer segment (coded=False) is not offered; d1:2 has no proposal -> one empty row
    assert list(table[C.SEGMENT_ID]) == ["d1:1", "d1:1", "d1:2"]
    assert list(table[C.CODE_ID]) == ["agency", "ownership", ""]
    own = table.iloc[1]
    (s, e), = own[R.HIGHLIGHTS]
    assert own[C.TEXT][s:e] == "zelf invullen"
    assert table.iloc[2][R.HIGHLIGHTS] == []
    only = R.build_review_table(make_segments(), make_codings(), proposed_only=True)
    assert list(only[C.SEGMENT_ID]) == ["d1:1", "d1:1"]


def test_matches_highlight_every_match():
    m = pd.DataFrame([{C.SEGMENT_ID: "d1:1", C.DOC_ID: "d1", C.CODE_ID: "agency", C.RULE_ID: "r",
                       C.EVIDENCE: "x", C.START: 23, C.END: 25, C.SCORE: 1.0},
                      {C.SEGMENT_ID: "d1:1", C.DOC_ID: "d1", C.CODE_ID: "agency", C.RULE_ID: "r",
                       C.EVIDENCE: "x", C.START: 31, C.END: 34, C.SCORE: 1.0}],
                     columns=C.MATCH_COLUMNS)
    table = R.build_review_table(make_segments(), make_codings(), m)
    assert table.iloc[0][R.HIGHLIGHTS] == [(0, 2), (8, 11)]
    assert R.mark_text("We mochten", [(0, 2)]) == "[[We]] mochten"
    assert R.strip_markers("[[We]] mochten") == "We mochten"


@pytest.mark.parametrize("seed", range(6))
def test_review_batches_equal_the_whole_table(seed):
    """Pieces of a few segments, each from its own codings and matches, concatenated,
    are the whole table; the CSV written piece by piece has the same bytes."""
    rng = np.random.default_rng(seed)
    text = "We mochten het zelf invullen en de directie besliste niets."
    segs = pd.DataFrame([{C.SEGMENT_ID: f"d{k // 4}:{k}", C.DOC_ID: f"d{k // 4}", C.SPEAKER: "R",
                          C.CONTENT_HASH: R.content_hash(text), C.TEXT: text, C.START: 100 * k,
                          C.CODED: bool(rng.random() < 0.8)} for k in range(23)])
    ids = [*segs[C.SEGMENT_ID], "elders:1"]   # codings of a segment the table lacks too
    codings = pd.DataFrame([{C.SEGMENT_ID: (sid := str(rng.choice(ids))),
                             C.CODE_ID: str(rng.choice(CODES)), C.METHOD: "rules",
                             C.SCORE: float(rng.choice([1.0, 0.5, np.nan])), C.RULE: "rule:x",
                             C.EVIDENCE: "zelf", C.START: (a := int(sid.split(":")[1]) * 100 +
                                                         int(rng.integers(0, 40))),
                             C.END: a + int(rng.integers(0, 15))} for _ in range(40)])
    matches = codings[[C.SEGMENT_ID, C.CODE_ID, C.START, C.END]].sample(frac=1.5, replace=True,
                                                                       random_state=seed)
    for m in (None, matches):
        for proposed_only in (False, True):
            whole = R.build_review_table(segs[segs[C.CODED]], codings, m,
                                         proposed_only=proposed_only)
            pieces = list(R.review_batches(segs, codings, m, proposed_only=proposed_only,
                                           batch=3))
            n = -(-int(segs[C.CODED].sum()) // 3)   # empty pieces (proposed_only) are left out
            assert len(pieces) == n if not proposed_only else 1 <= len(pieces) <= n
            pd.testing.assert_frame_equal(pd.concat(pieces, ignore_index=True), whole)
            streamed = b"".join(RIO.to_csv(t, header=k == 0) for k, t in enumerate(pieces))
            assert streamed == RIO.to_csv(whole)
    [nothing] = R.review_batches(segs, codings.iloc[:0], None, proposed_only=True, batch=3)
    assert nothing.empty and list(nothing.columns) == R.EXPORT_COLUMNS + [R.HIGHLIGHTS]
    assert RIO.to_csv(nothing).startswith(b"\xef\xbb\xbfsegment_id,")   # the header, once


def _raw(rows):
    return pd.DataFrame(rows).fillna("")


def test_parse_decisions_keeps_valid_rows_and_reports_bad_ones():
    segs = make_segments()
    h1 = segs.loc[1, C.CONTENT_HASH]
    rows = [
        {C.SEGMENT_ID: "d1:1", C.CONTENT_HASH: h1, C.CODE_ID: "ownership", R.DECISION: "Accept",
         R.ADD_CODES: "alignment", R.MEMO: "clear case", "row": 2},
        {C.SEGMENT_ID: "d1:1", C.CONTENT_HASH: h1, C.CODE_ID: "agency", R.DECISION: "reject", "row": 3},
        {C.SEGMENT_ID: "d1:9", C.CONTENT_HASH: h1, C.CODE_ID: "agency", R.DECISION: "reject", "row": 4},
        {C.SEGMENT_ID: "d1:1", C.CONTENT_HASH: h1, C.CODE_ID: "nonsense", R.DECISION: "accept", "row": 5},
        {C.SEGMENT_ID: "d1:1", C.CONTENT_HASH: h1, C.CODE_ID: "agency", R.DECISION: "maybe", "row": 6},
        {C.SEGMENT_ID: "d1:1", C.CONTENT_HASH: h1, C.CODE_ID: "agency", R.DECISION: "", "row": 7},
        {C.SEGMENT_ID: "d1:2", C.CONTENT_HASH: segs.loc[2, C.CONTENT_HASH], C.CODE_ID: "",
         R.DECISION: "accept", "row": 8},
        {C.SEGMENT_ID: "d1:1", C.CONTENT_HASH: h1, C.CODE_ID: "agency", R.DECISION: "accept",
         R.ADD_CODES: "ghost", "row": 9},
    ]
    dec, problems = RS.parse_decisions(_raw(rows), segments=segs, codes=CODES, coder=" ann ",
                                      timestamp="2026-01-01T00:00:00+00:00", source="f.csv")
    # row 9: the unknown added code is reported, the row's own decision is kept
    assert list(zip(dec[C.CODE_ID], dec[R.DECISION])) == [
        ("ownership", "accept"), ("alignment", "add"), ("agency", "reject"), ("", "reviewed"),
        ("agency", "accept")]
    assert set(dec[C.CODER]) == {"ann"} and dec.iloc[0][R.MEMO] == "clear case"
    assert dec.iloc[1][R.MEMO] == ""   # memo kept once
    msgs = {p.path: p.message for p in problems}
    assert set(msgs) == {"row 4", "row 5", "row 6", "row 9"}
    assert "unknown segment id 'd1:9'" in msgs["row 4"]
    assert "unknown code 'nonsense'" in msgs["row 5"]
    assert "'maybe' is not one of" in msgs["row 6"]
    assert "ghost" in msgs["row 9"] and RS.KEPT_NOTE in msgs["row 9"]
    assert RS.KEPT_NOTE not in msgs["row 5"]
    assert problems[0].format("f.csv") == "f.csv: row 4: " + msgs["row 4"]


def test_parse_decisions_rejects_edited_text():
    segs = make_segments()
    h1 = segs.loc[1, C.CONTENT_HASH]
    rows = [{C.SEGMENT_ID: "d1:1", C.CONTENT_HASH: h1, C.CODE_ID: "agency", R.DECISION: "accept",
             C.TEXT: "We mochten het NIET zelf invullen.", "row": 2},
            {C.SEGMENT_ID: "d1:1", C.CONTENT_HASH: h1, C.CODE_ID: "ownership", R.DECISION: "accept",
             C.TEXT: "We mochten het [[zelf invullen]].", "row": 3}]
    dec, problems = RS.parse_decisions(_raw(rows), segments=segs, codes=CODES, coder="ann",
                                      timestamp="t", source="f.csv")
    assert list(dec[C.CODE_ID]) == ["ownership"]
    assert len(problems) == 1 and "was edited" in problems[0].message
    assert "NIET" not in problems[0].message   # no transcript text in messages


def test_parse_decisions_errors():
    segs = make_segments()
    with pytest.raises(ReviewError, match="--coder"):
        RS.parse_decisions(_raw([{C.SEGMENT_ID: "d1:1", C.CODE_ID: "", R.DECISION: ""}]),
                          segments=segs, codes=CODES, coder=" ", timestamp="t", source="f.csv")
    with pytest.raises(ReviewError, match="f.csv: missing column.*decision"):
        RS.parse_decisions(_raw([{C.SEGMENT_ID: "d1:1", C.CODE_ID: ""}]), segments=segs,
                          codes=CODES, coder="a", timestamp="t", source="f.csv")


def test_final_codings_latest_decision_wins_and_adds():
    segs, cod = make_segments(), make_codings()
    reviews = pd.DataFrame([
        decision("d1:1", "agency", "reject", "2026-01-01T00:00:00"),
        decision("d1:1", "agency", "accept", "2026-01-02T00:00:00", coder="bob"),
        decision("d1:1", "ownership", "reject", "2026-01-01T00:00:00"),
        decision("d1:2", "alignment", "add", "2026-01-01T00:00:00"),
    ], columns=R.REVIEW_COLUMNS)
    res = R.final_codings(cod, reviews, segs)
    got = {(r[C.SEGMENT_ID], r[C.CODE_ID]): (r[R.REVIEW_STATUS], r[C.CODER], r[C.METHOD])
           for r in res.codings.to_dict("records")}
    assert got == {("d1:1", "agency"): ("accepted", "bob", "rules"),
                   ("d1:2", "alignment"): ("added", "ann", "human")}
    added = res.codings[res.codings[C.CODE_ID] == "alignment"].iloc[0]
    assert (added[C.START], added[C.END], added[C.RULE]) == (DOC.index("De"), len(DOC), "human:ann")
    assert res.stale.empty
    assert list(res.codings.columns) == R.FINAL_COLUMNS


def test_stale_decisions_are_flagged_not_applied_nor_dropped():
    segs, cod = make_segments(), make_codings()
    reviews = pd.DataFrame([
        decision("d1:1", "ownership", "reject", "2026-01-01", h="0" * 16),
        decision("d1:2", "alignment", "add", "2026-01-01", h="0" * 16),
        decision("d1:7", "agency", "add", "2026-01-01", h="0" * 16),
    ], columns=R.REVIEW_COLUMNS)
    res = R.final_codings(cod, reviews, segs)
    status = dict(zip(res.codings[C.CODE_ID], res.codings[R.REVIEW_STATUS]))
    assert status == {"agency": "auto", "ownership": "stale"}   # rejection not applied
    assert list(res.stale[C.SEGMENT_ID]) == ["d1:1", "d1:2", "d1:7"]
    reasons = dict(zip(res.stale[C.SEGMENT_ID], res.stale[R.STALE_REASON]))
    assert reasons["d1:1"] == "segment text changed since the decision"
    assert reasons["d1:7"] == "segment no longer exists"
    # a newer decision on the current text supersedes the stale one
    newer = pd.concat([reviews, pd.DataFrame([decision("d1:1", "ownership", "accept", "2026-02-01")])])
    res2 = R.final_codings(cod, newer, segs)
    assert "d1:1" not in set(res2.stale[C.SEGMENT_ID])
    assert "accepted" in set(res2.codings[R.REVIEW_STATUS])


def test_auto_vs_review_feeds_agreement():
    from pipeline.agreement import agreement
    segs, cod = make_segments(), make_codings()
    reviews = pd.DataFrame([
        decision("d1:1", "agency", "reject", "t1"),
        decision("d1:1", "ownership", "accept", "t1"),
        decision("d1:2", "", "reviewed", "t1"),
    ], columns=R.REVIEW_COLUMNS)
    comp = R.auto_vs_review(cod, reviews, segs)
    assert comp.segments == ["d1:1", "d1:2"]
    assert sorted(comp.auto[C.CODE_ID]) == ["", "agency", "ownership"]
    assert sorted(comp.review[C.CODE_ID]) == ["", "ownership"]
    mats = comp.matrices()
    assert mats["auto"].loc["d1:1", "agency"] and not mats["review"].loc["d1:1", "agency"]
    res = agreement(mats, reference="review", n_boot=0)
    assert res.n_units == 2
    summary = R.review_summary(comp).set_index(C.CODE_ID)
    assert summary.loc["agency", "fp"] == 1 and summary.loc["ownership", "precision"] == 1.0
    # half-reviewed segment (one proposal undecided) is not counted
    half = R.auto_vs_review(cod, reviews.iloc[[1]], segs)
    assert half.segments == []


def test_validate_reviews():
    ok = R.validate_reviews(pd.DataFrame([decision("d1:1", "agency", "accept", "t")]), "r.csv")
    assert list(ok.columns) == R.REVIEW_COLUMNS
    bad = pd.DataFrame([decision("d1:1", "agency", "accept", "t"), decision("d1:1", "a", "yes", "t")])
    with pytest.raises(ReviewError, match=r"r.csv, row 3: unknown decision 'yes'"):
        R.validate_reviews(bad, "r.csv")
    with pytest.raises(ReviewError, match="missing column.*coder"):
        R.validate_reviews(bad.drop(columns=[C.CODER]), "r.csv")


# --- review_io ------------------------------------------------------------------

def test_xlsx_roundtrip_rich_text_and_validation(tmp_path):
    from openpyxl import load_workbook
    segs = make_segments()
    segs.loc[2, C.TEXT] = "=SUM(A1) with \x07 bell"   # formula-like and an illegal char
    segs.loc[2, C.CONTENT_HASH] = R.content_hash(segs.loc[2, C.TEXT])
    segs[C.SPEAKER] = segs[C.SPEAKER].astype(object)
    segs.loc[1, C.SPEAKER] = "An\x01ja"   # an illegal char in another column
    table = R.build_review_table(segs, make_codings())
    data = RIO.to_xlsx(table, {"agency": "Agency", "ownership": "Eigenaarschap"})
    path = tmp_path / "r.xlsx"
    path.write_bytes(data)
    wb = load_workbook(path, rich_text=True)
    ws = wb[RIO.SHEET]
    header = [c.value for c in ws[1]]
    text_cell = ws.cell(row=3, column=header.index(C.TEXT) + 1).value
    bold = [str(b.text) for b in text_cell if hasattr(b, "font") and b.font.b]
    assert bold == ["zelf invullen"]
    assert ws.cell(row=4, column=header.index(C.TEXT) + 1).data_type == "s"
    formulas = sorted(dv.formula1 for dv in ws.data_validations.dataValidation)
    assert formulas == ['"accept,reject"', "codes!$A$2:$A$3"]
    assert wb[RIO.CODES_SHEET].sheet_state == "hidden"
    assert [c.value for c in wb[RIO.CODES_SHEET][2]] == ["agency", "Agency"]
    # the sheet's layout: frozen bold header, filter, wrapped text, widths, hidden check column
    assert ws.freeze_panes == "A2" and ws.auto_filter.ref.startswith("A1:")
    assert all(c.font.b for c in ws[1])
    assert ws.cell(row=2, column=header.index(C.TEXT) + 1).alignment.wrap_text
    assert ws.column_dimensions["A"].width == 16
    from openpyxl.utils import get_column_letter
    assert ws.column_dimensions[get_column_letter(header.index(RIO.TEXT_CHECK) + 1)].hidden
    raw, checks = RIO.read_review_file(path)
    assert list(raw["row"]) == [2, 3, 4] and all(checks.values())
    assert raw.loc[2, C.TEXT] == "=SUM(A1) with  bell"
    assert "Anja" in set(raw[C.SPEAKER])


def test_csv_roundtrip_semicolon_and_cp1252(tmp_path):
    table = R.build_review_table(make_segments(), make_codings())
    data = RIO.to_csv(table)
    assert data.startswith(b"\xef\xbb\xbf") and b"[[zelf invullen]]" in data
    raw, checks = RIO.read_csv_bytes(data, tmp_path / "r.csv")
    assert len(raw) == 3 and all(checks.values())
    # Excel (Dutch locale) re-saves with ; and cp1252
    df = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False, encoding="utf-8-sig")
    df.loc[0, R.DECISION] = "reject"
    df.loc[1, C.TEXT] = "Wé mochten het anders"
    excel = df.to_csv(sep=";", index=False).encode("cp1252")
    raw2, checks2 = RIO.read_csv_bytes(excel, tmp_path / "r.csv")
    assert raw2.loc[0, R.DECISION] == "reject"
    assert checks2 == {2: True, 3: False, 4: True}


@pytest.mark.parametrize("name,data,msg", [
    ("r.xlsx", b"not a zip", "not a readable .xlsx"),
    ("r.csv", b"a,b\n1,2\n", "not a review file"),
    ("r.csv", b"\x81\x8d\x8f\x90\x9d", "cannot decode"),
    ("r.ods", b"", "review files are .xlsx or .csv"),
])
def test_read_review_file_errors(tmp_path, name, data, msg):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(ReviewError, match=msg):
        RIO.read_review_file(path)


def test_read_xlsx_wrong_sheet(tmp_path):
    from openpyxl import Workbook
    wb = Workbook()
    wb.active.title = "Blad1"
    path = tmp_path / "r.xlsx"
    wb.save(path)
    with pytest.raises(ReviewError, match=r"no sheet named 'review' \(found: 'Blad1'\)"):
        RIO.read_review_file(path)
    with pytest.raises(ReviewError, match="cannot read"):
        RIO.read_review_file(tmp_path / "missing.csv")


def test_add_codes_by_label_any_language_and_case():
    class Code:
        def __init__(self, nl, en):
            self.label = {"nl": nl, "en": en}

    class Book:
        codes = {"ownership": Code("Eigenaarschap", "Ownership"),
                 "alignment": Code("Afstemming", "Alignment"),
                 "shared_leadership": Code("Gedeeld leiderschap", "Shared leadership")}

    known = set(Book.codes)
    aliases = RS.code_aliases(Book(), known)
    assert RS.resolve_add_codes("eigenaarschap; ALIGNMENT", known, aliases) == (
        ["ownership", "alignment"], [])
    assert RS.resolve_add_codes("Shared  leadership, gedeeld leiderschap", known, aliases) == (
        ["shared_leadership"], [])
    assert RS.resolve_add_codes("ownership alignment", known, aliases) == (   # old: ids by spaces
        ["ownership", "alignment"], [])
    assert RS.resolve_add_codes("Ownership; Leiderschap", known, aliases) == (
        ["ownership"], ["Leiderschap"])
