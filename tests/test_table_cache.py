"""The table cache: unchanged inputs reuse the finished segments/documents files."""
import pytest

import pipeline.chunk as chunk
from pipeline.errors import InputError
from pipeline.parts import PartWriter
from pipeline.table_cache import FILES, SUBDIR, tables_key
from test_match_cache import BOOK, _digest, _run, _same_as_cold
from test_streaming import make_corpus

# the per-chunk caches at work: stored coding files are not taken (coded_files)
pytestmark = pytest.mark.usefixtures("no_coded_files")


@pytest.fixture
def corpus(tmp_path):
    make_corpus(tmp_path / "raw")
    return tmp_path


@pytest.fixture
def finalized(monkeypatch):
    """Table names ``PartWriter.finalize`` merged during a run."""
    names: list[str] = []
    original = PartWriter.finalize

    def spy(self, name, *args, **kw):
        names.append(name)
        return original(self, name, *args, **kw)

    monkeypatch.setattr(PartWriter, "finalize", spy)
    return names


def _entries(out):
    return sorted(p for p in (out / ".cache" / SUBDIR).glob("*/*") if not p.name.startswith("."))


def test_warm_run_copies_the_tables_and_equals_cold_run(corpus, finalized):
    _run(corpus, "cached", BOOK)
    assert finalized == ["documents", "segments", "codings", "matches"]
    [entry] = _entries(corpus / "cached")
    assert sorted(p.name for p in entry.iterdir()) == sorted([*FILES, "meta.json"])
    edited = BOOK.replace('phrases: ["zelf invullen"]', 'phrases: ["zelf invullen", "zelf"]')
    finalized.clear()
    _run(corpus, "cached", edited)  # a codebook edit keeps the key
    assert finalized == ["codings", "matches"]
    assert _entries(corpus / "cached") == [entry]
    _same_as_cold(corpus, edited)
    finalized.clear()
    _run(corpus, "cached", edited, jobs=2)
    assert finalized == ["codings", "matches"]
    _same_as_cold(corpus, edited)


@pytest.mark.parametrize("damage", ["truncate", "flip", "delete", "meta"])
def test_damaged_entry_is_a_miss(corpus, finalized, damage):
    _run(corpus, "cached", BOOK)
    [entry] = _entries(corpus / "cached")
    target = entry / FILES[-1]
    data = target.read_bytes()
    if damage == "truncate":
        target.write_bytes(data[: len(data) // 2])
    elif damage == "flip":
        target.write_bytes(data[:-2] + bytes([data[-2] ^ 1]) + data[-1:])
    elif damage == "delete":
        target.unlink()
    else:
        (entry / "meta.json").write_text("{", encoding="utf-8")
    finalized.clear()
    _run(corpus, "cached", BOOK)
    assert finalized == ["documents", "segments", "codings", "matches"]
    _same_as_cold(corpus, BOOK)
    assert not [p for p in (corpus / "cached").rglob("*.staged")]  # no copy left behind
    # the damaged entry was replaced by a good one: the next run is a hit again
    [entry] = _entries(corpus / "cached")
    assert (entry / "meta.json").exists() and (entry / FILES[-1]).read_bytes() == data
    finalized.clear()
    _run(corpus, "cached", BOOK)
    assert "segments" not in finalized and "documents" not in finalized
    _same_as_cold(corpus, BOOK)


def test_changed_input_gives_another_key(corpus, finalized):
    _run(corpus, "cached", BOOK)
    path = corpus / "raw" / "int03.txt"
    path.write_text(path.read_text(encoding="utf-8").replace("elf", "ELF", 1), encoding="utf-8")
    finalized.clear()
    _run(corpus, "cached", BOOK)
    assert "segments" in finalized
    assert len(_entries(corpus / "cached")) == 2
    _same_as_cold(corpus, BOOK)


def test_no_key_without_every_chunk_key():
    assert tables_key([]) is None
    assert tables_key(["a", None]) is None
    assert tables_key(["a", "b"]) != tables_key(["b", "a"])


def test_input_changed_during_a_run_is_an_error(corpus, monkeypatch):
    import shutil

    from pipeline.chunk_cache import SUBDIR as CHUNKS

    _run(corpus, "cached", BOOK)
    shutil.rmtree(corpus / "cached" / ".cache" / CHUNKS)  # the chunks are read again
    original = chunk._read_and_segment
    path = corpus / "raw" / "int03.txt"

    def edit_first(task, *args):
        if any(p == str(path) for _, p, _ in task.files):
            path.write_text(path.read_text(encoding="utf-8") + "R: nieuw\n", encoding="utf-8")
        return original(task, *args)

    monkeypatch.setattr(chunk, "_read_and_segment", edit_first)
    before = _digest(corpus / "cached")
    with pytest.raises(InputError, match="changed while the run"):
        _run(corpus, "cached", BOOK)
    assert _digest(corpus / "cached") == before  # the folder is left as it was


def test_warm_outputs_are_links_and_an_edited_output_is_a_miss(corpus, finalized):
    _run(corpus, "cached", BOOK)
    [entry] = _entries(corpus / "cached")
    _run(corpus, "cached", BOOK)
    out = corpus / "cached" / FILES[-1]
    assert out.samefile(entry / FILES[-1])  # linked, not copied
    out.write_bytes(out.read_bytes() + b"edited by hand\n")  # in place: the entry too
    finalized.clear()
    _run(corpus, "cached", BOOK)
    assert finalized == ["documents", "segments", "codings", "matches"]
    _same_as_cold(corpus, BOOK)


def test_a_warm_run_records_the_checked_digests_of_the_cached_files(corpus):
    import hashlib
    import json

    _run(corpus, "cached", BOOK)
    edited = BOOK.replace('phrases: ["zelf invullen"]', 'phrases: ["zelf invullen", "zelf"]')
    _run(corpus, "cached", edited)
    out = corpus / "cached"
    outputs = json.loads((out / "manifest.json").read_text())["outputs"]
    for name in FILES:
        assert outputs[name] == hashlib.sha256((out / name).read_bytes()).hexdigest()


def test_a_cold_run_records_the_digests_of_the_files_it_stored(corpus, monkeypatch):
    import hashlib
    import json

    import pipeline.store as store

    hashed = []
    original = store.file_digests

    def spy(paths, *args, **kw):
        hashed.extend(p.name for p in paths)
        return original(paths, *args, **kw)

    monkeypatch.setattr(store, "file_digests", spy)
    _run(corpus, "cached", BOOK)
    assert _entries(corpus / "cached")  # stored: the tables' files were hashed then
    # once each (the stored links), not again for the manifest
    assert sorted(n for n in hashed if any(n.startswith(f) for f in FILES)) == sorted(FILES)
    out = corpus / "cached"
    outputs = json.loads((out / "manifest.json").read_text())["outputs"]
    for name in FILES:
        assert outputs[name] == hashlib.sha256((out / name).read_bytes()).hexdigest()


@pytest.mark.parametrize("linked", [True, False])
def test_stored_files_are_links_to_the_outputs_or_copies(corpus, monkeypatch, linked):
    import hashlib
    import os

    import pipeline.table_cache as table_cache

    if not linked:  # another file system: os.link fails, the files are copied
        def no_link(*args):
            raise OSError("cross-device link")

        monkeypatch.setattr(table_cache.os, "link", no_link)
    _run(corpus, "cached", BOOK)
    (entry,) = _entries(corpus / "cached")
    for name in FILES:
        stored, output = entry / name, corpus / "cached" / name
        assert stored.read_bytes() == output.read_bytes()
        assert os.path.samefile(stored, output) is linked
    monkeypatch.undo()
    again = _run(corpus, "cached", BOOK)  # the entry is found and checked
    assert again.manifest["outputs"]["segments.csv"] == hashlib.sha256(
        (corpus / "cached" / "segments.csv").read_bytes()).hexdigest()
