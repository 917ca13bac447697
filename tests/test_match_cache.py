"""The per-code match cache: a re-code matches only edited codes, outputs as a cold run."""
import hashlib

import pytest

import pipeline.code.matching as matching
from pipeline.match_cache import SUBDIR, MatchCache, code_digests
from pipeline.runner import RunOptions, code_corpus
from test_streaming import CODEBOOK, OUTPUTS, make_corpus

# Negation, proximity, an exclude rule with scope and max_matches: every per-code step.
EXTRA = """\
  - id: time
    label: {nl: Tijd, en: Time}
    definition: Time and hours.
    rules:
      nl:
        - {kind: terms, terms: [uren, tijd], negation: forbid}
        - {kind: proximity, a: [gebouw], b: [eigenaar], window: 4, max_matches: 1}
        - {kind: exclude, terms: [bijzonders], scope: segment}
"""
BOOK = CODEBOOK + EXTRA


def _digest(out):
    return {n: hashlib.sha256((out / n).read_bytes()).hexdigest() for n in OUTPUTS}


@pytest.fixture
def corpus(tmp_path):
    make_corpus(tmp_path / "raw")
    return tmp_path


@pytest.fixture
def matched(monkeypatch):
    """Code ids of the rules every ``match_rows`` call of a run compiled."""
    calls: list[set[str]] = []
    original = matching.match_rows

    def spy(arrays, compiled, segments):
        calls.append({rule.code_id for rule in compiled.rules})
        return original(arrays, compiled, segments)

    monkeypatch.setattr(matching, "match_rows", spy)
    return calls


def _run(tmp, out, book, **kw):
    (tmp / "codebook.yaml").write_text(book)
    return code_corpus([tmp / "raw"], codebook=tmp / "codebook.yaml", out_dir=tmp / out,
                       options=RunOptions(progress=False, chunk_bytes=400, **kw))


def _same_as_cold(tmp, book):
    _run(tmp, "fresh", book, cache=False)
    assert _digest(tmp / "cached") == _digest(tmp / "fresh")


def test_recode_matches_only_changed_codes_and_equals_cold_run(corpus, matched):
    _run(corpus, "cached", BOOK)
    assert list((corpus / "cached" / ".cache" / SUBDIR).glob("*/*.parquet"))
    assert matched and all("time" in codes for codes in matched)
    _same_as_cold(corpus, BOOK)

    matched.clear()
    _run(corpus, "cached", BOOK)  # no edit: nothing is matched again
    assert matched == []
    _same_as_cold(corpus, BOOK)

    edited = BOOK.replace("terms: [eigenaar]", "terms: [eigenaar, project]")
    matched.clear()
    _run(corpus, "cached", edited)  # one code's rules
    assert matched and all(codes == {"ownership"} for codes in matched)
    _same_as_cold(corpus, edited)

    added = edited + """\
  - id: doing
    label: {nl: Doen, en: Doing}
    definition: Doing things.
    rules:
      nl: [{kind: terms, terms: [doen, deed]}]
"""
    matched.clear()
    _run(corpus, "cached", added)  # an added code
    assert matched and all(codes == {"doing"} for codes in matched)
    _same_as_cold(corpus, added)

    removed = added.replace(EXTRA, "")
    matched.clear()
    _run(corpus, "cached", removed)  # a removed code
    assert matched == []
    _same_as_cold(corpus, removed)


def test_changed_setting_rematches_every_code(corpus, matched):
    _run(corpus, "cached", BOOK)
    window = BOOK.replace("settings: {default_lang: nl}",
                          "settings: {default_lang: nl, negation_window: 1}")
    assert window != BOOK
    matched.clear()
    _run(corpus, "cached", window)
    assert matched and all("time" in codes and "agency" in codes for codes in matched)
    _same_as_cold(corpus, window)
    scope = BOOK.replace("settings: {default_lang: nl}",
                         "settings: {default_lang: nl, negation_scope: clause}")
    _run(corpus, "cached", scope)
    _same_as_cold(corpus, scope)


def test_damaged_or_deleted_entries_are_misses(corpus):
    _run(corpus, "cached", BOOK)
    folder = corpus / "cached" / ".cache" / SUBDIR
    entries = sorted(folder.glob("*/*.parquet"))
    entries[0].write_bytes(b"garbage")
    entries[-1].unlink()
    _run(corpus, "cached", BOOK)
    _same_as_cold(corpus, BOOK)
    for path in folder.glob("*/*"):
        assert not path.name.startswith(".")  # no temp files left behind


def test_digests_are_per_code(tmp_path):
    from pipeline.codebook import load_codebook

    (tmp_path / "a.yaml").write_text(BOOK)
    (tmp_path / "b.yaml").write_text(BOOK.replace("window: 4", "window: 5"))
    a = code_digests(load_codebook(tmp_path / "a.yaml"), "nl")
    b = code_digests(load_codebook(tmp_path / "b.yaml"), "nl")
    assert set(a) == {"agency", "ownership", "amo.opportunity", "time"}
    assert {c for c in a if a[c] != b[c]} == {"time"}
    assert MatchCache(None, "k").load("nl", "f", a) == (None, {})
    assert MatchCache(tmp_path, None).folder is None
