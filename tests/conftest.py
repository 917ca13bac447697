"""Small shared fixtures. Keep them inline and tiny; bigger data lives in data/raw."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline import columns as C

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def prefetch_taken(monkeypatch):
    """(file name, found) of every file a run asked the read-ahead thread for."""
    import pipeline.cache_io as cache_io

    taken: list[tuple[str, bool]] = []
    original = cache_io.Prefetcher.take

    def spy(self, path):
        got = original(self, path)
        taken.append((path.name, got is not None))
        return got

    monkeypatch.setattr(cache_io.Prefetcher, "take", spy)
    return taken


@pytest.fixture
def no_coded_files(monkeypatch):
    """Runs code every chunk: stored coding files (``coded_files``) are never taken, so
    a test of the per-chunk caches sees them at work on every re-code."""
    from pipeline import coded_files

    monkeypatch.setattr(coded_files.CodedFiles, "find", lambda self, *args, **kw: None)
    monkeypatch.setattr(coded_files.CodedFiles, "moved", lambda self, *args, **kw: None)


@pytest.fixture
def repo_root() -> Path:
    """The repository root (where codebook.yaml and data/ live)."""
    return REPO


@pytest.fixture
def tiny_corpus() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two documents (an interview and a survey CSV) as ingest would return them."""
    interview = ("I: Hoe begon het?\n\n"
                 "R: We mochten het zelf invullen.\n\nDat was fijn.\n\n"
                 "I: En de tijd?\n\n"
                 "R: Daar had ik gewoon geen uren voor. Echt niet.")
    survey = "Meer tijd.\n\nSamenwerken met collega's."
    docs = pd.DataFrame([
        {C.DOC_ID: "int01", C.PATH: "int01.txt", C.FORMAT: "txt", C.ENCODING: "utf-8",
         C.LANG: "nl", C.N_CHARS: len(interview), C.SHA256: "0" * 64, C.TEXT: interview,
         "country": "NL"},
        {C.DOC_ID: "survey", C.PATH: "survey.csv", C.FORMAT: "csv", C.ENCODING: "utf-8",
         C.LANG: "nl", C.N_CHARS: len(survey), C.SHA256: "1" * 64, C.TEXT: survey,
         "country": "BE"},
    ])
    turns = []
    pos = 0
    # Build turns by locating each labelled line explicitly (content only, no label).
    spans = []
    for label, content in [("I", "Hoe begon het?"),
                           ("R", "We mochten het zelf invullen.\n\nDat was fijn."),
                           ("I", "En de tijd?"),
                           ("R", "Daar had ik gewoon geen uren voor. Echt niet.")]:
        start = interview.index(content, pos)
        spans.append((label, start, start + len(content)))
        pos = start + len(content)
    for n, (label, s, e) in enumerate(spans):
        turns.append({C.DOC_ID: "int01", C.TURN: n, C.SPEAKER: label, C.START: s, C.END: e,
                      C.TIME_START: np.nan, C.TIME_END: np.nan, C.UNIT_KEY: "", "sector": None})
    s1 = survey.index("Meer")
    s2 = survey.index("Samen")
    turns.append({C.DOC_ID: "survey", C.TURN: 0, C.SPEAKER: "", C.START: s1, C.END: s1 + 10,
                  C.TIME_START: np.nan, C.TIME_END: np.nan, C.UNIT_KEY: "S001", "sector": "PO"})
    turns.append({C.DOC_ID: "survey", C.TURN: 1, C.SPEAKER: "", C.START: s2, C.END: len(survey),
                  C.TIME_START: np.nan, C.TIME_END: np.nan, C.UNIT_KEY: "S002", "sector": "VO"})
    return docs, pd.DataFrame(turns)


@pytest.fixture
def random_id_batch():
    """``make(rng, docs)``: a random segments table of up to 9 rows whose segment ids
    collide within and across batches (odd ids too: "", ":", non-ASCII digits)."""

    def make(rng, docs: list[str]) -> pd.DataFrame:  # noqa: ANN001 - random.Random
        rows = {}
        for _ in range(rng.randint(0, 9)):
            d, n = rng.choice(docs), rng.randint(-1, 3)
            seg = rng.choice([f"{d}:{n}", f"{d}:{n}", f"{rng.choice(docs)}:{n}", "S1", "b:x",
                              "c:²", ":", "", "t:0", "1"])
            rows.setdefault(seg, (seg, d, n))
        return pd.DataFrame(list(rows.values()), columns=[C.SEGMENT_ID, C.DOC_ID, C.UNIT_INDEX])

    return make
