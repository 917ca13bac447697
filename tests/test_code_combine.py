"""Tests of pipeline.code.combine: packed sorts and the integer keys of match tables."""
from __future__ import annotations

import gc
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline import columns as C
from pipeline.code import combine
from pipeline.code.aggregate import aggregate_matches, aggregate_rows, coding_order
from pipeline.code.arrays import TokenArrays
from pipeline.code.combine import frame_keys, stable_order
from pipeline.code.compiled import compile_rules
from pipeline.code.matching import match_frame
from pipeline.codebook import load_codebook
from pipeline.nlp import make_nlp, parse_arrays

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def matched():  # noqa: ANN201
    """A match table of the project codebook on the sample interviews, as a chunk makes it."""
    from pipeline import ingest, segment

    got = ingest.ingest(sorted((REPO / "data" / "raw").glob("*.txt")))
    seg = segment.segment(got.documents, got.turns)
    seg = seg[seg[C.CODED] & (seg[C.LANG] == "nl")].reset_index(drop=True)
    book = load_codebook(REPO / "codebook.yaml")
    compiled = compile_rules(book, "nl")
    parts = parse_arrays(seg[C.TEXT].tolist(), "nl")
    arrays = TokenArrays.from_parts(make_nlp("nl").vocab, parts, None)
    rows = list(zip(seg[C.SEGMENT_ID].tolist(), seg[C.DOC_ID].tolist(),
                    seg[C.START].tolist(), seg[C.TEXT].tolist()))
    frame = match_frame(arrays, compiled, rows)
    assert len(frame) > 100 and frame[C.CODE_ID].nunique() > 3
    return frame, book.settings.threshold


def test_match_frame_keys_order_as_the_ids(matched):  # noqa: ANN001
    frame, _ = matched
    keys = frame_keys(frame)
    assert keys is not None
    for col, codes in ((C.SEGMENT_ID, keys.seg), (C.DOC_ID, keys.doc),
                       (C.CODE_ID, keys.code), (C.RULE_ID, keys.rule)):
        dense = pd.factorize(frame[col], sort=True)[0]
        # equal ids, equal codes, and the codes sort as the ids
        assert (pd.factorize(codes, sort=True)[0] == dense).all(), col
    assert (np.asarray(keys.rule_names, dtype=object)[keys.rule] == frame[C.RULE_ID].to_numpy(
        dtype=object)).all()


def test_aggregation_with_keys_equals_it_without(matched):  # noqa: ANN001
    frame, threshold = matched
    plain = frame.copy()  # new arrays: no keys, the ids are factorised
    assert frame_keys(plain) is None
    keys = frame_keys(frame)
    for t in (threshold, 0.0, 0.99):
        combine.remember_keys(frame, keys)
        got, expected = aggregate_matches(frame, threshold=t), aggregate_matches(plain, threshold=t)
        assert frame_keys(frame) is None  # used once, then forgotten
        assert got.equals(expected)
        assert got.to_csv(index=False) == expected.to_csv(index=False)
        assert [type(got[c].array) for c in got] == [type(expected[c].array) for c in expected]
    for t in (threshold, 0.0, 0.99):
        combine.remember_keys(frame, keys)
        got, rows = aggregate_rows(frame, threshold=t), aggregate_rows(plain, threshold=t)
        assert frame_keys(frame) is None
        # the same rows; with the keys already in output order (a first run's codings)
        order = coding_order(got)
        assert (order == np.arange(len(got))).all()
        assert got.equals(rows.take(coding_order(rows)).reset_index(drop=True))
    combine.remember_keys(frame, keys)  # for the other tests


def test_keys_are_dropped_when_the_frame_changes(matched):  # noqa: ANN001
    frame, _ = matched
    assert frame_keys(frame.take(np.arange(len(frame))[::-1])) is None
    assert frame_keys(frame.iloc[:10]) is None
    edited = frame.copy()
    combine.remember_keys(edited, frame_keys(frame))
    assert frame_keys(edited) is not None
    edited.loc[0, C.SEGMENT_ID] = "zz-other"  # written in place: other ids
    assert frame_keys(edited) is None
    again = frame.copy()
    combine.remember_keys(again, frame_keys(frame))
    again[C.CODE_ID] = again[C.RULE_ID]  # a column set again
    assert frame_keys(again) is None


def test_keys_are_forgotten_with_their_frame(matched):  # noqa: ANN001
    frame, _ = matched
    copy = frame.copy()
    combine.remember_keys(copy, frame_keys(frame))
    key = id(copy)
    assert key in combine._KEYS
    del copy
    gc.collect()
    assert key not in combine._KEYS


def test_stable_order_equals_lexsort():
    rng = np.random.default_rng(4)
    for _ in range(50):
        n = int(rng.integers(0, 200))
        keys = [rng.integers(-3, 5, n), rng.integers(0, 1 << 40, n), rng.integers(0, 3, n)]
        assert (stable_order(keys) == np.lexsort(keys[::-1])).all()
