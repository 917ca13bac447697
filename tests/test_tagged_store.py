"""Tagged cache entries: rows reused unit by unit, deltas, compaction, damage."""
import pandas as pd

from pipeline import columns as C
from pipeline.tagged_store import MAX_FILES, TaggedEntry

COLUMNS = ["unit", "value"]


def _rows(entry, values):
    """A frame of (unit, value) rows with the entry's unit ids."""
    frame = pd.DataFrame(values, columns=COLUMNS)
    return frame.assign(**{C.CACHE_UNIT: [entry.unit_id(u) for u in frame["unit"]]})


def _load(folder, digests):
    entry = TaggedEntry(folder, COLUMNS)
    rows, units = entry.load(digests)
    got = sorted(map(tuple, rows[COLUMNS].itertuples(index=False))) if rows is not None else []
    return entry, got, units


def _files(folder):
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


def test_units_are_reused_by_digest_and_edits_add_small_files(tmp_path):
    folder = tmp_path / "entry"
    digests = {"a": "1", "b": "1", "empty": "1"}
    entry, got, units = _load(folder, digests)
    assert (got, units) == ([], set())
    entry.save(_rows(entry, [("a", 1), ("a", 2), ("b", 3)]), digests, digests)
    entry, got, units = _load(folder, digests)
    assert got == [("a", 1), ("a", 2), ("b", 3)]
    assert units == {"a", "b", "empty"}  # a unit without rows counts as cached

    edited = {**digests, "b": "2"}
    entry, got, units = _load(folder, edited)
    assert (got, units) == ([("a", 1), ("a", 2)], {"a", "empty"})
    entry.save(_rows(entry, [("b", 30)]), {"b"}, edited)
    assert len(_files(folder)) == 2  # the edit wrote a delta, the entry stayed
    assert _load(folder, edited)[1] == [("a", 1), ("a", 2), ("b", 30)]
    assert _load(folder, digests)[1] == [("a", 1), ("a", 2), ("b", 3)]  # undone: still there
    assert _load(folder, {"a": "1", "c": "1"})[2] == {"a"}  # removed and new units


def test_files_are_compacted(tmp_path):
    folder = tmp_path / "entry"
    digests = {"a": "0", "b": "0"}
    entry, _, _ = _load(folder, digests)
    entry.save(_rows(entry, [("a", 0)] * 10 + [("b", 0)]), digests, digests)
    for k in range(1, 3 * MAX_FILES):
        digests = {"a": "0", "b": str(k)}
        entry, got, _ = _load(folder, digests)
        assert got == [("a", 0)] * 10
        entry.save(_rows(entry, [("b", k)]), {"b"}, digests)
        assert len(_files(folder)) <= MAX_FILES
        assert _load(folder, digests)[1] == [("a", 0)] * 10 + [("b", k)]


def test_damaged_file_is_a_miss_and_removed(tmp_path):
    folder = tmp_path / "entry"
    digests = {"a": "1", "b": "1"}
    entry, _, _ = _load(folder, digests)
    entry.save(_rows(entry, [("a", 1)]), {"a"}, digests)
    entry, _, _ = _load(folder, digests)
    entry.save(_rows(entry, [("b", 2)]), {"b"}, digests)
    first, second = _files(folder)
    second.write_bytes(second.read_bytes()[:20])  # truncated
    entry, got, units = _load(folder, digests)
    assert (got, units) == ([("a", 1)], {"a"})
    entry.save(_rows(entry, [("b", 2)]), {"b"}, digests)
    assert second not in _files(folder) and len(_files(folder)) == 1  # compacted
    assert _load(folder, digests)[1] == [("a", 1), ("b", 2)]


def test_disabled_entry_reads_and_writes_nothing(tmp_path):
    entry = TaggedEntry(None, COLUMNS)
    assert entry.load({"a": "1"}) == (None, set())
    entry.save(_rows(entry, [("a", 1)]), {"a"}, {"a": "1"})
    assert list(tmp_path.iterdir()) == []


def test_a_flipped_byte_never_gives_wrong_rows(tmp_path):
    folder = tmp_path / "entry"
    digests = {"a": "1", "b": "1"}
    entry, _, _ = _load(folder, digests)
    rows = [("a", k) for k in range(50)] + [("b", 1000 + k) for k in range(50)]
    entry.save(_rows(entry, rows), digests, digests)
    [path] = _files(folder)
    data = path.read_bytes()
    for pos in range(0, len(data), 7):
        path.write_bytes(data[:pos] + bytes([data[pos] ^ 0x10]) + data[pos + 1:])
        _, got, units = _load(folder, digests)
        assert got == sorted(r for r in rows if r[0] in units)  # damage: a miss, never wrong
    path.write_bytes(data)
    assert _load(folder, digests)[1] == sorted(rows)


def test_stale_rows_can_be_kept_marked_and_compaction_drops_them(tmp_path):
    folder = tmp_path / "entry"
    digests = {"a": "1", "b": "1"}
    entry, _, _ = _load(folder, digests)
    entry.save(_rows(entry, [("a", 1), ("b", 2), ("a", 3)]), digests, digests)
    edited = {"a": "1", "b": "2"}
    entry = TaggedEntry(folder, COLUMNS)
    rows, units = entry.load(edited, stale=True)
    assert units == {"a"}
    # every row of the file, in file order; the stale unit's rows are marked -1
    assert rows["value"].tolist() == [1, 2, 3]
    assert (rows[C.CACHE_UNIT].to_numpy() >= 0).tolist() == [True, False, True]
    assert entry.names[rows[C.CACHE_UNIT].iloc[0]] == "a"
    # a compaction (forced: stale rows outnumber live ones) stores only live rows
    entry._stale = 10
    entry.save(_rows(entry, [("b", 20)]), {"b"}, edited)
    assert len(_files(folder)) == 1
    assert _load(folder, edited)[1] == [("a", 1), ("a", 3), ("b", 20)]


def test_replaced_names_the_stale_units_of_one_ordered_file(tmp_path):
    folder = tmp_path / "entry"
    digests = {"a": "1", "b": "1"}
    entry = TaggedEntry(folder, COLUMNS)
    entry.load(digests, stale=True)
    assert entry.replaced() is None  # nothing read
    entry.save(_rows(entry, [("a", 1), ("b", 2), ("a", 3)]), digests, digests, ordered=True)

    edited = {"a": "1", "b": "2"}
    entry = TaggedEntry(folder, COLUMNS)
    rows, units = entry.load(edited, stale=True)
    assert units == {"a"} and entry.replaced() == {"b": "1"}
    # all of the file's rows in its order; the stale ones marked
    assert rows["value"].tolist() == [1, 2, 3]
    assert (rows[C.CACHE_UNIT] < 0).tolist() == [False, True, False]
    entry.save(_rows(entry, [("b", 2)]), {"b"}, edited, ordered=True)

    entry = TaggedEntry(folder, COLUMNS)
    entry.load({"a": "1", "b": "3"}, stale=True)
    assert entry.replaced() is None  # two files read: their rows are not in one order
    entry = TaggedEntry(folder, COLUMNS)
    entry.load(edited)
    assert entry.replaced() is None  # stale rows left out


def test_replaced_needs_a_file_written_in_order(tmp_path):
    folder = tmp_path / "entry"
    digests = {"a": "1", "b": "1"}
    entry = TaggedEntry(folder, COLUMNS)
    entry.save(_rows(entry, [("a", 1), ("b", 2)]), digests, digests)  # order not promised
    entry = TaggedEntry(folder, COLUMNS)
    entry.load({"a": "1", "b": "2"}, stale=True)
    assert entry.replaced() is None


def test_arrow_table_is_from_pandas_table():
    import numpy as np
    import pyarrow as pa

    from pipeline.entry_tables import arrow_table

    binary = pd.ArrowDtype(pa.large_binary())
    frame = pd.DataFrame({
        "s": pd.array(["a", None, "é"], dtype="str"), "i": np.asarray([1, 2, 3]),
        "f": np.asarray([0.5, np.nan, 2.0]), "b": np.asarray([True, False, True]),
        "x": pd.array([b"1\n", b"", b"3"], dtype=binary), "skip": [1, 2, 3]})
    units = np.asarray([0, 1, 0], dtype=np.int32)
    columns = ["s", "i", "f", "b", "x"]
    for rows in (frame, frame.iloc[[2, 0]], frame.iloc[:0]):
        want = pa.Table.from_pandas(rows[columns].assign(**{C.CACHE_UNIT: units[:len(rows)]}),
                                    preserve_index=False)
        got = arrow_table(rows, columns, units[:len(rows)])
        assert got.equals(want) and got.schema.equals(want.schema, check_metadata=True)
        assert got.to_pandas().equals(want.to_pandas())
    # an object column: from_pandas as before
    mixed = frame.assign(o=pd.Series(["a", "b", None], dtype=object))
    want = pa.Table.from_pandas(mixed[["o", "i"]].assign(**{C.CACHE_UNIT: units}),
                                preserve_index=False)
    assert arrow_table(mixed, ["o", "i"], units).equals(want)


def test_save_with_a_mask_stores_those_rows(tmp_path):
    import numpy as np

    digests = {"a": "1", "b": "1"}
    entry, _, _ = _load(tmp_path / "one", digests)
    rows = _rows(entry, [("a", 1), ("b", 2), ("a", 3)])
    assert not entry.compacts(len(rows))
    entry.save(rows, digests, digests, keep=np.asarray([True, False, True]))
    _, got, units = _load(tmp_path / "one", digests)
    assert got == [("a", 1), ("a", 3)] and units == {"a", "b"}
    # the mask's rows are checked against the tagged units, as a frame's are
    entry, _, _ = _load(tmp_path / "two", digests)
    rows = _rows(entry, [("a", 1), ("b", 2)])
    entry.save(rows, {"a"}, digests, keep=np.asarray([True, False]))
    assert _load(tmp_path / "two", digests)[1:] == ([("a", 1)], {"a"})
    entry, _, _ = _load(tmp_path / "three", digests)
    rows = _rows(entry, [("a", 1), ("b", 2)])
    entry.save(rows, {"a"}, digests, keep=np.asarray([True, True]))  # b is not tagged
    assert _load(tmp_path / "three", digests)[1:] == ([], set())


def test_take_rows_is_frame_take():
    import numpy as np
    import pyarrow as pa

    from pipeline.entry_tables import take_rows

    frame = pd.DataFrame({
        "s": pd.array(["a", None, "é", "d"], dtype="str"),
        "n": pd.array(["a", None, "b", "c"], dtype="string[pyarrow]"),
        "i": np.asarray([1, 2, 3, 4]), "f": np.asarray([0.5, np.nan, 2.0, 1.0]),
        "x": pd.array([b"1\n", b"", b"3", b"4"], dtype=pd.ArrowDtype(pa.large_binary())),
        "o": pd.Series(["a", 1, None, "b"], dtype=object)}, index=[5, 6, 7, 8])
    for order in ([3, 1, 0], [], [2, 2, 0, 1, 3]):
        want = frame.take(order).reset_index(drop=True)
        got = take_rows(frame, np.asarray(order, dtype=np.int64))
        assert got.equals(want) and got.columns.equals(want.columns)
        assert list(got.dtypes) == list(want.dtypes) and got.index.equals(want.index)
    chunked = pd.concat([frame, frame], ignore_index=True)  # two Arrow chunks a column
    order = np.asarray([7, 0, 4, 3])
    assert take_rows(chunked, order).equals(chunked.take(order).reset_index(drop=True))


def test_in_order_when_the_rows_come_from_one_ordered_file(tmp_path):
    folder = tmp_path / "entry"
    digests = {"a": "1", "b": "1"}
    entry, _, _ = _load(folder, digests)
    entry.save(_rows(entry, [("a", 1), ("b", 2)]), digests, digests, ordered=True)
    entry = TaggedEntry(folder, COLUMNS)
    entry.load(digests, stale=True)
    assert entry.in_order()
    edited = {**digests, "b": "2"}
    entry = TaggedEntry(folder, COLUMNS)
    entry.load(edited, stale=True)
    assert entry.in_order()  # some rows of the ordered file, in its order
    entry.save(_rows(entry, [("b", 20)]), {"b"}, edited)  # a delta, not in output order
    entry = TaggedEntry(folder, COLUMNS)
    entry.load(edited)
    assert not entry.in_order()  # rows of two files
    entry = TaggedEntry(folder, COLUMNS)
    entry.load(digests)
    assert entry.in_order()  # undone: the delta's unit is not wanted, one file gives all
    assert not TaggedEntry(tmp_path / "none", COLUMNS).in_order()


def test_entry_files_are_zstd_arrow_ipc_and_frames_equal_pandas_metadata_ones(tmp_path):
    import pyarrow as pa

    from pipeline.entry_tables import SUFFIX, _arrow_binary, _frame, read_table

    columns = ["unit", "value", "score", "line"]
    folder = tmp_path / "entry"
    entry = TaggedEntry(folder, columns)
    frame = pd.DataFrame({"unit": ["a", "a", "b"], "value": [1, 2, 3],
                          "score": [0.5, float("nan"), 1.0]})
    frame["line"] = pd.Series(pd.arrays.ArrowExtensionArray(
        pa.array([b"x\n", b"y\n", b"z\n"], type=pa.large_binary())))
    frame[C.CACHE_UNIT] = [entry.unit_id(u) for u in frame["unit"]]
    digests = {"a": "1", "b": "1"}
    entry.save(frame, digests, digests)
    (path,) = _files(folder)
    assert path.suffix == SUFFIX == ".arrow"
    data = path.read_bytes()
    assert data[:6] == b"ARROW1"  # the IPC file format's magic
    # compressed buffers: repetitive rows take a fraction of their plain IPC size
    from pipeline.entry_tables import table_bytes

    many = pa.table({"line": pa.array([b"the same CSV line\n"] * 10_000, pa.large_binary())})
    plain_ipc = pa.BufferOutputStream()
    with pa.ipc.new_file(plain_ipc, many.schema) as writer:
        writer.write_table(many)
    assert len(table_bytes(many)) * 10 < len(plain_ipc.getvalue())
    assert read_table(table_bytes(many)).equals(many)
    table = read_table(data)
    assert table.column(C.CACHE_UNIT).to_pylist() == [0, 0, 1]
    plain, with_meta = _frame(table), table.to_pandas(types_mapper=_arrow_binary)
    assert plain.equals(with_meta) and list(plain.dtypes) == list(with_meta.dtypes)
    assert plain.columns.equals(with_meta.columns) and plain.index.equals(with_meta.index)
    rows, units = TaggedEntry(folder, columns).load(digests)
    assert units == {"a", "b"} and rows["line"].tolist() == [b"x\n", b"y\n", b"z\n"]
