"""Tests of pipeline.aggregate on a small hand-made corpus whose numbers are counted by hand."""
from __future__ import annotations

import io

import pandas as pd
import pytest

from pipeline import aggregate as A
from pipeline import columns as C
from pipeline.errors import UsageError


def _segments() -> pd.DataFrame:
    # doc a (NL, primary): 4 segments, the interviewer turn is not coded.
    # doc b (BE, secondary): 3 segments.
    rows = [
        ("a:0", "a", 0, "I", "interviewer", False, "Hoe ging het?", "NL", "primary"),
        ("a:1", "a", 1, "R1", "respondent", True, "We mochten het zelf invullen met het team", "NL", "primary"),
        ("a:2", "a", 2, "R1", "respondent", True, "De directie besliste alles", "NL", "primary"),
        ("a:3", "a", 3, "R2", "respondent", True, "Ik leerde nieuwe vaardigheden", "NL", "primary"),
        ("b:0", "b", 0, "R", "respondent", True, "Eigenaarschap voelde ik niet echt", "BE", "secondary"),
        ("b:1", "b", 1, "R", "respondent", True, "Geen tijd, geen ruimte", "BE", "secondary"),
        ("b:2", "b", 2, "R", "respondent", True, "Het team koos zelf de aanpak en eigenaarschap groeide", "BE", "secondary"),
    ]
    df = pd.DataFrame(rows, columns=[C.SEGMENT_ID, C.DOC_ID, C.UNIT_INDEX, C.SPEAKER, C.ROLE,
                                     C.CODED, C.TEXT, "country", "sector"])
    df[C.START] = 0
    df[C.END] = df[C.TEXT].str.len()
    return df


def _codings() -> pd.DataFrame:
    texts = dict(zip(_segments()[C.SEGMENT_ID], _segments()[C.TEXT]))
    rows = [  # segment, code, score, n_matches, evidence
        ("a:1", "ownership", 0.9, 3, "zelf invullen"),
        ("a:1", "agency", 0.6, 1, "We"),
        ("a:2", "shared_leadership", 0.5, 1, "directie"),
        ("a:3", "amo.ability", 0.8, 1, "vaardigheden"),
        ("b:0", "ownership", 1.0, 1, "Eigenaarschap"),
        ("b:1", "amo.opportunity", 0.7, 2, "tijd"),
        ("b:2", "ownership", 0.95, 2, "eigenaarschap"),
        ("b:2", "agency", 0.7, 1, "koos zelf"),
        ("b:2", "amo.motivation", 0.5, 1, "groeide"),
    ]
    out = []
    for sid, code, score, n, ev in rows:
        start = texts[sid].index(ev)   # segment starts at offset 0 in this fixture
        out.append((sid, sid[0], code, score, n, start, start + len(ev)))
    df = pd.DataFrame(out, columns=[C.SEGMENT_ID, C.DOC_ID, C.CODE_ID, C.SCORE, C.N_MATCHES,
                                    C.START, C.END])
    df[C.METHOD] = ["rules"] * 8 + ["human"]
    return df


class _Code:
    def __init__(self, cid, color=None):
        self.id, self.kind, self.color, self.definition = cid, "theme", color, f"def {cid}"


class FakeCodebook:
    """Just the Codebook surface aggregate uses: ordered ``.codes`` and ``.label``."""

    def __init__(self):
        ids = ["agency", "ownership", "alignment", "shared_leadership", "amo",
               "amo.ability", "amo.motivation", "amo.opportunity"]
        self.codes = {i: _Code(i) for i in ids}

    def label(self, cid, lang="nl"):
        return f"{cid.upper()}-{lang}"


def test_segments_matrix_by_document_counts_by_hand():
    m = A.code_by_document(_segments(), _codings())
    assert list(m.columns) == ["a", "b"]
    assert m.loc["ownership"].tolist() == [1, 2]
    assert m.loc["agency"].tolist() == [1, 1]
    assert m.loc["amo.ability"].tolist() == [1, 0]
    assert m.dtypes.eq("int64").all()


def test_codebook_fixes_row_order_and_adds_unused_codes():
    m = A.theme_matrix(_segments(), _codings(), by="country", level="top",
                       codebook=FakeCodebook())
    assert list(m.index) == ["agency", "ownership", "alignment", "shared_leadership", "amo"]
    assert m.loc["alignment"].tolist() == [0, 0]
    # amo rolls up: b has opportunity (b:1) and motivation (b:2) -> 2 segments; a has ability.
    assert m.loc["amo", "BE"] == 2 and m.loc["amo", "NL"] == 1


def test_level_all_counts_parent_once_per_segment():
    cod = pd.concat([_codings(), pd.DataFrame([{C.SEGMENT_ID: "b:1", C.DOC_ID: "b",
                                                C.CODE_ID: "amo.ability", C.SCORE: 0.6}])])
    m = A.theme_matrix(_segments(), cod, by=C.DOC_ID, level="all")
    assert m.loc["amo", "b"] == 2          # b:1 (two children) counted once, b:2 once
    assert m.loc["amo.ability", "b"] == 1


def test_share_uses_coded_segments_of_the_group_as_denominator():
    seg, cod = A.filter_coded(_segments(), _codings())
    m = A.theme_matrix(seg, cod, by="country", value="share")
    assert m.loc["ownership", "BE"] == pytest.approx(2 / 3)
    assert m.loc["ownership", "NL"] == pytest.approx(1 / 3)   # interviewer turn excluded


def test_documents_and_words_per_1000():
    seg, cod = A.filter_coded(_segments(), _codings())
    docs = A.theme_matrix(seg, cod, by="sector", value="documents", total=True)
    assert docs.loc["ownership"].tolist() == [1, 1, 2]
    words = A.theme_matrix(seg, cod, by=C.DOC_ID, value="words_per_1000")
    # doc a coded words: 8 + 4 + 4 = 16; ownership sits in a:1 (8 words)
    assert words.loc["ownership", "a"] == pytest.approx(8 / 16 * 1000)


def test_two_attributes_give_multiindex_columns():
    m = A.theme_matrix(_segments(), _codings(), by=["country", "sector"])
    assert m.columns.names == ["country", "sector"]
    assert ("BE", "secondary") in m.columns
    flat = A.flatten_columns(m)
    assert "BE · secondary" in flat.columns


def test_speaker_matrix_keeps_speakers_of_different_documents_apart():
    seg, cod = A.filter_coded(_segments(), _codings())
    m = A.code_by_speaker(seg, cod)
    assert list(m.columns) == ["a/R1", "a/R2", "b/R"]
    assert m.loc["amo.ability", "a/R2"] == 1


def test_filters_by_attribute_speaker_method_and_unknown_attribute():
    seg, cod = A.filter_coded(_segments(), _codings(), where={"country": "BE"}, methods=["rules"])
    assert set(seg[C.DOC_ID]) == {"b"}
    assert "amo.motivation" not in set(cod[C.CODE_ID])
    seg, cod = A.filter_coded(_segments(), _codings(), speakers=["R2"], codes=["amo"])
    assert cod[C.CODE_ID].tolist() == ["amo.ability"]
    with pytest.raises(UsageError, match="unknown attribute 'region'.*country, sector"):
        A.filter_coded(_segments(), _codings(), where={"region": "x"})


def test_matrix_errors_name_the_problem():
    with pytest.raises(UsageError, match="cannot group by 'region'"):
        A.theme_matrix(_segments(), _codings(), by="region")
    with pytest.raises(UsageError, match="unknown matrix value 'median'"):
        A.theme_matrix(_segments(), _codings(), value="median")
    with pytest.raises(UsageError, match="one or two"):
        A.theme_matrix(_segments(), _codings(), by=["country", "sector", C.DOC_ID])
    with pytest.raises(UsageError, match="unknown level"):
        A.apply_level(_codings(), "deep")


def test_cooccurrence_within_segment():
    seg, cod = A.filter_coded(_segments(), _codings())
    pairs = A.cooccurrence(seg, cod, level="top")
    row = pairs[(pairs.code_a == "ownership") & (pairs.code_b == "agency")]
    if row.empty:
        row = pairs[(pairs.code_a == "agency") & (pairs.code_b == "ownership")]
    r = row.iloc[0]
    # ownership in a:1, b:0, b:2 (3); agency in a:1, b:2 (2); both in a:1 and b:2
    assert (r.n_a + r.n_b, r.n_ab) == (5, 2)
    assert r.jaccard == pytest.approx(2 / 3)
    assert r.c_coefficient == pytest.approx(2 / (5 - 2))
    mat = A.cooccurrence_matrix(pairs, "count")
    assert mat.loc["ownership", "ownership"] == 3
    assert (mat.to_numpy() == mat.to_numpy().T).all()


def test_cooccurrence_window_and_imbalance_flag():
    seg, cod = A.filter_coded(_segments(), _codings())
    within = A.cooccurrence(seg, cod, level="top").set_index(["code_a", "code_b"])
    wide = A.cooccurrence(seg, cod, level="top", window=1).set_index(["code_a", "code_b"])
    key = ("shared_leadership", "amo") if ("shared_leadership", "amo") in within.index \
        else ("amo", "shared_leadership")
    assert within.loc[key, "n_ab"] == 0
    assert wide.loc[key, "n_ab"] >= 1          # a:2 and a:3 are neighbours
    assert (wide["jaccard"] <= 1).all() and (wide["n_ab"] <= wide[["n_a", "n_b"]].min(axis=1)).all()
    flagged = A.cooccurrence(seg, cod, level="top", imbalance=3.0)
    pair = flagged.set_index(["code_a", "code_b"])
    assert bool(pair.loc[("ownership", "shared_leadership"), "imbalanced"])   # 3 vs 1
    assert not bool(pair.loc[("agency", "ownership"), "imbalanced"])          # 2 vs 3
    with pytest.raises(UsageError, match="window must be >= 0"):
        A.cooccurrence(seg, cod, window=-1)
    with pytest.raises(UsageError, match="unknown co-occurrence measure"):
        A.cooccurrence_matrix(flagged, "dice")


def test_framework_matrix_strongest_quotes_with_segment_ids():
    seg, cod = A.filter_coded(_segments(), _codings())
    fw = A.framework_matrix(seg, cod, case=C.DOC_ID, per_cell=1, codebook=FakeCodebook())
    cell = fw.loc["b", "ownership"]
    assert cell.endswith("[b:0]")               # score 1.0 beats 0.95
    assert "Eigenaarschap" in cell
    assert fw.loc["a", "alignment"] == ""
    by_country = A.framework_matrix(seg, cod, case="country", per_cell=2)
    assert by_country.loc["BE", "ownership"].count("\n") == 1


def test_quote_centres_on_evidence_and_marks_cuts():
    text = "een " * 30 + "EIGENAARSCHAP" + " twee" * 30
    q = A.quote(text, 120, 133, max_chars=40)
    assert "EIGENAARSCHAP" in q and q.startswith("…") and q.endswith("…")
    assert len(q) <= 42


def test_kwic_for_code_and_term():
    seg, cod = A.filter_coded(_segments(), _codings())
    k = A.kwic(seg, cod, code="ownership", window=2)
    assert k[C.SEGMENT_ID].tolist() == ["a:1", "b:0", "b:2"]
    assert (k.iloc[0].left, k.iloc[0].keyword, k.iloc[0].right) == (
        "mochten het", "zelf invullen", "met het")
    assert k.iloc[2].keyword == "eigenaarschap"
    assert k.iloc[2].left == "aanpak en"
    t = A.kwic(seg, term="eigenaar*", window=1)
    assert t[C.SEGMENT_ID].tolist() == ["b:0", "b:2"]
    assert t.iloc[1].right == "groeide"
    with pytest.raises(UsageError, match="exactly one of code= or term="):
        A.kwic(seg, cod)


def test_document_portrait_positions_and_slots():
    seg, cod = A.filter_coded(_segments(), _codings())
    p = A.document_portrait(seg, cod, level="top", codebook=FakeCodebook())
    b2 = p[p[C.SEGMENT_ID] == "b:2"]
    assert b2[C.CODE_ID].tolist() == ["agency", "ownership", "amo"]
    assert b2["n_slots"].tolist() == [3, 3, 3]
    assert p[p[C.DOC_ID] == "a"]["n_positions"].iloc[0] == 3


def _saved(matrices, codebook=None):
    """build_workbook's (write-only) workbook, saved and read back."""
    from openpyxl import load_workbook

    return load_workbook(io.BytesIO(A.workbook_bytes(A.build_workbook(matrices, codebook))))


def test_workbook_has_a_sheet_per_matrix_and_frozen_headers():
    seg, cod = A.filter_coded(_segments(), _codings())
    wb = _saved({"code_by_country_share": A.theme_matrix(seg, cod, by="country", value="share"),
                 "framework": A.framework_matrix(seg, cod)}, FakeCodebook())
    assert wb.sheetnames == ["code_by_country_share", "framework", "codebook"]
    ws = wb["code_by_country_share"]
    assert ws.freeze_panes == "B2" and ws["A1"].font.bold and ws["B1"].fill.fgColor.rgb.endswith("DDDDDD")
    assert [c.value for c in ws[1]] == ["code_id", "BE", "NL"]
    assert ws["B2"].number_format == "0.0%" and ws["A2"].number_format == "General"
    assert ws["B2"].value == pytest.approx(1 / 3) and ws.column_dimensions["A"].width >= 8
    framework = wb["framework"]
    assert framework["B2"].alignment.wrap_text and framework.column_dimensions["B"].width >= 10
    assert wb["codebook"]["D2"].value == "AGENCY-nl"
    assert A.sheet_name("a/b:c" * 10, set()) == ("a_b_c" * 10)[:31]


def test_workbook_keeps_within_excels_rows_and_columns(monkeypatch):
    from pipeline.aggregate import export

    monkeypatch.setattr(export, "EXCEL_ROWS", 6)
    monkeypatch.setattr(export, "EXCEL_COLUMNS", 4)
    long = pd.DataFrame({"x": range(10)}, index=pd.Index([f"r{i}" for i in range(10)], name="id"))
    wide = pd.DataFrame([[1, 2, 3, 4]], index=pd.Index(["agency"], name=C.CODE_ID),
                        columns=pd.Index(["d1", "d2", "d3", "d4"], name=C.DOC_ID))
    wb = _saved({"long": long, "wide": wide, "fits": wide.iloc[:, :3]})
    rows = [[c.value for c in r] for r in wb["long"].iter_rows()]
    assert len(rows) == 6 and rows[4] == ["r3", 3]
    assert rows[5][0] == "... 6 more rows: beyond Excel's 6; the CSV file has every row"
    assert [[c.value for c in r] for r in wb["wide"].iter_rows()] == [
        [C.DOC_ID, "agency"], ["d1", 1], ["d2", 2], ["d3", 3], ["d4", 4]]   # transposed
    assert [c.value for c in wb["fits"][1]] == [C.CODE_ID, "d1", "d2", "d3"]


def write_coded_fixture(folder):
    """Write the hand-made corpus as a coded folder (for the CLI, report and notebook tests)."""
    from pipeline.store import CodedData, write_coded

    seg = _segments()
    for col, default in ((C.UNIT, "turn"), (C.TURN, 0), (C.TIME_START, float("nan")),
                         (C.TIME_END, float("nan")), (C.CONTENT_HASH, ""), (C.LANG, "nl")):
        seg[col] = default
    seg[C.TURN] = seg[C.UNIT_INDEX]
    cod = _codings()
    for col in (C.RULE, C.RULES, C.EVIDENCE):
        cod[col] = ""
    docs = pd.DataFrame({C.DOC_ID: ["a", "b"], C.PATH: ["a.txt", "b.txt"], C.SHA256: ["0" * 64, "1" * 64]})
    manifest = {"inputs": [{"doc_id": "a", "path": "a.txt", "sha256": "0" * 64}]}
    write_coded(folder, CodedData(documents=docs, segments=seg, codings=cod, manifest=manifest))
    return folder


def _empty_inputs():
    seg, cod = _segments(), _codings()
    return {
        "no segment matches the filter": A.filter_coded(seg, cod, where={"country": "DE"}),
        "nothing coded": (seg, cod.iloc[0:0]),
        "empty segments table": (seg.iloc[0:0], cod),
    }


@pytest.mark.parametrize("case", list(_empty_inputs()))
@pytest.mark.parametrize("codebook", [None, FakeCodebook()], ids=["no-codebook", "codebook"])
def test_every_aggregate_function_handles_empty_tables(case, codebook):
    seg, cod = _empty_inputs()[case]
    for value in A.VALUES:
        m = A.code_by_document(seg, cod, value=value, level="top", codebook=codebook, total=True)
        assert (m.to_numpy() == 0).all()
        if codebook is not None:
            assert list(m.index) == ["agency", "ownership", "alignment", "shared_leadership", "amo"]
        A.theme_matrix(seg, cod, by=["country", "sector"], value=value, codebook=codebook,
                       total=True)
        A.code_by_speaker(seg, cod, value=value, codebook=codebook)
    for level in ("code", "top", "all", 1):
        assert len(A.apply_level(cod.iloc[0:0], level)) == 0
    pairs = A.cooccurrence(seg, cod, window=1, codebook=codebook)
    if len(seg) == 0 or len(cod) == 0:
        assert (pairs["n_ab"] == 0).all()
    for measure in A.MEASURES:
        A.cooccurrence_matrix(pairs, measure)
    fw = A.framework_matrix(seg, cod, codebook=codebook)
    assert fw.empty or (fw == "").all().all()
    A.framework_matrix(seg, cod, case="country", codebook=codebook)
    assert A.exemplars(seg, cod).empty or len(seg)
    assert list(A.kwic(seg, cod, code="ownership").columns)[:3] == [C.SEGMENT_ID, C.DOC_ID,
                                                                     C.SPEAKER]
    A.kwic(seg, term="zzz*")
    A.document_portrait(seg, cod, codebook=codebook)
    wb = _saved({"x": A.code_by_document(seg, cod, codebook=codebook), "fw": fw}, codebook)
    assert wb.sheetnames[:2] == ["x", "fw"] and wb["x"]["A1"].value == C.CODE_ID


def test_cooccurrence_pairs_carry_segment_counts_independent_of_the_window():
    seg, cod = A.filter_coded(_segments(), _codings())
    wide = A.cooccurrence(seg, cod, level="top", window=1).set_index(["code_a", "code_b"])
    row = wide.loc[("agency", "ownership")] if ("agency", "ownership") in wide.index \
        else wide.loc[("ownership", "agency")]
    # windows: agency's two segments open/neighbour 5 windows; segments coded: 2 and 3
    assert row["n_a"] + row["n_b"] > 5
    assert sorted([row["segments_a"], row["segments_b"]]) == [2, 3]


def _reference_rows(matches, threshold):
    """The pandas groupby formulation ``aggregate_rows`` must equal, row for row."""
    import numpy as np
    import pandas as pd

    from pipeline import columns as C
    from pipeline.code.aggregate import EPS, _finish

    m = matches.drop_duplicates([C.SEGMENT_ID, C.CODE_ID, C.RULE_ID, C.START, C.END]).copy()
    m["_q"] = 1.0 - m[C.SCORE].astype("float64")
    m = m.sort_values([C.SEGMENT_ID, C.CODE_ID, C.SCORE, C.START, C.END, C.RULE_ID],
                      ascending=[True, True, False, True, True, True], kind="stable")
    groups = m.groupby([C.SEGMENT_ID, C.CODE_ID], sort=False)
    best = groups.head(1).set_index([C.SEGMENT_ID, C.CODE_ID])
    rules = groups[C.RULE_ID].agg(lambda v: ";".join(sorted(set(v.astype(str)))))
    out = pd.DataFrame({
        C.DOC_ID: best[C.DOC_ID], C.METHOD: "rules",
        C.SCORE: (1.0 - groups["_q"].prod()).clip(0.0, 1.0),
        C.RULE: "rule:" + best[C.RULE_ID].astype(str),
        C.RULES: pd.Series(np.asarray(rules.tolist(), dtype=object), index=best.index),
        C.EVIDENCE: best[C.EVIDENCE], C.N_MATCHES: groups.size(), C.START: best[C.START],
        C.END: best[C.END], C.FIRST_MATCH: groups[C.START].min(),
    }).reset_index()
    out = out[out[C.SCORE] >= threshold - EPS]
    return _finish(out, [*C.CODING_COLUMNS, C.FIRST_MATCH])


def _random_matches(rng, docs):
    """Up to 59 match rows with clashing ids, tied scores and awkward strings."""
    import pandas as pd

    from pipeline import columns as C

    n = int(rng.integers(1, 60))
    return pd.DataFrame({
        C.SEGMENT_ID: rng.choice(["s1", "s2", "s10", "é", "S1"], n),
        C.DOC_ID: rng.choice(docs, n),
        C.CODE_ID: rng.choice(["a", "b", "a.b", "B"], n),
        C.RULE_ID: rng.choice(["r1", "r2", "r10", "R", "x;y"], n),
        C.EVIDENCE: rng.choice(["e", "f", 'q"', ""], n),
        C.START: rng.integers(0, 5, n), C.END: rng.integers(5, 8, n),
        C.SCORE: rng.choice([0.5, 0.3, 1.0, 0.25, 0.1 + 0.2, 0.0, 0.7], n),
    })[C.MATCH_COLUMNS].astype({C.START: "int64", C.END: "int64", C.SCORE: "float64"})


def test_aggregate_rows_equals_the_groupby_formulation():
    import numpy as np

    from pipeline.code.aggregate import aggregate_rows

    rng = np.random.default_rng(1)
    for trial in range(200):
        matches = _random_matches(rng, docs=["d"])
        for threshold in (0.5, 0.0):
            got = aggregate_rows(matches, threshold=threshold)
            expected = _reference_rows(matches, threshold)
            assert list(got.dtypes) == list(expected.dtypes), trial
            assert got.to_csv(index=False) == expected.to_csv(index=False), trial
            assert got.equals(expected), trial


def test_aggregate_matches_orders_the_rows_of_aggregate_rows():
    import numpy as np
    import pandas as pd

    from pipeline.code.aggregate import aggregate_matches, aggregate_rows, order_codings

    rng = np.random.default_rng(3)
    for trial in range(200):
        matches = _random_matches(rng, docs=["d", "D", "d2"])
        for threshold in (0.5, 0.0, 2.0):  # 2.0: no coding is kept
            got = aggregate_matches(matches, threshold=threshold)
            expected = order_codings(aggregate_rows(matches, threshold=threshold))
            assert list(got.dtypes) == list(expected.dtypes), trial
            assert got.equals(expected), trial
            assert got.index.equals(pd.RangeIndex(len(got))), trial


def _rewritten_save(wb) -> bytes:
    """What ``workbook_bytes`` made before it wrote openpyxl's archive stored: ``wb.save``
    (deflated), then every member deflated again with the fixed time."""
    import re
    import zipfile
    from datetime import datetime, timezone

    when = datetime.fromtimestamp(315532800, tz=timezone.utc)
    stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ").encode()
    raw, out = io.BytesIO(), io.BytesIO()
    wb.save(raw)
    with zipfile.ZipFile(raw) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                data = re.sub(rb"(<dcterms:(created|modified)[^>]*>)[^<]*(</dcterms:\2>)",
                              rb"\g<1>" + stamp + rb"\g<3>", data)
            fixed = zipfile.ZipInfo(info.filename, date_time=when.timetuple()[:6])
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = info.external_attr
            dst.writestr(fixed, data)
    return out.getvalue()


@pytest.mark.parametrize("write_only", [False, True])
def test_workbook_bytes_are_the_rewritten_save(write_only, monkeypatch):
    from openpyxl import Workbook

    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)

    def book():
        wb = Workbook(write_only=write_only)
        ws = wb.create_sheet("data") if write_only else wb.active
        for k in range(2000):
            ws.append([k, f"segment {k} " * 3, k / 7])
        return wb

    assert A.workbook_bytes(book()) == _rewritten_save(book())
