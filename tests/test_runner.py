"""The runner's memo of the CSV ids shared by several files (``runner.shared_keys``)."""
import pipeline.cache_prune as cache_prune
import pipeline.runner as runner
from pipeline.runner import RunOptions, shared_keys


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_shared_keys_are_remembered_per_csv_bytes(tmp_path, monkeypatch):
    raw = tmp_path / "raw"
    raw.mkdir()
    a = _write(raw / "a.csv", "id,text\n1,Een.\n2,Twee.\n7,Zeven.\n")
    _write(raw / "b.csv", "id,text\n1,Een.\n3,Drie.\n7,Zeven.\n")
    _write(raw / "int.txt", "I: Vraag?\nR: Antwoord.\n")
    files = sorted(raw.iterdir())
    cache = tmp_path / "cache"
    calls = []
    original = runner.ingest_stage.shared_csv_keys

    def counted(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(runner.ingest_stage, "shared_csv_keys", counted)
    opts = RunOptions()
    assert shared_keys(files, opts, str(cache)) == {"1", "7"}
    assert shared_keys(files, opts, str(cache)) == {"1", "7"}
    assert len(calls) == 1  # the second run read the memo
    memos = list((cache / runner.SHARED_KEYS).glob("*.json"))
    assert len(memos) == 1
    moved = tmp_path / "moved"  # the same files by other paths: the same memo
    raw.rename(moved)
    assert shared_keys(sorted(moved.iterdir()), opts, str(cache)) == {"1", "7"}
    assert len(calls) == 1
    moved.rename(raw)
    # another id column, or other bytes in a CSV file: computed again
    assert shared_keys(files, RunOptions(id_column="text"), str(cache)) == {"Een.", "Zeven."}
    _write(a, "id,text\n3,Drie.\n")
    assert shared_keys(files, opts, str(cache)) == {"3"}
    assert len(calls) == 3
    # a damaged memo is recomputed (and rewritten); no cache folder: always computed
    for memo in (cache / runner.SHARED_KEYS).glob("*.json"):
        memo.write_text('{"not": "a list"', encoding="utf-8")
    assert shared_keys(files, opts, str(cache)) == {"3"}
    assert shared_keys(files, opts, str(cache)) == {"3"}
    assert len(calls) == 4
    assert shared_keys(files, opts, None) == {"3"}
    assert len(calls) == 5


def test_cache_folders_of_earlier_formats_are_deleted(tmp_path):
    from test_streaming import CODEBOOK, make_corpus

    make_corpus(tmp_path / "raw")
    (tmp_path / "codebook.yaml").write_text(CODEBOOK)
    cache = tmp_path / "cache"
    for name in [*cache_prune.OBSOLETE_CACHES, "keep-me"]:
        (cache / name / "ab").mkdir(parents=True)
        (cache / name / "ab" / "entry").write_bytes(b"old")
    runner.code_corpus([tmp_path / "raw"], codebook=tmp_path / "codebook.yaml",
                       out_dir=tmp_path / "out",
                       options=RunOptions(progress=False, cache_dir=str(cache)))
    left = sorted(p.name for p in cache.iterdir())
    assert not set(cache_prune.OBSOLETE_CACHES) & set(left)
    assert "keep-me" in left and "chunks-v2" in left
