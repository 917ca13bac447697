"""Tests for pipeline.ingest: formats, labels, offsets, decoding, bad inputs, batch."""
from __future__ import annotations

import hashlib
import math
import random
from pathlib import Path

import pytest

from pipeline import columns as C
from pipeline.errors import InputError, UsageError
from pipeline.ingest import (
    decode_bytes, discover, ingest, is_label, normalise_lang, read_file, read_metadata,
)


def write(path: Path, content: str | bytes, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode(encoding))
    return path


def contents(got) -> list[tuple[str, str]]:
    """(speaker, text[start:end]) per turn, checking offsets are inside the text."""
    text = got.documents[C.TEXT].iloc[0]
    out = []
    for row in got.turns.itertuples(index=False):
        start, end = getattr(row, C.START), getattr(row, C.END)
        assert 0 <= start < end <= len(text)
        piece = text[start:end]
        assert piece == piece.strip()
        out.append((getattr(row, C.SPEAKER), piece))
    return out


def docx_file(path: Path, paragraphs: list[list[tuple[str, bool]]]) -> Path:
    """Write a .docx whose paragraphs are lists of (run text, bold) pairs."""
    import docx

    document = docx.Document()
    for runs in paragraphs:
        paragraph = document.add_paragraph()
        for text, bold in runs:
            paragraph.add_run(text).bold = bold
    document.save(str(path))
    return path


# --- labels -------------------------------------------------------------------------

@pytest.mark.parametrize("label", ["I", "R", "R1", "Interviewer", "interviewer", "Anja",
                                   "Anja de Vries", "Respondent 2", "Jan van der Berg", "Dhr. Jansen"])
def test_is_label_accepts_speaker_names(label):
    assert is_label(label)


@pytest.mark.parametrize("label", ["Nou ja, het punt is", "het punt is", "Kortom", "Nee",
                                   "Wat ik bedoel is", "Een twee drie vier vijf",
                                   "A" * 41, "", "http"])
def test_is_label_rejects_sentences(label):
    assert not is_label(label)


def test_bold_relaxes_capitalisation_but_not_punctuation():
    assert is_label("mevrouw de groot", bold=True)
    assert not is_label("nou ja, het punt is", bold=True)


# --- txt / md -----------------------------------------------------------------------

def test_txt_all_label_styles_and_offsets(tmp_path):
    text = ("Interview 3, school A\n\n"
            "I: Hoe ging het?\n"
            "R1: Goed.\nWe mochten het zelf invullen.\n\n"
            "Interviewer: En verder?\n"
            "Anja de Vries: Nou ja, het punt is: we hadden geen tijd\n"
            "Nou ja, het punt is: we hadden geen tijd\n"
            "[00:01:02] Piet: Met tijd.\n"
            "00:02:03 Piet: Ook met tijd.\n"
            "R:\n   Antwoord op volgende regel.  \n")
    got = read_file(write(tmp_path / "int3.txt", text))
    assert contents(got) == [
        ("", "Interview 3, school A"),
        ("I", "Hoe ging het?"),
        ("R1", "Goed.\nWe mochten het zelf invullen."),
        ("Interviewer", "En verder?"),
        ("Anja de Vries", "Nou ja, het punt is: we hadden geen tijd\n"
                          "Nou ja, het punt is: we hadden geen tijd"),
        ("Piet", "Met tijd."),
        ("Piet", "Ook met tijd."),
        ("R", "Antwoord op volgende regel."),
    ]
    turns = got.turns
    assert list(turns[C.TURN]) == list(range(8))
    assert turns[C.TIME_START].tolist()[5:7] == [62.0, 123.0]
    assert math.isnan(turns[C.TIME_START].iloc[1]) and turns[C.TIME_END].isna().all()
    assert (turns[C.UNIT_KEY] == "").all() and list(turns.columns) == C.TURN_COLUMNS
    doc = got.documents.iloc[0]
    assert list(got.documents.columns) == C.DOCUMENT_COLUMNS
    assert (doc[C.DOC_ID], doc[C.FORMAT], doc[C.ENCODING], doc[C.LANG]) == ("int3", "txt", "utf-8", "")
    assert doc[C.TEXT] == text and doc[C.N_CHARS] == len(text)
    assert doc[C.SHA256] == hashlib.sha256(text.encode()).hexdigest()
    assert got.warnings == []


def test_txt_without_labels_splits_paragraphs(tmp_path):
    text = "Eerste alinea\nloopt door.\n\n  \nTweede: alinea met dubbele punt.\n\n\nDerde."
    got = read_file(write(tmp_path / "notes.txt", text))
    assert contents(got) == [("", "Eerste alinea\nloopt door."),
                             ("", "Tweede: alinea met dubbele punt."), ("", "Derde.")]


def test_colons_in_times_and_urls_are_not_labels(tmp_path):
    text = "I: Wanneer?\nOm 10:30 begonnen we.\nZie: http://example.org\nKortom: te laat.\n"
    got = read_file(write(tmp_path / "t.txt", text))
    assert contents(got) == [("I", "Wanneer?\nOm 10:30 begonnen we.\nZie: http://example.org\n"
                                   "Kortom: te laat.")]


def test_markdown_bold_labels(tmp_path):
    text = ("# Interview 7\n\n**Interviewer:** Wat vond je ervan?\n"
            "**Sanne**: Het was *echt* goed.\n**R2:**\nVolgende regel.\n")
    got = read_file(write(tmp_path / "int7.md", text))
    assert got.documents[C.FORMAT].iloc[0] == "md"
    assert contents(got) == [("", "# Interview 7"), ("Interviewer", "Wat vond je ervan?"),
                             ("Sanne", "Het was *echt* goed."), ("R2", "Volgende regel.")]


def test_markdown_bold_callouts_are_not_labels(tmp_path):
    text = "R: Ja.\n**Let op:** dit hoort bij R.\n**Kortom**: ook.\n"
    got = read_file(write(tmp_path / "t.md", text))
    assert contents(got) == [("R", "Ja.\n**Let op:** dit hoort bij R.\n**Kortom**: ook.")]


def test_empty_label_turn_is_dropped(tmp_path):
    got = read_file(write(tmp_path / "t.txt", "I:\nR: Ja.\n"))
    assert contents(got) == [("R", "Ja.")]


# --- docx ---------------------------------------------------------------------------

def test_docx_bold_labels_and_plain_labels(tmp_path):
    path = docx_file(tmp_path / "int5.docx", [
        [("Interview op school B", False)],
        [],
        [("Interviewer:", True), (" Hoe was het?", False)],
        [("mevrouw de groot", True), (": Lastig, eerlijk gezegd.", False)],
        [("Het punt is:", False), (" geen label want niet vet", False)],
        [("R: ", False), ("Plain label.", False)],
        [("Nou ja, het punt is", True), (": geen label, komma.", False)],
    ])
    got = read_file(path)
    doc = got.documents.iloc[0]
    assert doc[C.FORMAT] == "docx" and doc[C.ENCODING] == "docx"
    assert doc[C.TEXT].split("\n")[0] == "Interview op school B"
    assert contents(got) == [
        ("", "Interview op school B"),
        ("Interviewer", "Hoe was het?"),
        ("mevrouw de groot", "Lastig, eerlijk gezegd.\nHet punt is: geen label want niet vet"),
        ("R", "Plain label.\nNou ja, het punt is: geen label, komma."),
    ]


def test_docx_random_bytes_and_empty_docx(tmp_path):
    junk = write(tmp_path / "kapot.docx", random.Random(1).randbytes(4000))
    with pytest.raises(InputError, match=r"kapot\.docx: not a valid \.docx"):
        read_file(junk)
    with pytest.raises(InputError, match=r"leeg\.docx: empty file"):
        read_file(docx_file(tmp_path / "leeg.docx", [[("   ", False)]]))


# --- vtt / srt ----------------------------------------------------------------------

VTT = """WEBVTT
Kind: captions

NOTE exported by Teams

a1b2/1-0
00:00:01.000 --> 00:00:03.500
<v Anja de Vries>Goedemorgen allemaal.</v>

a1b2/2-0
00:00:03.500 --> 00:00:05.000 align:start
<v Anja de Vries>We beginnen <c.yellow>zo</c>
meteen.</v>

00:00:05.000 --> 00:00:07.250
<v Piet>Prima &amp; <b>dank</b>.</v><v Anja de Vries>Graag.</v>

00:01:07.000 --> 00:01:08.000
Kees: Zoom-stijl label.
"""


def test_vtt_voice_tags_merge_and_offsets(tmp_path):
    got = read_file(write(tmp_path / "meeting.vtt", VTT))
    assert contents(got) == [
        ("Anja de Vries", "Goedemorgen allemaal. We beginnen zo meteen."),
        ("Piet", "Prima & dank."),
        ("Anja de Vries", "Graag."),
        ("Kees", "Zoom-stijl label."),
    ]
    assert got.documents[C.TEXT].iloc[0] == (
        "Anja de Vries: Goedemorgen allemaal. We beginnen zo meteen.\n\n"
        "Piet: Prima & dank.\n\nAnja de Vries: Graag.\n\nKees: Zoom-stijl label.")
    t = got.turns
    assert t[C.TIME_START].tolist() == [1.0, 5.0, 5.0, 67.0]
    assert t[C.TIME_END].tolist() == [5.0, 7.25, 7.25, 68.0]
    assert got.warnings == []


def test_vtt_truncated_tail_keeps_cues_with_warning(tmp_path):
    text = VTT + "\n00:01:09.000 --> 00:0"
    got = read_file(write(tmp_path / "cut.vtt", text))
    assert len(got.turns) == 4
    assert len(got.warnings) == 1
    assert "cut.vtt: line 21" in got.warnings[0] and "truncated" in got.warnings[0]
    cut_in_tag = VTT + "\n00:01:09.000 --> 00:01:10.000\n<v Kee"
    assert "inside a tag" in read_file(write(tmp_path / "tag.vtt", cut_in_tag)).warnings[0]


def test_vtt_malformed_middle_and_missing_header(tmp_path):
    bad = VTT.replace("00:00:05.000 --> 00:00:07.250", "00:00:05.000 --> 00:0")
    with pytest.raises(InputError, match=r"mid\.vtt, line 15: expected a cue timing line"):
        read_file(write(tmp_path / "mid.vtt", bad))
    with pytest.raises(InputError, match=r"nohead\.vtt, line 1: not a WebVTT file"):
        read_file(write(tmp_path / "nohead.vtt", "00:00:01.000 --> 00:00:02.000\nHoi\n"))
    with pytest.raises(InputError, match=r"only\.vtt, line 3: expected a cue timing line"):
        read_file(write(tmp_path / "only.vtt", "WEBVTT\n\n00:00:01.000 --> 00:0"))


def test_vtt_cues_without_blank_lines_between(tmp_path):
    text = ("WEBVTT\n00:00:01.000 --> 00:00:02.000\n<v A>een</v>\n"
            "00:00:02.000 --> 00:00:03.000\n<v B>twee</v>\n")
    got = read_file(write(tmp_path / "dicht.vtt", text))
    assert contents(got) == [("A", "een"), ("B", "twee")]
    assert got.turns[C.TIME_START].tolist() == [1.0, 2.0]


SRT = """1
00:00:01,000 --> 00:00:02,000
Interviewer: Hoe gaat het?

2
00:00:02,500 --> 00:00:04,000
Interviewer: Met <i>jou</i>?

3
00:00:04,000 --> 00:00:06,000
Goed hoor,
dank je.
"""


def test_srt_speakers_merge_and_unlabelled_cues(tmp_path):
    got = read_file(write(tmp_path / "s.srt", SRT))
    assert contents(got) == [("Interviewer", "Hoe gaat het? Met jou?"),
                             ("", "Goed hoor, dank je.")]
    assert got.turns[C.TIME_START].tolist() == [1.0, 4.0]
    assert got.turns[C.TIME_END].tolist() == [4.0, 6.0]
    assert got.documents[C.TEXT].iloc[0] == ("Interviewer: Hoe gaat het? Met jou?\n\n"
                                             "Goed hoor, dank je.")


def test_srt_truncated_and_malformed(tmp_path):
    got = read_file(write(tmp_path / "cut.srt", SRT + "\n4\n00:00:07,000 --> 00:0"))
    assert len(got.turns) == 2 and "cut.srt: line 14" in got.warnings[0]
    with pytest.raises(InputError, match=r"lead\.srt, line 1: malformed SRT cue"):
        read_file(write(tmp_path / "lead.srt", "rommel\n\n" + SRT))
    arrow = SRT.replace("00:00:02,500 --> 00:00:04,000", "00:00:02,500 -> 00:00:04,000")
    with pytest.raises(InputError, match=r"arrow\.srt, line 5: malformed SRT cue"):
        read_file(write(tmp_path / "arrow.srt", arrow))
    index = SRT.replace("2\n00:00:02,500", "2\nrommel\n00:00:02,500")
    with pytest.raises(InputError, match=r"index\.srt, line 7: malformed SRT cue \(timing line"):
        read_file(write(tmp_path / "index.srt", index))


# --- csv ----------------------------------------------------------------------------

def test_csv_rows_attributes_and_offsets(tmp_path):
    text = ('id;text;school;start\n'
            'r7;"Wij mochten zelf kiezen; heel fijn.";A;2020\n'
            'r8;  ;B;2021\n'
            'r9;"Twee\nregels";B;2022\n')
    got = read_file(write(tmp_path / "survey.csv", text))
    assert contents(got) == [("", "Wij mochten zelf kiezen; heel fijn."), ("", "Twee\nregels")]
    assert got.documents[C.TEXT].iloc[0] == "Wij mochten zelf kiezen; heel fijn.\n\nTwee\nregels"
    t = got.turns
    assert t[C.UNIT_KEY].tolist() == ["r7", "r9"] and t[C.TURN].tolist() == [0, 1]
    assert t["school"].tolist() == ["A", "B"]
    assert t["start_csv"].tolist() == ["2020", "2022"]  # reserved name kept under another name
    assert "'start' is a reserved name" in got.warnings[0]


def test_csv_without_id_uses_row_number_and_custom_columns(tmp_path):
    path = write(tmp_path / "open.csv", "antwoord,leeftijd\neen,30\n,40\ndrie,50\n")
    got = read_file(path, text_column="antwoord", id_column="rid")
    assert got.turns[C.UNIT_KEY].tolist() == ["1", "3"]
    assert got.turns["leeftijd"].tolist() == ["30", "50"]


def test_csv_errors(tmp_path):
    with pytest.raises(InputError, match=r"a\.csv: no text column 'text'; columns found: 'id', 'body'"):
        read_file(write(tmp_path / "a.csv", "id,body\n1,x\n"))
    with pytest.raises(InputError, match=r"b\.csv, line 3: malformed CSV .*record starting here"):
        read_file(write(tmp_path / "b.csv", 'id,text\n1,ok\n2,"open quote\n3,x\n'))
    with pytest.raises(InputError, match=r"c\.csv, line 3: row has 3 fields but the header has 2"):
        read_file(write(tmp_path / "c.csv", "id,text\n1,ok\n2,x,y\n"))
    with pytest.raises(InputError, match=r"d\.csv, line 4: duplicate id 'r1' \(first on line 2\)"):
        read_file(write(tmp_path / "d.csv", "id,text\nr1,a\nr2,b\nr1,c\n"))
    with pytest.raises(InputError, match=r"e\.csv, line 2: row has 1 fields"):
        read_file(write(tmp_path / "e.csv", "id,text\n1\n"))
    with pytest.raises(InputError, match=r"f\.csv: no non-empty text"):
        read_file(write(tmp_path / "f.csv", "id,text\n1, \n"))


# --- decoding -----------------------------------------------------------------------

SAMPLE = "Café, ëen idee: € 5\nregel twee"


@pytest.mark.parametrize("data, encoding", [
    (SAMPLE.encode("utf-8"), "utf-8"),
    (b"\xef\xbb\xbf" + SAMPLE.encode("utf-8"), "utf-8-sig"),
    (SAMPLE.encode("utf-16"), "utf-16"),                       # BOM + LE on this platform
    (b"\xfe\xff" + SAMPLE.encode("utf-16-be"), "utf-16"),
    (SAMPLE.encode("cp1252"), "cp1252"),
])
def test_decode_bytes_encodings(data, encoding):
    assert decode_bytes(data, "x.txt") == (SAMPLE, encoding)


def test_decode_utf16_le_bom_explicit():
    data = b"\xff\xfe" + "I: hé\r\n".encode("utf-16-le")
    assert decode_bytes(data, "x.txt") == ("I: hé\n", "utf-16")


def test_decode_newlines_and_nfc():
    text, _ = decode_bytes("a\r\nb\rc\n\r\nd e\u0301".encode(), "x.txt")
    assert text == "a\nb\nc\n\nd \u00e9"


def test_decode_rejects_binary():
    with pytest.raises(InputError, match=r"x\.txt: not a text file \(contains NUL"):
        decode_bytes(b"abc\x00def", "x.txt")
    with pytest.raises(InputError, match=r"y\.txt: not a text file \(byte 0x81"):
        decode_bytes(b"caf\xe9 \x81", "y.txt")
    with pytest.raises(InputError, match=r"z\.txt: not a text file \(\d+ control characters"):
        decode_bytes(b"\x01\x02\x03 tekst" * 3, "z.txt")


def test_crlf_cp1252_file_offsets(tmp_path):
    raw = "I: Wat is één idee?\r\nR: Dat kost €5.\r\n".encode("cp1252")
    got = read_file(write(tmp_path / "win.txt", raw))
    assert got.documents[C.ENCODING].iloc[0] == "cp1252"
    assert contents(got) == [("I", "Wat is één idee?"), ("R", "Dat kost €5.")]


def test_utf16_file_reads(tmp_path):
    got = read_file(write(tmp_path / "u16.txt", "R: Dag ë\n", encoding="utf-16"))
    assert contents(got) == [("R", "Dag ë")]


# --- bad inputs ---------------------------------------------------------------------

def test_empty_and_whitespace_files(tmp_path):
    with pytest.raises(InputError, match=r"leeg\.txt: empty file"):
        read_file(write(tmp_path / "leeg.txt", b""))
    with pytest.raises(InputError, match=r"spaties\.md: empty file"):
        read_file(write(tmp_path / "spaties.md", " \n\t\r\n"))


def test_random_bytes_txt(tmp_path):
    path = write(tmp_path / "ruis.txt", random.Random(7).randbytes(5000))
    with pytest.raises(InputError, match=r"ruis\.txt: not a text file"):
        read_file(path)


def test_unknown_suffix_and_missing_file(tmp_path):
    with pytest.raises(InputError, match=r"x\.pdf: unsupported file type '\.pdf'"):
        read_file(write(tmp_path / "x.pdf", "%PDF"))
    with pytest.raises(InputError, match=r"nope\.txt: cannot read file"):
        read_file(tmp_path / "nope.txt")


def test_two_megabyte_single_line(tmp_path):
    line = ("woord " * 350_000).strip()
    assert len(line) > 2_000_000
    got = read_file(write(tmp_path / "groot.txt", line))
    assert len(got.turns) == 1
    assert (got.turns[C.START].iloc[0], got.turns[C.END].iloc[0]) == (0, len(line))


# --- discover -----------------------------------------------------------------------

def test_discover_skips_and_sorts(tmp_path):
    for name in ["b.txt", "a.docx", "sub/c.vtt", "sub/d.srt", "e.csv", "f.md", "metadata.csv",
                 "README.md", "readme.txt", "PSEUDONYMISATION_REPORT.csv", ".hidden.txt", "_draft.txt", "~$lock.docx",
                 "notes.pdf", ".git/x.txt", "_old/y.txt"]:
        write(tmp_path / name, "x")
    extra = write(tmp_path.parent / f"{tmp_path.name}-extra.pdf", "x")
    found = discover([tmp_path, extra, tmp_path / "b.txt"])
    assert [p.relative_to(tmp_path.parent).as_posix() for p in found] == [
        f"{tmp_path.name}-extra.pdf", *(f"{tmp_path.name}/{n}" for n in
                                        ["a.docx", "b.txt", "e.csv", "f.md", "sub/c.vtt", "sub/d.srt"])]
    assert discover([tmp_path / "metadata.csv", tmp_path / "README.md"]) == []
    with pytest.raises(InputError, match=r"missing: no such file or folder"):
        discover([tmp_path / "missing"])


# --- metadata -----------------------------------------------------------------------

def test_read_metadata(tmp_path):
    meta = read_metadata(write(tmp_path / "m.csv", "doc_id;school;language\nint1;A;nl\nint2;;en\n"))
    assert meta.to_dict("list") == {"doc_id": ["int1", "int2"], "school": ["A", ""],
                                    "language": ["nl", "en"]}
    with pytest.raises(InputError, match=r"n\.csv: no 'doc_id' column; columns found: 'id'"):
        read_metadata(write(tmp_path / "n.csv", "id\nx\n"))
    with pytest.raises(InputError, match=r"d\.csv, line 3: duplicate doc_id 'x'"):
        read_metadata(write(tmp_path / "d.csv", "doc_id,a\nx,1\nx,2\n"))


# --- ingest -------------------------------------------------------------------------

def make_corpus(root: Path) -> None:
    write(root / "int1.txt", "I: Vraag?\nR: Antwoord.\n")
    write(root / "int2.md", "**R:** Ja.\n")
    write(root / "sub/int3.srt", SRT)
    write(root / "int4.txt", b"")                                  # error: empty
    write(root / "int1.docx", random.Random(3).randbytes(300))     # error: corrupt
    write(root / "metadata.csv", "doc_id,school,language\nint1,A,Nederlands\nint2,B,Engels\n"
                                 "int4,C,nl\nint9,D,nl\nint3,E,Klingon\n")


def test_ingest_batch_metadata_errors_and_untouched_inputs(tmp_path):
    root = tmp_path / "raw"
    make_corpus(root)
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()}
    write(tmp_path / "int1.txt", "R: duplicaat\n")
    seen = []
    result = ingest([root, tmp_path / "int1.txt"], progress=lambda i, n, p: seen.append((i, n)))
    after = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()}
    assert before == after
    assert seen == [(i, 6) for i in range(6)]

    docs = result.documents
    assert docs[C.DOC_ID].tolist() == ["int1", "int2", "int3"]
    assert list(docs.columns) == C.DOCUMENT_COLUMNS + ["school", "language"]
    # Paths sort as strings, so the explicit tmp/int1.txt comes before tmp/raw/int1.txt and wins.
    assert docs[C.PATH].tolist() == [f"{tmp_path.as_posix()}/int1.txt", "int2.md", "sub/int3.srt"]
    assert docs["school"].tolist() == ["A", "B", "E"]
    assert docs[C.LANG].tolist() == ["nl", "en", "nl"]
    assert docs[C.N_CHARS].dtype == "int64"

    turns = result.turns
    assert list(turns.columns) == C.TURN_COLUMNS
    assert list(zip(turns[C.DOC_ID], turns[C.TURN])) == [
        ("int1", 0), ("int2", 0), ("int3", 0), ("int3", 1)]
    texts = dict(zip(docs[C.DOC_ID], docs[C.TEXT]))
    assert [texts[d][s:e] for d, s, e in zip(turns[C.DOC_ID], turns[C.START], turns[C.END])] == [
        "duplicaat", "Ja.", "Hoe gaat het? Met jou?", "Goed hoor, dank je."]

    errors = result.errors
    assert list(errors.columns) == C.ERROR_COLUMNS and (errors[C.ERROR_STAGE] == "ingest").all()
    rows = list(zip(errors[C.ERROR_FILE], errors[C.ERROR_SEVERITY], errors[C.ERROR_MESSAGE]))
    assert [r[:2] for r in rows] == [
        ("int1.docx", "error"), ("int1.txt", "error"), ("int4.txt", "error"),
        (f"{root.as_posix()}/metadata.csv", "warning"), ("sub/int3.srt", "warning")]
    assert "int1.docx: not a valid .docx" in rows[0][2]
    assert f"duplicate doc_id 'int1' (already read from {tmp_path.as_posix()}/int1.txt)" in rows[1][2]
    assert "int4.txt: empty file" in rows[2][2]
    # int4 is in the metadata but failed to read: its error row says enough, no extra warning.
    assert "metadata for doc_id 'int9' but no such document" in rows[3][2]
    assert "unknown language 'Klingon'" in rows[4][2]


def test_ingest_missing_metadata_warning_and_lang_override(tmp_path):
    write(tmp_path / "a.txt", "R: een\n")
    write(tmp_path / "b.txt", "R: twee\n")
    meta = write(tmp_path / "elders" / "meta.csv", "doc_id,lang\na,en\n")
    result = ingest([tmp_path / "a.txt", tmp_path / "b.txt"], metadata=meta)
    assert result.documents[C.LANG].tolist() == ["en", "nl"]
    assert "lang" not in result.documents.columns[len(C.DOCUMENT_COLUMNS):]
    msgs = result.errors[C.ERROR_MESSAGE].tolist()
    assert len(msgs) == 1 and "no metadata for doc_id 'b'" in msgs[0]
    forced = ingest([tmp_path / "a.txt"], metadata=meta, lang="English", default_lang="nl")
    assert forced.documents[C.LANG].tolist() == ["en"]
    no_meta = ingest([tmp_path / "a.txt"], default_lang="en-GB")
    assert no_meta.documents[C.LANG].tolist() == ["en"] and no_meta.errors.empty
    with pytest.raises(UsageError, match="unknown language 'fr'"):
        ingest([tmp_path / "a.txt"], lang="fr")


def test_ingest_csv_attributes_fill_other_documents(tmp_path):
    write(tmp_path / "s.csv", "id,text,groep\n1,hallo,x\n")
    write(tmp_path / "t.txt", "los\n")
    result = ingest([tmp_path])
    assert result.turns["groep"].tolist() == ["x", ""]
    assert result.turns[C.UNIT_KEY].tolist() == ["1", ""]


def test_ingest_only_bad_files_gives_empty_tables(tmp_path):
    write(tmp_path / "x.txt", b"")
    result = ingest(tmp_path)
    assert result.documents.empty and list(result.documents.columns) == C.DOCUMENT_COLUMNS
    assert result.turns.empty and list(result.turns.columns) == C.TURN_COLUMNS
    assert result.errors[C.ERROR_SEVERITY].tolist() == ["error"]


@pytest.mark.parametrize("value, code", [("nl-BE", "nl"), ("Vlaams", "nl"), ("Flemish", "nl"),
                                         ("nl_NL", "nl"), ("EN-gb", "en"), (" english ", "en"),
                                         ("fr", None), ("", None)])
def test_normalise_lang(value, code):
    assert normalise_lang(value) == code


# --- properties -----------------------------------------------------------------------

from hypothesis import given, settings, strategies as st  # noqa: E402

from pipeline.ingest.labels import _match_label, split_turns  # noqa: E402

_LINES = st.lists(st.one_of(
    st.sampled_from(["I: vraag", "R1:", "**Anja:** ja", "[00:00:05] Piet: nee", "", "  ",
                     "Nou ja, het punt is: x", "gewone regel", "Kortom: klaar"]),
    st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=30),
), max_size=25)


@settings(max_examples=150, deadline=None)
@given(_LINES)
def test_split_turns_spans_are_ordered_stripped_and_nonempty(lines):
    text = "\n".join(lines)
    turns = split_turns(text)
    previous_end = 0
    for turn in turns:
        assert previous_end <= turn.start < turn.end <= len(text)
        piece = text[turn.start:turn.end]
        assert piece.strip() == piece and piece
        previous_end = turn.end
    # Without labels, every non-blank character lands in some (paragraph) turn.
    if not any(_match_label(line) for line in lines):
        covered = "".join(text[t.start:t.end] for t in turns)
        assert "".join(covered.split()) == "".join(text.split())


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=["Cs", "Cc"]), max_size=200))
def test_decode_roundtrip_utf8_and_utf16(text):
    import unicodedata
    expected = unicodedata.normalize("NFC", text.lstrip("\ufeff"))
    assert decode_bytes(text.encode("utf-8"), "p.txt")[0] == expected
    assert decode_bytes(text.encode("utf-16"), "p.txt")[0] == expected


# --- UAT fixes: docx tables, binary formats renamed to text -----------------------------

def test_docx_tables_speaker_column_and_plain_tables_in_order(tmp_path):
    import docx

    document = docx.Document()
    document.add_paragraph("Interview school X, 12-03-2024")
    speakers = document.add_table(rows=4, cols=2)
    for r, (who, said) in enumerate([("Spreker", "Tekst"), ("Interviewer", "Hoe ging het?"),
                                     ("Pieters, Anna (Onderzoeker)", "En daarna?"),
                                     ("Anna", "Goed, dank je.\nWe mochten het zelf invullen.")]):
        speakers.cell(r, 0).text, speakers.cell(r, 1).text = who, said
    document.add_paragraph("R: Tussendoor nog iets.")
    other = document.add_table(rows=1, cols=2)
    other.cell(0, 0).text, other.cell(0, 1).text = "Dit is een hele zin.", "Tweede cel"
    path = tmp_path / "table.docx"
    document.save(str(path))
    got = read_file(path)
    assert contents(got) == [
        ("", "Interview school X, 12-03-2024"),
        ("Interviewer", "Hoe ging het?"),
        ("Pieters, Anna (Onderzoeker)", "En daarna?"),
        ("Anna", "Goed, dank je.\nWe mochten het zelf invullen."),
        ("R", "Tussendoor nog iets.\nDit is een hele zin.\nTweede cel"),
    ]


def test_docx_table_with_time_column_and_merged_cells(tmp_path):
    import docx

    document = docx.Document()
    table = document.add_table(rows=2, cols=3)
    for r, row in enumerate([("00:01:02", "I", "Wat vond je ervan?"), ("00:01:09", "R1", "Prima.")]):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    merged = document.add_table(rows=1, cols=2)
    merged.cell(0, 0).merge(merged.cell(0, 1)).text = "Samenvatting van het gesprek."
    path = tmp_path / "timed.docx"
    document.save(str(path))
    assert contents(read_file(path)) == [("I", "Wat vond je ervan?"),
                                         ("R1", "Prima.\nSamenvatting van het gesprek.")]


@pytest.mark.parametrize("data, what", [
    (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n", "a PDF file"),
    (b"PK\x03\x04\x14\x00\x06\x00[Content_Types].xml word/document.xml", "a Word .docx file"),
    (b"PK\x03\x04\x14\x00\x06\x00[Content_Types].xml xl/workbook.xml", "an Excel workbook"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 40, "an old Word/Excel file"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "a PNG image"),
    (b"\xff\xd8\xff\xe0\x00\x10JFIF", "a JPEG image"),
    (b"GIF89a\x01\x00\x01\x00", "a GIF image"),
    (b"{\\rtf1\\ansi\\deff0 {\\fonttbl} I: Hallo}", "an RTF file"),
])
def test_binary_formats_renamed_to_text_are_named(tmp_path, data, what):
    for name in ("interview.txt", "answers.csv", "notes.md"):
        path = write(tmp_path / name, data)
        with pytest.raises(InputError, match=rf"{name}.*is {what}.*, not text; "):
            read_file(path)
    with pytest.raises(InputError, match=rf"^x: is {what}"):
        decode_bytes(data, "x")  # metadata.csv goes through here too


def test_pdf_named_docx_is_named(tmp_path):
    path = write(tmp_path / "interview.docx", b"%PDF-1.4\nstuff")
    with pytest.raises(InputError, match=r"is a PDF file, not a \.docx file; export it"):
        read_file(path)


def test_text_starting_like_magic_words_still_reads(tmp_path):
    path = write(tmp_path / "pk.txt", "PK: dat was het.\nGIF is een formaat.\n")
    assert contents(read_file(path))[0] == ("PK", "dat was het.\nGIF is een formaat.")


@pytest.mark.parametrize("label", ["Pieters, Anna (Onderzoeker)", "Anna Pieters (interviewer)",
                                   "Anna (I)", "Interviewer - Anna", "Anna - Respondent"])
def test_is_label_accepts_teams_forms(label):
    assert is_label(label)


@pytest.mark.parametrize("label", ["Nou ja, het punt is", "Kortom, Jan", "Ja, nee",
                                   "Wat ik bedoel is (echt)", "Anna - Piet", "Dat (zie boven) is"])
def test_is_label_rejects_sentences_with_commas_and_parentheses(label):
    assert not is_label(label)


# --- UAT fixes: same file name in different folders, language detection ------------------

def test_same_stem_in_subfolders_gets_path_ids_with_warning_and_metadata(tmp_path):
    root = tmp_path / "raw"
    write(root / "school_a" / "interview.txt", "R: school a\n")
    write(root / "school_b" / "interview.txt", "R: school b\n")
    write(root / "other.txt", "R: apart\n")
    write(root / "metadata.csv", "doc_id,school\nschool_a__interview,A\n"
                                 "school_b/interview.txt,B\nother,C\n")
    result = ingest([root])
    docs = result.documents
    assert docs[C.DOC_ID].tolist() == ["other", "school_a__interview", "school_b__interview"]
    assert docs[C.PATH].tolist() == ["other.txt", "school_a/interview.txt", "school_b/interview.txt"]
    assert docs["school"].tolist() == ["C", "A", "B"]  # either id form in the metadata
    assert set(result.turns[C.DOC_ID]) == set(docs[C.DOC_ID])
    rows = result.errors
    assert rows[C.ERROR_SEVERITY].eq("warning").all() and len(rows) == 2
    assert rows[C.ERROR_FILE].tolist() == ["school_a/interview.txt", "school_b/interview.txt"]
    assert "doc_id is 'school_a__interview'" in rows[C.ERROR_MESSAGE].iloc[0]


def test_same_stem_named_one_by_one_and_at_top_level(tmp_path):
    from pipeline.ingest import assign_doc_ids

    a = write(tmp_path / "x" / "school_a" / "interview.txt", "R: a\n")
    b = write(tmp_path / "x" / "school_b" / "interview.txt", "R: b\n")
    ids, warnings = assign_doc_ids([a, b], [a.as_posix(), b.as_posix()])
    assert ids == ["school_a__interview", "school_b__interview"] and all(warnings)
    # At the top of the input folder a file keeps its stem; one folder, two suffixes: same id.
    ids, warnings = assign_doc_ids([a, b, tmp_path / "interview.docx"],
                                   ["school_a/interview.txt", "interview.txt", "interview.docx"],
                                   [True, True, True])
    assert ids == ["school_a__interview", "interview", "interview"]
    assert warnings[0] and warnings[1] is None and warnings[2] is None


def test_language_detected_when_metadata_has_none(tmp_path):
    write(tmp_path / "en.txt", "I: How did it start?\nR: We could shape it ourselves, and the "
                               "teachers were really part of it because they had the time.\n")
    write(tmp_path / "nl.txt", "I: Hoe begon het?\nR: We mochten het zelf invullen en dat "
                               "was echt heel fijn voor de leraren.\n")
    write(tmp_path / "meta_en.txt", "R: Het is niet zo dat we het niet wilden, maar de tijd.\n")
    write(tmp_path / "metadata.csv", "doc_id,lang\nmeta_en,en\nnl,\n")
    result = ingest([tmp_path], detect=True)
    assert dict(zip(result.documents[C.DOC_ID], result.documents[C.LANG])) == {
        "en": "en", "meta_en": "en", "nl": "nl"}  # metadata wins over the text
    warnings = result.errors[result.errors[C.ERROR_MESSAGE].str.startswith("language of")]
    assert warnings[C.ERROR_MESSAGE].tolist() == ["language of en detected as en (no metadata)"]
    assert warnings[C.ERROR_FILE].tolist() == ["en.txt"]
    # Without detection (the old default) and with --lang: no detection.
    assert ingest([tmp_path]).documents.set_index(C.DOC_ID)[C.LANG]["en"] == "nl"
    forced = ingest([tmp_path], detect=True, lang="nl")
    assert set(forced.documents[C.LANG]) == {"nl"}
    assert not forced.errors[C.ERROR_MESSAGE].str.startswith("language of").any()
    # Candidates come from the codebook: only nl allowed -> nl.
    only_nl = ingest([tmp_path], detect=True, languages=["nl"])
    assert only_nl.documents.set_index(C.DOC_ID)[C.LANG]["en"] == "nl"


@pytest.mark.parametrize("chunk_bytes", [1_000_000, 1])
def test_run_unique_ids_path_doc_ids_detected_lang_and_preamble(tmp_path, repo_root, chunk_bytes):
    """The runner (one chunk, or one chunk per file) applies the same rules as ingest/segment."""
    import pandas as pd

    from pipeline.runner import RunOptions, code_corpus

    raw = tmp_path / "raw"
    write(raw / "survey_a.csv", "id,text\n1,We mochten het zelf invullen.\n2,Geen tijd.\n")
    write(raw / "survey_b.csv", "id,text\n1,Meer uren.\n3,Samen met collega's.\n")
    write(raw / "school_a" / "interview.md", "# Interview 04\n\nI: Hoe begon het?\n"
                                             "R: We mochten het zelf invullen.\n")
    write(raw / "school_b" / "interview.txt", "Interviewer - Anna: How did it start?\n"
                                              "Bob: We could shape it ourselves, and the "
                                              "teachers were really part of it.\n")
    out = tmp_path / "coded"
    result = code_corpus([raw], codebook=repo_root / "codebook.yaml", out_dir=out,
                         options=RunOptions(progress=False, cache=False, chunk_bytes=chunk_bytes))
    assert result.exit_code == 0
    seg = pd.read_parquet(out / "segments.parquet")
    assert seg[C.SEGMENT_ID].is_unique
    docs = pd.read_parquet(out / "documents.parquet")
    assert dict(zip(docs[C.DOC_ID], docs[C.LANG])) == {
        "school_a__interview": "nl", "school_b__interview": "en", "survey_a": "nl",
        "survey_b": "nl"}
    ids = dict(zip(zip(seg[C.DOC_ID], seg[C.TEXT]), seg[C.SEGMENT_ID]))
    assert ids[("survey_b", "Samen met collega's.")] == "3"
    assert ids[("survey_b", "Meer uren.")] == "survey_b:1"
    # Both users of "1" are prefixed, in one table and in separate chunks alike.
    assert ids[("survey_a", "We mochten het zelf invullen.")] == "survey_a:1"
    assert ids[("survey_a", "Geen tijd.")] == "2"
    a = seg[seg[C.DOC_ID] == "school_a__interview"]
    assert list(zip(a[C.SPEAKER], a[C.ROLE], a[C.CODED])) == [
        ("", C.OTHER, False), ("I", C.INTERVIEWER, False), ("R", C.RESPONDENT, True)]
    b = seg[seg[C.DOC_ID] == "school_b__interview"]
    assert list(b[C.ROLE]) == [C.INTERVIEWER, C.RESPONDENT] and set(b[C.LANG]) == {"en"}
    codings = pd.read_parquet(out / "codings.parquet")
    assert set(codings[C.SEGMENT_ID]) <= set(seg[C.SEGMENT_ID])
    errors = pd.read_csv(out / "errors.csv")
    messages = errors[C.ERROR_MESSAGE].tolist()
    assert (errors[C.ERROR_SEVERITY] == "warning").all()
    assert "language of school_b__interview detected as en (no metadata)" in messages
    assert sum("other files have the same name stem 'interview'" in m for m in messages) == 2
    assert any("survey_b" in m and "prefixed" in m for m in messages)


def test_shared_csv_keys_across_files(tmp_path):
    from pipeline.ingest import shared_csv_keys

    write(tmp_path / "a.csv", "id,text\n1,Een.\n2,Twee.\n7,Zeven.\n")
    write(tmp_path / "b.csv", "id,text\n1,Een.\n3,Drie.\n7,Zeven.\n")
    write(tmp_path / "c.csv", "id,text\n3,Drie.\n")
    write(tmp_path / "broken.csv", "no,text column\n1,x\n")   # skipped: the run reports it
    write(tmp_path / "int.txt", "I: Vraag?\nR: Antwoord.\n")
    files = sorted(tmp_path.iterdir())
    assert shared_csv_keys(files) == {"1", "3", "7"}
    assert shared_csv_keys([tmp_path / "a.csv", tmp_path / "int.txt"]) == frozenset()


def test_file_roots_resolve_each_folder_once_and_follow_file_links(tmp_path):
    from pipeline.ingest import file_roots, parents

    inside = tmp_path / "in"
    (inside / "sub").mkdir(parents=True)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "target.txt").write_text("x", encoding="utf-8")
    plain = inside / "sub" / "a.txt"
    plain.write_text("x", encoding="utf-8")
    link = inside / "b.txt"
    link.symlink_to(outside / "target.txt")  # resolves outside the input folder
    linked_dir = tmp_path / "via"
    linked_dir.symlink_to(inside / "sub", target_is_directory=True)
    via = linked_dir / "a.txt"  # a plain file under a linked folder
    lone = outside / "target.txt"
    roots = {inside.resolve(): inside}
    files = [plain, link, via, lone]

    found = file_roots(files, roots)

    assert found == [inside, None, inside, None]
    # the same answer as resolving every file by itself
    assert found == [next((roots[r] for r in parents(f) if r in roots), None) for f in files]
    dirs: dict = {}
    assert parents(via, dirs)[0] == plain.resolve()
    assert dirs == {linked_dir: (inside / "sub").resolve()}


def test_discover_resolves_folders_once_and_follows_file_links(tmp_path):
    from pipeline.ingest import discover

    inside = tmp_path / "in"
    (inside / "sub").mkdir(parents=True)
    (inside / "sub" / "a.txt").write_text("x", encoding="utf-8")
    (inside / "c.txt").write_text("x", encoding="utf-8")
    (inside / "b.txt").symlink_to(inside / "c.txt")  # the same file twice: kept once
    (tmp_path / "via").symlink_to(inside / "sub", target_is_directory=True)

    found = discover([inside, tmp_path / "via"])

    # one path per real file (the linked folder's a.txt and the link b.txt are duplicates)
    assert len(found) == 2 and found == sorted(found, key=lambda p: p.as_posix())
    assert found[0] in (inside / "b.txt", inside / "c.txt")
    assert found[1] == inside / "sub" / "a.txt"
    assert {p.resolve() for p in found} == {(inside / "c.txt").resolve(),
                                            (inside / "sub" / "a.txt").resolve()}
