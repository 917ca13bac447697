"""REFI-QDA export at scale: columnar selections, piecewise XML and a streamed archive.

Each fast path is compared with the straightforward formulation it replaced: the
row-by-row grouping of codings into selections, the whole-tree serialisation and
the in-memory zip.
"""
from __future__ import annotations

import random
import uuid
import zipfile

import numpy as np
import pandas as pd
import pytest

from pipeline import columns as C
from pipeline.errors import ExchangeError
from pipeline.exchange import build_project, export_qdpx, project_bytes
from pipeline.exchange.model import (
    GUID_NAMESPACE, QProject, make_guid, project_to_xml, serialize, write_project_xml,
)
from pipeline.exchange.qdpx_io import write_archive, zip_bytes
from pipeline.exchange.selections import CodingRows, blank, coder_name, final_user
from pipeline.exchange.text import CODEPOINT, UTF16, codepoints_to_units
from test_exchange_fixtures import coded_tables, make_codebook, make_coded

TEXTS = {"d2": "Wij 😀 mochten het zelf invullen.\nDat was fijn, Zoë.",
         "a1": "Geen uren 👩\u200d🏫 voor de leerlingen, zei de schoolleider.",
         "c3": "Samen met collega's de visie bepalen en uitvoeren.",
         "b0": "Niemand codeerde dit document."}


def _random_tables(seed: int, code_ids: list[str]) -> tuple[pd.DataFrame, pd.DataFrame,
                                                            pd.DataFrame]:
    rng = random.Random(seed)
    docs = pd.DataFrame({C.DOC_ID: list(TEXTS), C.TEXT: list(TEXTS.values()),
                         "country": ["NL", "BE", None, "NL"]})
    segs = []
    for doc, text in TEXTS.items():
        for k in range(rng.randint(1, 4)):
            a = rng.randrange(len(text))
            segs.append({C.SEGMENT_ID: f"{doc}:{k}", C.DOC_ID: doc, C.START: a,
                         C.END: rng.randint(a, len(text))})
    if seed % 3 == 0:   # a repeated segment id: the last one's span counts, as in a dict
        segs.append({**segs[0], C.START: 0, C.END: 3})
    segments = pd.DataFrame(segs)
    rows = []
    for _ in range(rng.randint(0, 80)):
        doc = rng.choice(list(TEXTS)[:3])
        a = rng.randrange(len(TEXTS[doc]))
        rows.append({
            # some codings name a segment the table does not have: they keep their own span
            C.SEGMENT_ID: f"{doc}:{rng.randint(0, 4)}", C.DOC_ID: doc,
            C.CODE_ID: rng.choice(code_ids),
            C.METHOD: rng.choice(["rules", "ml", "human", "hybrid", ""]),
            C.RULE: rng.choice(["rule:a.nl.1", "rule:b", "model:v1", "human:anja", "human:", ""]),
            C.SCORE: rng.choice([1.0, 0.5, float("nan"), 0.123456]),
            C.START: a, C.END: rng.randint(a, len(TEXTS[doc])),
            "review": rng.choice(["accepted", "added", "rejected", ""]),
            C.CODER: rng.choice(["piet", "", None, " mara "])})
    rows += rng.sample(rows, min(len(rows), 5))   # exact duplicates too
    return docs, segments, pd.DataFrame(rows, columns=list(rows[0]) if rows else None)


def _reference(documents, segments, codings, codebook, span, offsets):
    """The selections as the row-by-row export built them (before the columnar one)."""
    guid_of = {cid: make_guid("code", cid) for cid in codebook.codes}
    docs = documents.sort_values(C.DOC_ID, kind="stable")
    texts = dict(zip(docs[C.DOC_ID].astype(str), docs[C.TEXT].astype(str)))
    seg_span = {str(s): (int(a), int(b)) for s, a, b in
                zip(segments[C.SEGMENT_ID], segments[C.START], segments[C.END])}
    by_span: dict = {}
    for rec in codings.to_dict("records"):
        doc, code_id = str(rec[C.DOC_ID]), str(rec[C.CODE_ID])
        seg = str(rec.get(C.SEGMENT_ID, ""))
        if span == "segment" and seg in seg_span:
            start, end = seg_span[seg]
        else:
            start, end = int(rec[C.START]), int(rec[C.END])
        auto_user = coder_name(str(rec.get(C.METHOD, "rules")), str(rec.get(C.RULE, "")))
        reviewer = final_user(rec)
        user = reviewer or auto_user
        note = f"{code_id}: {rec.get(C.METHOD, '')} {rec.get(C.RULE, '')}".strip()
        if not blank(rec.get(C.SCORE)):
            note += f" score={float(rec.get(C.SCORE)):.3f}"
        if reviewer is not None:
            status = str(rec.get("review"))
            note = (f"{code_id}: added by {reviewer}" if status == "added"
                    else f"{note}; accepted by {reviewer} (proposed by {auto_user})")
        by_span.setdefault((doc, start, end), []).append((code_id, user, note))
    order = {cid: n for n, cid in enumerate(codebook.codes)}
    out, users = [], set()
    for doc, text in texts.items():
        spans = sorted(k for k in by_span if k[0] == doc)
        ends = codepoints_to_units(text, [x for _, a, b in spans for x in (a, b)], offsets)
        sels = []
        for n, key in enumerate(spans):
            _, start, end = key
            items = sorted(by_span[key], key=lambda t: (order[t[0]], t[1]))
            users.update(u for _, u, _ in items)
            sels.append((make_guid("selection", f"{doc}:{start}:{end}"), ends[2 * n],
                         ends[2 * n + 1], "\n".join(t[2] for t in items),
                         [(guid_of[c], make_guid("user", u),
                           make_guid("coding", f"{doc}:{start}:{end}:{c}:{u}"))
                          for c, u, _ in items]))
        out.append((make_guid("source", doc), doc, sels))
    return out, sorted(users)


def _flat(sources):
    return [(src.guid, src.name,
             [(sel.guid, sel.start, sel.end, sel.description,
               [(c.code_guid, c.user_guid, c.guid) for c in sel.codings]) for sel in src.selections])
            for src in sources]


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("span,offsets", [("segment", CODEPOINT), ("evidence", UTF16)])
def test_selections_equal_the_row_by_row_grouping(tmp_path, seed, span, offsets):
    book = make_codebook(tmp_path)
    docs, segments, codings = _random_tables(seed, list(book.codes))
    if codings.empty:
        codings = pd.DataFrame(columns=[C.SEGMENT_ID, C.DOC_ID, C.CODE_ID, C.START, C.END])
    project, _ = build_project(docs, segments, codings, book, span=span, offsets=offsets)
    expected, users = _reference(docs, segments, codings, book, span, offsets)
    assert _flat(project.sources) == expected
    assert list(project.users.values()) == users
    assert list(project.users) == [make_guid("user", u) for u in users]


def test_selections_without_optional_columns(tmp_path):
    book = make_codebook(tmp_path)
    docs, segments, codings = _random_tables(3, list(book.codes))
    bare = codings[[C.DOC_ID, C.CODE_ID, C.START, C.END]]   # no segment, method, rule, score
    project, _ = build_project(docs, segments, bare, book)
    assert _flat(project.sources) == _reference(docs, segments, bare, book, "segment",
                                                CODEPOINT)[0]
    assert list(project.users.values()) == ["qcode rules"]


def test_first_bad_row_is_reported_as_row_by_row(tmp_path):
    book = make_codebook(tmp_path)
    docs, segments, codings = _random_tables(1, list(book.codes))
    bad = codings.copy()
    bad.loc[2, C.CODE_ID] = "nope"
    bad.loc[4, C.DOC_ID] = "ghost"
    with pytest.raises(ExchangeError, match="code 'nope' is not in the codebook"):
        build_project(docs, segments, bad, book)
    bad.loc[1, C.DOC_ID] = "ghost"
    with pytest.raises(ExchangeError, match="document 'ghost' is not in the documents table"):
        build_project(docs, segments, bad, book)


def test_make_guid_is_uuid5():
    rng = random.Random(5)
    for _ in range(2000):
        key = "".join(chr(rng.choice([rng.randint(32, 126), rng.randint(0xA0, 0x2FFF),
                                      rng.randint(0x10000, 0x10FFFF)]))
                      for _ in range(rng.randint(0, 25)))
        assert make_guid("coding", key) == str(uuid.uuid5(GUID_NAMESPACE, f"coding:{key}"))


# ------------------------------------------------------------- piecewise XML
def _pieces(project: QProject) -> bytes:
    sources, project.sources = project.sources, []
    parts: list[str] = []
    write_project_xml(project, iter(sources), parts.append)
    project.sources = sources
    return "".join(parts).encode("utf-8")


@pytest.mark.parametrize("variant", ["full", "no sets", "description", "no sources", "bare"])
def test_piecewise_xml_equals_the_whole_tree(tmp_path, variant):
    book = make_codebook(tmp_path)
    data = coded_tables()
    project, _ = build_project(data.documents, data.segments, data.codings, book,
                               name="x & <y> \"z\"")
    if variant == "no sets":   # <Sources> is then the root's last child
        project.sets = []
    elif variant == "description":
        project.description = "Een project\nmet <tekens> & meer"
    elif variant == "no sources":
        project.sources = []
    elif variant == "bare":
        project = QProject(name="leeg")
    assert _pieces(project) == serialize(project_to_xml(project))


def test_piecewise_xml_takes_the_sources_separately():
    with pytest.raises(ValueError, match="sources separately"):
        write_project_xml(QProject(name="x", sources=[object()]), [], print)


# ----------------------------------------------------------- streamed archive
def test_streamed_archive_equals_the_in_memory_zip(tmp_path):
    project_text = "<Project>" + "é😀 tekst\n" * 50_000 + "</Project>\n"
    members = {f"sources/{k:03d}.txt": (f"bron {k} " * (k * 40)).encode() for k in range(30)}
    out = tmp_path / "a.qdpx"
    write_archive(out, lambda write: [write(project_text[i:i + 7_000])
                                      for i in range(0, len(project_text), 7_000)],
                  iter(sorted(members.items())))
    assert out.read_bytes() == zip_bytes({"project.qde": project_text.encode(), **members})
    assert zipfile.ZipFile(out).testzip() is None
    assert [p.name for p in tmp_path.iterdir()] == ["a.qdpx"]   # no spool or temp file left


@pytest.mark.parametrize("limit", [400_000, 490_000])
def test_streamed_archive_needing_zip64_equals_the_in_memory_zip(tmp_path, monkeypatch, limit):
    """Past zipfile's zip64 limit (made small here) the project member is written again from
    the spool with its size known: under the limit but within writestr's 5% margin, and over
    it (where the streamed member fails), the bytes are those of the in-memory zip."""
    project_text = "<Project>" + "tekst\n" * 80_000 + "</Project>\n"   # 480,021 bytes
    monkeypatch.setattr(zipfile, "ZIP64_LIMIT", limit)
    members = {"sources/a.txt": b"bron"}
    out = tmp_path / "a.qdpx"
    write_archive(out, lambda write: write(project_text), iter(members.items()))
    assert out.read_bytes() == zip_bytes({"project.qde": project_text.encode(), **members})


def test_streamed_archive_stops_when_its_writer_fails(tmp_path, monkeypatch):
    from pipeline.exchange import qdpx_io

    made = []

    def produce(write):
        for k in range(50):
            made.append(k)
            write("x" * 400_000)

    def full(data):
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        qdpx_io._piped(produce, (full,), block=1_000_000)
    assert len(made) < 50   # stopped early, not after making everything


def test_streamed_archive_refuses_unsorted_members_and_leaves_nothing(tmp_path):
    out = tmp_path / "a.qdpx"
    with pytest.raises(ValueError, match="out of order"):
        write_archive(out, lambda write: write("<P/>"),
                      iter([("sources/b.txt", b"b"), ("sources/a.txt", b"a")]))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kw", [{}, {"span": "evidence", "offsets": UTF16}])
def test_export_file_equals_the_in_memory_project(tmp_path, kw):
    book = make_codebook(tmp_path)
    coded = make_coded(tmp_path)
    data = coded_tables()
    final = data.codings.assign(review=["accepted", "added", "rejected", "accepted", "", ""],
                                coder=["anja", "piet", "piet", None, "", "x"])
    for codings in (None, final):
        out = tmp_path / "p.qdpx"
        done = export_qdpx(coded, out, book, name="study", codings=codings, **kw)
        chosen = data.codings if codings is None else codings
        project, files = build_project(data.documents, data.segments, chosen, book,
                                       name="study", **kw)
        assert out.read_bytes() == project_bytes(project, files)
        assert done.sources == len(project.sources) == 2
        assert done.selections == sum(len(s.selections) for s in project.sources)
        assert done.codings == sum(len(sel.codings) for s in project.sources
                                   for sel in s.selections)
        assert done.users == tuple(project.users.values())
    assert "anja" in done.users and "piet" in done.users


def test_coding_rows_sort_keeps_row_order_for_ties(tmp_path):
    book = make_codebook(tmp_path)
    code = next(iter(book.codes))
    codings = pd.DataFrame({C.DOC_ID: ["a1"] * 3, C.CODE_ID: [code] * 3, C.START: [5, 0, 0],
                            C.END: [9, 4, 4], C.SCORE: [0.1, 0.2, np.nan]})
    rows = CodingRows(codings, pd.DataFrame(columns=[C.SEGMENT_ID, C.START, C.END]),
                      {"a1": TEXTS["a1"]}, {c: make_guid("code", c) for c in book.codes},
                      span="evidence")
    [src] = rows.sources(CODEPOINT)
    assert [(s.start, s.end) for s in src.selections] == [(0, 4), (5, 9)]
    assert src.selections[0].description == f"{code}: score=0.200\n{code}:"
