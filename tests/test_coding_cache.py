"""The codings cache: a re-code aggregates only edited codes, outputs as a cold run."""
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import pipeline.code.aggregate as aggregate
from pipeline import columns as C
from pipeline.coding_cache import SUBDIR, code_digests, csv_array, csv_bytes, csv_lines, joined_lines
from test_match_cache import BOOK, _run, _same_as_cold
from test_streaming import make_corpus

# the per-chunk caches at work: stored coding files are not taken (coded_files)
pytestmark = pytest.mark.usefixtures("no_coded_files")


@pytest.fixture
def corpus(tmp_path):
    make_corpus(tmp_path / "raw")
    return tmp_path


@pytest.fixture
def aggregated(monkeypatch):
    """Code ids of the match rows of every ``aggregate_rows`` call of a run."""
    calls: list[set[str]] = []
    original = aggregate.aggregate_rows

    def spy(matches, **kw):
        calls.append(set(matches[C.CODE_ID]))
        return original(matches, **kw)

    monkeypatch.setattr(aggregate, "aggregate_rows", spy)
    return calls


def test_csv_lines_are_the_rows_of_to_csv():
    frame = pd.DataFrame({
        "a": ["plain", 'quo"te', "com,ma", "new\nline", "cr\rlf\r\n", "", None, "ünï €"],
        "b": [0.1 + 0.2, 1.0, 1e-9, 0.5, np.nan, 2.0, 3.25, 1 / 3],
        "c": [1, 2, 3, 4, 5, 6, 7, 8],
    })
    lines = csv_lines(frame)
    assert len(lines) == len(frame)
    assert b"".join(lines) == csv_bytes(frame)
    for k, line in enumerate(lines):  # a row's line does not depend on the other rows
        assert line == csv_bytes(frame.iloc[[k]])
    assert csv_lines(frame.iloc[:0]) == []


def test_csv_array_lines_join_in_any_order():
    frame = pd.DataFrame({"a": ["x", 'q"u', "new\nline", "€"], "b": [1.5, np.nan, 2.0, 3.0]})
    lines = csv_lines(frame)
    column = pd.Series(pd.arrays.ArrowExtensionArray(csv_array(frame)))
    assert joined_lines(column) == csv_bytes(frame)
    order = [2, 0, 3]  # a reordered subset, as a re-code takes cached lines
    assert joined_lines(column.take(order)) == b"".join(lines[k] for k in order)
    assert joined_lines(column.iloc[1:3]) == b"".join(lines[1:3])  # a sliced array
    both = pd.concat([column.iloc[:2], column.iloc[3:]], ignore_index=True)  # two chunks
    assert joined_lines(both) == b"".join([*lines[:2], lines[3]])
    assert joined_lines(column.iloc[:0]) == b""
    assert joined_lines(pd.Series(lines, dtype=object)) == csv_bytes(frame)


def test_recode_aggregates_only_changed_codes_and_equals_cold_run(corpus, aggregated):
    _run(corpus, "cached", BOOK)
    assert list((corpus / "cached" / ".cache" / SUBDIR).rglob("*.arrow"))
    _same_as_cold(corpus, BOOK)

    aggregated.clear()
    _run(corpus, "cached", BOOK)  # no edit: nothing is aggregated again
    assert aggregated == []

    edited = BOOK.replace('phrases: ["zelf invullen"]', 'phrases: ["zelf invullen", "zelf"]')
    aggregated.clear()
    _run(corpus, "cached", edited)
    assert aggregated and all(codes <= {"agency"} for codes in aggregated)
    assert any(codes == {"agency"} for codes in aggregated)
    _same_as_cold(corpus, edited)

    removed = edited.replace("""\
  - id: time
""", """\
  - id: time2
""")
    _run(corpus, "cached", removed)  # a renamed code: the old one's rows are dropped
    _same_as_cold(corpus, removed)


def test_edit_that_changes_no_match_keeps_the_cached_rows(corpus, aggregated, monkeypatch):
    import pipeline.match_cache as match_cache
    import pipeline.match_probe as match_probe

    unchanged: list[dict] = []
    probed: list[dict] = []

    def spy(original, log):
        def call(*args):
            got = original(*args)
            log.append(got)
            return got
        return call

    monkeypatch.setattr(match_cache, "_unchanged", spy(match_cache._unchanged, unchanged))
    monkeypatch.setattr(match_probe, "unchanged", spy(match_probe.unchanged, probed))
    _run(corpus, "cached", BOOK)
    # not an addition (a cap no segment reaches): matched again, its rows are the old ones
    capped = BOOK.replace('phrases: ["zelf invullen"]}', 'phrases: ["zelf invullen"], max_matches: 99}')
    assert capped != BOOK
    aggregated.clear()
    unchanged.clear()
    _run(corpus, "cached", capped)
    assert unchanged and all(got and set(got) == {"agency\x1fagency.nl.1"} for got in unchanged)
    assert aggregated == []  # the codings of agency are the stored ones
    _same_as_cold(corpus, capped)
    # a term that occurs nowhere: the probe finds it nowhere, the old rows are kept
    edited = BOOK.replace('phrases: ["zelf invullen"]', 'phrases: ["zelf invullen", "zzz"]')
    assert edited != BOOK
    aggregated.clear()
    probed.clear()
    unchanged.clear()
    _run(corpus, "cached", edited)
    assert probed and all(got and set(got) == {"agency\x1fagency.nl.1"} for got in probed)
    assert not any(unchanged)  # where rows were loaded, not matched again
    _same_as_cold(corpus, edited)

    _run(corpus, "cached", BOOK)  # undone: everything from the cache
    _same_as_cold(corpus, BOOK)
    # an edit that does add matches goes the usual way
    added = BOOK.replace('phrases: ["zelf invullen"]', 'phrases: ["zelf invullen", "zelf"]')
    aggregated.clear()
    _run(corpus, "cached", added)
    assert any(codes == {"agency"} for codes in aggregated)
    _same_as_cold(corpus, added)
    _run(corpus, "cached", edited)
    _same_as_cold(corpus, edited)


def test_still_valid_needs_the_digest_the_code_had(tmp_path):
    from pipeline.coding_cache import _still_valid
    from pipeline.tagged_store import TaggedEntry

    entry = TaggedEntry(tmp_path / "e", [C.CODE_ID])
    digests = {"x": "1", "y": "1"}
    rows = pd.DataFrame({C.CODE_ID: ["x", "y", "x"]})
    entry.save(rows.assign(**{C.CACHE_UNIT: [entry.unit_id(c) for c in rows[C.CODE_ID]]}),
               digests, digests, ordered=True)
    entry = TaggedEntry(tmp_path / "e", [C.CODE_ID])
    cached, have = entry.load({"x": "1", "y": "2"}, stale=True)
    assert have == {"x"}
    assert _still_valid(entry, cached, {"y"}, {"x": "1", "y": "3"}) is None  # other digest
    assert _still_valid(entry, cached, {"x", "y"}, {"x": "1", "y": "1"}) is None  # other units
    kept = _still_valid(entry, cached, {"y"}, {"x": "1", "y": "1"})
    assert kept[C.CODE_ID].tolist() == ["x", "y", "x"]
    assert (kept[C.CACHE_UNIT] >= 0).all()
    assert kept[C.CACHE_UNIT].tolist()[1] == entry.unit_id("y")


def test_threshold_change_reaggregates_every_code(corpus, aggregated):
    _run(corpus, "cached", BOOK)
    higher = BOOK.replace("settings: {default_lang: nl}",
                          "settings: {default_lang: nl, threshold: 0.9}")
    assert higher != BOOK
    aggregated.clear()
    _run(corpus, "cached", higher)
    assert aggregated and set().union(*aggregated) >= {"agency", "time"}
    _same_as_cold(corpus, higher)


def test_a_chunk_whose_matches_give_no_coding_is_stored_and_recoded(corpus):
    # every rule weighs less than this threshold: the chunks' matches give no coding and
    # their entries are empty tables (this used to fail the run with a KeyError)
    above = (BOOK.replace("settings: {default_lang: nl}",
                          "settings: {default_lang: nl, threshold: 0.9}")
             .replace("{kind: phrase", "{weight: 0.4, kind: phrase")
             .replace("{kind: glob", "{weight: 0.4, kind: glob")
             .replace("{kind: terms", "{weight: 0.4, kind: terms")
             .replace("{kind: proximity", "{weight: 0.4, kind: proximity")
             .replace("- kind: pattern", "- weight: 0.4\n          kind: pattern"))
    result = _run(corpus, "cached", above)
    assert pq.read_metadata(corpus / "cached" / f"{C.MATCHES_FILE}.parquet").num_rows > 0
    assert result.manifest["counts"]["codings"] == 0
    _same_as_cold(corpus, above)
    _run(corpus, "cached", BOOK)
    _same_as_cold(corpus, BOOK)
    _run(corpus, "cached", above)
    _same_as_cold(corpus, above)


@pytest.mark.parametrize("damage", [b"", b"garbage", None])
def test_damaged_or_deleted_entries_are_misses(corpus, damage):
    _run(corpus, "cached", BOOK)
    folder = corpus / "cached" / ".cache" / SUBDIR
    entries = sorted(folder.rglob("*.arrow"))
    for entry in entries[::2]:
        if damage is None:
            entry.unlink()
        else:
            entry.write_bytes(damage or entry.read_bytes()[:100])  # b"": truncated
    _run(corpus, "cached", BOOK)
    _same_as_cold(corpus, BOOK)
    for path in folder.rglob("*"):
        assert not path.name.startswith(".")  # no temp files left behind


def test_code_digests_follow_the_code_rules_and_threshold(tmp_path):
    from pipeline.codebook import load_codebook

    (tmp_path / "a.yaml").write_text(BOOK)
    (tmp_path / "b.yaml").write_text(BOOK.replace("window: 4", "window: 5"))
    (tmp_path / "c.yaml").write_text(BOOK.replace("settings: {default_lang: nl}",
                                                  "settings: {default_lang: nl, threshold: 0.6}"))
    a, b, c = (code_digests(load_codebook(tmp_path / f"{n}.yaml"), "nl") for n in "abc")
    assert set(a) == {"agency", "ownership", "amo.opportunity", "time"}
    assert {code for code in a if a[code] != b[code]} == {"time"}
    assert all(a[code] != c[code] for code in a)


def test_warm_recode_without_edit_builds_no_pipeline(corpus, monkeypatch):
    import pipeline.nlp as nlp

    _run(corpus, "cached", BOOK)

    def refuse(lang):
        raise AssertionError(f"pipeline of {lang} built")

    # a re-code from cache needs the vocab and fingerprint only: no tokenizer, no lookups
    monkeypatch.setattr(nlp, "base_nlp", refuse)
    monkeypatch.setattr(nlp, "make_nlp", refuse)
    _run(corpus, "cached", BOOK)
    monkeypatch.undo()
    _same_as_cold(corpus, BOOK)


def test_pipeline_fingerprint_follows_versions_and_code(monkeypatch):
    import pipeline.cache as cache
    import pipeline.chunk_cache as chunk_cache

    base = cache.pipeline_fingerprint("nl")
    assert base != cache.pipeline_fingerprint("en")
    cache.pipeline_fingerprint.cache_clear()
    try:
        version = cache.importlib_metadata.version
        monkeypatch.setattr(cache.importlib_metadata, "version",
                            lambda name: "0.0" if name == "spacy" else version(name))
        assert cache.pipeline_fingerprint("nl") != base
        cache.pipeline_fingerprint.cache_clear()
        monkeypatch.undo()
        monkeypatch.setattr(chunk_cache, "files_digest", lambda files: "edited nlp.py")
        assert cache.pipeline_fingerprint("nl") != base
        cache.pipeline_fingerprint.cache_clear()
        monkeypatch.undo()
        assert cache.pipeline_fingerprint("nl") == base
    finally:
        cache.pipeline_fingerprint.cache_clear()


def test_segment_ids_renamed_across_chunks_are_in_codings_csv(tmp_path):
    """A later chunk's clashing ids are renamed after its CSV rows were made: rows redone."""
    import hashlib

    from pipeline.runner import RunOptions, code_corpus

    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "a.txt").write_text("R: Wij zijn eigenaar van dit project.\n\nR: Zelf invullen.\n",
                               encoding="utf-8")
    (raw / "z.csv").write_text('id,text\na:0,Wij zijn eigenaar van het plan\nz2,niets\n',
                               encoding="utf-8")
    (tmp_path / "codebook.yaml").write_text(BOOK)
    outs = {}
    for name, cache in (("cached", True), ("cached2", True), ("fresh", False)):
        out = tmp_path / ("cached" if name == "cached2" else name)
        code_corpus([raw], codebook=tmp_path / "codebook.yaml", out_dir=out,
                    options=RunOptions(progress=False, chunk_bytes=1, cache=cache))
        codings = pd.read_parquet(out / "codings.parquet")
        assert "z:a:0" in set(codings[C.SEGMENT_ID])  # the CSV row's id, renamed
        text = codings.to_csv(index=False, lineterminator="\n")
        assert (out / "codings.csv").read_text(encoding="utf-8") == text
        outs[name] = {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
                      for p in out.iterdir() if p.suffix in (".csv", ".parquet")}
    assert outs["cached"] == outs["cached2"] == outs["fresh"]


def test_coding_order_on_integer_keys_is_the_pandas_order():
    rng = np.random.default_rng(7)
    n = 400
    rows = pd.DataFrame({
        C.DOC_ID: rng.choice(["d10", "d2", "d1", "é"], n),
        C.SEGMENT_ID: rng.choice([f"s{k}" for k in range(30)], n),
        C.CODE_ID: rng.choice(["b", "a.x", "a", "A"], n),
        C.FIRST_MATCH: rng.integers(0, 50, n),
    })
    assert aggregate.coding_order(rows).tolist() == aggregate._coding_order_frame(rows).tolist()
    keep = rng.random(n) < 0.7
    kept = np.flatnonzero(keep)
    want = kept[aggregate._coding_order_frame(rows.take(kept))]
    assert aggregate.coding_order(rows, keep).tolist() == want.tolist()
    with_missing = rows.assign(**{C.DOC_ID: rows[C.DOC_ID].where(rng.random(n) < 0.9)})
    assert (aggregate.coding_order(with_missing, keep).tolist()
            == kept[aggregate._coding_order_frame(with_missing.take(kept))].tolist())


def test_factorized_is_pandas_factorize_of_the_selected_rows():
    import numpy as np
    import pandas as pd

    from pipeline.coding_cache import _factorized

    mask = np.asarray([True, False, True, True, False])
    for values in (pd.Series(["b", "a", "c", "b", "a"], dtype="str"),
                   pd.Series(["b", "a", None, "b", "a"], dtype="str"),
                   pd.Series(["b", "a", "c", "b", "a"], dtype=object)):
        codes, names = _factorized(values, mask)
        want_codes, want_names = pd.factorize(values[mask])
        assert codes.tolist() == want_codes.tolist()
        assert [n if isinstance(n, str) else None for n in names] == \
            [n if isinstance(n, str) else None for n in want_names]
