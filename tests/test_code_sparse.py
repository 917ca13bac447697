"""The sparse re-match (``code.sparse``) against the batch path of ``match_frame``.

Random texts over a small vocabulary, codebooks with every trie-rule feature (terms,
phrases, globs, proximity, exclude vetoes of every scope, negation forbid/require in
window and clause scope, max_matches, opening weight): the rows must be the batch
path's, value for value and in order.
"""
from __future__ import annotations

import random

import numpy as np
import pyarrow as pa
import pytest

from pipeline.chunk_cache import _encode
from pipeline.code.arrays import TokenArrays, derived
from pipeline.code.compiled import compile_rules
from pipeline.code.matching import match_frame
from pipeline.code.sparse import SegmentRows
from pipeline.code.sparse import Coded, Lazy, sparse_batch, string_facts
from pipeline.codebook import load_codebook
from pipeline.nlp import parse

WORDS = ["we", "mochten", "het", "zelf", "kiezen", "niet", "geen", "de", "leraren", "team",
         "eigenaar", "eigenaarschap", "gebouw", "van", "uren", "tijd", ",", ".", "dat", "ik",
         "nooit", "invullen", "Zelf", "klas", "maar", "bijzonders", "omdat"]

BOOK = """\
version: 1
name: sparse
settings:
  default_lang: nl
  required_codes: []
  negation_scope: {scope}
  negation_window: {window}
  opening_weight: {opening}
codes:
  - id: agency
    label: {{nl: Agency, en: Agency}}
    definition: d.
    rules:
      nl:
        - {{kind: phrase, phrases: ["zelf invullen", "zelf kiezen", "het team"]}}
        - {{kind: glob, globs: ["eigenaar*", "lera*"]}}
        - {{kind: terms, terms: [klas, tijd], negation: require}}
  - id: ownership
    label: {{nl: Own, en: Own}}
    definition: d.
    rules:
      nl:
        - {{kind: terms, terms: [eigenaar, gebouw, uren], negation: forbid, max_matches: 2}}
        - {{kind: exclude, phrases: ["eigenaar van het gebouw"], scope: {veto}}}
        - {{kind: proximity, a: [team, klas], b: [kiezen, "zelf*"], window: 3}}
  - id: time
    label: {{nl: Tijd, en: Tijd}}
    definition: d.
    rules:
      nl:
        - {{kind: proximity, a: [uren], b: [tijd, leraren], window: 4, order: ab}}
        - {{kind: terms, terms: [ik, we, het], max_matches: 1}}
"""


def _batch(rng: random.Random, n: int):  # noqa: ANN202
    """(arrays, coded, segment rows) of ``n`` random texts, as a chunk entry stores them."""
    texts = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 18))) for _ in range(n)]
    docs = parse(texts, "nl")
    arrays = TokenArrays.from_docs(docs)
    parts = [doc.to_array([65, 73, 80, 81, 67]) for doc in docs]
    codes, strings, _, hashes = _encode({0: parts}, [docs[0].vocab])
    hashes = np.concatenate([np.zeros(1, dtype=np.uint64), hashes])
    lengths = np.asarray([0, *map(len, strings)], dtype=np.int64)
    done = derived(codes, lengths, [len(p) for p in parts])
    facts = {**string_facts(codes[:, 0], codes[:, 1], len(lengths)), "lengths": lengths}
    coded = Coded(codes[:, 0], codes[:, 1], hashes, facts, done["offsets"])
    rows = [(f"s{k}", f"d{k // 3}", 10 * k, text) for k, text in enumerate(texts)]
    return arrays, coded, rows


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(("scope", "window", "veto", "opening"),
                         [("window", 3, "match", 1.0), ("clause", 2, "sentence", 0.5),
                          ("window", 1, "segment", 0.0)])
def test_sparse_rows_equal_the_batch_path(tmp_path, seed: int, scope: str, window: int,  # noqa: ANN001
                                          veto: str, opening: float) -> None:
    path = tmp_path / "book.yaml"
    path.write_text(BOOK.format(scope=scope, window=window, veto=veto, opening=opening))
    book = load_codebook(path)
    rng = random.Random(seed)
    arrays, coded, rows = _batch(rng, 60)
    openers = frozenset(row[0] for k, row in enumerate(rows) if k % 3 == 0)
    found = 0
    for only in (None, frozenset({("ownership", "ownership.nl.1"),
                                  ("ownership", "ownership.nl.2"),
                                  ("ownership", "ownership.nl.3")}),
                 frozenset({("agency", "agency.nl.1")})):
        compiled = compile_rules(book, "nl", only)
        assert sparse_batch(arrays, compiled, coded) is not None
        want = match_frame(arrays, compiled, rows, openers)
        got = match_frame(arrays, compile_rules(book, "nl", only), rows, openers, coded)
        assert got.equals(want)
        found += len(want)
        # without the per-string facts and offsets made ahead: computed on the spot
        bare = Coded(coded.forms, coded.lemmas, coded.hashes)
        assert match_frame(arrays, compiled, rows, openers, bare).equals(want)
        # the rows as columns (what a chunk hands over): the same table
        columns = SegmentRows(*map(list, zip(*rows)))
        assert list(columns) == rows and columns[3] == rows[3] and len(columns) == len(rows)
        assert match_frame(arrays, compiled, columns, openers, coded).equals(want)
        assert list(columns.take([4, 1])) == [rows[4], rows[1]]
        ids = tuple(pa.array([row[k] for row in rows], type=pa.large_string()) for k in (0, 1))
        arrow = SegmentRows(*map(list, zip(*rows)), arrow=ids)
        assert match_frame(arrays, compiled, arrow, openers, coded).equals(want)
        part = arrow.take(list(range(0, len(rows), 2)))
        assert part.arrow[0].to_pylist() == [row[0] for row in rows[::2]]
        assert list(part) == rows[::2] and part.arrow[1].to_pylist() == [r[1] for r in rows[::2]]
    assert found


def test_sparse_declines_what_it_does_not_cover(tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "book.yaml"
    path.write_text(BOOK.format(scope="window", window=3, veto="match", opening=1.0)
                    .replace("- {kind: terms, terms: [ik, we, het], max_matches: 1}",
                             "- {kind: pattern, patterns: [[{LOWER: ik}]]}"))
    book = load_codebook(path)
    arrays, coded, rows = _batch(random.Random(1), 20)
    assert sparse_batch(arrays, compile_rules(book, "nl"), None) is None
    assert sparse_batch(arrays, compile_rules(book, "nl"), coded) is None  # a pattern
    trie_only = compile_rules(book, "nl", frozenset({("agency", "agency.nl.1")}))
    assert sparse_batch(arrays, trie_only, coded) is not None
    # a form with two lemmas: its type is not a function of the form
    lemmas = coded.lemmas.copy()
    first = np.flatnonzero(coded.forms == coded.forms[0])
    if len(first) > 1:
        lemmas[first[1]] = lemmas[first[0]] + 1
        two = Coded(coded.forms, lemmas, coded.hashes)
        assert sparse_batch(arrays, trie_only, two) is None


def test_string_facts_and_lazy_views() -> None:
    forms = np.asarray([3, 1, 3, 2], dtype=np.uint32)
    lemmas = np.asarray([5, 0, 5, 2], dtype=np.uint32)
    facts = string_facts(forms, lemmas, 6)
    assert facts["present"].tolist() == [1, 2, 3]
    assert facts["lemma_of"][[1, 2, 3]].tolist() == [0, 2, 5] and facts["one_lemma"]
    assert not string_facts(forms, np.asarray([5, 0, 4, 2], dtype=np.uint32), 6)["one_lemma"]
    view = Lazy(lambda p: forms[p] * 2)
    assert view[np.asarray([0, 3])].tolist() == [6, 4] and int(view[1]) == 2
