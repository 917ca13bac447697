"""``segment_ids.summary``: what a pool worker sends instead of its segment ids."""
import random

import pandas as pd

from pipeline import columns as C
from pipeline.segment_ids import SegmentIds, summary, unique_across


def test_a_summary_says_maybe_whenever_an_id_is_taken_and_remembers_as_add(random_id_batch):
    """Random batches: ``may_hold(summary)`` is True whenever ``unique_across`` would
    find a taken id (and, for new documents, only then), and ``add_summary`` keeps
    what ``add`` keeps."""
    rng = random.Random(11)
    docs = ["a", "b", "a:b", "d:1", "x²", "S1", "t"]

    def batch() -> pd.DataFrame:
        return random_id_batch(rng, docs)

    said_maybe = 0
    for _ in range(300):
        by_add, by_summary = SegmentIds(), SegmentIds()
        for _ in range(rng.randint(1, 5)):
            b = batch().astype({C.SEGMENT_ID: "str", C.DOC_ID: "str"})
            ids = summary(b)
            assert ids is not None
            taken = len(b) > 0 and any(i in by_add for i in b[C.SEGMENT_ID])
            maybe = by_summary.may_hold(ids)
            assert maybe or not taken
            said_maybe += maybe
            if not maybe:
                by_summary.add_summary(ids)
            else:  # as the runner does: the ids themselves
                unique_across(b.copy(), by_summary)
            unique_across(b.copy(), by_add)
            assert (by_summary.docs, by_summary.other) == (by_add.docs, by_add.other)
    assert said_maybe > 0
    # other column types: no summary, the runner gets the ids
    frame = pd.DataFrame({C.SEGMENT_ID: ["a:1"], C.DOC_ID: ["a"], C.UNIT_INDEX: [1]})
    assert summary(frame) == (["a"], [])
    assert summary(frame.astype({C.UNIT_INDEX: float})) is None
    assert summary(frame.iloc[:0]) == ([], [])


def test_a_later_part_of_a_document_goes_on_with_its_own_ids():
    taken = SegmentIds()
    first = pd.DataFrame({C.SEGMENT_ID: ["t:0", "t:1", "S1"], C.DOC_ID: ["t", "t", "s"],
                          C.UNIT_INDEX: [0, 1, 0]})
    unique_across(first, taken)
    later = pd.DataFrame({C.SEGMENT_ID: ["t:2", "t:3", "S1"], C.DOC_ID: ["t"] * 3,
                          C.UNIT_INDEX: [2, 3, 4]})
    assert taken.may_hold(summary(later))
    with taken.continued(["t"]):
        assert "t:2" not in taken
        out, renames = unique_across(later, taken)
    # the part's own ids go on; another document's id it repeats is still renamed
    assert renames == {"S1": "t:S1"}
    assert out[C.SEGMENT_ID].tolist() == ["t:2", "t:3", "t:S1"]
    assert "t:7" in taken and "t" in taken.docs  # remembered again after the part
