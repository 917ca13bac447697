"""The match cache: a re-code matches only edited rules, outputs as a cold run."""
import hashlib

import pytest

import pipeline.code.matching as matching
from pipeline.match_cache import SUBDIR, MatchCache, unit_digests
from pipeline.runner import RunOptions, code_corpus
from test_streaming import CODEBOOK, OUTPUTS, make_corpus

# the per-chunk caches at work: stored coding files are not taken (coded_files)
pytestmark = pytest.mark.usefixtures("no_coded_files")

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
    """(code id, rule id) of the rules every ``match_frame`` call of a run compiled."""
    calls: list[set[str]] = []
    original = matching.match_frame

    def spy(arrays, compiled, segments, opening=None, coded=None):
        pairs = {(rule.code_id, rule.id) for rule in compiled.rules}
        if pairs != {("probe", "probe")}:  # match_probe's look for added items: no re-match
            calls.append(pairs)
        return original(arrays, compiled, segments, opening, coded)

    monkeypatch.setattr(matching, "match_frame", spy)
    return calls


def _run(tmp, out, book, **kw):
    (tmp / "codebook.yaml").write_text(book)
    return code_corpus([tmp / "raw"], codebook=tmp / "codebook.yaml", out_dir=tmp / out,
                       options=RunOptions(progress=False, chunk_bytes=400, **kw))


def _same_as_cold(tmp, book):
    _run(tmp, "fresh", book, cache=False)
    assert _digest(tmp / "cached") == _digest(tmp / "fresh")


def _codes(calls):
    return [{code for code, _ in pairs} for pairs in calls]


def test_recode_matches_only_changed_rules_and_equals_cold_run(corpus, matched):
    _run(corpus, "cached", BOOK)
    assert list((corpus / "cached" / ".cache" / SUBDIR).rglob("*.arrow"))
    assert matched and all("time" in codes for codes in _codes(matched))
    _same_as_cold(corpus, BOOK)

    matched.clear()
    _run(corpus, "cached", BOOK)  # no edit: nothing is matched again
    assert matched == []
    _same_as_cold(corpus, BOOK)

    edited = BOOK.replace('phrases: ["zelf invullen"]', 'phrases: ["zelf invullen", "zelf"]')
    matched.clear()
    _run(corpus, "cached", edited)  # one rule of a code without exclude rules
    assert matched and all(pairs == {("agency", "agency.nl.1")} for pairs in matched)
    _same_as_cold(corpus, edited)

    edited = edited.replace("terms: [eigenaar]", "terms: [eigenaar, project]")
    matched.clear()
    _run(corpus, "cached", edited)  # a code with an exclude rule: all of its rules
    assert matched and all(codes == {"ownership"} for codes in _codes(matched))
    assert all(len(pairs) == 2 for pairs in matched)
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
    assert matched and all(codes == {"doing"} for codes in _codes(matched))
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
    assert matched and all("time" in codes and "agency" in codes for codes in _codes(matched))
    _same_as_cold(corpus, window)
    scope = BOOK.replace("settings: {default_lang: nl}",
                         "settings: {default_lang: nl, negation_scope: clause}")
    _run(corpus, "cached", scope)
    _same_as_cold(corpus, scope)


def test_damaged_or_deleted_entries_are_misses(corpus):
    _run(corpus, "cached", BOOK)
    folder = corpus / "cached" / ".cache" / SUBDIR
    entries = sorted(folder.rglob("*.arrow"))
    entries[0].write_bytes(b"garbage")
    entries[-1].unlink()
    _run(corpus, "cached", BOOK)
    _same_as_cold(corpus, BOOK)
    for path in folder.rglob("*"):
        assert not path.name.startswith(".")  # no temp files left behind


def test_digests_are_per_rule_or_per_code_with_excludes(tmp_path):
    from pipeline.codebook import load_codebook

    (tmp_path / "a.yaml").write_text(BOOK)
    (tmp_path / "b.yaml").write_text(BOOK.replace("window: 4", "window: 5"))
    a, unit_of = unit_digests(load_codebook(tmp_path / "a.yaml"), "nl")
    b, _ = unit_digests(load_codebook(tmp_path / "b.yaml"), "nl")
    assert set(a) == {"agency\x1fagency.nl.1", "agency\x1fagency.nl.2", "agency\x1fagency.nl.3",
                      "ownership", "amo.opportunity\x1famo.opportunity.nl.1", "time"}
    assert unit_of[("time", "time.nl.2")] == "time"
    assert {u for u in a if a[u] != b[u]} == {"time"}
    assert MatchCache(None, "k").entry("nl", "f").load(a) == (None, set())
    assert MatchCache(tmp_path, None).folder is None


def test_same_rows_is_frame_equals_of_the_selected_rows():
    import numpy as np
    import pandas as pd

    from pipeline.match_cache import same_rows

    before = pd.DataFrame({"s": pd.array(["a", "b", None, "d"], dtype="str"),
                           "i": [1, 2, 3, 4], "f": [0.5, np.nan, 1.0, 2.0],
                           "o": pd.Series(["x", 1, "y", "z"], dtype=object)})
    mask = np.asarray([True, True, False, True])
    for after_rows in ([0, 1, 3], [0, 1, 2], [1, 0, 3], [0, 1], [2, 1, 3]):
        after = before.iloc[after_rows].reset_index(drop=True)
        for names in (["s"], ["i"], ["f"], ["o"], list(before.columns)):
            want = (len(after_rows) == int(mask.sum())
                    and before.loc[mask, names].reset_index(drop=True).equals(after[names]))
            assert same_rows(before, mask, after, names) == want, (after_rows, names)
    # the dtype counts, as in DataFrame.equals
    same = before[mask].reset_index(drop=True)
    assert same_rows(before, mask, same, list(before.columns))
    assert not same_rows(before, mask, same.astype({"i": "float64"}), ["i"])
    assert not same_rows(before, mask, same.astype({"s": object}), ["s"])


def test_columns_of_is_the_column_selection():
    import pandas as pd

    from pipeline.match_cache import columns_of

    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"], "_unit": [0, 1]})
    for columns in (["a", "b"], ["b", "a"], ["a", "_unit"], ["b"]):
        got = columns_of(frame, columns)
        assert got.equals(frame[columns]) and list(got.columns) == columns


def test_a_first_run_aggregates_on_the_matchers_keys(corpus, monkeypatch):
    """The rows a first run matched keep ``match_frame``'s integer keys through the cache,
    so aggregating them factorises no id column (and gives the codings in output order)."""
    import pipeline.code.aggregate as aggregate

    seen: list[bool] = []
    original = aggregate._Groups.__init__

    def spy(self, matches, keys=None):
        seen.append(keys is not None)
        original(self, matches, keys)

    monkeypatch.setattr(aggregate._Groups, "__init__", spy)
    _run(corpus, "cached", BOOK)
    assert seen and all(seen)
    _same_as_cold(corpus, BOOK)
