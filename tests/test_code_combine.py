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
from pipeline.code.opening import first_coded_units
from pipeline.codebook import load_codebook
from pipeline.nlp import make_nlp, parse_arrays

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def batch():  # noqa: ANN201
    """The Dutch coded segments of the sample interviews: (token arrays per segment,
    segment rows, the project codebook and its compiled Dutch rules)."""
    from pipeline import ingest, segment

    got = ingest.ingest(sorted((REPO / "data" / "raw").glob("*.txt")))
    seg = segment.segment(got.documents, got.turns)
    seg = seg[seg[C.CODED] & (seg[C.LANG] == "nl")].reset_index(drop=True)
    book = load_codebook(REPO / "codebook.yaml")
    parts = parse_arrays(seg[C.TEXT].tolist(), "nl")
    rows = list(zip(seg[C.SEGMENT_ID].tolist(), seg[C.DOC_ID].tolist(),
                    seg[C.START].tolist(), seg[C.TEXT].tolist()))
    return parts, rows, book, compile_rules(book, "nl"), first_coded_units(seg)


@pytest.fixture(scope="module")
def matched(batch):  # noqa: ANN001, ANN201
    """A match table of the project codebook on the sample interviews, as a chunk makes it."""
    parts, rows, book, compiled, _ = batch
    arrays = TokenArrays.from_parts(make_nlp("nl").vocab, parts, None)
    frame = match_frame(arrays, compiled, rows)
    assert len(frame) > 100 and frame[C.CODE_ID].nunique() > 3
    return frame, book.settings.threshold


def test_tables_of_runs_joined_are_the_table_of_the_batch(batch, matched):  # noqa: ANN001
    from pipeline.code.arrays import runs

    parts, rows, book, compiled, opening = batch
    whole, threshold = matched
    assert book.settings.opening_weight != 1.0  # a run's first unit need not open a document
    vocab = make_nlp("nl").vocab
    cuts = runs(parts, 300)
    assert len(cuts) > 5
    frames = [match_frame(TokenArrays.from_parts(vocab, parts[a:b], None), compiled, rows[a:b],
                          opening) for a, b in cuts]
    joined = combine.concat_keyed(frames)
    assert joined.equals(whole)
    assert [str(t) for t in joined.dtypes] == [str(t) for t in whole.dtypes]
    assert all(joined[c].array.__arrow_array__().num_chunks == 1
               for c in (C.SEGMENT_ID, C.EVIDENCE))
    keys, own = frame_keys(joined), frame_keys(whole)
    assert keys is not None and own is not None
    for name in ("seg", "doc", "code", "rule"):
        assert (getattr(keys, name) == getattr(own, name)).all(), name
    assert aggregate_matches(joined, threshold=threshold).equals(
        aggregate_matches(whole.copy(), threshold=threshold))
    assert combine.concat_keyed(frames[:1]) is frames[0]
    frames[1] = frames[1].copy()  # a table without keys: the joined one has none
    assert frame_keys(combine.concat_keyed(frames)) is None


def test_runs_end_with_the_item_that_reaches_the_limit() -> None:
    import random

    from pipeline.code.arrays import runs

    rng = random.Random(3)
    for _ in range(2000):
        items = ["x" * rng.randint(0, 30) for _ in range(rng.randint(0, 20))]
        limit = rng.randint(1, 60)
        cuts = runs(items, limit)
        assert [k for a, b in cuts for k in range(a, b)] == list(range(len(items)))
        if sum(map(len, items)) <= limit:
            assert cuts == [(0, len(items))]
            continue
        assert all(b > a for a, b in cuts)
        for a, b in cuts[:-1]:
            assert sum(map(len, items[a:b])) >= limit > sum(map(len, items[a:b - 1]))


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
