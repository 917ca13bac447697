"""The memo of file digests kept across runs (``pipeline/digest_memo.py``)."""
from __future__ import annotations

import hashlib
import os
import time

import pytest

from pipeline import digest_memo
from pipeline.digest_memo import FILE, RACY_NS, DigestMemo, _encode, _read, hash_file
from pipeline.store import file_digests

HOUR_NS = 3600 * 10**9


def _old(path, content: bytes) -> None:
    """Write ``content`` and date the file an hour back (written long before it is hashed)."""
    path.write_bytes(content)
    then = time.time_ns() - HOUR_NS
    os.utime(path, ns=(then, then))


def _sha(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def _counting(monkeypatch) -> list[str]:
    """Names of the files ``hash_file`` reads from now on."""
    read: list[str] = []
    original = digest_memo.hash_file

    def spy(path):
        read.append(os.path.basename(path))
        return original(path)

    monkeypatch.setattr(digest_memo, "hash_file", spy)
    return read


def test_a_digest_is_remembered_across_runs_and_the_file_not_read_again(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    files = [tmp_path / "a.txt", tmp_path / "b.txt"]
    for k, path in enumerate(files):
        _old(path, f"interview {k}\n".encode() * 100)
    first = DigestMemo(cache)
    assert file_digests(files, memo=first) == [_sha(p.read_bytes()) for p in files]
    first.save()
    assert len(_read(cache / FILE)) == 2
    read = _counting(monkeypatch)
    second = DigestMemo(cache)  # a later run
    assert file_digests(files, memo=second) == [_sha(p.read_bytes()) for p in files]
    assert read == []
    assert file_digests(files) == [_sha(p.read_bytes()) for p in files]  # no memo: read
    assert read == ["a.txt", "b.txt"]


def _remembered(tmp_path):
    """An old file whose digest a run remembered (and saved)."""
    path = tmp_path / "a.txt"
    _old(path, b"de leraar kiest zelf\n")
    memo = DigestMemo(tmp_path / "cache")
    file_digests([path], memo=memo)
    memo.save()
    return path


def test_a_file_written_since_is_hashed_again(tmp_path, monkeypatch):
    path = _remembered(tmp_path)
    path.write_bytes(b"de leraar kiest niet\n")  # same size, a new modification time
    read = _counting(monkeypatch)
    assert file_digests([path], memo=DigestMemo(tmp_path / "cache")) == [_sha(path.read_bytes())]
    assert read == ["a.txt"]


def test_an_input_whose_time_was_set_back_is_hashed_again_an_entry_is_not(tmp_path, monkeypatch):
    path = _remembered(tmp_path)
    old = os.stat(path)
    time.sleep(0.01)
    path.write_bytes(b"de leraar kiest niet\n")
    os.utime(path, ns=(old.st_atime_ns, old.st_mtime_ns))  # as ``cp -p`` or ``touch -d`` do
    read = _counting(monkeypatch)
    later = DigestMemo(tmp_path / "cache")
    # an input is held to its change time too, which no program sets back
    assert later.lookup(path) is None
    assert file_digests([path], memo=later) == [_sha(b"de leraar kiest niet\n")]
    assert read == ["a.txt"]
    # a cache entry only to its size and modification time (a run's links change the other)
    entry = tmp_path / "entry.parquet"
    _old(entry, b"PAR1 rows PAR1")
    file_digests([entry], memo=later)
    os.link(entry, tmp_path / "linked.parquet")  # a new change time
    assert later.lookup(entry, ctime=False) == _sha(b"PAR1 rows PAR1")
    assert later.lookup(entry) is None


def test_a_file_written_just_before_it_was_hashed_is_not_remembered(tmp_path, monkeypatch):
    fresh, old = tmp_path / "fresh.txt", tmp_path / "old.txt"
    fresh.write_bytes(b"net geschreven\n")
    _old(old, b"lang geleden\n")
    memo = DigestMemo(tmp_path / "cache")
    file_digests([fresh, old], memo=memo)
    assert memo.lookup(fresh) is None and memo.lookup(old) == _sha(b"lang geleden\n")
    memo.save()
    # the margin: a later write in the same tick of the clock would keep the time
    now = time.time_ns()
    os.utime(fresh, ns=(now - RACY_NS // 2, now - RACY_NS // 2))
    memo = DigestMemo(tmp_path / "cache")
    file_digests([fresh], memo=memo)
    assert memo.lookup(fresh) is None
    assert sorted(_read(tmp_path / "cache" / FILE)) == \
        [f"{os.stat(old).st_dev}:{os.stat(old).st_ino}"]


def test_a_file_changed_while_it_was_hashed_is_not_remembered(tmp_path, monkeypatch):
    path = tmp_path / "a.txt"
    _old(path, b"x" * (3 << 20))  # more than one block
    original_read = digest_memo._BLOCK
    calls = []

    class Growing:
        """A file object that appends to the file after its first block is read."""

        def __init__(self, fh):
            self.fh = fh

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

        def fileno(self):
            return self.fh.fileno()

        def read(self, n):
            block = self.fh.read(n)
            if not calls:
                calls.append(n)
                with open(path, "ab") as out:
                    out.write(b"more\n")
            return block

    real_open = open
    monkeypatch.setattr(digest_memo, "open", lambda p, mode="r": Growing(real_open(p, mode)),
                        raising=False)
    memo = DigestMemo(tmp_path / "cache")
    file_digests([path], memo=memo)
    assert calls == [original_read]
    assert memo.lookup(path) is None
    memo.save()
    assert not (tmp_path / "cache" / FILE).exists()  # nothing to write


def test_runs_sharing_a_cache_keep_each_others_records(tmp_path):
    cache = tmp_path / "cache"
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    _old(a, b"eerste\n")
    _old(b, b"tweede\n")
    one, two = DigestMemo(cache), DigestMemo(cache)  # loaded before either saved
    file_digests([a], memo=one)
    file_digests([b], memo=two)
    one.save()
    time.sleep(0.01)
    two.save()
    later = DigestMemo(cache)
    assert later.lookup(a) == _sha(b"eerste\n") and later.lookup(b) == _sha(b"tweede\n")


@pytest.mark.parametrize("content", [b"{", _encode([1, 2]), _encode({"1:2": [1, 2, 3]}),
                                     _encode({"1:2": "x"}), b'{"1:2": [1, 2, 3, "ab"]}'])
def test_a_damaged_memo_is_started_again(tmp_path, content):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / FILE).write_bytes(content)
    path = tmp_path / "a.txt"
    _old(path, b"inhoud\n")
    memo = DigestMemo(cache)
    assert memo.lookup(path) is None
    assert file_digests([path], memo=memo) == [_sha(b"inhoud\n")]
    memo.save()
    assert DigestMemo(cache).lookup(path) == _sha(b"inhoud\n")


def test_a_memo_changed_by_one_byte_gives_no_digest(tmp_path):
    cache = tmp_path / "cache"
    path = tmp_path / "a.txt"
    _old(path, b"inhoud\n")
    memo = DigestMemo(cache)
    file_digests([path], memo=memo)
    memo.save()
    data = (cache / FILE).read_bytes()
    at = data.index(_sha(b"inhoud\n").encode()) + 10  # a digit of the record's digest
    damaged = data[:at] + (b"0" if data[at:at + 1] != b"0" else b"1") + data[at + 1:]
    (cache / FILE).write_bytes(damaged)
    assert DigestMemo(cache).lookup(path) is None


def test_a_wrong_record_of_another_file_is_not_taken(tmp_path):
    """A record is the file's only if size and times match: an inode reused by a new file
    (here: a record written by hand for it, with another size) is hashed."""
    cache = tmp_path / "cache"
    cache.mkdir()
    path = tmp_path / "a.txt"
    _old(path, b"inhoud\n")
    st = os.stat(path)
    record = [st.st_size + 1, st.st_mtime_ns, st.st_ctime_ns, "0" * 64]
    (cache / FILE).write_bytes(_encode({f"{st.st_dev}:{st.st_ino}": record}))
    assert DigestMemo(cache).lookup(path) is None
    record[0] -= 1
    (cache / FILE).write_bytes(_encode({f"{st.st_dev}:{st.st_ino}": record}))
    assert DigestMemo(cache).lookup(path) == "0" * 64  # what the memo holds is taken


def test_no_cache_folder_no_memo(tmp_path):
    path = tmp_path / "a.txt"
    _old(path, b"inhoud\n")
    memo = DigestMemo(None)
    assert file_digests([path], memo=memo) == [_sha(b"inhoud\n")]
    assert memo.lookup(path) is None
    memo.save()  # nothing to write, nowhere
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_a_cache_that_cannot_be_written_costs_the_memo_only(tmp_path):
    cache = tmp_path / "cache"
    cache.write_text("a file, not a folder")
    path = tmp_path / "a.txt"
    _old(path, b"inhoud\n")
    memo = DigestMemo(cache)
    assert file_digests([path], memo=memo) == [_sha(b"inhoud\n")]
    memo.save()  # no error
    assert cache.read_text() == "a file, not a folder"


def test_beyond_the_limit_only_the_records_of_the_last_run_are_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(digest_memo, "LIMIT", 3)
    cache = tmp_path / "cache"
    files = [tmp_path / f"{k}.txt" for k in range(5)]
    for k, path in enumerate(files):
        _old(path, f"{k}\n".encode())
    memo = DigestMemo(cache)
    file_digests(files[:3], memo=memo)
    memo.save()
    assert len(_read(cache / FILE)) == 3
    memo = DigestMemo(cache)
    file_digests(files[2:], memo=memo)  # one known, two new: 5 records, over the limit
    memo.save()
    kept = _read(cache / FILE)
    assert sorted(kept) == sorted(f"{os.stat(p).st_dev}:{os.stat(p).st_ino}" for p in files[2:])


def test_hash_file_gives_digest_and_length(tmp_path):
    path = tmp_path / "a.bin"
    data = os.urandom((1 << 20) + 17)
    path.write_bytes(data)
    assert hash_file(path) == (_sha(data), len(data))
    with pytest.raises(OSError):
        hash_file(tmp_path / "missing.bin")
