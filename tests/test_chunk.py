"""Tests of pipeline.chunk: one chunk of files -> its slice of every output table."""
import pickle

from pipeline.chunk import ChunkTask, process_chunk
from pipeline.codebook import load_codebook
from pipeline.csv_rows import csv_rows
from pipeline.runner import RunOptions, _context


def _chunk(root, tmp_path, **options):  # noqa: ANN001, ANN202
    files = sorted((root / "data" / "raw").glob("*.txt"))[:3]
    book = load_codebook(root / "codebook.yaml")
    ctx = _context(RunOptions(**options), book, root / "codebook.yaml", book.settings.unit,
                   files, tmp_path)
    task = ChunkTask(0, [(k, str(f), f.name) for k, f in enumerate(files)])
    return process_chunk(task, ctx)


def test_segments_csv_lines_are_those_of_the_segments(repo_root, tmp_path):
    result = _chunk(repo_root, tmp_path, cache=False)
    assert len(result.segments) > 10
    assert result.segments_csv is not None
    assert result.segments_csv == csv_rows(result.segments)


def test_segments_csv_lines_are_not_pickled(repo_root, tmp_path):
    result = _chunk(repo_root, tmp_path, cache=False)
    copy = pickle.loads(pickle.dumps(result))
    assert copy.segments_csv is None
    assert result.segments_csv is not None  # pickling leaves the result itself alone
    assert copy.codings_csv == result.codings_csv
    assert copy.segments.equals(result.segments)


def test_a_cached_chunk_makes_no_segments_csv_lines(repo_root, tmp_path):
    first = _chunk(repo_root, tmp_path, cache=True)
    again = _chunk(repo_root, tmp_path, cache=True)
    assert first.segments_csv is not None
    assert again.stats["cache_hits"] > 0
    assert again.segments_csv is None  # from the chunk cache: no thread, the spill formats


def test_a_chunk_entry_is_stored_before_the_chunk_is_matched(repo_root, tmp_path, monkeypatch):
    """The entry (documents, segments, tokens) is written once parsing is done, so the
    cache thread writes it while the chunk is matched and aggregated."""
    import pytest

    from pipeline.code import matching

    def stop(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise RuntimeError("stopped in matching")

    with monkeypatch.context() as patch:
        patch.setattr(matching, "match_frame", stop)
        with pytest.raises(RuntimeError, match="stopped in matching"):
            _chunk(repo_root, tmp_path, cache=True)
    entries = list((tmp_path / ".cache").glob("chunks-v*/*/*/meta.json"))
    assert len(entries) == 1
    again = _chunk(repo_root, tmp_path, cache=True)
    assert again.stats["cache_hits"] > 0 and again.stats["cache_misses"] == 0
    assert again.segments_csv is None  # documents and segments came from that entry
    fresh = _chunk(repo_root, tmp_path / "fresh", cache=False)
    assert again.codings.equals(fresh.codings) and again.matches.equals(fresh.matches)
    assert len(fresh.codings) > 0


def test_chunk_metadata_rows_are_the_filtered_rows():
    import numpy as np
    import pandas as pd

    from pipeline import columns as C
    from pipeline.chunk import _chunk_meta

    meta = pd.DataFrame({C.DOC_ID: ["b", "a", "c", "a", None, "d"],
                         "sector": ["x", "y", "z", "w", "v", "u"]}, index=[5, 3, 9, 1, 0, 2])
    meta[C.DOC_ID] = meta[C.DOC_ID].astype("str")
    for ids in (["a", "c"], [], ["zz"], ["d", "b", "a"], ["a", np.nan]):
        got = _chunk_meta(meta, ids)
        assert got.equals(meta[meta[C.DOC_ID].isin(set(ids))]), ids
        assert list(got.index) == list(meta[meta[C.DOC_ID].isin(set(ids))].index)
    other = meta.iloc[::-1]  # another table: indexed again
    assert _chunk_meta(other, ["a"]).equals(other[other[C.DOC_ID].isin({"a"})])
    assert _chunk_meta(None, ["a"]) is None


def test_a_survey_s_answers_are_counted_once_for_their_languages(repo_root, tmp_path,
                                                                 monkeypatch):
    from pipeline import columns as C
    from pipeline import langid

    answers = ["We kregen er echt geen tijd voor, dat is het probleem.",
               "The team decided it together and we could shape it ourselves.",
               "Ik wil het zelf doen, maar de school geeft ons niet veel ruimte.",
               "Ok"]
    survey = tmp_path / "survey.csv"
    survey.write_text("id,text\n" + "".join(f'r{k},"{a}"\n' for k, a in enumerate(answers)),
                      encoding="utf-8")
    book = load_codebook(repo_root / "codebook.yaml")
    ctx = _context(RunOptions(cache=False), book, repo_root / "codebook.yaml",
                   book.settings.unit, [survey], tmp_path)
    counted: list[str] = []
    count = langid._count
    monkeypatch.setattr(langid, "_count", lambda text: counted.append(text) or count(text))
    result = process_chunk(ChunkTask(0, [(0, str(survey), survey.name)]), ctx)
    assert sorted(counted) == sorted(answers)  # the document's, then each answer's, once
    assert result.documents[C.LANG].tolist() == ["nl"]
    assert result.segments[C.LANG].tolist() == ["nl", "en", "nl", "nl"]
    assert [langid.detect_language(a, default="nl") for a in answers] == ["nl", "en", "nl", "nl"]
