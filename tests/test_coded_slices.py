"""coded_slices.moved: after a transcript is added or removed, the chunks a recent run
coded give their coding rows from its files; the outputs are those of a run without cache."""
import json
import shutil

import pytest

from pipeline import coded_slices
from pipeline.chunk import ChunkTask, RunContext, task_key
from pipeline.codebook import load_codebook
from pipeline.coded_files import FILES, SUBDIR
from pipeline.ingest import read_metadata
from test_coded_files import coded  # noqa: F401 - one item per chunk a run coded
from test_streaming import CODEBOOK, digests, make_corpus

CHUNK_BYTES = 100   # every file a chunk of its own (``chunk_plan``: at most 1.5 x this)


@pytest.fixture
def corpus(tmp_path):
    make_corpus(tmp_path / "raw")
    (tmp_path / "codebook.yaml").write_text(CODEBOOK)
    return tmp_path


@pytest.fixture
def sliced(monkeypatch):
    """(table, chunk) of every chunk's rows a run took from a stored run's files."""
    calls: list[tuple[str, int]] = []
    original = coded_slices.Slices.part

    def spy(self, name, k, folder):
        calls.append((name, k))
        return original(self, name, k, folder)

    monkeypatch.setattr(coded_slices.Slices, "part", spy)
    return calls


def _run(tmp, out="cached", **kw):
    from pipeline.runner import RunOptions, code_corpus

    return code_corpus([tmp / "raw"], codebook=tmp / "codebook.yaml", out_dir=tmp / out,
                       options=RunOptions(progress=False, chunk_bytes=CHUNK_BYTES, **kw))


def _same_as_fresh(tmp, got):
    fresh = _run(tmp, "fresh", cache=False)
    assert digests(tmp / "cached") == digests(tmp / "fresh")
    for key in ("counts",):
        assert got.manifest[key] == fresh.manifest[key]
    assert got.manifest["throughput"]["tokens"] == fresh.manifest["throughput"]["tokens"]
    shutil.rmtree(tmp / "fresh")


def _taken(res):
    return res.manifest["throughput"]["chunks_taken"], res.manifest["throughput"]["chunks"]


def _add_interview(raw, name="int00b", source="int00"):
    text = (raw / f"{source}.txt").read_text(encoding="utf-8").replace("eigenaar", "eigenaren")
    (raw / f"{name}.txt").write_text(text, encoding="utf-8")
    meta = raw / "metadata.csv"
    meta.write_text(meta.read_text() + f"{name},NL,nl\n")


def test_a_transcript_added_or_removed_codes_only_its_chunk(corpus, coded, sliced):
    _run(corpus)
    every = len(coded)
    assert every >= 12 and not sliced
    coded.clear()
    _add_interview(corpus / "raw")   # and its row in metadata.csv
    res = _run(corpus)
    taken, chunks = _taken(res)
    assert 0 < len(coded) <= 3 and taken == chunks - len(coded)
    # the chunks taken: their segments, codings and matches rows
    for name in ("segments", "codings", "matches"):
        assert len([k for table, k in sliced if table == name]) == taken
    _same_as_fresh(corpus, res)

    (corpus / "raw" / "int06.txt").unlink()  # a chunk of its own: every other one is taken
    sliced.clear()
    res = _run(corpus, jobs=2)
    assert not res.manifest["throughput"]["coded_files_taken"]
    taken, chunks = _taken(res)
    assert taken == chunks == every
    assert len(sliced) == 3 * taken  # segments, codings and matches of every chunk
    _same_as_fresh(corpus, res)

    coded.clear()
    res = _run(corpus)   # unchanged: the stored files are taken whole
    assert res.manifest["throughput"]["coded_files_taken"] and not coded


@pytest.mark.parametrize("sector", [True, False])
def test_ids_renamed_by_this_run_or_the_stored_one_are_coded_again(corpus, coded, sliced,
                                                                    sector):
    # the survey's "sector" column is only in its segments: the segments files are merged
    # at the end (``PartWriter.finalize``), not streamed; both record where a chunk's rows are
    if not sector:
        (corpus / "raw" / "survey.csv").write_text("id,text\nS1,Meer tijd\nS2,Graag\n")
    # a survey read before int05 has ids that int05's segments have: int05's are renamed
    survey = corpus / "raw" / "a_survey.csv"
    _run(corpus)
    coded.clear()
    survey.write_text("id,text\nint05:1,Wij zijn eigenaar\nint05:3,Mogen we zelf\n")
    res = _run(corpus)
    errors = (corpus / "cached" / "errors.csv").read_text()
    assert "ids 'int05:1', 'int05:3' of doc_id 'int05'" in errors
    taken, chunks = _taken(res)
    # the survey's chunk and int05's (its rows in the stored files hold the old ids), and
    # a chunk without rows in a table (an empty row group is not copied) if there is one
    assert 2 <= len(coded) <= 3 and taken == chunks - len(coded)
    assert {table for table, _ in sliced} == {"codings", "matches", "segments"}
    _same_as_fresh(corpus, res)

    coded.clear()
    survey.unlink()  # int05's chunk was renamed in the newest stored run: not taken from it
    _add_interview(corpus / "raw")  # (without it, the first run's files are taken whole)
    res = _run(corpus)
    taken, chunks = _taken(res)
    assert 2 <= len(coded) <= 3 and taken == chunks - len(coded)   # int00b's, int05's
    _same_as_fresh(corpus, res)


def test_the_layout_keeps_keys_and_renames(corpus):
    _run(corpus)
    [entry] = sorted((corpus / "cached" / ".cache" / SUBDIR).glob("*/*/*"))
    chunks = json.loads((entry / "meta.json").read_text())["chunks"]
    assert all(isinstance(info["key"], str) and info["renamed"] is False for info in chunks)
    assert len({info["key"] for info in chunks}) == len(chunks)
    # an entry of an older format (no keys): no chunk is found in it
    meta = json.loads((entry / "meta.json").read_text())
    for info in meta["chunks"]:
        del info["key"]
    assert coded_slices.moved([(entry, meta)], [c["key"] for c in chunks], corpus / "x") is None
    keys = [c["key"] for c in chunks]
    meta = json.loads((entry / "meta.json").read_text())
    meta["chunks"][1]["renamed"] = True
    got = coded_slices.moved([(entry, meta)], ["new", *keys], corpus / "links")
    assert sorted(got.chunks) == [k + 1 for k in range(len(keys)) if k != 1]
    assert set(got.files) == set(FILES)


def _key(tmp, meta_text, files):
    (tmp / "metadata.csv").write_text(meta_text)
    meta = read_metadata(tmp / "metadata.csv")
    ctx = RunContext(codebook_path="b", codebook_hash="h", unit="turn", interviewer_labels=["I"],
                     code_speakers=None, text_column="text", id_column="id", default_lang="nl",
                     forced_lang=None, meta=meta, meta_name="metadata.csv", cache_dir=None)
    book = load_codebook(tmp / "codebook.yaml")
    task = ChunkTask(0, [(k, str(path), path.name) for k, path in enumerate(files)])
    return task_key(task, ctx, book)


def test_a_chunk_key_holds_its_own_metadata_rows(corpus):
    files = [corpus / "raw" / "int01.txt", corpus / "raw" / "int02.txt"]
    head = "doc_id,school,age\n"
    base = _key(corpus, head + "int01,A,30\nint02,B,40\n", files)
    # rows of other documents, added or moved: the same key
    assert _key(corpus, head + "int09,C,50\nint02,B,40\nint01,A,30\n", files) == base
    # its own row or the columns changed: another key
    assert _key(corpus, head + "int01,A,31\nint02,B,40\n", files) != base
    assert _key(corpus, "doc_id,school\nint01,A\nint02,B\n", files) != base
    assert _key(corpus, head + "int02,B,40\n", files) != base
    # a chunk with a CSV file also holds the run's shared CSV ids
    survey = [corpus / "raw" / "survey.csv"]
    assert _key(corpus, head, survey) == _key(corpus, head + "int01,A,30\n", survey)


def test_damaged_segments_files_of_the_stored_run_are_not_taken(corpus, coded, sliced):
    (corpus / "raw" / "survey.csv").write_text("id,text\nS1,Meer tijd\nS2,Graag\n")
    _run(corpus)
    [entry] = sorted((corpus / "cached" / ".cache" / "tables-v1").glob("*/*"))
    assert json.loads((entry / "meta.json").read_text())["chunks"]
    with open(entry / "segments.csv", "r+b") as fh:  # one byte changed in place
        fh.seek(40)
        byte = fh.read(1)
        fh.seek(40)
        fh.write(b"x" if byte != b"x" else b"y")
    _add_interview(corpus / "raw")
    res = _run(corpus)
    assert {table for table, _ in sliced} == {"codings", "matches"}
    assert not entry.exists()  # removed, so that a run stores a good one
    _same_as_fresh(corpus, res)
