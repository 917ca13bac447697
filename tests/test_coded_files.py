"""coded_files: a re-code whose codings cannot have changed takes the stored files."""
import json
import os
import shutil
from pathlib import Path

import pytest

import pipeline.chunk_code as chunk_code
from pipeline.coded_files import FILES, KEEP, SUBDIR, CodedFiles, corpus_words, may_occur
from pipeline.codebook import load_codebook
from test_match_cache import BOOK, _digest, _run, corpus  # noqa: F401

EN_RULES = """\
      en:
        - {kind: terms, terms: [teacher]}
"""


@pytest.fixture
def coded(monkeypatch):
    """One item per chunk a run coded (``chunk_code.code_chunk`` calls)."""
    calls: list[int] = []
    original = chunk_code.code_chunk

    def spy(*args, **kw):
        calls.append(1)
        return original(*args, **kw)

    monkeypatch.setattr(chunk_code, "code_chunk", spy)
    return calls


def _entries(tmp, out="cached"):
    return sorted((tmp / out / ".cache" / SUBDIR).glob("*/*/*"))


def _same_as_fresh(tmp, book, out="cached"):
    """The outputs and the manifest's counts are those of a run without cache."""
    _run(tmp, "fresh", book, cache=False)
    assert _digest(tmp / out) == _digest(tmp / "fresh")
    for name in FILES:
        assert (tmp / out / name).read_bytes() == (tmp / "fresh" / name).read_bytes()
    got, want = (json.loads((tmp / d / "manifest.json").read_text()) for d in (out, "fresh"))
    assert got["counts"] == want["counts"]
    assert got["throughput"]["tokens"] == want["throughput"]["tokens"]
    assert got["outputs"] == want["outputs"]


def test_a_rerun_and_additions_found_nowhere_take_the_stored_files(corpus, coded):
    _run(corpus, "cached", BOOK)
    assert len(coded) > 3  # the cold run codes every chunk
    assert len(_entries(corpus)) == 1
    edits = [
        BOOK,  # no edit
        BOOK.replace("terms: [eigenaar]", "terms: [eigenaar, zzqx]"),
        BOOK.replace('globs: ["eigenaar*"]', 'globs: ["eigenaar*", "zzq*"]'),
        BOOK.replace("a: [gebouw]", 'a: [gebouw, "zzpand vandaag"]'),
        BOOK.replace("a: [gebouw]", 'a: [gebouw, "het zzpand"]'),  # its second word
        BOOK.replace('phrases: ["zelf invullen"]', 'phrases: ["zelf invullen", "zelf zzq*"]'),
        # an addition to a code with exclude rules, and to two rules at once
        BOOK.replace("terms: [uren, tijd]", "terms: [uren, tijd, zzuur]")
            .replace("terms: [eigenaar]", "terms: [eigenaar, Zzqy]"),
    ]
    for book in edits:
        coded.clear()
        _run(corpus, "cached", book)
        assert coded == []
        _same_as_fresh(corpus, book)
    assert len(_entries(corpus)) == 1  # taken, not stored again


@pytest.mark.parametrize("old, new", [
    ("terms: [eigenaar]", "terms: [eigenaar, project]"),       # occurs
    ("terms: [eigenaar]", "terms: [eigenaar, Project]"),       # occurs, in lower case
    ('globs: ["eigenaar*"]', 'globs: ["eigenaar*", "proj*"]'),  # a glob that matches
    ("a: [gebouw]", 'a: [gebouw, "het project"]'),  # each word occurs: not shown absent
    ("terms: [uren, tijd]", "terms: [uren]"),     # a removal
    ("terms: [uren, tijd]", "terms: [tijd, uren]"),  # reordered
    ("settings: {default_lang: nl}", "settings: {default_lang: nl, threshold: 0.9}"),
])
def test_other_edits_code_again_and_equal_a_run_without_cache(corpus, coded, old, new):
    _run(corpus, "cached", BOOK)
    assert BOOK.count(old) == 1
    edited = BOOK.replace(old, new)
    coded.clear()
    _run(corpus, "cached", edited)
    assert coded
    _same_as_fresh(corpus, edited)
    assert len(_entries(corpus)) == 2  # the new state is stored next to the first
    coded.clear()
    _run(corpus, "cached", BOOK)  # the edit undone: the first state's files
    assert coded == []
    _same_as_fresh(corpus, BOOK)


def test_an_output_changed_in_place_is_not_taken_again(corpus, coded):
    _run(corpus, "cached", BOOK)
    # an output file shares its bytes with the entry (a hard link): both change
    with open(corpus / "cached" / "codings.csv", "ab") as fh:
        fh.write(b"x,y\n")
    coded.clear()
    _run(corpus, "cached", BOOK)
    assert coded  # the damaged entry is a miss: coded again, and a good entry stored
    _same_as_fresh(corpus, BOOK)
    [entry] = _entries(corpus)
    assert (entry / "codings.csv").read_bytes() == (corpus / "fresh" / "codings.csv").read_bytes()
    coded.clear()
    _run(corpus, "cached", BOOK)
    assert coded == []


def test_chunk_entries_without_a_language_are_not_trusted_with_additions(corpus, coded):
    raw = corpus / "raw"
    (raw / "en01.txt").write_text("I: Question?\nR: The teacher sets the homework.\n")
    meta = raw / "metadata.csv"
    meta.write_text(meta.read_text() + "en01,UK,en\n")
    _run(corpus, "cached", BOOK)  # no English rules: the English document is not parsed
    english = BOOK.replace("        - {kind: terms, terms: [eigenaar]}\n",
                           "        - {kind: terms, terms: [eigenaar]}\n" + EN_RULES)
    assert english != BOOK
    coded.clear()
    _run(corpus, "cached", english)  # parsed now, but the chunk entries stay as they were
    assert coded
    _same_as_fresh(corpus, english)
    chunk_metas = list((corpus / "cached" / ".cache" / "chunks-v2").glob("*/*/meta.json"))
    assert chunk_metas
    assert all(json.loads(m.read_text())["ruled"] == ["nl"] for m in chunk_metas)
    # "homework" occurs only in the document the chunk entries lack: coded again
    more = english.replace("terms: [teacher]", "terms: [teacher, homework]")
    coded.clear()
    _run(corpus, "cached", more)
    assert coded
    _same_as_fresh(corpus, more)
    coded.clear()
    _run(corpus, "cached", english)  # the same state again: no words needed
    assert coded == []
    _same_as_fresh(corpus, english)


def test_other_run_options_do_not_take_the_stored_files(corpus, coded):
    _run(corpus, "cached", BOOK)
    coded.clear()
    _run(corpus, "cached", BOOK, unit="sentence")  # other segments: another tables key
    assert coded
    fresh = _run(corpus, "fresh", BOOK, cache=False, unit="sentence")
    assert fresh.manifest["outputs"] == json.loads(
        (corpus / "cached" / "manifest.json").read_text())["outputs"]
    assert len(_entries(corpus)) == 2


def test_corpus_words_and_what_may_occur(tmp_path, corpus):
    _run(corpus, "cached", BOOK)
    cache = corpus / "cached" / ".cache"
    keys = [p.name for p in (cache / "chunks-v2").glob("*/*")]
    words = corpus_words(cache, keys, ["nl"])
    assert {"eigenaar", "project", "zelf", "mochten"} <= words
    assert "mogen" in words  # a lemma
    assert corpus_words(cache, [*keys, "ff" * 32], ["nl"]) is None  # an entry missing
    assert corpus_words(cache, keys, ["nl", "en"]) is None  # made without English rules
    (tmp_path / "b.yaml").write_text(BOOK)
    book = load_codebook(tmp_path / "b.yaml")
    assert may_occur(book, {"nl": ("project",)}, words)
    assert may_occur(book, {"nl": ("PROJECT",)}, words)
    assert may_occur(book, {"nl": ("proj*",)}, words)
    assert may_occur(book, {"nl": ("zzz", "zelf doen")}, {"zelf", "doen"})
    assert may_occur(book, {"nl": ("doen zelf*",)}, {"zelfs", "doen"})
    assert not may_occur(book, {"nl": ("zzz", "zzq*", "doen zelf")}, {"zelf", "zzzz"})
    assert not may_occur(book, {"nl": ("zelf doen", "doen zelf*")}, {"zelf", "zelfs"})
    assert not may_occur(book, {"nl": ()}, words)


def test_only_the_newest_states_are_kept(corpus):
    _run(corpus, "cached", BOOK)
    [first] = _entries(corpus)
    os.utime(first / "meta.json", ns=(1, 1))  # the oldest
    for k in range(KEEP):
        _run(corpus, "cached", BOOK.replace("terms: [uren, tijd]", f"terms: [uren, tijd{k}]"))
    assert len(_entries(corpus)) == KEEP
    assert first not in _entries(corpus)


def test_a_run_without_cache_folder_stores_nothing(tmp_path):
    store = CodedFiles(None)
    assert store.find("k", None, [], tmp_path) is None
    store.store("k", None, {}, {}, {})
    assert list(tmp_path.iterdir()) == []


def test_random_edits_give_the_outputs_of_a_run_without_cache(corpus, coded):
    import random

    from test_streaming import TURNS

    rng = random.Random(11)
    words = sorted({w.strip(".,?").lower() for turn in TURNS for w in turn.split()})
    lists = ["terms: [uren, tijd]", "a: [gebouw]", "b: [eigenaar]", "terms: [eigenaar]",
             'phrases: ["zelf invullen"]', 'globs: ["eigenaar*"]']
    versions = [(BOOK, lists)]  # (codebook, its edited lists)
    _run(corpus, "cached", BOOK)
    taken = set()
    for step in range(8):
        if step % 4 == 3:  # back to an earlier version
            book, lists = rng.choice(versions[:-1])
        else:
            book, lists = versions[-1]
            target = rng.choice(lists)
            word = rng.choice(words) if rng.random() < 0.5 else f"zq{step}"
            item = word[:4] + "*" if "globs" in target else word
            edited = target[:-1] + f", {json.dumps(item)}]"
            book = book.replace(target, edited)
            lists = [edited if t == target else t for t in lists]
        versions.append((book, lists))
        coded.clear()
        _run(corpus, "cached", book)
        taken.add(not coded)
        _same_as_fresh(corpus, book)
    assert taken == {True, False}  # stored files taken in some runs, coded in others


def test_a_jobs_2_run_takes_the_stored_files_too(corpus):
    _run(corpus, "cached", BOOK)
    edited = BOOK.replace("terms: [eigenaar]", "terms: [eigenaar, zzqx]")
    _run(corpus, "cached", edited, jobs=2)
    _same_as_fresh(corpus, edited)
    assert len(_entries(corpus)) == 1


def test_a_run_that_takes_the_files_reads_no_tokens(corpus, prefetch_taken):
    _run(corpus, "cached", BOOK)
    taken = prefetch_taken
    taken.clear()
    edited = BOOK.replace("terms: [eigenaar]", "terms: [eigenaar, zzqx]")
    _run(corpus, "cached", edited)
    # the meta keeps what the run needs of a chunk's documents and segments
    assert {"meta.json"} == {n for n, _ in taken}
    assert all(hit for _, hit in taken)  # read ahead on the thread
    _same_as_fresh(corpus, edited)
    # an entry whose meta does not keep them (made by an earlier version): its tables
    for meta_path in (corpus / "cached" / ".cache" / "chunks-v2").glob("*/*/meta.json"):
        meta = json.loads(meta_path.read_text())
        del meta["stats"]["documents_rows"]
        meta_path.write_text(json.dumps(meta))
    taken.clear()
    _run(corpus, "cached", BOOK.replace("terms: [eigenaar]", "terms: [eigenaar, zzqy]"))
    assert {"meta.json", "documents.parquet", "segments.parquet"} == {n for n, _ in taken}
    _same_as_fresh(corpus, BOOK.replace("terms: [eigenaar]", "terms: [eigenaar, zzqy]"))


@pytest.mark.parametrize("damage", [
    lambda meta: meta.pop("counts"),
    lambda meta: meta["counts"].pop("codings"),
    lambda meta: meta["counts"].update(per_code={"agency": "many"}),
    lambda meta: meta["files"].pop("codings.csv"),
    lambda meta: meta["files"].update({"codings.csv": ["big", "x"]}),
    lambda meta: meta["state"].update(nl="?"),
    lambda meta: meta.clear(),
])
def test_a_damaged_meta_is_a_miss(corpus, coded, damage):
    _run(corpus, "cached", BOOK)
    [entry] = _entries(corpus)
    meta = json.loads((entry / "meta.json").read_text())
    damage(meta)
    (entry / "meta.json").write_text(json.dumps(meta))
    coded.clear()
    _run(corpus, "cached", BOOK)
    assert coded
    _same_as_fresh(corpus, BOOK)
    (entry / "meta.json").write_text("{not json")
    coded.clear()
    _run(corpus, "cached", BOOK)
    assert coded


def test_an_addition_found_in_a_few_chunks_codes_only_those(corpus, coded):
    _run(corpus, "cached", BOOK)
    every = len(coded)
    # "graag" and "meer" occur only in the survey file's chunk
    book = BOOK
    for old, new in [("terms: [eigenaar]", "terms: [eigenaar, graag]"),
                     ("a: [gebouw]", 'a: [gebouw, "meer tijd"]'),
                     ('globs: ["eigenaar*"]', 'globs: ["eigenaar*", "gra*"]')]:
        book = book.replace(old, new)
        coded.clear()
        _run(corpus, "cached", book)
        assert 0 < len(coded) < every
        _same_as_fresh(corpus, book)
    for jobs, word in ((1, "meer"), (2, "graag")):  # the others coded in this process or not
        edited = book.replace("terms: [uren, tijd]", f"terms: [uren, tijd, {word}]")
        res = _run(corpus, "cached", edited, jobs=jobs)
        assert 0 < res.manifest["throughput"]["chunks_taken"] < res.manifest["throughput"]["chunks"]
        _same_as_fresh(corpus, edited)
    res = _run(corpus, "cached", book)  # back: taken whole
    assert res.manifest["throughput"]["chunks_taken"] == res.manifest["throughput"]["chunks"]


def test_damaged_files_give_no_chunks_either(corpus, coded):
    _run(corpus, "cached", BOOK)
    every = len(coded)
    [entry] = _entries(corpus)
    os.unlink(corpus / "cached" / "matches.parquet")  # the entry's copy stays
    with open(entry / "matches.parquet", "r+b") as fh:
        fh.seek(100)
        fh.write(b"\x00\x01\x02")
    book = BOOK.replace("terms: [eigenaar]", "terms: [eigenaar, graag]")
    coded.clear()
    _run(corpus, "cached", book)
    assert len(coded) == every
    _same_as_fresh(corpus, book)


def test_an_entry_pruned_during_a_run_still_gives_its_chunks(corpus, coded, monkeypatch):
    from pipeline.coded_files import CodedFiles

    _run(corpus, "cached", BOOK)
    original = CodedFiles.slices

    def then_prune(self, *args):
        got = original(self, *args)
        for path, _, _ in self.near:  # as a run storing a fifth state would
            shutil.rmtree(path)
        return got

    monkeypatch.setattr(CodedFiles, "slices", then_prune)
    book = BOOK.replace("terms: [eigenaar]", "terms: [eigenaar, graag]")
    res = _run(corpus, "cached", book)
    assert 0 < res.manifest["throughput"]["chunks_taken"]
    _same_as_fresh(corpus, book)


def test_inputs_given_by_another_path_take_the_stored_work(corpus, coded, monkeypatch):
    """``raw`` from the project folder, then the same folder by its absolute path (a
    notebook's ``../raw``, a moved project): every entry is taken, and the error
    messages name the files as this run was given them."""
    from pipeline.runner import RunOptions, code_corpus

    def run(inputs, out, book, **kw):
        (corpus / "codebook.yaml").write_text(book)
        return code_corpus(inputs, codebook=corpus / "codebook.yaml", out_dir=corpus / out,
                           options=RunOptions(progress=False, chunk_bytes=400, **kw))

    monkeypatch.chdir(corpus)
    run([Path("raw")], "cached", BOOK)
    assert "raw/broken.docx: not a valid" in (corpus / "cached" / "errors.csv").read_text()
    coded.clear()
    res = run([corpus / "raw"], "cached", BOOK)
    assert res.manifest["throughput"]["coded_files_taken"] and not coded
    errors = (corpus / "cached" / "errors.csv").read_text()
    assert f"{corpus / 'raw' / 'broken.docx'}: not a valid" in errors
    _same_as_fresh(corpus, BOOK)  # (a run of the absolute path)
    # an addition found in a few chunks: the others taken, the rest matched from entries
    # (then, by any path, the files that run stored are taken whole)
    edited = BOOK.replace("terms: [eigenaar]", "terms: [eigenaar, graag]")
    for k, inputs in enumerate([[Path("raw")], [corpus / "raw"], [Path("..") / corpus.name / "raw"]]):
        coded.clear()
        res = run(inputs, "cached", edited)
        taken = res.manifest["throughput"]["chunks_taken"]
        assert 0 < taken < res.manifest["throughput"]["chunks"] if k == 0 else not coded
        assert res.manifest["stage_times_s"]["segment"] == 0.0  # nothing read again
        run(inputs, "fresh", edited, cache=False)
        assert _digest(corpus / "cached") == _digest(corpus / "fresh")
    assert len(list((corpus / "cached" / ".cache" / "chunks-v2").glob("*/*"))) == \
        res.manifest["throughput"]["chunks"]  # one entry per chunk, whatever the paths


def _date_back(paths):
    then = __import__("time").time_ns() - 3600 * 10**9
    for path in paths:
        os.utime(path, ns=(then, then))


def test_unchanged_inputs_and_entries_are_not_read_again(corpus, monkeypatch):
    """The digest memo (``digest_memo``): inputs and entries hashed once they are old
    enough, then not read for the keys and checks; a changed entry is still a miss."""
    from pipeline import digest_memo

    inputs = sorted((corpus / "raw").iterdir())
    _date_back(inputs)  # written long before the run
    inputs = [p for p in inputs if p.name != "metadata.csv"]  # read as a table, not hashed
    read: list[str] = []
    original = digest_memo.hash_file
    monkeypatch.setattr(digest_memo, "hash_file",
                        lambda path: read.append(Path(path).name) or original(path))
    _run(corpus, "cached", BOOK)
    assert {p.name for p in inputs} <= set(read)
    cache = corpus / "cached" / ".cache"
    stored = [p for sub in ("tables-v1", SUBDIR) for p in (cache / sub).rglob("*")
              if p.is_file() and p.name != "meta.json"]
    assert len(stored) == 6
    _date_back(stored)  # as if the next run came a while later
    read.clear()
    _run(corpus, "cached", BOOK)  # the entries are checked by reading them, once
    assert not {p.name for p in inputs} & set(read)
    assert sum(name.endswith(".staged") and not name.startswith("errors") for name in read) == 6
    read.clear()
    res = _run(corpus, "cached", BOOK)
    assert read == ["errors.csv.staged"]  # the one output the run wrote
    assert res.manifest["throughput"]["coded_files_taken"]
    _same_as_fresh(corpus, BOOK)
    # an entry changed in place (same size, a new time) is a miss: coded again
    entry = next(p for p in stored if p.name == "codings.csv")
    data = bytearray(entry.read_bytes())
    data[-2] ^= 1
    os.unlink(corpus / "cached" / "codings.csv")  # the output, a link to it
    entry.write_bytes(bytes(data))
    read.clear()
    res = _run(corpus, "cached", BOOK)
    assert "codings.csv.staged" in read
    assert not res.manifest["throughput"]["coded_files_taken"]
    _same_as_fresh(corpus, BOOK)


def test_a_light_entry_gone_when_its_ids_are_needed_is_a_clear_error(corpus):
    from pipeline.chunk import ChunkTask
    from pipeline.errors import InputError
    from pipeline.run_stream import _stored_segments

    _run(corpus, "cached", BOOK)
    task = ChunkTask(0, [(0, str(corpus / "raw" / "int01.txt"), "int01.txt")])
    with pytest.raises(InputError, match=r"int01\.txt.*cache entry of this file went away"):
        _stored_segments(str(corpus / "cached" / ".cache"), "0" * 64, task)
