"""``code.table.match_table`` against the table of ``match_rows``' tuples."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pipeline import columns as C
from pipeline.code import compile_rules
from pipeline.code.arrays import TokenArrays
from pipeline.code.matching import match_rows
from pipeline.code.table import match_table, rows_table
from pipeline.nlp import parse
from tests.test_code import make_codebook

RULES = """- id: own.t
  kind: terms
  terms: [eigenaar, zelf]
  weight: 0.8
- id: own.p
  kind: phrase
  phrases: ["zelf invullen", "de leraren"]
- id: own.x
  kind: proximity
  a: [we]
  b: [kiezen]
  window: 40
"""
TEXTS = ["Wij zijn eigenaar en we mochten het zelf invullen.", "",
         "We " + "lang " * 30 + "kiezen, eigenaar!", "De leraren: eigenaar? Zelf, zelf.",
         "Niets hier."]


def _rows(n: int, key: str = "s") -> list[tuple]:
    return [(f"{key}:{k}", "doc" if k < 3 else "other", 10 * k, TEXTS[k % len(TEXTS)])
            for k in range(n)]


@pytest.mark.parametrize("settings", ["", "settings:\n  opening_weight: 0.5\n",
                                      "settings:\n  opening_weight: 0\n"])
def test_match_table_equals_the_rows_table(tmp_path: Path, settings: str) -> None:
    compiled = compile_rules(make_codebook(tmp_path, ownership=RULES, settings=settings), "nl")
    docs = parse(TEXTS * 2, "nl")
    segments = _rows(len(docs))
    for opening in (None, frozenset({"s:1", "s:3"})):
        want = rows_table(match_rows(TokenArrays.from_docs(docs), compiled, segments, opening))
        got = match_table(TokenArrays.from_docs(docs), compiled, segments, opening)
        pd.testing.assert_frame_equal(got, want, check_exact=True)
        assert list(got.dtypes) == list(want.dtypes)
        assert len(got) and any("…" in e for e in got[C.EVIDENCE])  # proximity cut
    # nothing matched, no docs: the empty table of no rows
    for some in ([parse(["Niets hier."], "nl"), _rows(1)], [[], []]):
        pd.testing.assert_frame_equal(
            match_table(TokenArrays.from_docs(some[0]), compiled, some[1]), rows_table([]))


def test_match_table_of_ids_that_are_no_strings(tmp_path: Path) -> None:
    compiled = compile_rules(make_codebook(tmp_path, ownership=RULES), "nl")
    docs = parse(TEXTS, "nl")
    segments = [(k, 7, 0, TEXTS[k]) for k in range(len(docs))]  # typed by pandas, as before
    want = rows_table(match_rows(TokenArrays.from_docs(docs), compiled, segments))
    got = match_table(TokenArrays.from_docs(docs), compiled, segments)
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    assert got[C.SEGMENT_ID].dtype == want[C.SEGMENT_ID].dtype
