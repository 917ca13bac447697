"""``csv_keys.SharedKeys``: the shared CSV ids found on a thread, given to CSV chunks only."""
import pytest

from pipeline import csv_keys
from pipeline.chunk import ChunkTask
from pipeline.runner import RunOptions


def test_shared_keys_thread_gives_csv_tasks_the_ids_and_raises_its_error(tmp_path, monkeypatch):
    a = tmp_path / "a.csv"
    a.write_text("id,text\n1,Een.\n2,Twee.\n", encoding="utf-8")
    b = tmp_path / "b.CSV"
    b.write_text("id,text\n1,Een.\n3,Drie.\n", encoding="utf-8")
    t = tmp_path / "t.txt"
    t.write_text("I: Vraag?\nR: Antwoord.\n", encoding="utf-8")
    prepare = csv_keys.SharedKeys([a, b, t], RunOptions())
    txt, csv = ChunkTask(0, [(2, str(t), "t.txt")]), ChunkTask(1, [(0, str(a), "a.csv"),
                                                                   (1, str(b), "b.CSV")])
    prepare(txt)
    prepare(csv)
    assert txt.shared_keys is None and csv.shared_keys == frozenset({"1"})

    def broken(*args):
        raise OSError("disk gone")

    monkeypatch.setattr(csv_keys, "shared_keys", broken)
    prepare = csv_keys.SharedKeys([a, b, t], RunOptions())
    prepare(ChunkTask(0, [(2, str(t), "t.txt")]))  # no CSV: does not wait for the ids
    with pytest.raises(OSError, match="disk gone"):
        prepare(ChunkTask(1, [(0, str(a), "a.csv")]))
