"""Property-based tests: arbitrary input never raises anything but the project's errors.

Readers (every ingest suffix), the codebook loader and the review importer are fed
arbitrary bytes / YAML; a ``PipelineError`` subclass is the only acceptable failure
(anything else would be a traceback for the user).
"""
from __future__ import annotations

import io
import os
import tempfile
import zipfile
from pathlib import Path

import pandas as pd
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline import columns as C
from pipeline import review as R
from pipeline import review_sheet as RS
from pipeline import review_io as RIO
from pipeline.codebook import load_codebook
from pipeline.errors import PipelineError
from pipeline.ingest import SUPPORTED_SUFFIXES, decode_bytes, read_file

# QCODE_FUZZ_EXAMPLES=2000 for a long fuzzing session; the default keeps the suite fast.
SETTINGS = settings(max_examples=int(os.environ.get("QCODE_FUZZ_EXAMPLES", "60")), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

# Bytes that look a bit like the real thing, so parsers get past their first check.
_PREFIXES = [b"", b"WEBVTT\n\n", b"1\n00:00:01,000 --> 00:00:02,000\n", b"id,text\n",
             b"I: ", b"\xef\xbb\xbf", b"\xff\xfe", b"PK\x03\x04"]
raw_bytes = st.builds(lambda p, b: p + b, st.sampled_from(_PREFIXES), st.binary(max_size=400))
texty = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300)


def _write(tmp: str, name: str, data: bytes) -> Path:
    path = Path(tmp) / name
    path.write_bytes(data)
    return path


def _docx_like(body: bytes) -> bytes:
    """A zip with a document.xml holding arbitrary bytes (a broken .docx)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("[Content_Types].xml", b"<Types/>")
        zf.writestr("word/document.xml", body)
    return buf.getvalue()


@SETTINGS
@given(data=raw_bytes, suffix=st.sampled_from(SUPPORTED_SUFFIXES))
def test_read_file_arbitrary_bytes(data, suffix):
    with tempfile.TemporaryDirectory() as tmp:
        try:
            got = read_file(_write(tmp, f"doc{suffix}", data))
        except PipelineError:
            return
        doc = got.documents.iloc[0]
        for t in got.turns.itertuples():
            assert 0 <= t.start <= t.end <= len(doc[C.TEXT])


@SETTINGS
@given(body=st.binary(max_size=300) | texty.map(lambda s: (
    '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
    f"<w:body><w:p><w:r><w:t>{s}</w:t></w:r></w:p></w:body></w:document>").encode("utf-8")))
def test_read_docx_broken_zip_contents(body):
    with tempfile.TemporaryDirectory() as tmp:
        try:
            read_file(_write(tmp, "doc.docx", _docx_like(body)))
        except PipelineError:
            pass


@SETTINGS
@given(text=texty, suffix=st.sampled_from([".txt", ".md", ".vtt", ".srt", ".csv"]),
       enc=st.sampled_from(["utf-8", "utf-16", "cp1252"]))
def test_read_file_arbitrary_text(text, suffix, enc):
    try:
        data = text.encode(enc)
    except UnicodeEncodeError:
        data = text.encode("utf-8")
    with tempfile.TemporaryDirectory() as tmp:
        try:
            read_file(_write(tmp, f"doc{suffix}", data))
        except PipelineError:
            pass


@SETTINGS
@given(data=st.binary(max_size=400))
def test_decode_bytes_arbitrary(data):
    try:
        text, enc = decode_bytes(data, "x.txt")
    except PipelineError:
        return
    assert "\r" not in text and enc


# --- codebook --------------------------------------------------------------------

yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | texty
    | st.sampled_from(["terms", "phrase", "glob", "pattern", "proximity", "exclude", "nl", "en",
                       "ownership", "*", "[", "amo.ability"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["version", "name", "settings", "codes", "id", "label", "definition", "rules",
                         "nl", "en", "kind", "terms", "phrases", "globs", "patterns", "weight",
                         "children", "a", "b", "window", "examples", "threshold", "unit"]) | texty,
        inner, max_size=5),
    max_leaves=20)


@SETTINGS
@given(doc=yaml_values)
def test_codebook_arbitrary_yaml_structure(doc):
    with tempfile.TemporaryDirectory() as tmp:
        try:
            load_codebook(_write(tmp, "codebook.yaml", yaml.safe_dump(doc).encode("utf-8")))
        except PipelineError:
            pass


@SETTINGS
@given(text=texty | raw_bytes.map(lambda b: b.decode("latin-1")))
def test_codebook_arbitrary_text(text):
    with tempfile.TemporaryDirectory() as tmp:
        try:
            load_codebook(_write(tmp, "codebook.yaml", text.encode("utf-8", "surrogatepass")))
        except PipelineError:
            pass


@SETTINGS
@given(data=st.binary(max_size=300))
def test_codebook_arbitrary_bytes(data):
    with tempfile.TemporaryDirectory() as tmp:
        try:
            load_codebook(_write(tmp, "codebook.yaml", data))
        except PipelineError:
            pass


# --- review importer -------------------------------------------------------------------

SEGMENTS = pd.DataFrame({C.SEGMENT_ID: ["d:0", "d:1"], C.DOC_ID: ["d", "d"],
                         C.CONTENT_HASH: [R.content_hash("a"), R.content_hash("b")],
                         C.START: [0, 2], C.END: [1, 3], C.TEXT: ["a", "b"]})
HEADER = ",".join(RIO.WRITE_COLUMNS).encode() + b"\n"
cells = st.sampled_from(["d:0", "d:1", "d:9", "accept", "reject", "Accept", "agency", "x;y", "",
                         R.content_hash("a"), "a", "[[a]]", '"', ",", ";", "\n", "=1+1"]) | texty
csv_rows = st.lists(st.lists(cells, min_size=0, max_size=len(RIO.WRITE_COLUMNS) + 2), max_size=6)


def _import(data: bytes) -> None:
    try:
        raw, checks = RIO.read_csv_bytes(data, Path("r.csv"))
        dec, problems = RS.parse_decisions(raw, segments=SEGMENTS, codes=["agency", "ownership"],
                                          coder="ann", timestamp="t", source="r.csv",
                                          text_matches=checks)
    except PipelineError:
        return
    assert list(dec.columns) == R.REVIEW_COLUMNS
    assert set(dec[R.DECISION]) <= set(R.DECISIONS)
    assert set(dec[C.SEGMENT_ID]) <= {"d:0", "d:1"}
    assert all(p.path.startswith("row ") for p in problems)


@SETTINGS
@given(data=raw_bytes)
def test_review_import_arbitrary_bytes(data):
    _import(data)
    _import(HEADER + data)


@SETTINGS
@given(rows=csv_rows, sep=st.sampled_from([",", ";"]))
def test_review_import_arbitrary_rows(rows, sep):
    buf = io.StringIO()
    width = max((len(r) for r in rows), default=0)
    pd.DataFrame([r + [""] * (width - len(r)) for r in rows]).to_csv(buf, index=False, header=False, sep=sep)
    _import(sep.join(RIO.WRITE_COLUMNS).encode() + b"\n" + buf.getvalue().encode("utf-8"))


@SETTINGS
@given(data=raw_bytes)
def test_review_import_arbitrary_xlsx_bytes(data):
    with tempfile.TemporaryDirectory() as tmp:
        for payload in (data, _docx_like(data)):
            try:
                RIO.read_review_file(_write(tmp, "r.xlsx", payload))
            except PipelineError:
                pass
