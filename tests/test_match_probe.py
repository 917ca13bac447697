"""match_probe: an edit that only adds items occurring nowhere keeps the cached rows."""
import hashlib
import json
import os

import pytest

import pipeline.match_probe as match_probe
from pipeline.codebook import load_codebook
from pipeline.match_cache import SUBDIR, unit_texts
from pipeline.match_probe import added_items, old_text, remember
from test_match_cache import BOOK, _codes, _run, _same_as_cold, corpus, matched  # noqa: F401

# the per-chunk caches at work: stored coding files are not taken (coded_files)
pytestmark = pytest.mark.usefixtures("no_coded_files")

OWN = "ownership"
AGENCY1 = "agency\x1fagency.nl.1"


def _texts(tmp_path, book, name="b.yaml"):
    (tmp_path / name).write_text(book)
    return unit_texts(load_codebook(tmp_path / name), "nl")


@pytest.fixture
def probed(monkeypatch):
    """What every ``match_probe.unchanged`` call of a run returned."""
    log: list = []
    original = match_probe.unchanged

    def spy(*args):
        got = original(*args)
        log.append(got)
        return got

    monkeypatch.setattr(match_probe, "unchanged", spy)
    return log


@pytest.fixture
def probe_matches(monkeypatch):
    """One entry per ``match_frame`` call of a run that matched the probe's rule."""
    import pipeline.code.matching as matching

    calls: list[int] = []
    original = matching.match_frame

    def spy(arrays, compiled, segments, opening=None, coded=None):
        if {(r.code_id, r.id) for r in compiled.rules} == {("probe", "probe")}:
            calls.append(1)
        return original(arrays, compiled, segments, opening, coded)

    monkeypatch.setattr(matching, "match_frame", spy)
    return calls


def test_added_items_are_pure_additions_to_item_lists(tmp_path):
    base = _texts(tmp_path, BOOK, "a.yaml")
    cases = {  # edit -> (unit, what added_items says)
        ("terms: [eigenaar]", "terms: [eigenaar, project, zzz]"): (OWN, ("project", "zzz")),
        ("terms: [eigenaar]", "terms: [zzz, eigenaar]"): (OWN, ("zzz",)),
        ('phrases: ["eigenaar van het gebouw"]',
         'phrases: ["eigenaar van het gebouw", "het pand"]'): (OWN, ("het pand",)),
        ("a: [gebouw]", "a: [gebouw, pand]"): ("time", ("pand",)),
        ("b: [eigenaar]", "b: [eigenaar, huurder*]"): ("time", ("huurder*",)),
        ('globs: ["eigenaar*"]', 'globs: ["eigenaar*", "bezit*"]'):
            ("agency\x1fagency.nl.2", ("bezit*",)),
        # not only additions: None
        ("terms: [uren, tijd]", "terms: [uren]"): ("time", None),
        ("terms: [uren, tijd]", "terms: [tijd, uren]"): ("time", None),
        ("terms: [uren, tijd]", "terms: [uren, zzz]"): ("time", None),
        ("window: 4", "window: 5"): ("time", None),
        ("max_matches: 1}", "max_matches: 2}"): ("time", None),
        ("terms: [uren, tijd], negation: forbid", "terms: [uren, tijd, zzz]"): ("time", None),
        ('{kind: phrase, phrases: ["zelf invullen"]}',
         '{kind: phrase, phrases: ["zelf invullen"], negation: forbid}'): (AGENCY1, None),
        ('{kind: phrase, phrases: ["zelf invullen"]}',
         '{kind: phrase, phrases: ["zelf invullen"], weight: 0.5}'): (AGENCY1, None),
    }
    for (old, new), (unit, want) in cases.items():
        assert BOOK.count(old) == 1, old
        edited = _texts(tmp_path, BOOK.replace(old, new))
        assert added_items(base[unit], edited[unit]) == want, (old, new)
    # a codebook-wide setting is in every unit's text: nothing is an addition then
    window = _texts(tmp_path, BOOK.replace("settings: {default_lang: nl}",
                                           "settings: {default_lang: nl, negation_window: 1}"))
    assert all(added_items(base[u], window[u]) is None for u in base)
    assert added_items(base[OWN], base[OWN]) == ()
    assert added_items(base[OWN], base["time"]) is None  # another unit
    for bad in ("", "{", "[1, 2]", json.dumps([1, "x", [[1]]])):
        assert added_items(bad, base[OWN]) is None and added_items(base[OWN], bad) is None


def test_unit_texts_are_kept_and_found_by_digest_only_when_intact(tmp_path):
    (tmp_path / "b.yaml").write_text(BOOK)
    book = load_codebook(tmp_path / "b.yaml")
    texts = unit_texts(book, "nl")
    folder = tmp_path / "cache" / SUBDIR
    digest = hashlib.sha256(texts[OWN].encode("utf-8")).hexdigest()
    assert old_text(folder, digest) is None  # nothing kept yet
    remember(folder, book, "nl", texts)  # no run: written at once
    match_probe._FOUND.clear()  # answers are kept per process: as a new process
    assert old_text(folder, digest) == texts[OWN]
    assert old_text(folder, "0" * 64) is None
    assert old_text(None, digest) is None
    (path,) = (folder / match_probe.SUBDIR).glob("*.json")
    kept = json.loads(path.read_text())
    kept[digest] = kept[digest].replace("eigenaar", "eigenares")  # no longer its digest
    path.write_text(json.dumps(kept))
    assert old_text(folder, digest) == texts[OWN]  # found intact by this process already
    match_probe._FOUND.clear()
    assert old_text(folder, digest) is None
    path.write_text("not json")
    match_probe._FOUND.clear()
    assert old_text(folder, digest) is None


def test_only_the_newest_definition_files_are_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(match_probe, "KEEP", 2)
    folder = tmp_path / "defs"
    for k in range(4):
        match_probe._save(folder, f"f{k}", {str(k): "x"})
        if k < 3:  # distinct ages: writes within one clock tick share a modification time
            os.utime(folder / f"f{k}.json", ns=(k * 10**9, k * 10**9))
    assert len(list(folder.glob("*.json"))) == 2
    assert (folder / "f3.json").exists()


def test_addition_found_nowhere_is_not_matched_again(corpus, matched, probed):
    _run(corpus, "cached", BOOK)
    # a whole-code unit (exclude rule) and a proximity rule, items that occur nowhere
    edited = BOOK.replace("terms: [eigenaar]", "terms: [eigenaar, zzz]").replace(
        "b: [eigenaar]", "b: [eigenaar, qqq*]")
    matched.clear()
    probed.clear()
    _run(corpus, "cached", edited)
    assert probed and all(set(got) == {OWN, "time"} for got in probed if got is not None)
    assert all(OWN not in codes and "time" not in codes for codes in _codes(matched))
    _same_as_cold(corpus, edited)
    # a second addition on top (the entries now have two files each: rows merged)
    again = edited.replace('phrases: ["zelf invullen"]', 'phrases: ["zelf invullen", "xxyy"]')
    matched.clear()
    probed.clear()
    _run(corpus, "cached", again)
    assert any(got == {AGENCY1: got[AGENCY1]} for got in probed if got)
    assert all("agency" not in codes for codes in _codes(matched))
    _same_as_cold(corpus, again)


def test_addition_that_occurs_is_matched_again(corpus, matched, probed):
    _run(corpus, "cached", BOOK)
    for old, new, code in (("terms: [eigenaar]", "terms: [eigenaar, project]", OWN),
                           ("a: [gebouw]", "a: [gebouw, project]", "time"),
                           ('globs: ["eigenaar*"]', 'globs: ["eigenaar*", "bijzonder*"]',
                            "agency"),
                           ('phrases: ["zelf invullen"]', 'phrases: ["zelf invullen", "gewoon geen"]',
                            "agency")):
        edited = BOOK.replace(old, new)
        matched.clear()
        probed.clear()
        _run(corpus, "cached", edited)
        assert None in probed  # some chunk has the item: its unit is matched again there
        assert any(code in codes for codes in _codes(matched))
        _same_as_cold(corpus, edited)


def test_without_kept_definitions_the_units_are_matched_again(corpus, matched, probed):
    import shutil

    _run(corpus, "cached", BOOK)
    shutil.rmtree(corpus / "cached" / ".cache" / SUBDIR / match_probe.SUBDIR)
    edited = BOOK.replace("terms: [eigenaar]", "terms: [eigenaar, zzz]")
    matched.clear()
    probed.clear()
    _run(corpus, "cached", edited)
    assert probed and not any(probed)
    assert any(OWN in codes for codes in _codes(matched))
    _same_as_cold(corpus, edited)


def test_random_additions_give_the_outputs_of_a_run_without_cache(corpus, probed):
    import random

    from test_streaming import TURNS

    rng = random.Random(7)
    words = sorted({w.strip(".,?").lower() for turn in TURNS for w in turn.split()})
    lists = ["terms: [uren, tijd]", "a: [gebouw]", "b: [eigenaar]", "terms: [eigenaar]",
             'phrases: ["zelf invullen"]', 'globs: ["eigenaar*"]']
    book, kept = BOOK, set()
    _run(corpus, "cached", book)
    for step in range(4):
        target = rng.choice([t for t in lists if t in book])
        word = rng.choice(words) if step % 2 == 0 else f"zq{step}"  # occurs / occurs nowhere
        item = word[:4] + "*" if "globs" in target else word
        edited_list = target[:-1] + f", {json.dumps(item)}]"
        book = book.replace(target, edited_list)
        lists[lists.index(target)] = edited_list
        probed.clear()
        _run(corpus, "cached", book)
        assert probed  # every re-code asked the probe
        kept.update(got is not None for got in probed)
        _same_as_cold(corpus, book)
    assert kept == {True, False}  # rows kept in some chunks, matched again in others


def test_the_chunks_words_settle_the_probe_without_matching(corpus, probe_matches):
    probes = probe_matches
    _run(corpus, "cached", BOOK)
    for old, new, matched_probe in [
        ("terms: [eigenaar]", "terms: [eigenaar, zzqx]", False),   # no word: rows kept
        ("terms: [uren, tijd]", "terms: [uren, tijd, project]", False),  # a word: re-matched
        ("a: [gebouw]", 'a: [gebouw, "project van"]', True),  # both words: the probe decides
    ]:
        book = BOOK.replace(old, new)
        probes.clear()
        _run(corpus, "cached", book)
        assert bool(probes) == matched_probe, new
        _same_as_cold(corpus, book)


def test_a_batch_without_some_segments_still_settles_the_probe(corpus, probe_matches):
    """The chunk's words settle the probe even when the batch leaves out segments of
    another language than their document's (``StoredTokens.words``)."""
    (corpus / "raw" / "mixed.csv").write_text(
        "id,text\nM1,Wij werken met uren en tijd aan dit project op school.\n"
        "M2,The teachers in this school really take ownership of the new curriculum and "
        "they decide together what happens next year.\n"
        "M3,\"Het gebouw is van de gemeente, de eigenaar is de gemeente.\"\n",
        encoding="utf-8")
    probes = probe_matches
    _run(corpus, "cached", BOOK)
    segments = __import__("pandas").read_parquet(corpus / "cached" / "segments.parquet")
    mixed = segments[segments["doc_id"] == "mixed"]
    assert set(mixed["lang"]) == {"nl", "en"}  # a segment the Dutch batch leaves out
    book = BOOK.replace("terms: [uren, tijd]", "terms: [uren, tijd, project]")
    _run(corpus, "cached", book)
    assert not probes  # "project" is among the chunk's words: matched again, no probe
    _same_as_cold(corpus, book)
