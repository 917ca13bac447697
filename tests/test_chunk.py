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
