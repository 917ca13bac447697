"""The chunk cache, the word-type table and the batched parse: same results as without them."""
import hashlib
import json
import shutil

import numpy as np
import pytest
from spacy.attrs import LEMMA, NORM, ORTH, SENT_START

import pipeline.chunk_code as chunk_code
from pipeline.chunk_cache import SUBDIR, ChunkCache
from pipeline.code.arrays import ATTRS, TokenArrays, rebuild_doc
from pipeline.code.compiled import pattern_requirements
from pipeline.code.trie import TokenTrie
from pipeline.code.types import TypeTable
from pipeline.nlp import make_nlp, parse
from pipeline.runner import RunOptions, code_corpus
from test_streaming import CODEBOOK, OUTPUTS, make_corpus

# the per-chunk caches at work: stored coding files are not taken (coded_files)
pytestmark = pytest.mark.usefixtures("no_coded_files")

TRICKY = ["We mochten het zelf invullen.", "Daar had ik geen uren voor. Echt niet!", "",
          "  ", "Dr. Jansen zei: 'nee'... En toen?! Ja.", "a.b.c", "\n\nX", "Hallo.  Wereld"]


def _digest(out):
    return {n: hashlib.sha256((out / n).read_bytes()).hexdigest() for n in OUTPUTS}


def _entries(folder):
    return sorted(p.name for p in (folder / SUBDIR).glob("*/*") if not p.name.startswith("."))


@pytest.fixture
def corpus(tmp_path):
    make_corpus(tmp_path / "raw")
    (tmp_path / "codebook.yaml").write_text(CODEBOOK)
    return tmp_path


def _run(tmp, out, **kw):
    return code_corpus([tmp / "raw"], codebook=tmp / "codebook.yaml", out_dir=tmp / out,
                       options=RunOptions(progress=False, chunk_bytes=400, **kw))


def test_warm_recode_after_codebook_edit_equals_cold_run(corpus):
    _run(corpus, "cached")
    cache = corpus / "cached" / ".cache"
    entries = _entries(cache)
    assert entries  # every chunk stored
    book = corpus / "codebook.yaml"
    book.write_text(CODEBOOK.replace("terms: [eigenaar]", "terms: [eigenaar, project]"))
    warm = _run(corpus, "cached")
    assert _entries(cache) == entries  # a rules edit keeps every key
    assert warm.manifest["throughput"]["cache_misses"] == 0
    assert warm.manifest["stage_times_s"]["segment"] == 0.0  # nothing segmented again
    _run(corpus, "fresh", cache=False)
    assert _digest(corpus / "cached") == _digest(corpus / "fresh")


def test_changed_file_invalidates_its_chunk_only(corpus):
    _run(corpus, "cached")
    cache = corpus / "cached" / ".cache"
    before = set(_entries(cache))
    path = corpus / "raw" / "int03.txt"
    text = path.read_text(encoding="utf-8")
    assert "Zelf" in text or "zelf" in text
    # same length: chunk boundaries (planned by bytes) stay where they were
    path.write_text(text.replace("elf", "ELF", 1), encoding="utf-8")
    _run(corpus, "cached")
    after = set(_entries(cache))
    assert len(after - before) == 1  # one new entry, for the chunk of the changed file
    _run(corpus, "fresh", cache=False)
    assert _digest(corpus / "cached") == _digest(corpus / "fresh")


def test_changed_setting_or_damaged_entry_is_a_miss(corpus):
    _run(corpus, "cached")
    cache = corpus / "cached" / ".cache"
    for entry in (cache / SUBDIR).glob("*/*/tokens.npy"):
        entry.write_bytes(b"garbage")
    for entry in (cache / SUBDIR).glob("*/*/meta.json"):
        entry.write_text("{", encoding="utf-8")
        break
    _run(corpus, "cached")
    _run(corpus, "fresh", cache=False)
    assert _digest(corpus / "cached") == _digest(corpus / "fresh")
    # the damaged entries were replaced by good ones, not left to miss on every run
    for entry in (cache / SUBDIR).glob("*/*/tokens.npy"):
        assert entry.read_bytes() != b"garbage"
    for entry in (cache / SUBDIR).glob("*/*/meta.json"):
        json.loads(entry.read_text(encoding="utf-8"))
    assert not list((cache / SUBDIR).glob("*/.*damaged*"))  # nothing left behind
    before = set(_entries(cache))
    _run(corpus, "cached", unit="sentence")  # another unit: other segments, other keys
    assert set(_entries(cache)) - before
    _run(corpus, "fresh", cache=False, unit="sentence")
    assert _digest(corpus / "cached") == _digest(corpus / "fresh")
    shutil.rmtree(cache)  # deletable at any time
    _run(corpus, "cached", unit="sentence")
    assert _digest(corpus / "cached") == _digest(corpus / "fresh")


def test_an_entry_whose_messages_cannot_be_moved_is_made_again(corpus, monkeypatch):
    from pipeline import chunk_cache

    _run(corpus, "cached")
    cache = corpus / "cached" / ".cache"
    entries = _entries(cache)
    # as for an entry made from other paths that a message names mid-text
    with monkeypatch.context() as patched:
        patched.setattr(chunk_cache, "relocated", lambda entry, given, places=None: None)
        again = _run(corpus, "cached")
    assert again.manifest["stage_times_s"]["segment"] > 0  # read and segmented again
    assert _entries(cache) == entries  # each replaced under its key, none left behind
    assert not list((cache / SUBDIR).glob("*/.*"))
    _run(corpus, "fresh", cache=False)
    assert _digest(corpus / "cached") == _digest(corpus / "fresh")
    assert _run(corpus, "cached").manifest["stage_times_s"]["segment"] == 0.0


def test_disabled_cache_writes_no_chunk_entries(tmp_path):
    assert ChunkCache(None).load("k", lambda lang: None) is None
    make_corpus(tmp_path / "raw")
    (tmp_path / "codebook.yaml").write_text(CODEBOOK)
    _run(tmp_path, "out", cache=False)
    assert not (tmp_path / "out" / ".cache").exists()


def test_type_table_facts_are_per_form_and_lemma():
    trie = TokenTrie()
    trie.add([("zelf", False)], 0)
    trie.add([("zelf", False), ("kiezen", False)], 1)
    trie.add([("eigenaar*", True)], 2)
    trie.freeze()
    table = TypeTable(trie, frozenset({"niet"}), [(frozenset({"mogen"}), frozenset({"zelf"}))])
    docs = parse(["Zelf kiezen, niet eigenaarschap maar mochten zelf."], "nl")
    arrays = TokenArrays.from_docs(docs)
    tid = table.ids(arrays.vocab, arrays.orth, arrays.lemma).tolist()
    words = [t.lower_ for t in docs[0]]
    assert tid[0] != tid[len(words) - 2]  # "Zelf" and "zelf": two forms, two types...
    assert table.keys[tid[0]] == table.keys[tid[len(words) - 2]] == ("zelf",)  # same keys
    starts = table.starts.data[np.asarray(tid)].tolist()
    assert [w for w, s in zip(words, starts) if s] == ["zelf", "eigenaarschap", "zelf"]
    assert [w for w, t in zip(words, tid) if table.cue.data[t]] == ["niet"]
    assert [w for w, t in zip(words, tid) if table.clause_word.data[t]] == ["maar"]
    assert [w for w, t in zip(words, tid) if table.clause_punct.data[t]] == [","]
    assert table.wanted_groups({tid[0]}) == []  # "zelf" alone: "mogen" is missing
    assert table.wanted_groups(set(tid)) == [0]  # "mochten" has lemma "mogen"
    assert len(table) == len(set(tid))  # ids again: no new types
    assert table.ids(arrays.vocab, arrays.orth, arrays.lemma).tolist() == tid
    assert len(table) == len(set(tid))


def test_type_ids_from_string_indexes_equal_those_from_hashes():
    from pipeline.code.types import hint

    vocab = chunk_code.vocab_of("nl")[1]
    words = ["", "zelf", "kies", "kiezen"]
    hashes = np.asarray([0] + [vocab.strings.add(w) for w in words[1:]], dtype=np.uint64)
    trie = TokenTrie()
    trie.add([("kiezen", False)], 0)
    trie.freeze()

    def both(forms, lemmas):
        forms, lemmas = np.asarray(forms, dtype=np.uint32), np.asarray(lemmas, dtype=np.uint32)
        coded, plain = TypeTable(trie, frozenset(), []), TypeTable(trie, frozenset(), [])
        results = []
        for table, use_hint in ((coded, True), (plain, False)):
            out = []
            for shift in (0, 1):  # a second batch: known types found by the sorted search
                orth, lemma = hashes[forms], hashes[(lemmas + shift) % 4 if shift else lemmas]
                if use_hint:
                    hint(orth, forms, (lemmas + shift) % 4 if shift else lemmas, hashes)
                out.append([table.pairs[t] for t in table.ids(vocab, orth, lemma).tolist()])
            results.append(out)
        assert results[0] == results[1]
        return results[0]

    got = both([1, 2, 1, 3], [1, 3, 1, 3])
    assert got[0][1] == (int(hashes[2]), int(hashes[3]))  # "kies" with lemma "kiezen"
    both([2, 2, 1], [3, 2, 0])  # a form with two lemmas in one batch: pairs after all


def test_pattern_requirements_are_every_required_literal():
    pattern = [{"LOWER": {"IN": ["Mag", "mogen"]}}, {"IS_PUNCT": False, "OP": "*"},
               {"lemma": "zelf", "OP": "+"}, {"LOWER": "nu", "OP": "?"}, {"ORTH": "Mag"}]
    assert pattern_requirements(pattern) == (frozenset({"mag", "mogen"}), frozenset({"zelf"}),
                                             frozenset({"mag"}))
    assert pattern_requirements([{"IS_PUNCT": False, "OP": "+"}]) == ()


def test_batched_parse_equals_the_pipeline_and_rebuilt_docs_equal_parsed():
    nlp = make_nlp("nl")
    fresh = list(nlp.pipe(TRICKY))
    batched = parse(TRICKY, "nl")
    attrs = [ORTH, LEMMA, SENT_START, NORM]
    for a, b in zip(fresh, batched, strict=True):
        assert np.array_equal(a.to_array(attrs), b.to_array(attrs))
        rebuilt = rebuild_doc(nlp.vocab, b.to_array(ATTRS))
        assert np.array_equal(rebuilt.to_array(ATTRS), b.to_array(ATTRS))
        assert rebuilt.text == b.text


def test_pattern_max_len_is_an_upper_bound():
    from pipeline.code.compiled import pattern_max_len

    assert pattern_max_len([{"LOWER": "a"}, {"OP": "?", "IS_PUNCT": False}]) == 2
    assert pattern_max_len([{"LOWER": "a"}, {"IS_PUNCT": False, "OP": "{0,4}"}]) == 5
    assert pattern_max_len([{"op": "{2}"}, {"OP": "{,3}"}]) == 5
    for op in ("*", "+", "{2,}", "odd"):
        assert pattern_max_len([{"LOWER": "a"}, {"OP": op}]) is None


def test_matcher_skips_docs_whose_required_words_are_too_far_apart(tmp_path):
    from pipeline.code import compile_rules
    from pipeline.code.arrays import TokenArrays
    from pipeline.code.scan import find_hits
    from test_code import make_codebook

    # LENGTH is a spec code.tokpat does not cover: the pattern stays with the Matcher
    cb = make_codebook(tmp_path, ownership=(
        "- kind: pattern\n  patterns: [[{LEMMA: mogen, LENGTH: {'>=': 1}}, "
        "{OP: '?', IS_PUNCT: false}, {LOWER: zelf}]]\n"))
    compiled = compile_rules(cb, "nl")
    assert compiled.token_patterns is None and compiled.group_max_len == [3]
    calls = []
    real = compiled.matcher_for
    compiled.matcher_for = lambda groups: calls.append(groups) or real(groups)
    docs = parse(["We mochten het zelf doen.", "Mochten we dat? Ja, dat deden we dan zelf.",
                  "We mochten zelf kiezen."], "nl")
    arrays = TokenArrays.from_docs(docs)
    hits = find_hits(arrays, compiled, compiled.types.ids(arrays.vocab, arrays.orth,
                                                          arrays.lemma))
    # doc 1 has both words, 8 tokens apart: no match is possible and the Matcher is skipped
    assert calls == [(0,), (), (0,)] and sorted(hits) == [0, 2]  # (): no Matcher at all
    offsets = arrays.bounds.tolist()
    assert [sorted(next(iter(hits[k].values()))) for k in (0, 2)] == [
        [(offsets[0] + 1, offsets[0] + 4)], [(offsets[2] + 1, offsets[2] + 3)]]


def test_stored_tokens_are_column_major_and_decode_to_the_parsed_arrays(corpus):
    from pipeline.chunk_cache import _decode, _encode

    _run(corpus, "out")
    folder = corpus / "out" / ".cache"
    for key in _entries(folder):
        path = folder / SUBDIR / key[:2] / key
        stored = np.load(path / "tokens.npy")
        assert stored.flags.f_contiguous  # whole columns read without a copy
        tokens = ChunkCache(folder).load(key, chunk_code.vocab_of).tokens
        assert tokens.table.flags.f_contiguous and tokens.codes.flags.f_contiguous
    docs = parse(TRICKY, "nl")
    parts = [doc.to_array(ATTRS) for doc in docs]
    ids, _, _, hashes = _encode({0: parts}, [docs[0].vocab])
    hashes = np.concatenate([np.zeros(1, dtype=np.uint64), hashes])
    for table in (ids, np.asfortranarray(ids)):
        decoded = _decode(table, hashes)
        assert decoded.dtype == np.uint64 and decoded.shape == ids.shape
        assert np.array_equal(decoded, np.concatenate(parts))
    damaged = ids.copy()
    damaged[0, 0] = len(hashes)  # a string index past the entry's strings
    with pytest.raises(IndexError):
        _decode(damaged, hashes)


def test_frames_converted_without_pandas_metadata_only_when_it_says_nothing_more():
    import pandas as pd
    import pyarrow as pa

    from pipeline.chunk_cache import _to_pandas

    frame = pd.DataFrame({"id": ["a", None], "n": [1, 2], "x": [0.5, float("nan")],
                          "ok": [True, False]})
    indexed = frame.set_index("id")
    for table in (pa.Table.from_pandas(frame, preserve_index=False),
                  pa.Table.from_pandas(indexed),                      # an index: metadata
                  pa.Table.from_pandas(frame.astype({"id": "category"}), preserve_index=False),
                  pa.Table.from_arrays([pa.array([1])], names=["n"])):  # no metadata
        got, want = _to_pandas(table), table.to_pandas()
        assert got.equals(want) and list(got.dtypes) == list(want.dtypes)
        assert got.index.equals(want.index) and got.columns.equals(want.columns)
    assert _to_pandas(pa.Table.from_pandas(indexed)).index.name == "id"


def _files(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in (folder / SUBDIR).rglob("*") if p.is_file()}


def test_entries_written_behind_are_those_written_in_workers(corpus, monkeypatch):
    import pipeline.cache_io as cache_io

    written = []
    real = cache_io.Prefetcher._run_write

    def spy(fn, args):
        written.append(fn.__name__)
        real(fn, args)

    monkeypatch.setattr(cache_io.Prefetcher, "_run_write", staticmethod(spy))
    _run(corpus, "one", docbin=True)  # chunks in this process: written on the writing thread
    assert {"_write_entry", "_store_payloads"} <= set(written)
    _run(corpus, "two", jobs=2, docbin=True)  # pool workers: no writing thread, written there and then
    one, two = _files(corpus / "one" / ".cache"), _files(corpus / "two" / ".cache")
    assert one and one == two  # every entry complete when the run ended, the same bytes


@pytest.mark.parametrize("broken", ["chunk_cache.encode_table", "cache.docbin_payloads"])
def test_a_run_whose_cache_writes_fail_succeeds(corpus, monkeypatch, broken):
    import importlib

    module, name = broken.split(".")

    def fail(*args):
        raise KeyError("a hash no vocab has")

    monkeypatch.setattr(importlib.import_module(f"pipeline.{module}"), name, fail)
    _run(corpus, "cached", docbin=True)
    _run(corpus, "fresh", cache=False)
    assert _digest(corpus / "cached") == _digest(corpus / "fresh")
    cache = corpus / "cached" / ".cache"
    if module == "chunk_cache":  # no entry, and no half-written folder left
        assert not list((cache / SUBDIR).glob("*/*"))
    else:
        assert not list(cache.rglob("*.spacy"))
