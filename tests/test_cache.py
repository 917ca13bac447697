"""The DocBin parse cache: same results with and without it, robust to damage."""
import hashlib

import pytest

from pipeline.cache import SUBDIR, DocCache, cache_key
from pipeline.runner import RunOptions, code_corpus
from test_streaming import CODEBOOK, OUTPUTS, make_corpus

TEXTS = ["We mochten het zelf invullen.", "Daar had ik geen uren voor. Echt niet.", ""]


def _entries(folder):
    return sorted((folder / SUBDIR).rglob("*.spacy"))


def test_cached_docs_equal_fresh_parse(tmp_path):
    cache = DocCache(tmp_path / "c")
    first = cache.parse(TEXTS, "nl")
    again = DocCache(tmp_path / "c")
    second = again.parse(TEXTS, "nl")
    assert (cache.misses, again.hits) == (1, 1)
    for a, b in zip(first, second, strict=True):
        assert [(t.text, t.lower_, t.lemma_, t.is_punct, t.is_sent_start, t.idx) for t in a] == \
               [(t.text, t.lower_, t.lemma_, t.is_punct, t.is_sent_start, t.idx) for t in b]


def test_key_depends_on_text_order_and_language():
    assert cache_key(["ab", "c"], "nl") != cache_key(["a", "bc"], "nl")
    assert cache_key(TEXTS, "nl") != cache_key(TEXTS, "en")
    assert cache_key(TEXTS, "nl") == cache_key(list(TEXTS), "nl")


@pytest.mark.parametrize("damage", [b"", b"garbage\x00\x01", None])
def test_corrupt_entry_is_rebuilt(tmp_path, damage):
    cache = DocCache(tmp_path / "c")
    cache.parse(TEXTS, "nl")
    (entry,) = _entries(tmp_path / "c")
    if damage is None:  # a valid DocBin of other texts under this key
        other = DocCache(tmp_path / "o")
        other.parse(["Iets heel anders.", "x", "y"], "nl")
        entry.write_bytes(_entries(tmp_path / "o")[0].read_bytes())
    else:
        entry.write_bytes(damage)
    again = DocCache(tmp_path / "c")
    docs = again.parse(TEXTS, "nl")
    assert again.misses == 1 and [d.text for d in docs] == TEXTS
    assert DocCache(tmp_path / "c").load(cache_key(TEXTS, "nl"), TEXTS, "nl") is not None


def test_disabled_cache_writes_nothing(tmp_path):
    cache = DocCache(None)
    assert [d.text for d in cache.parse(TEXTS, "nl")] == TEXTS
    assert not list(tmp_path.iterdir())


def _digest(out):
    return {n: hashlib.sha256((out / n).read_bytes()).hexdigest() for n in OUTPUTS}


def test_recode_from_cache_after_codebook_edit(tmp_path):
    make_corpus(tmp_path / "raw")
    book = tmp_path / "codebook.yaml"
    book.write_text(CODEBOOK)

    def run(out, **kw):
        return code_corpus([tmp_path / "raw"], codebook=book, out_dir=tmp_path / out,
                           options=RunOptions(progress=False, chunk_bytes=400, docbin=True, **kw))

    cold = run("cached")
    cache_dir = tmp_path / "cached" / ".cache"
    assert cold.manifest["throughput"]["cache_misses"] > 0 and _entries(cache_dir)
    book.write_text(CODEBOOK.replace('terms: [eigenaar]', 'terms: [eigenaar, project]'))
    warm = run("cached")
    cold_t = cold.manifest["throughput"]
    assert warm.manifest["throughput"]["cache_hits"] == cold_t["cache_hits"] + cold_t["cache_misses"]
    assert warm.manifest["throughput"]["cache_misses"] == 0
    fresh = run("fresh", cache=False)
    assert not (tmp_path / "fresh" / ".cache").exists()
    assert _digest(tmp_path / "cached") == _digest(tmp_path / "fresh")
    import pandas as pd
    assert "project" in set(pd.read_parquet(tmp_path / "fresh" / "matches.parquet")["evidence"])
    # The cache folder is safe to delete, and a custom folder works the same.
    import shutil
    shutil.rmtree(cache_dir)
    run("cached", cache_dir=str(tmp_path / "elsewhere"))
    assert _digest(tmp_path / "cached") == _digest(tmp_path / "fresh")
    assert _entries(tmp_path / "elsewhere")


def test_docbin_entries_only_with_the_option(tmp_path):
    """Off by default: no DocBin entry is written, and none is read (a run whose chunk
    entries are gone parses its documents again); the outputs are the same either way."""
    make_corpus(tmp_path / "raw")
    book = tmp_path / "codebook.yaml"
    book.write_text(CODEBOOK)

    def run(out, **kw):
        return code_corpus([tmp_path / "raw"], codebook=book, out_dir=tmp_path / out,
                           options=RunOptions(progress=False, chunk_bytes=400, **kw))

    plain = run("plain")
    cache = tmp_path / "plain" / ".cache"
    assert cache.is_dir() and not _entries(cache)
    run("with", docbin=True)
    assert _entries(tmp_path / "with" / ".cache")
    assert _digest(tmp_path / "with") == _digest(tmp_path / "plain")
    # the DocBin entries of the other run, but no chunk entries: read only with the option
    import shutil

    from pipeline import chunk_cache, coded_files, coding_cache, match_cache, table_cache
    others = [m.SUBDIR for m in (chunk_cache, coded_files, coding_cache, match_cache, table_cache)]
    shutil.copytree(tmp_path / "with" / ".cache" / SUBDIR, cache / SUBDIR)
    for name in others:
        shutil.rmtree(cache / name, ignore_errors=True)
    again = run("plain")
    n_docs = plain.manifest["counts"]["documents"]
    assert again.manifest["throughput"]["cache_hits"] == 0
    assert again.manifest["throughput"]["cache_misses"] == n_docs
    for name in others:
        shutil.rmtree(cache / name, ignore_errors=True)
    read = run("plain", docbin=True)
    assert read.manifest["throughput"]["cache_hits"] == n_docs
    assert _digest(tmp_path / "plain") == _digest(tmp_path / "with")


MIXED = [*TEXTS, "Zie www.school.nl, d.w.z. 's ochtends :)", "Twee  spaties\nen een regel", " x "]


@pytest.mark.parametrize("lang", ["nl", "en"])
@pytest.mark.parametrize("texts", [MIXED, [], [""], ["", ""]])
def test_docbin_bytes_are_those_of_the_docs(lang, texts):
    import zlib

    from pipeline.cache import docbin, docbin_bytes
    from pipeline.nlp import base_vocab, parse, parse_arrays

    written = docbin_bytes(parse_arrays(texts, lang), base_vocab(lang))
    # the same message (DocBin.to_bytes before zlib), byte for byte
    assert zlib.decompress(written) == zlib.decompress(docbin(parse(texts, lang)).to_bytes())


@pytest.mark.parametrize("writer", ["parse", "parse_arrays"])
def test_arrays_and_docs_read_each_others_entries(tmp_path, writer):
    from pipeline.code.arrays import ATTRS
    from pipeline.nlp import parse

    getattr(DocCache(tmp_path / "c"), writer)(MIXED, "nl")
    as_arrays, as_docs = DocCache(tmp_path / "c"), DocCache(tmp_path / "c")
    parts = as_arrays.parse_arrays(MIXED, "nl")
    docs = as_docs.parse(MIXED, "nl")
    assert (as_arrays.hits, as_docs.hits, as_arrays.misses, as_docs.misses) == (1, 1, 0, 0)
    expected = [doc.to_array(ATTRS) for doc in parse(MIXED, "nl")]
    assert [d.text for d in docs] == MIXED
    for part, doc, want in zip(parts, docs, expected, strict=True):
        assert (part == want).all() and part.shape == want.shape
        assert (doc.to_array(ATTRS) == want).all()


def test_arrays_of_a_foreign_entry_come_from_its_docs(tmp_path):
    from spacy.tokens import DocBin

    from pipeline.cache import _ATTRS
    from pipeline.code.arrays import ATTRS
    from pipeline.nlp import parse

    docs = parse(MIXED, "nl")
    docs[0].cats = {"x": 1.0}  # more than an entry of ours holds
    cache = DocCache(tmp_path / "c")
    path = cache._path(cache_key(MIXED, "nl"))
    path.parent.mkdir(parents=True)
    path.write_bytes(DocBin(attrs=_ATTRS, docs=docs).to_bytes())
    parts = cache.parse_arrays(MIXED, "nl")
    assert cache.hits == 1
    assert all((p == d.to_array(ATTRS)).all() for p, d in zip(parts, docs, strict=True))


@pytest.mark.parametrize("damage", [b"", b"garbage\x00\x01", None])
def test_corrupt_entry_is_rebuilt_as_arrays(tmp_path, damage):
    from pipeline.code.arrays import ATTRS
    from pipeline.nlp import parse

    DocCache(tmp_path / "c").parse_arrays(TEXTS, "nl")
    (entry,) = _entries(tmp_path / "c")
    if damage is None:  # a valid DocBin of other texts under this key
        DocCache(tmp_path / "o").parse_arrays(["Iets heel anders.", "x", "y"], "nl")
        damage = _entries(tmp_path / "o")[0].read_bytes()
    entry.write_bytes(damage)
    again = DocCache(tmp_path / "c")
    parts = again.parse_arrays(TEXTS, "nl")
    assert again.misses == 1
    assert all((p == d.to_array(ATTRS)).all() for p, d in zip(parts, parse(TEXTS, "nl")))


@pytest.mark.parametrize("cached", [False, True])
def test_parse_arrays_each_equals_one_call_per_group(tmp_path, cached):
    groups = [TEXTS, ["Iets heel anders.", ""], MIXED, ["Nog één: 3,5 procent!"]]
    folder = tmp_path / "c" if cached else None
    one_by_one = [DocCache(None).parse_arrays(g, "nl") for g in groups]
    if cached:
        DocCache(folder).parse_arrays(groups[2], "nl")  # one group's entry exists already
    cache = DocCache(folder)

    got = cache.parse_arrays_each(groups, "nl")

    assert [len(g) for g in got] == [len(g) for g in groups]
    assert all((a == b).all() for g, h in zip(got, one_by_one) for a, b in zip(g, h))
    assert (cache.hits, cache.misses) == ((1, 3) if cached else (0, 4))
    if cached:  # each group has its own entry, the one a parse_arrays call of it reads
        again = DocCache(folder)
        assert all((a == b).all() for g, h in zip(groups, one_by_one)
                   for a, b in zip(again.parse_arrays(g, "nl"), h))
        assert (again.hits, again.misses) == (4, 0)


GROUPS = [TEXTS, ["Iets heel anders.", ""], MIXED, ["Nog één: 3,5 procent!"]]


def _files(folder):
    return {p.name: p.read_bytes() for p in (folder / SUBDIR).rglob("*") if p.is_file()}


def test_entries_written_behind_are_those_written_now_and_done_when_the_run_ends(tmp_path):
    import threading

    import pipeline.cache_io as cache_io

    DocCache(tmp_path / "now").parse_arrays_each(GROUPS, "nl")  # no prefetcher: written now
    assert len(_entries(tmp_path / "now")) == len(GROUPS)
    writers = []
    real = cache_io.Prefetcher._run_write

    def spy(fn, args):
        writers.append(threading.current_thread().name)
        real(fn, args)

    cache_io.Prefetcher._run_write = staticmethod(spy)
    try:
        with cache_io.prefetching([("a", lambda: {})]):
            got = DocCache(tmp_path / "behind").parse_arrays_each(GROUPS, "nl")
            for parts in got:  # the caller's arrays are its own: the entries hold a copy
                for part in parts:
                    part[:] = 0
    finally:
        cache_io.Prefetcher._run_write = staticmethod(real)
    assert writers == ["qcode-cache-write"]  # one write for the call, on the writing thread
    assert _files(tmp_path / "behind") == _files(tmp_path / "now")  # complete, same bytes


@pytest.mark.parametrize("behind", [False, True])
@pytest.mark.parametrize("failure", ["disk", "rename", "payload"])
def test_a_failed_entry_write_is_no_entry_and_no_error(tmp_path, monkeypatch, behind, failure):
    import contextlib

    import pipeline.cache as cache_module
    import pipeline.cache_io as cache_io

    if failure == "disk":  # the entries' folder cannot be made: a file is in the way
        (tmp_path / "c").mkdir()
        (tmp_path / "c" / SUBDIR).write_text("not a folder")
    elif failure == "rename":  # written, but not put in place: the temp file goes too
        def refused(*args):
            raise PermissionError("read-only")
        monkeypatch.setattr(cache_module.os, "replace", refused)
    else:
        def broken(*args):
            raise KeyError("a hash the vocab lacks")
        monkeypatch.setattr(cache_module, "docbin_payloads", broken)
    expected = [DocCache(None).parse_arrays(g, "nl") for g in GROUPS]
    cache = DocCache(tmp_path / "c")
    with cache_io.prefetching([("a", lambda: {})]) if behind else contextlib.nullcontext():
        got = cache.parse_arrays_each(GROUPS, "nl")
    assert all((a == b).all() for g, h in zip(got, expected) for a, b in zip(g, h, strict=True))
    assert cache.misses == len(GROUPS)
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and p.parent.name != "c"]
