"""The fast paths of pipeline.code against the general paths they replace.

Token patterns on arrays (``code.tokpat``) against the spaCy Matcher, on random
patterns over every operator and on tricky texts; ``match_frame`` against
``match_rows``. (NumPy aggregation is pinned in ``test_aggregate``.)
"""
from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pytest
from spacy.matcher import Matcher

from pipeline import columns as C
from pipeline.code.arrays import TokenArrays
from pipeline.code.tokpat import TokenPatterns
from pipeline.code.types import TypeTable
from pipeline.code.trie import TokenTrie
from pipeline.nlp import make_nlp, parse

WORDS = {
    "nl": ["we", "mochten", "mogen", "het", "zelf", "kiezen", "niet", "geen", "de", "leraren",
           "Leraren", "team", "twee", "3", "uur", "per", "week", ",", ".", "?", "dat", "ik",
           "kan", "Dat", "zelf", "eigen", "klas"],
    "en": ["we", "were", "allowed", "to", "choose", "ourselves", "not", "the", "teachers",
           "Teachers", "don't", "two", "3", "hours", "per", "week", ",", ".", "!", "that", "I",
           "can", "own", "class", "carried", "out"],
}
OPS = [None, None, None, "?", "*", "+", "!", "{0,2}", "{1,3}", "{2}", "{,2}", "{1,}", "{0}"]


def _spec(rng: random.Random, words: list[str]) -> dict:
    pick = rng.random()
    if pick < 0.35:
        spec: dict = {"LOWER": rng.choice(words).lower()}
    elif pick < 0.6:
        spec = {"LOWER": {"IN": [w.lower() for w in rng.sample(words, 3)]}}
    elif pick < 0.68:
        spec = {"LEMMA": rng.choice(["mogen", "kunnen", "be", "allow", "zelf", "leraar"])}
    elif pick < 0.74:
        spec = {"ORTH": rng.choice(words)}
    elif pick < 0.82:
        spec = {"IS_PUNCT": rng.random() < 0.5}
    elif pick < 0.88:
        spec = {"IS_SENT_START": True}
    elif pick < 0.93:
        spec = {"LIKE_NUM": True}
    else:  # any token: {} (one token whatever OP says) or an OP alone
        return {} if rng.random() < 0.5 else {"OP": rng.choice(["*", "?", "+", "{1,2}"])}
    op = rng.choice(OPS)
    if op is not None:
        spec["OP"] = op
    if rng.random() < 0.1 and "LOWER" in spec and not isinstance(spec["LOWER"], dict):
        spec["IS_SENT_START"] = True
    return spec


def _docs(lang: str, rng: random.Random, n: int) -> list:
    texts = [" ".join(rng.choice(WORDS[lang]) for _ in range(rng.randint(0, 14)))
             for _ in range(n)]
    return parse(texts, lang)


def _array_spans(patterns: TokenPatterns, docs: list, vocab) -> set:  # noqa: ANN001
    arrays = TokenArrays.from_docs(docs)
    types = TypeTable(TokenTrie(), frozenset(), [])
    tid = types.ids(vocab, arrays.orth, arrays.lemma)
    ch, s, e = patterns.find(arrays, tid, types)
    doc = arrays.doc_index(s)
    off = arrays.bounds[doc]
    return set(zip(ch.tolist(), doc.tolist(), (s - off).tolist(), (e - off).tolist()))


def _matcher_spans(pattern_list: list, docs: list, vocab) -> set:  # noqa: ANN001
    matcher = Matcher(vocab)
    for k, pattern in enumerate(pattern_list):
        matcher.add(f"p{k}", [pattern])
    keys = {vocab.strings[f"p{k}"]: k for k in range(len(pattern_list))}
    return {(keys[key], d, a, b) for d, doc in enumerate(docs) for key, a, b in matcher(doc)
            if b > a}


@pytest.mark.parametrize("lang", ["nl", "en"])
@pytest.mark.parametrize("seed", range(10))
def test_token_patterns_equal_the_matcher_on_random_patterns(lang: str, seed: int) -> None:
    rng = random.Random(seed * 7 + len(lang))
    vocab = make_nlp(lang).vocab
    covered: list = []
    patterns = TokenPatterns()
    for _ in range(400):
        pattern = [_spec(rng, WORDS[lang]) for _ in range(rng.randint(1, 5))]
        if patterns.add(pattern, len(covered)):
            covered.append(pattern)
    assert len(covered) > 80  # most random patterns are covered
    patterns.freeze()
    docs = _docs(lang, rng, 150)
    # two batches: the second sees types described by the first
    for part in (docs[:60], docs[60:]):
        assert _array_spans(patterns, part, vocab) == _matcher_spans(covered, part, vocab)


def test_uncovered_specs_stay_with_the_matcher() -> None:
    patterns = TokenPatterns()
    assert not patterns.add([{"NORM": "x"}], 0)                     # NORM: per token
    assert not patterns.add([{"LOWER": {"REGEX": "^a"}}], 0)        # regex predicate
    assert not patterns.add([{"LOWER": {"NOT_IN": ["a"]}}], 0)
    # no word every match holds, and a first token that could be any word
    assert not patterns.add([{"IS_PUNCT": False}, {"LOWER": "a", "OP": "?"}], 0)
    assert not patterns.add([{"LOWER": "a", "OP": "!"}], 0)          # "!" consumes any word
    assert patterns.add([{"LIKE_NUM": True}, {"LOWER": "uur"}], 0)   # anchored on "uur"
    assert not patterns.add([{"LOWER": "a", "OP": "{x}"}], 0)
    assert patterns.add([{"IS_SENT_START": True}, {"LOWER": "a"}], 0)
    assert patterns.add([{"lower": "a", "op": "?"}, {"LEMMA": {"IN": ["b"]}}], 0)


def test_token_patterns_on_hand_picked_cases() -> None:
    nl = make_nlp("nl").vocab
    cases = [
        [{"LEMMA": "mogen"}, {"IS_PUNCT": False, "OP": "?"}, {"LOWER": "zelf"}],
        [{"LOWER": {"IN": ["we", "wij"]}}, {"IS_PUNCT": False, "OP": "*"},
         {"LOWER": "kiezen"}],
        [{"IS_SENT_START": True}, {"LOWER": {"IN": ["de", "die"]}, "OP": "?"},
         {"LOWER": {"IN": ["leraren", "kinderen"]}}],
        [{"LOWER": "niet"}, {"OP": "{0,3}", "IS_PUNCT": False}, {"LOWER": "zelf", "OP": "+"}],
        [{"ORTH": "Leraren"}, {"LOWER": "kiezen", "OP": "!"}],
        [{"LOWER": "zelf"}, {"LOWER": "zelf", "OP": "*"}],
    ]
    texts = ["We mochten het zelf kiezen.", "Wij mogen, zo zei ze, zelf kiezen.",
             "De leraren kiezen. Kinderen niet.", "Niet echt zelf zelf zelf.",
             "Leraren kiezen. Leraren praten.", "We mochten zelf", ""]
    docs = parse(texts, "nl")
    patterns = TokenPatterns()
    for k, pattern in enumerate(cases):
        assert patterns.add(pattern, k)
    patterns.freeze()
    assert _array_spans(patterns, docs, nl) == _matcher_spans(cases, docs, nl)
