"""``segment_units``: the columns ``segment`` builds its table from, typed as pandas would."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline import columns as C
from pipeline.segment import _in_order, segment
from pipeline.segment_units import typed_column


@pytest.mark.parametrize("col, values", [
    (C.TEXT, ["a", "b"]), (C.DOC_ID, ["x", None]), (C.DOC_ID, ["x", 1]), (C.SPEAKER, []),
    (C.TURN, [0, 1, 2]), (C.TIME_START, [0.5, float("nan")]), (C.TIME_START, [None, 1.0]),
    (C.LANG, ["nl", float("nan")]),
])
def test_typed_columns_equal_what_pandas_infers(col, values) -> None:
    want = pd.DataFrame({col: values})[col]
    got = pd.DataFrame({col: typed_column(col, values)})[col]
    if col in (C.TURN, C.TIME_START):
        want = want.astype(got.dtype)  # segment casts these to their final dtype
    pd.testing.assert_series_equal(got, want)


def _docs(texts: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame({C.DOC_ID: list(texts), C.PATH: [f"{d}.txt" for d in texts],
                         C.FORMAT: "txt", C.ENCODING: "utf-8", C.LANG: "nl",
                         C.N_CHARS: [len(t) for t in texts.values()], C.SHA256: "",
                         C.TEXT: list(texts.values()), "school": ["A", "B"][:len(texts)]})


def _turns(rows: list[tuple[str, int, str, int, int]]) -> pd.DataFrame:
    return pd.DataFrame({C.DOC_ID: [r[0] for r in rows], C.TURN: [r[1] for r in rows],
                         C.SPEAKER: [r[2] for r in rows], C.START: [r[3] for r in rows],
                         C.END: [r[4] for r in rows], C.TIME_START: np.nan,
                         C.TIME_END: np.nan, C.UNIT_KEY: ""})


def test_paragraph_units_as_many_as_turns_are_not_taken_for_the_turns() -> None:
    # turn 0 has two paragraphs, turn 1 none: two units from two turns, both of turn 0
    text = "een\n\ntwee\n   "
    seg = segment(_docs({"d": text}), _turns([("d", 0, "R", 0, 10), ("d", 1, "I", 10, 13)]),
                  unit="paragraph")
    assert seg[C.TEXT].tolist() == ["een", "twee"]
    assert seg[C.TURN].tolist() == [0, 0] and seg[C.SPEAKER].tolist() == ["R", "R"]
    assert seg[C.SEGMENT_ID].tolist() == ["d:0", "d:1"]


def test_turn_table_columns_are_taken_as_they_stand() -> None:
    docs = _docs({"a": "I: vraag\nR: antwoord", "b": "R: ja"})
    turns = _turns([("a", 0, "I", 3, 8), ("a", 1, "R", 12, 20), ("b", 0, "R", 3, 5)])
    seg = segment(docs, turns)
    assert seg[C.TEXT].tolist() == ["vraag", "antwoord", "ja"]
    assert seg["school"].tolist() == ["A", "A", "B"]
    assert seg[C.CODED].tolist() == [False, True, True]
    assert str(seg[C.DOC_ID].dtype) == "str" and seg[C.TURN].dtype == "int64"
    for col in (C.SEGMENT_ID, C.DOC_ID, C.SPEAKER, C.TEXT):  # one Arrow chunk each
        assert seg[col].array._pa_array.num_chunks == 1
    # a turn without text is no unit: the units are gathered from the turns
    turns.loc[1, C.END] = 12
    seg = segment(docs, turns)
    assert seg[C.TEXT].tolist() == ["vraag", "ja"] and seg[C.TURN].tolist() == [0, 0]


@pytest.mark.parametrize("docs, turns, want", [
    (["a", "a", "b"], [0, 1, 0], True), (["a", "a", "b"], [1, 0, 0], False),
    (["b", "a"], [0, 0], False), (["a", "a"], [0, 0], True), (["é", "z"], [0, 0], False),
    (["z", "é"], [0, 0], True), (["a", None], [0, 0], False), (["a"], [3], True),
])
def test_order_check_equals_python_comparison(docs, turns, want) -> None:
    frame = pd.DataFrame({C.DOC_ID: docs, C.TURN: turns})
    assert _in_order(frame[C.DOC_ID], frame[C.TURN]) is want
    assert _in_order(frame[C.DOC_ID].astype(object), frame[C.TURN]) is want


def test_stripped_turns_shortcut_gives_the_loops_units(monkeypatch) -> None:
    import random

    from pipeline import segment_units as su

    def loop(*args):  # noqa: ANN002, ANN202
        with monkeypatch.context() as m:
            m.setattr(su, "_stripped_turns", lambda *a: None)
            return su._turn_units(*args)

    rng = random.Random(5)
    texts = {"a": "Ja. Nee hoor.\n  Dat klopt ", "b": "x y\tz", "c": "é  ü"}
    cases = [(["a", "a"], [0, 4], [3, 13]), (["a"], [13, 15], [16, 26]),  # whitespace
             (["a"], [0], [0]), (["b"], [0], [99]), (["z"], [0], [1]),   # empty, past end, unknown
             (["c"], [np.int64(0)], [np.int64(1)]), ([], [], [])]
    for _ in range(300):
        doc = rng.choice("abcz")
        n = len(texts.get(doc, "abc"))
        starts = [rng.randint(0, n) for _ in range(rng.randint(1, 4))]
        cases.append(([doc] * len(starts), starts, [s + rng.randint(0, 5) for s in starts]))
    taken = 0
    for docs, starts, ends in cases:
        got = su._turn_units(docs, starts, ends, texts)
        assert got == loop(docs, starts, ends, texts), (docs, starts, ends)
        taken += su._stripped_turns(docs, starts, ends, texts) is not None
    assert taken  # the shortcut is used when it applies
