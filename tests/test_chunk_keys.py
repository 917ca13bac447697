"""Chunk-cache keys and entries moved to another run's paths (``pipeline.chunk_keys``)."""
from pipeline import chunk_keys
from pipeline.chunk_cache import ChunkEntry
from pipeline.chunk_keys import chunk_key, relocated


def test_chunk_key_follows_files_settings_and_code(tmp_path, monkeypatch):
    path = tmp_path / "a.txt"
    path.write_text("R: zelf", encoding="utf-8")
    files = [(0, str(path), "a.txt")]
    key = chunk_key(files, {"unit": "turn"})
    assert key == chunk_key(list(files), {"unit": "turn"})
    assert key != chunk_key(files, {"unit": "sentence"})
    assert key == chunk_key([(1, str(path), "a.txt")], {"unit": "turn"})  # not its position
    path.write_text("R: zelF", encoding="utf-8")
    assert key != chunk_key(files, {"unit": "turn"})
    path.write_text("R: zelf", encoding="utf-8")
    monkeypatch.setattr(chunk_keys, "_source_digest", lambda: "edited code")
    assert key != chunk_key(files, {"unit": "turn"})
    assert chunk_key([(0, str(tmp_path / "gone.txt"), "gone.txt")], {}) is None


def test_a_file_in_an_input_folder_is_keyed_by_its_path_below_it(tmp_path, monkeypatch):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "a.txt").write_text("R: zelf", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    relative = chunk_key([(0, "raw/a.txt", "a.txt")], {})
    assert relative == chunk_key([(0, str(raw / "a.txt"), "a.txt")], {})
    assert relative != chunk_key([(0, "raw/a.txt", "raw/a.txt")], {})  # named by itself
    # a file named by itself is shown, and keyed, as given
    assert chunk_key([(0, "raw/a.txt", "raw/a.txt")], {}) != \
        chunk_key([(0, str(raw / "a.txt"), str(raw / "a.txt"))], {})


def test_relocated_moves_the_paths_messages_start_with():
    def entry(*rows):
        rows = [{"file": f, "message": m, "_order": (0, 0)} for f, m in rows]
        return ChunkEntry(None, None, rows, [], [], {}, {}, {}, [],
                          ["raw/a.csv", "raw/b.txt", "raw/metadata.csv"])

    given = ["/p/raw/a.csv", "/p/raw/b.txt", "/p/raw/metadata.csv"]
    moved = relocated(entry(("a.csv", "raw/a.csv, line 3: malformed CSV"),
                            ("b.txt", "raw/b.txt: empty file"),
                            ("b.txt", "language of b detected as en (no metadata)"),
                            ("b.txt", "no metadata for doc_id 'b' in raw/metadata.csv"),
                            ("raw/metadata.csv", "raw/metadata.csv: column 'text' is reserved")),
                      given)
    assert [(row["file"], row["message"]) for row in moved.errors] == [
        ("a.csv", "/p/raw/a.csv, line 3: malformed CSV"), ("b.txt", "/p/raw/b.txt: empty file"),
        ("b.txt", "language of b detected as en (no metadata)"),
        ("b.txt", "no metadata for doc_id 'b' in /p/raw/metadata.csv"),
        ("/p/raw/metadata.csv", "/p/raw/metadata.csv: column 'text' is reserved")]
    assert moved.given == given
    same = entry(("a.csv", "raw/a.csv: empty file"))
    assert relocated(same, ["raw/a.csv", "raw/b.txt", "raw/metadata.csv"]) is same
    # an old path elsewhere in a message cannot be moved safely: a miss
    assert relocated(entry(("b.txt", "x: see raw/b.txt")), given) is None
    assert relocated(entry(("b.txt", "raw/metadata.csv lists b")), given) is None
    assert relocated(entry(), given[1:]) is None


def test_a_chunk_key_leaves_out_the_files_positions_and_relocated_moves_them(tmp_path):
    (tmp_path / "a.txt").write_text("R: zelf", encoding="utf-8")
    (tmp_path / "b.txt").write_text("R: samen", encoding="utf-8")
    files = [(3, str(tmp_path / "a.txt"), "a.txt"), (4, str(tmp_path / "b.txt"), "b.txt")]
    later = [(7, path, shown) for _, path, shown in files[:1]] + [(9, *files[1][1:])]
    assert chunk_key(files, {}) == chunk_key(later, {})  # files added before the chunk
    assert chunk_key(files, {}) != chunk_key(files[::-1], {})  # but their order counts
    given = [path for _, path, _ in files] + ["metadata.csv"]
    rows = [{"file": "a.txt", "message": "m", "_order": (0, 3)},
            {"file": "b.txt", "message": "n", "_order": (4, 4)},
            {"file": "x", "message": "o", "_order": (2, -1)}]
    entry = ChunkEntry(None, None, rows, [], [], {}, {}, {}, [], given, [3, 4])
    moved = relocated(entry, given, [7, 9])
    assert [row["_order"] for row in moved.errors] == [(0, 7), (4, 9), (2, -1)]
    assert moved.positions == [7, 9]
    assert relocated(ChunkEntry(None, None, rows, [], [], {}, {}, {}, [], given, [3]),
                     given, [7, 9]) is None  # positions it does not know: a miss
