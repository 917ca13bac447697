"""``code.evidence``: gathered one-token evidence equals the text slices; Arrow forms equal lists."""
from __future__ import annotations

import numpy as np

from pipeline.code.arrays import TokenArrays
import pandas as pd
import pytest

from pipeline.code.evidence import EVIDENCE_LIMIT, arrow_strings, evidence_parts, evidence_texts
from pipeline.nlp import parse

TEXTS = ["We mochten het  zelf kiezen, niet de Leraren!", "", "Dat\tkan ik: 3 uur per week.",
         "eigen klas " * 20]


def _offsets(arrays: TokenArrays) -> tuple[np.ndarray, np.ndarray]:
    lengths = np.asarray([len(arrays.vocab.strings[o]) for o in arrays.orth.tolist()],
                         dtype=np.int64)
    idx = arrays.char_offsets(lengths, arrays.doc_starts())
    return idx, idx + lengths


def test_evidence_is_the_slice_of_every_span() -> None:
    docs = parse(TEXTS, "nl")
    arrays = TokenArrays.from_docs(docs)
    idx, char_end = _offsets(arrays)
    spans = [(k, s, e) for k in range(len(docs)) for s in range(len(docs[k]))
             for e in range(s + 1, min(s + 4, len(docs[k])) + 1)]
    docs_k = np.asarray([k for k, _, _ in spans], dtype=np.int64)
    base = arrays.bounds[docs_k]
    cs = base + np.asarray([s for _, s, _ in spans], dtype=np.int64)
    ce = base + np.asarray([e for _, _, e in spans], dtype=np.int64)
    c0, c1 = idx[cs], char_end[ce - 1]
    rows = [("s", "d", 0, text) for text in TEXTS]
    got = evidence_texts(arrays, rows, docs_k, (cs, ce), (c0, c1), char_end,
                         np.zeros(len(spans), dtype=bool))
    assert got == [docs[k][s:e].text for k, s, e in spans]
    source, index = evidence_parts(arrays, rows, docs_k, (cs, ce), (c0, c1), char_end,
                                   np.zeros(len(spans), dtype=bool))
    assert source.take(index).to_pylist() == got
    assert len(source) < len(got)  # repeated one-token forms are held once
    assert any(e - s == 1 for _, s, e in spans) and any(e - s > 1 for _, s, e in spans)
    # a doc not parsed from the row's text: its own text; proximity evidence is cut
    rows = [("s", "d", 0, None) for _ in TEXTS]
    whole = np.asarray([3], dtype=np.int64)
    cs, ce = arrays.bounds[whole], arrays.bounds[whole + 1]
    got = evidence_texts(arrays, rows, whole, (cs, ce), (idx[cs], char_end[ce - 1]), char_end,
                         np.ones(1, dtype=bool))
    assert got == [TEXTS[3].strip()[:EVIDENCE_LIMIT - 1] + "…"]


@pytest.mark.parametrize("values", [["a", "b", "a"], [], ["x", None], ["x", 1], ["é", ""],
                                    [float("nan"), "y"]])
def test_arrow_strings_are_the_str_dtype_array(values) -> None:
    want = pd.array(values, dtype="str")
    got = pd.arrays.ArrowStringArray(arrow_strings(values), dtype=want.dtype)
    assert got.dtype == want.dtype
    pd.testing.assert_extension_array_equal(got, want)
