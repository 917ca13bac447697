"""Cache pruning: the entries of the last runs' keys are kept, the others deleted."""
import json

import pytest

import pipeline.cache_prune as cache_prune
from pipeline.runner import RunOptions, code_corpus
from test_streaming import CODEBOOK, OUTPUTS, make_corpus


@pytest.fixture
def corpus(tmp_path):
    make_corpus(tmp_path / "raw")
    (tmp_path / "codebook.yaml").write_text(CODEBOOK)
    return tmp_path


def _run(tmp, out="cached", **kw):
    return code_corpus([tmp / "raw"], codebook=tmp / "codebook.yaml", out_dir=tmp / out,
                       options=RunOptions(progress=False, chunk_bytes=400, **kw))


def _names(cache, sub):
    return {p.name for p in (cache / sub).glob("??/*") if not p.name.startswith(".")}


def _edit(tmp, old, new):
    path = tmp / "raw" / "int03.txt"
    text = path.read_text(encoding="utf-8")
    assert old in text and len(old) == len(new)  # same length: the other chunks keep their keys
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_entries_of_keys_no_recent_run_used_are_deleted(corpus, monkeypatch):
    monkeypatch.setattr(cache_prune, "KEEP_RUNS", 2)
    monkeypatch.setattr(cache_prune, "GRACE_S", -1.0)  # entries of a moment ago count too
    cache = corpus / "cached" / ".cache"
    first = _run(corpus)
    chunks_a = _names(cache, "chunks-v2")
    _edit(corpus, "Vraag 0?", "Vraag 9?")
    second = _run(corpus)  # two runs journalled: the first run's entries are still used
    chunks_b = _names(cache, "chunks-v2")
    assert len(chunks_b - chunks_a) == 1 and chunks_a <= chunks_b
    _edit(corpus, "Vraag 9?", "Vraag 8?")
    third = _run(corpus)  # the journal: the second and third runs
    chunks_c = _names(cache, "chunks-v2")
    gone = chunks_a - chunks_c  # the first run's entry of the edited file's chunk
    assert len(gone) == 1 and len(chunks_c - chunks_b) == 1
    assert chunks_c == (chunks_b - gone) | (chunks_c - chunks_b)
    assert first.manifest["throughput"]["cache_entries_pruned"] == 0
    assert second.manifest["throughput"]["cache_entries_pruned"] == 0
    # that chunk's entry, its match and coding entries, the first run's tables and coding files
    assert third.manifest["throughput"]["cache_entries_pruned"] == 5
    journal = json.loads((cache / cache_prune.JOURNAL).read_text())["runs"]
    live = cache_prune.live_names(cache, journal)
    for sub in ("chunks-v2", "matches-v3", "codings-v3", "tables-v1", "coded-v1"):
        assert _names(cache, sub) <= live[sub], sub  # nothing of other keys is left
    assert _names(cache, "matches-v3") and _names(cache, "codings-v3")
    assert live["matches-v3"] & _names(cache, "matches-v3") == _names(cache, "matches-v3")
    # every entry the second state needs is still there: back to it, nothing is parsed
    _edit(corpus, "Vraag 8?", "Vraag 9?")
    back = _run(corpus)
    assert back.manifest["stage_times_s"]["segment"] == 0.0
    assert back.manifest["throughput"]["coded_files_taken"]
    _run(corpus, "fresh", cache=False)
    for name in OUTPUTS:
        assert (corpus / "cached" / name).read_bytes() == (corpus / "fresh" / name).read_bytes()


def test_recent_entries_and_a_short_journal_are_kept(corpus, monkeypatch):
    monkeypatch.setattr(cache_prune, "KEEP_RUNS", 2)
    cache = corpus / "cached" / ".cache"
    _run(corpus)
    before = _names(cache, "chunks-v2")
    for old, new in (("Vraag 0?", "Vraag 9?"), ("Vraag 9?", "Vraag 8?")):
        _edit(corpus, old, new)
        res = _run(corpus)  # within GRACE_S of their writing: kept
        assert res.manifest["throughput"]["cache_entries_pruned"] == 0
    assert before <= _names(cache, "chunks-v2")
    # an unreadable journal starts again: nothing deleted until it holds KEEP_RUNS runs
    (cache / cache_prune.JOURNAL).write_text("{", encoding="utf-8")
    got = cache_prune.record_and_prune(cache, ["0" * 64], None, grace_s=-1.0)
    assert got == {"entries": 0, "bytes": 0} and before <= _names(cache, "chunks-v2")
    got = cache_prune.record_and_prune(cache, ["0" * 64], None, grace_s=-1.0)
    assert got["entries"] > 0 and got["bytes"] > 0
    assert not _names(cache, "chunks-v2") and not _names(cache, "tables-v1")
    assert (cache / "matches-v3" / "defs").is_dir()  # not an entry: left alone


def test_a_run_without_cache_or_with_a_read_only_journal_still_succeeds(corpus, monkeypatch):
    def fail(*args, **kw):
        raise PermissionError("read-only")

    monkeypatch.setattr(cache_prune, "record_and_prune", fail)
    res = _run(corpus)
    assert res.exit_code == 2  # (the corpus's broken file) and the outputs are written
    assert res.manifest["throughput"]["cache_entries_pruned"] == 0
    res = _run(corpus, "plain", cache=False)
    assert not (corpus / "plain" / ".cache").exists()


def test_docbin_files_no_journalled_run_read_or_wrote_are_deleted(tmp_path):
    import os

    shard = tmp_path / cache_prune.DOCBINS / "ab"
    shard.mkdir(parents=True)
    old, new = shard / "old.spacy", shard / "new.spacy"
    old.write_bytes(b"x" * 10)
    new.write_bytes(b"y" * 20)
    os.utime(old, (1_000, 1_000))
    got = cache_prune.record_and_prune(tmp_path, [], None, keep=1, grace_s=0.0,
                                       now=5_000.0, started=2_000.0)
    assert got == {"entries": 1, "bytes": 10}
    assert not old.exists() and new.exists()  # changed after the oldest run started


def test_a_docbin_file_read_counts_as_used(tmp_path):
    import os

    from pipeline.cache import SUBDIR, DocCache, cache_key

    texts = ["We mochten het zelf invullen.", "Daar had ik geen uren voor."]
    DocCache(tmp_path).parse(texts, "nl")
    (entry,) = (tmp_path / SUBDIR).rglob("*.spacy")
    os.utime(entry, (1_000, 1_000))
    assert DocCache(tmp_path).load(cache_key(texts, "nl"), texts, "nl") is not None
    assert entry.stat().st_mtime > 1_000
    os.utime(entry, (1_000, 1_000))
    assert DocCache(tmp_path).load_arrays(cache_key(texts, "nl"), texts, "nl") is not None
    assert entry.stat().st_mtime > 1_000


@pytest.mark.parametrize("journal", ['{"runs": 5}', '{"runs": [{"chunks": [], "time": "x"}]}',
                                     '{"runs": [{"chunks": [], "time": 1, "started": null}]}',
                                     '[1, 2]'])
def test_a_journal_of_another_shape_is_started_again(tmp_path, journal):
    (tmp_path / cache_prune.JOURNAL).write_text(journal, encoding="utf-8")
    got = cache_prune.record_and_prune(tmp_path, ["0" * 64], None, keep=1, grace_s=0.0)
    assert got == {"entries": 0, "bytes": 0}  # nothing deleted on a journal started again
    runs = json.loads((tmp_path / cache_prune.JOURNAL).read_text())["runs"]
    assert [r["chunks"] for r in runs] == [["0" * 64]]
