"""Cache files read ahead on a thread: taken once, in order, and outputs as without it."""
import threading
from pathlib import Path

import numpy as np
import pytest

import pipeline.cache_io as cache_io
import pipeline.chunk_code as chunk_code
import pipeline.chunk_tokens as chunk_tokens
from pipeline.chunk_cache import SUBDIR, ChunkCache, StoredTokens
from pipeline.code.arrays import TokenArrays
from pipeline.code.sparse import string_facts
from test_match_cache import BOOK, _run, _same_as_cold
from test_streaming import make_corpus

# the per-chunk caches at work: stored coding files are not taken (coded_files)
pytestmark = pytest.mark.usefixtures("no_coded_files")


def test_prefetcher_runs_jobs_in_order_and_hands_each_file_once():
    started = []

    def job(k):
        def run():
            started.append(k)
            return {Path(f"/x/{k}"): k * 10}
        return run

    with cache_io.prefetching([(f"key{k}", job(k)) for k in range(5)]) as ahead:
        assert ahead is not None
        cache_io.wait("key0")
        assert cache_io.take(Path("/x/0")) == 0
        assert cache_io.take(Path("/x/0")) is None  # once
        cache_io.wait("unknown")  # not planned: no wait
        cache_io.wait("key3")
        assert cache_io.take(Path("/x/3")) == 30
        assert cache_io.take(Path("/x/1")) is None  # an earlier chunk's leftovers are dropped
        assert started[:4] == [0, 1, 2, 3]
    assert cache_io.take(Path("/x/4")) is None  # closed: nothing is handed out
    assert not any(t.name == "qcode-prefetch" for t in threading.enumerate())


def test_prefetcher_stays_at_most_ahead_chunks_ahead():
    seen = []
    box = {}

    def job(k):
        def run():
            seen.append((k, box["ahead"]._wanted))  # loaders reached when job k started
            return {}
        return run

    ahead = box["ahead"] = cache_io.Prefetcher([(f"k{k}", job(k)) for k in range(6)])
    ahead.start()
    try:
        for k in range(6):
            ahead.wait(f"k{k}")
    finally:
        ahead.close()
    assert [k for k, _ in seen] == list(range(6))
    assert all(k < wanted + cache_io.AHEAD for k, wanted in seen)


def test_a_failing_job_leaves_the_files_to_the_loaders():
    def boom():
        raise OSError("disk")

    with cache_io.prefetching([("a", boom)]):
        cache_io.wait("a")
        assert cache_io.take(Path("/anything")) is None


def test_warm_run_takes_prefetched_files_and_equals_cold_run(tmp_path, prefetch_taken):
    make_corpus(tmp_path / "raw")
    _run(tmp_path, "cached", BOOK)
    taken = prefetch_taken
    taken.clear()
    edited = BOOK.replace('phrases: ["zelf invullen"]', 'phrases: ["zelf invullen", "zelf"]')
    _run(tmp_path, "cached", edited)
    names = {name for name, hit in taken if hit}
    assert {"meta.json", "segments.parquet", "tokens.npy", "strings.json"} <= names
    assert any(name.endswith(".arrow") and name[0].isdigit() for name in names)  # tagged
    assert all(hit for _, hit in taken)
    _same_as_cold(tmp_path, edited)
    # with --jobs 2 the chunks run in workers: nothing is read ahead in the runner
    taken.clear()
    _run(tmp_path, "cached", BOOK, jobs=2)
    assert taken == []
    _same_as_cold(tmp_path, BOOK)


def test_a_loaded_entry_gives_its_table_to_the_matcher_without_a_copy(tmp_path):
    make_corpus(tmp_path / "raw")
    _run(tmp_path, "cached", BOOK)
    folder = tmp_path / "cached" / ".cache"
    keys = [p.name for p in (folder / SUBDIR).glob("*/*") if not p.name.startswith(".")]
    entry = ChunkCache(folder).load(keys[0], chunk_code.vocab_of)
    stored = entry.tokens
    assert isinstance(stored, StoredTokens) and stored.table is not None
    parts = stored.parts()
    vocab = chunk_code.vocab_of("nl")[1]
    fast, coded = chunk_tokens.stored_arrays(stored, parts, vocab, None)
    slow = TokenArrays.from_parts(vocab, parts, None)
    assert np.array_equal(coded.hashes[coded.forms.astype(np.int64)], slow.orth)
    assert np.array_equal(coded.hashes[coded.lemmas.astype(np.int64)], slow.lemma)
    for name in ("orth", "lemma", "sent", "space", "bounds"):
        assert np.array_equal(getattr(fast, name), getattr(slow, name)), name
        assert getattr(fast, name).dtype == getattr(slow, name).dtype, name
    assert np.shares_memory(fast.orth, stored.table)
    # a batch that is not every part in order is concatenated as before
    assert chunk_tokens.stored_arrays(stored, parts[1:], vocab, None) is None
    if len(parts) > 1:
        assert chunk_tokens.stored_arrays(stored, parts[::-1], vocab, None) is None
    assert chunk_tokens.stored_arrays({}, parts, vocab, None) is None


def _load_ahead(folder, key, matching=False):
    ahead = cache_io.Prefetcher([(key, cache_io.chunk_job(str(folder), key, None))])
    ahead.matching = matching  # set before the thread runs the job
    cache_io._ACTIVE = ahead
    ahead.start()
    try:
        return ChunkCache(folder).load(key, chunk_code.vocab_of)
    finally:
        cache_io._ACTIVE = None
        ahead.close()


def test_tokens_decoded_ahead_equal_loaded_ones_and_wrong_stored_hashes_are_not_used(
        tmp_path, monkeypatch):
    import pipeline.chunk_cache as chunk_cache

    make_corpus(tmp_path / "raw")
    _run(tmp_path, "cached", BOOK)
    folder = tmp_path / "cached" / ".cache"
    entries = [p for p in (folder / SUBDIR).glob("*/*") if not p.name.startswith(".")]
    key = entries[0].name
    plain = ChunkCache(folder).load(key, chunk_code.vocab_of).tokens.table
    here = []
    original = chunk_cache._decode

    def spy(*args):
        here.append(threading.current_thread() is threading.main_thread())
        return original(*args)

    monkeypatch.setattr(chunk_cache, "_decode", spy)
    assert np.array_equal(_load_ahead(folder, key).tokens.table, plain)
    assert here == [False]  # decoded by the prefetcher only
    hashes = entries[0] / "hashes.npy"
    stored = np.load(hashes)
    np.save(hashes, stored[::-1].copy())  # hashes that are not the strings' hashes
    assert np.array_equal(_load_ahead(folder, key).tokens.table, plain)
    hashes.unlink()
    assert np.array_equal(_load_ahead(folder, key).tokens.table, plain)


def test_writes_behind_run_in_order_on_a_thread_and_are_done_when_the_block_ends():
    done = []

    def write(k):
        done.append((k, threading.current_thread() is threading.main_thread()))

    cache_io.behind(write, 0)  # no prefetcher: now
    assert done == [(0, True)]
    with cache_io.prefetching([("a", lambda: {})]):
        for k in range(1, 4):
            cache_io.behind(write, k)
        cache_io.behind(lambda: 1 / 0)  # an error does not stop the others
        cache_io.behind(write, 4)
    assert done == [(0, True)] + [(k, False) for k in range(1, 5)]
    assert not any(t.name == "qcode-cache-write" for t in threading.enumerate())


def test_arrays_made_ahead_equal_the_matchers_own(tmp_path):
    from spacy import attrs

    import pipeline.code.arrays as arrays_module
    from pipeline.code.trie import TokenTrie
    from pipeline.code.types import _HINTS, TypeTable

    assert [attrs.ORTH, attrs.LEMMA, attrs.SENT_START, attrs.SPACY, attrs.NORM] == \
        arrays_module.ATTRS  # spelled out in arrays.py: spaCy's ids
    make_corpus(tmp_path / "raw")
    _run(tmp_path, "cached", BOOK)
    folder = tmp_path / "cached" / ".cache"
    key = next(p.name for p in (folder / SUBDIR).glob("*/*") if not p.name.startswith("."))
    assert _load_ahead(folder, key).tokens.derived is None  # no rule re-matched: not made
    stored = _load_ahead(folder, key, matching=True).tokens
    assert stored.derived is not None and stored.codes is not None
    vocab = chunk_code.vocab_of("nl")[1]
    parts = stored.parts()
    fast, stored_coded = chunk_tokens.stored_arrays(stored, parts, vocab, None)
    plain = TokenArrays.from_parts(vocab, parts, None)
    # the per-string facts of the sparse re-match, made ahead, are those of the tokens
    facts = stored_coded.facts
    assert stored_coded.offsets is stored.derived["offsets"]
    for name, value in string_facts(stored_coded.forms, stored_coded.lemmas,
                                    len(stored_coded.hashes)).items():
        assert np.array_equal(facts[name], value), name
    assert len(facts["lengths"]) == len(stored_coded.hashes)
    first = fast.doc_starts()
    assert first is stored.derived["doc_starts"]
    assert np.array_equal(first, plain.doc_starts())
    assert np.array_equal(fast.sentence_starts(first), plain.sentence_starts(plain.doc_starts()))
    trie = TokenTrie()
    trie.add([("de", False)], 0)
    trie.freeze()
    coded, hashed = TypeTable(trie, frozenset(), []), TypeTable(trie, frozenset(), [])
    assert id(fast.orth) in _HINTS  # word types from the stored string indexes
    tid = coded.ids(fast.vocab, fast.orth, fast.lemma)
    tid_plain = hashed.ids(plain.vocab, plain.orth, plain.lemma)
    assert [coded.keys[t] for t in tid.tolist()] == [hashed.keys[t] for t in tid_plain.tolist()]
    assert [coded.pairs[t] for t in tid.tolist()] == \
        list(zip(plain.orth.tolist(), plain.lemma.tolist()))
    lengths = coded.lengths.data[tid]
    assert np.array_equal(fast.char_offsets(lengths, first),
                          plain.char_offsets(hashed.lengths.data[tid_plain], plain.doc_starts()))
    assert fast.char_offsets(lengths, first) is stored.derived["offsets"]
    other = lengths + 1  # other lengths: computed, not the stored offsets
    assert not np.array_equal(fast.char_offsets(other, first), stored.derived["offsets"])
    n_types = len(coded)
    assert np.array_equal(coded.ids(fast.vocab, fast.orth, fast.lemma), tid)  # sorted look-up
    assert len(coded) == n_types


def test_a_rematch_is_noted_for_the_running_prefetcher_only():
    assert not cache_io.matching()
    cache_io.note_matching()  # no prefetcher: nothing to note
    with cache_io.prefetching([("a", dict)]):
        assert not cache_io.matching()
        cache_io.note_matching()
        assert cache_io.matching()
    assert not cache_io.matching()


def test_writes_wait_for_room_beyond_queued_ones(monkeypatch):
    monkeypatch.setattr(cache_io, "QUEUED", 2)
    running, release = threading.Event(), threading.Event()
    done, handed = [], []

    def write(k):
        if k == 0:
            running.set()
            release.wait()
        done.append(k)

    def hand_over():
        for k in range(6):
            cache_io.behind(write, k)
            handed.append(k)

    with cache_io.prefetching([("a", lambda: {})]):
        active = cache_io._ACTIVE
        cache_io.behind(write, 0)
        running.wait()
        producer = threading.Thread(target=hand_over)
        producer.start()
        # write 0 runs, two wait: the caller waits with the third (no growth past QUEUED)
        while active._writes.qsize() < 2:
            threading.Event().wait(0.01)
        producer.join(0.3)
        assert producer.is_alive()
        assert active._writes.qsize() == 2 and handed == [0, 1]
        release.set()
        producer.join()
    assert done == [0, 0, 1, 2, 3, 4, 5]


def test_a_write_that_writes_more_runs_it_there_and_then(monkeypatch):
    monkeypatch.setattr(cache_io, "QUEUED", 1)
    done = []

    def write(k):
        if k < 3:
            cache_io.behind(write, k + 1)  # on the writing thread: now, even with no room
        done.append((k, threading.current_thread().name))

    with cache_io.prefetching([("a", lambda: {})]):
        cache_io.behind(write, 0)
    assert done == [(k, "qcode-cache-write") for k in (3, 2, 1, 0)]


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_writes_behind_a_writing_thread_that_ended_do_not_wait_for_it(monkeypatch):
    monkeypatch.setattr(cache_io, "QUEUED", 1)
    done = []

    def end_thread():
        raise SystemExit  # not an Exception: ends the writing thread (never expected)

    with cache_io.prefetching([("a", lambda: {})]) as ahead:
        cache_io.behind(end_thread)
        ahead._writer.join()
        cache_io.behind(done.append, 1)  # queued: nobody takes it (a cache miss later)
        cache_io.behind(done.append, 2)  # no room, no thread: done here
        assert done == [2]
    assert ahead._writer is None  # closed without waiting for the ended thread
