"""End-to-end tests of `qcode pseudonymise`."""
from __future__ import annotations

import hashlib

import pandas as pd
import pytest

from pipeline import columns as C
from pipeline.cli import main
from pipeline.ingest import read_file
from pipeline.segment import segment
from pipeline.store import CodedData, load_coded, write_coded

TXT = ("I: Hoe gaat het op school?\nAnja: Goed. Juf Marieke en meneer De Boer helpen ons. "
       "Mail anja@x.nl of bel 06-12345678.\n\nI: En verder?\nAnja: Het Stedelijk Lyceum is groot.\n")
VTT = ("WEBVTT\n\n00:00:01.000 --> 00:00:03.000\n<v Interviewer>Hoe gaat het?\n\n"
       "00:00:03.000 --> 00:00:06.000\n<v Bram>Goed, collega Anja helpt.\n")
CSV = 'id,text\nr1,"Ik werk met Anja samen"\nr2,"Bram belt +31 6 12345678"\n'
SECRETS = ("Anja", "Marieke", "Boer", "Bram", "anja@x.nl", "12345678", "Stedelijk")


@pytest.fixture
def raw(tmp_path):
    folder = tmp_path / "raw"
    folder.mkdir()
    (folder / "int1.txt").write_text(TXT, encoding="utf-8")
    (folder / "int2.vtt").write_text(VTT, encoding="utf-8")
    (folder / "survey.csv").write_text(CSV, encoding="utf-8")
    (tmp_path / "schools.txt").write_text("# schools\nStedelijk Lyceum\n", encoding="utf-8")
    return folder


def _hashes(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def _coded(raw, out):
    """A coded folder of the originals with codings on names (no spaCy needed)."""
    ings = [read_file(p) for p in sorted(raw.iterdir())]
    docs = pd.concat([i.documents for i in ings], ignore_index=True)
    docs[C.LANG] = "nl"
    segs = segment(docs, pd.concat([i.turns for i in ings], ignore_index=True))
    text = docs.set_index(C.DOC_ID).loc["int1", C.TEXT]
    s = text.index("Juf Marieke")
    seg = segs[(segs[C.DOC_ID] == "int1") & (segs[C.START] <= s) & (segs[C.END] > s)].iloc[0]
    codings = pd.DataFrame([{C.SEGMENT_ID: seg[C.SEGMENT_ID], C.DOC_ID: "int1", C.CODE_ID: "agency",
                             C.METHOD: "rules", C.SCORE: 1.0, C.RULE: "rule:a", C.RULES: "a",
                             C.EVIDENCE: "Juf Marieke", C.N_MATCHES: 1, C.START: s, C.END: s + 11}],
                           columns=C.CODING_COLUMNS)
    write_coded(out, CodedData(documents=docs, segments=segs, codings=codings, manifest={"x": 1}))
    (out / C.REVIEWS_FILE).write_text(
        "coder,timestamp,segment_id,content_hash,code_id,decision,memo,source\n"
        f"ann,t,{seg[C.SEGMENT_ID]},{seg[C.CONTENT_HASH]},agency,accept,Marieke!,r.xlsx\n")
    return out


def test_pseudonymise_files_key_and_remapped_codings(raw, tmp_path, capsys):
    before = _hashes(raw)
    coded = _coded(raw, tmp_path / "coded")
    coded_before = _hashes(coded)
    out, key = tmp_path / "pseudo", tmp_path / "vault" / "key.csv"
    code = main(["pseudonymise", str(raw), "--out", str(out), "--key", str(key),
                 "--schools", str(tmp_path / "schools.txt"), "--coded", str(coded),
                 "--coded-out", str(tmp_path / "coded-pz")])
    assert code == 0
    captured = capsys.readouterr()
    assert "links every pseudonym to the real name" in captured.err and str(key) in captured.err
    assert _hashes(raw) == before and _hashes(coded) == coded_before   # originals untouched
    assert sorted(p.name for p in out.iterdir()) == ["PSEUDONYMISATION_REPORT.csv", "int1.txt", "int2.vtt",
                                                     "survey.csv"]
    for p in out.iterdir():
        body = p.read_text(encoding="utf-8")
        assert not [s for s in SECRETS if s in body], p.name
    assert "Persoon A" in (out / "int1.txt").read_text() and "Persoon A" in (out / "survey.csv").read_text()
    keytab = pd.read_csv(key)
    pseud = dict(zip(keytab["original"], keytab["pseudonym"]))
    assert pseud["Anja"] == "Persoon A" and pseud["Stedelijk Lyceum"] == "School A"
    # coded folder: offsets point at the same words in the pseudonymised texts
    new = load_coded(tmp_path / "coded-pz")
    text = new.documents.set_index(C.DOC_ID).loc["int1", C.TEXT]
    cod = new.codings.iloc[0]
    assert text[cod[C.START]:cod[C.END]] == cod[C.EVIDENCE] == "Juf Persoon B"
    for seg in new.segments.itertuples():
        doc = new.documents.set_index(C.DOC_ID).loc[seg.doc_id, C.TEXT]
        assert doc[seg.start:seg.end] == seg.text
        assert not [s for s in SECRETS if s in seg.text]
    # re-ingesting the pseudonymised file gives the same document text
    assert read_file(out / "int1.txt").documents[C.TEXT].iloc[0] == text
    reviews = pd.read_csv(tmp_path / "coded-pz" / C.REVIEWS_FILE)
    seg_hash = new.segments.set_index(C.SEGMENT_ID).loc[cod[C.SEGMENT_ID], C.CONTENT_HASH]
    assert reviews.iloc[0]["content_hash"] == seg_hash and reviews.iloc[0]["memo"] == "Persoon B!"
    # a second run reuses the key: same pseudonyms
    (raw / "int3.txt").write_text("R: Ik sprak Bram en Kees.\n")
    assert main(["pseudonymise", str(raw / "int3.txt"), "--out", str(tmp_path / "p2"),
                 "--key", str(key), "--names", str(_names(tmp_path))]) == 0
    assert (tmp_path / "p2" / "int3.txt").read_text() == "R: Ik sprak Persoon D en Persoon E.\n"


def _names(tmp_path):
    path = tmp_path / "names.csv"
    path.write_text("name\nKees\n")
    return path


def test_refusals(raw, tmp_path, capsys):
    coded = _coded(raw, tmp_path / "coded")
    assert main(["pseudonymise", str(raw), "--out", str(raw / "sub")]) == 1
    assert "inside the input folder" in capsys.readouterr().err
    assert main(["pseudonymise", str(raw), "--out", str(tmp_path / "o"),
                 "--key", str(tmp_path / "o" / "k.csv")]) == 1
    assert "must be kept apart" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
    # the coded folder covers int2 and survey too: giving only int1 is refused
    assert main(["pseudonymise", str(raw / "int1.txt"), "--out", str(tmp_path / "o"),
                 "--coded", str(coded), "--coded-out", str(tmp_path / "c2")]) == 1
    assert "document 'int2' is coded but not among the inputs" in capsys.readouterr().err
    assert not (tmp_path / "c2").exists() and not (tmp_path / "o").exists()   # refused up front
    # an input changed since coding: refused, never silently wrong
    (raw / "int1.txt").write_text(TXT.replace("Goed.", "Heel goed."), encoding="utf-8")
    assert main(["pseudonymise", str(raw), "--out", str(tmp_path / "o"),
                 "--coded", str(coded), "--coded-out", str(tmp_path / "c2")]) == 1
    assert "differs from the input file" in capsys.readouterr().err
    assert main(["pseudonymise", str(raw), "--out", str(tmp_path / "o"), "--coded", str(coded)]) == 1
    assert "--coded needs --coded-out" in capsys.readouterr().err


def test_docx_written_as_text(tmp_path, capsys):
    docx = pytest.importorskip("docx")
    folder = tmp_path / "raw"
    folder.mkdir()
    d = docx.Document()
    d.add_paragraph("I: Wie helpt je?")
    d.add_paragraph("Anja: Meneer Jansen, elke dag.")
    d.save(folder / "int9.docx")
    assert main(["pseudonymise", str(folder), "--out", str(tmp_path / "o")]) == 0
    body = (tmp_path / "o" / "int9.txt").read_text()
    assert body == "I: Wie helpt je?\nPersoon A: Meneer Persoon B, elke dag."


def test_names_in_running_text_subfolders_and_report(tmp_path, capsys):
    src = tmp_path / "in"
    (src / "sub" / "deeper").mkdir(parents=True)
    (src / "a.txt").write_text(
        "I: Wie ben jij?\nR: Ik ben Eline, docent Frans. Samen met Ruud begonnen we.\n"
        "I: En de schoolleider?\nR: Mirjam, onze schoolleider, vond het goed. Ook Sofie en An.\n",
        encoding="utf-8")
    (src / "sub" / "deeper" / "clip.srt").write_text(
        "1\n00:00:01,000 --> 00:00:03,000\nRuud zei dat Eline gelijk had.\n\n"
        "2\n00:00:03,000 --> 00:00:05,000\nAn extra hour helps. We will see.\n", encoding="utf-8")
    out, key = tmp_path / "out", tmp_path / "vault" / "key.csv"
    assert main(["pseudonymise", str(src), "--out", str(out), "--key", str(key)]) == 0
    err = capsys.readouterr().err
    assert "pseudonymisation is automatic" in err and "by hand before sharing" in err
    a = (out / "a.txt").read_text(encoding="utf-8")
    clip = (out / "sub" / "deeper" / "clip.srt").read_text(encoding="utf-8")   # structure kept
    assert not (out / "clip.srt").exists()
    for name in ("Eline", "Ruud", "Mirjam", "Sofie"):
        assert name not in a and name not in clip, name
    assert " An " not in a and "en Persoon" in a
    assert "docent Frans" in a                                # the language, not a person
    assert "An extra hour helps. We will see." in clip        # sentence-initial article stays
    report = pd.read_csv(out / "PSEUDONYMISATION_REPORT.csv")
    assert list(report.columns) == ["file", "person", "email", "phone", "school", "total"]
    rows = report.set_index("file")
    assert rows.loc["a.txt", "person"] == 5 and rows.loc["sub/deeper/clip.srt", "person"] == 2
    assert (rows["total"] == rows[["person", "email", "phone", "school"]].sum(axis=1)).all()
    body = (out / "PSEUDONYMISATION_REPORT.csv").read_text(encoding="utf-8")
    assert not any(n in body for n in ("Eline", "Ruud", "Mirjam"))   # no originals in it
    keyed = set(pd.read_csv(key)["original"])
    assert {"Eline", "Ruud", "Mirjam", "Sofie", "An"} <= keyed and "Frans" not in keyed


def test_surname_in_running_text_is_one_person_everywhere(tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    (src / "a.txt").write_text(
        "I: Wie begon ermee?\nR: Dat was Roel Jansen, in groep 7.\n\n"
        "I: En daarna?\nR: Jansen heeft het toen aan Eline van der Berg gegeven. Van der Berg "
        "deed de rest, samen met Roel.\n", encoding="utf-8")
    (src / "b.txt").write_text("R: Ik ken Jansen alleen van de studiedag.\n", encoding="utf-8")
    out, key = tmp_path / "out", tmp_path / "key.csv"
    assert main(["pseudonymise", str(src), "--out", str(out), "--key", str(key)]) == 0
    a = (out / "a.txt").read_text(encoding="utf-8")
    b = (out / "b.txt").read_text(encoding="utf-8")
    for secret in ("Roel", "Jansen", "Eline", "Berg"):
        assert secret not in a and secret not in b, secret
    rows = pd.read_csv(key)
    pseud = dict(zip(rows["original"], rows["pseudonym"]))
    assert pseud["Roel Jansen"] == pseud["Roel"] == pseud["Jansen"]      # one person
    assert pseud["Eline van der Berg"] == pseud["Van der Berg"] != pseud["Roel"]
    assert f"Dat was {pseud['Roel']}, in groep 7." in a
    assert f"Ik ken {pseud['Jansen']} alleen" in b


def test_no_name_list_keeps_running_text_names(tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    (src / "a.txt").write_text("R: Samen met Ruud begonnen we.\n", encoding="utf-8")
    out = tmp_path / "out"
    assert main(["pseudonymise", str(src), "--out", str(out), "--no-name-list"]) == 0
    assert "Samen met Ruud" in (out / "a.txt").read_text(encoding="utf-8")


def test_teams_labels_one_person_one_pseudonym_and_role_kept(tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    (src / "teams.vtt").write_text(
        "WEBVTT\n\n00:00:01.000 --> 00:00:04.000\n"
        "<v Pieters, Anna (Onderzoeker)>Dank je Bram. Mevrouw Pieters hier: klopt dat, "
        "meneer Jansen? Anna wil het weten.</v>\n\n"
        "00:00:05.000 --> 00:00:09.000\n<v Jansen, Bram>Ja, we mochten het zelf invullen.</v>\n",
        encoding="utf-8")
    out, key = tmp_path / "out", tmp_path / "key.csv"
    assert main(["pseudonymise", str(src), "--out", str(out), "--key", str(key)]) == 0
    text = (out / "teams.vtt").read_text(encoding="utf-8")
    for name in ("Anna", "Pieters", "Bram", "Jansen"):
        assert name not in text
    got = read_file(out / "teams.vtt")
    turns = got.turns
    anna, bram = turns[C.SPEAKER].iloc[0], turns[C.SPEAKER].iloc[1]
    assert "(Onderzoeker)" in anna  # the role survives, so the turn stays the interviewer's
    seg = segment(got.documents, got.turns)
    assert list(seg[C.ROLE]) == ["interviewer", "respondent"]
    body = got.documents[C.TEXT].iloc[0]
    anna_p = anna.replace(" (Onderzoeker)", "")
    assert f"Mevrouw {anna_p} hier" in body and f"{anna_p} wil het weten" in body
    assert f"meneer {bram}?" in body and f"Dank je {bram}." in body
