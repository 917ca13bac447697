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
                           options=RunOptions(progress=False, chunk_bytes=400, **kw))

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
