import json
import multiprocessing as mp
import os

import pandas as pd
import pytest

from pipeline import columns as C
from pipeline.errors import InputError, LockError, UsageError
from pipeline.store import (CodedData, atomic_write_bytes, atomic_write_text, load_coded,
                            output_lock, write_coded, write_table)


def _data():
    seg = pd.DataFrame({C.SEGMENT_ID: ["a:0", "a:1"], C.DOC_ID: ["a", "a"], C.TEXT: ["x", "ë"]})
    cod = pd.DataFrame({C.SEGMENT_ID: ["a:1"], C.DOC_ID: ["a"], C.CODE_ID: ["agency"]})
    docs = pd.DataFrame({C.DOC_ID: ["a"], C.TEXT: ["x\n\në"]})
    return CodedData(documents=docs, segments=seg, codings=cod, manifest={"counts": {"x": 1}})


def test_write_and_load_round_trip(tmp_path):
    manifest = write_coded(tmp_path, _data())
    assert set(manifest["outputs"]) >= {"segments.parquet", "segments.csv", "codings.csv",
                                        "errors.csv", "matches.parquet", "documents.parquet"}
    back = load_coded(tmp_path)
    assert list(back.segments[C.TEXT]) == ["x", "ë"]
    assert list(back.codings[C.CODE_ID]) == ["agency"]
    assert back.manifest["counts"] == {"x": 1}
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_load_can_skip_the_tables_an_aggregate_does_not_need(tmp_path):
    write_coded(tmp_path, _data())
    back = load_coded(tmp_path, skip=("documents", "matches"))
    assert back.documents.empty and list(back.documents.columns) == C.DOCUMENT_COLUMNS
    assert back.matches.empty and list(back.matches.columns) == C.MATCH_COLUMNS
    assert list(back.segments[C.TEXT]) == ["x", "ë"]
    assert list(load_coded(tmp_path).documents[C.TEXT]) == ["x\n\në"]
    (tmp_path / "matches.parquet").write_bytes(b"tampered")   # skipped, but still verified
    with pytest.raises(InputError, match="matches.parquet: does not match manifest.json"):
        load_coded(tmp_path, skip=("matches",))
    with pytest.raises(UsageError, match="cannot skip codings; allowed: documents, matches"):
        load_coded(tmp_path, verify=False, skip=("codings",))


def test_load_skip_takes_a_single_table_name(tmp_path):
    write_coded(tmp_path, _data())
    assert load_coded(tmp_path, skip="matches").matches.empty
    with pytest.raises(UsageError, match="cannot skip segments; allowed"):
        load_coded(tmp_path, skip="segments")


def test_load_reads_only_the_columns_asked_for(tmp_path):
    write_coded(tmp_path, _data())
    wanted = {"segments": [C.END, C.SEGMENT_ID, "not there"], "codings": [C.CODE_ID]}
    back = load_coded(tmp_path, columns=wanted)
    assert list(back.segments.columns) == [C.SEGMENT_ID]   # the file's order; END not in it
    assert list(back.codings.columns) == [C.CODE_ID]
    assert list(back.documents[C.TEXT]) == ["x\n\në"]         # tables not named: whole
    for name in ("segments.parquet", "codings.parquet"):   # the CSV files when no Parquet
        (tmp_path / name).unlink()
    back = load_coded(tmp_path, verify=False, columns=wanted)
    assert list(back.segments.columns) == [C.SEGMENT_ID]
    assert list(back.codings[C.CODE_ID]) == ["agency"]


def test_a_missing_output_is_reported_before_reading(tmp_path):
    write_coded(tmp_path, _data())
    (tmp_path / "segments.csv").unlink()
    with pytest.raises(InputError, match="segments.csv: does not match manifest.json"):
        load_coded(tmp_path)


def test_reviews_file_is_left_alone(tmp_path):
    reviews = tmp_path / C.REVIEWS_FILE
    reviews.write_bytes(b"coder,decision\nanja,accept\n")
    write_coded(tmp_path, _data())
    assert reviews.read_bytes() == b"coder,decision\nanja,accept\n"


def test_edited_output_is_detected(tmp_path):
    write_coded(tmp_path, _data())
    (tmp_path / "codings.csv").write_text("tampered\n")
    with pytest.raises(InputError, match="codings.csv: does not match manifest.json"):
        load_coded(tmp_path)
    assert len(load_coded(tmp_path, verify=False).codings) == 1


def test_load_missing_folder_and_tables(tmp_path):
    with pytest.raises(InputError, match="coded folder not found"):
        load_coded(tmp_path / "nope")
    with pytest.raises(InputError, match="no segments.parquet or segments.csv"):
        load_coded(tmp_path)


def test_failed_writer_keeps_previous_file(tmp_path):
    target = tmp_path / "out.txt"
    atomic_write_text(target, "old")

    def broken(path):
        path.write_text("half")
        raise RuntimeError("disk full")

    from pipeline.store import atomic_write
    with pytest.raises(RuntimeError):
        atomic_write(target, broken)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_write_table_both_formats(tmp_path):
    paths = write_table(pd.DataFrame({"a": [1, 2]}), tmp_path / "m")
    assert sorted(p.name for p in paths) == ["m.csv", "m.parquet"]
    assert (tmp_path / "m.csv").read_bytes() == b"a\n1\n2\n"
    atomic_write_bytes(tmp_path / "b.bin", b"\x00\x01")
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"


def _hold_lock(folder, ready, release):
    with output_lock(folder):
        ready.set()
        release.wait(10)


def test_lock_blocks_a_second_writer_and_dies_with_its_holder(tmp_path):
    ctx = mp.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(tmp_path, ready, release))
    holder.start()
    assert ready.wait(10)
    with pytest.raises(LockError, match=r"another qcode run \(pid \d+\) is writing this folder"):
        with output_lock(tmp_path):
            pass
    holder.kill()  # SIGKILL: the OS drops the lock; a stale lock file must not block us
    holder.join()
    with output_lock(tmp_path):
        assert (tmp_path / ".qcode.lock").read_text() == f"pid {os.getpid()}"


def test_manifest_is_json(tmp_path):
    write_coded(tmp_path, _data())
    assert json.loads((tmp_path / "manifest.json").read_text())["outputs"]


def test_outputs_follow_the_umask_and_private_files_stay_private(tmp_path):
    old = os.umask(0o022)
    try:
        write_coded(tmp_path / "c", _data())
        for name in ["segments.csv", "codings.parquet", "manifest.json"]:
            assert (tmp_path / "c" / name).stat().st_mode & 0o777 == 0o644, name
        assert atomic_write_text(tmp_path / "m.txt", "x").stat().st_mode & 0o777 == 0o644
        key = atomic_write_bytes(tmp_path / "key.csv", b"k", private=True)
        assert key.stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(old)


def test_a_new_run_removes_outputs_derived_from_the_previous_codings(tmp_path):
    write_coded(tmp_path, _data())
    (tmp_path / "final_codings.csv").write_text("old reviewed coding\n")
    (tmp_path / "agreement.csv").write_text("old agreement\n")
    (tmp_path / C.REVIEWS_FILE).write_text("coder,decision\nanja,accept\n")
    write_coded(tmp_path, _data())
    assert not (tmp_path / "final_codings.csv").exists()
    assert not (tmp_path / "agreement.csv").exists()
    assert (tmp_path / C.REVIEWS_FILE).read_text() == "coder,decision\nanja,accept\n"


def test_manifest_digests_are_the_files_and_known_ones_are_not_hashed_again(tmp_path, monkeypatch):
    import hashlib

    import pipeline.store as store

    out = tmp_path / "out"
    out.mkdir()
    staged = {}
    for k, name in enumerate(["a.csv", "b.parquet", "c.csv"]):
        staged[name] = out / f".{name}.tmp"  # a run stages its files in the output folder
        staged[name].write_bytes(f"content {k}\n".encode() * (k + 1))
    real = {name: hashlib.sha256(p.read_bytes()).hexdigest() for name, p in staged.items()}
    names = sorted(staged)
    assert store.file_digests([staged[n] for n in names]) == [real[n] for n in names]
    hashed = []
    original = store._file_sha256
    monkeypatch.setattr(store, "_file_sha256", lambda p: hashed.append(p.name) or original(p))
    manifest = store.commit_staged(out, staged, {"x": 1}, {"b.parquet": real["b.parquet"]})
    assert manifest["outputs"] == real
    assert sorted(hashed) == [".a.csv.tmp", ".c.csv.tmp"]
    assert json.loads((out / "manifest.json").read_text())["outputs"] == real
    assert (out / "b.parquet").read_bytes() == b"content 1\n" * 2


class _Killed(BaseException):
    """A kill between two renames (nothing after it runs, ``finally`` aside)."""


def _interrupted_commit(tmp_path, monkeypatch):
    """An out folder with an old commit, and a new commit killed after its first rename."""
    import pipeline.store as store

    out = tmp_path / "out"
    out.mkdir()

    def stage(version: str) -> dict:
        staged = {}
        for name in ("a.csv", "b.csv", "c.csv"):
            staged[name] = out / f".{name}.{version}.staged"
            staged[name].write_text(f"{name} {version}\n")
        return staged

    store.commit_staged(out, stage("old"), {"run": "old"})
    real_replace, calls = os.replace, []

    def replace(src, dst):
        if str(dst).endswith(".csv"):
            if calls:  # the second output's rename
                raise _Killed
            calls.append(dst)
        real_replace(src, dst)

    monkeypatch.setattr(store.os, "replace", replace)
    with pytest.raises(_Killed):
        store.commit_staged(out, stage("new"), {"run": "new"})
    monkeypatch.setattr(store.os, "replace", real_replace)
    return out


def test_a_commit_killed_among_its_renames_is_finished_by_the_next_load(tmp_path, monkeypatch):
    from pipeline.store import COMMIT_JOURNAL

    out = _interrupted_commit(tmp_path, monkeypatch)
    assert (out / COMMIT_JOURNAL).exists()
    # a mix: one file new, two old, the old manifest
    assert [(out / n).read_text() for n in ("a.csv", "b.csv", "c.csv")] == \
        ["a.csv new\n", "b.csv old\n", "c.csv old\n"]
    assert json.loads((out / "manifest.json").read_text())["run"] == "old"
    assert store_outputs_match(out) is False
    from pipeline.store import finish_commit, output_lock

    with output_lock(out):  # the next run on the folder (or ``load_coded``) finishes it
        pass
    assert not (out / COMMIT_JOURNAL).exists()
    assert [(out / n).read_text() for n in ("a.csv", "b.csv", "c.csv")] == \
        ["a.csv new\n", "b.csv new\n", "c.csv new\n"]
    assert json.loads((out / "manifest.json").read_text())["run"] == "new"
    assert store_outputs_match(out)
    assert finish_commit(out) is False  # nothing left to finish
    assert not list(out.glob("*.staged"))


def store_outputs_match(out) -> bool:
    import hashlib

    outputs = json.loads((out / "manifest.json").read_text())["outputs"]
    return all(hashlib.sha256((out / n).read_bytes()).hexdigest() == d for n, d in outputs.items())


@pytest.mark.parametrize(("journal", "message"), [
    ("{not json", "cannot be read"),
    ('{"renames": [[".x.staged", "../escape.csv"]], "manifest": "{}"}', "not a commit journal"),
    ('{"renames": [], "manifest": 3}', "not a commit journal"),
    # staged files lie in the output folder: a journal must not move other files in
    ('{"renames": [["../elsewhere.csv", "codings.csv"]], "manifest": "{}"}', "not a commit journal"),
    ('{"renames": [["/etc/passwd", "codings.csv"]], "manifest": "{}"}', "not a commit journal"),
])
def test_a_damaged_commit_journal_is_a_clear_error(tmp_path, journal, message):
    from pipeline.errors import InputError
    from pipeline.store import COMMIT_JOURNAL, output_lock

    out = tmp_path / "out"
    out.mkdir()
    (out / COMMIT_JOURNAL).write_text(journal)
    with pytest.raises(InputError, match=rf"\.qcode-commit\.json.*{message}"):
        with output_lock(out):
            pass


def test_load_coded_finishes_a_killed_commit_before_reading(tmp_path, monkeypatch):
    from pipeline.store import COMMIT_JOURNAL

    out = _interrupted_commit(tmp_path, monkeypatch)
    with pytest.raises(InputError, match="run 'qcode code' first"):  # no tables here
        load_coded(out)
    assert not (out / COMMIT_JOURNAL).exists()
    assert json.loads((out / "manifest.json").read_text())["run"] == "new"
    assert store_outputs_match(out)
