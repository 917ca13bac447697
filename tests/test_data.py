"""The bundled data sets: synthetic, and every gold standard matches the texts it was coded on.

Each gold row names a coding unit by id and the content hash of the exact text the coders
read; if a transcript or the segmentation changes, the gold would silently describe other
text. These tests re-derive the units from ``raw/`` (ingest + segment, no NLP) and compare.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pipeline import columns as C
from pipeline.codebook import load_codebook
from pipeline.ingest import ingest
from pipeline.segment import DEFAULT_INTERVIEWER_LABELS, segment

ROOT = Path(__file__).resolve().parent.parent
CODES = ["agency", "ownership", "alignment", "shared_leadership", "amo.ability",
         "amo.motivation", "amo.opportunity"]
SETS = [("data/raw", "data/coded/gold/gold.csv"),
        ("data/heldout/raw", "data/heldout/gold/gold.csv"),
        ("data/heldout3/raw", "data/heldout3/gold/gold.csv"),
        ("data/heldout4/raw", "data/heldout4/gold/gold.csv"),
        ("data/heldout5/raw", "data/heldout5/gold/gold.csv"),
        ("data/heldout6/raw", "data/heldout6/gold/gold.csv"),
        ("data/heldout7/raw", "data/heldout7/gold/gold.csv"),
        ("data/heldout8/raw", "data/heldout8/gold/gold.csv"),
        ("data/heldout9/raw", "data/heldout9/gold/gold.csv")]


def _units(raw: Path) -> pd.DataFrame:
    book = load_codebook(ROOT / "codebook.yaml")
    result = ingest([raw], detect=True)
    assert result.errors.empty or not (result.errors["severity"] == "error").any(), result.errors
    # The interviewer labels as a run uses them: the defaults plus the codebook's.
    labels = list(dict.fromkeys([*DEFAULT_INTERVIEWER_LABELS, *book.settings.interviewer_labels]))
    segs = segment(result.documents, result.turns, unit=book.settings.unit,
                   interviewer_labels=labels)
    return segs[segs[C.CODED]].set_index(C.SEGMENT_ID)


@pytest.mark.parametrize("raw, gold", SETS, ids=[s[0] for s in SETS])
def test_gold_covers_every_unit_with_the_text_it_was_coded_on(raw, gold):
    units = _units(ROOT / raw)
    table = pd.read_csv(ROOT / gold, dtype={"content_hash": str})
    assert table[C.SEGMENT_ID].is_unique
    assert set(table[C.SEGMENT_ID]) == set(units.index)       # every respondent unit, no other
    hashes = units.loc[table[C.SEGMENT_ID], C.CONTENT_HASH].tolist()
    assert hashes == table["content_hash"].tolist()
    assert list(table.columns) == [C.SEGMENT_ID, "content_hash", *CODES]
    assert table[CODES].isin([0, 1]).all().all()


@pytest.mark.parametrize("raw", [s[0] for s in SETS])
def test_every_document_is_marked_synthetic(raw):
    meta = pd.read_csv(ROOT / raw / "metadata.csv", dtype=str)
    docs = ingest([ROOT / raw]).documents
    assert set(docs[C.DOC_ID]) <= set(meta[C.DOC_ID])
    assert (meta["synthetic"] == "yes").all()
    readme = (ROOT / raw / ".." / "README.md").resolve()
    text = (readme if readme.exists() else ROOT / raw / "README.md").read_text(encoding="utf-8")
    assert "synthetic" in text.lower()
