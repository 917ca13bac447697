"""Array paths of the rule matcher against the per-doc Python they replace.

Proximity pairing (``code.proximity``) against ``matching._pair`` + ``longest_first``,
exclude vetoes (``code.vector._apply_vetoes``) against ``matching._vetoed``, the batch
trie walk (``code.walk``) against ``TokenTrie.find``, and the batched lemma and
sentence step (``nlp_batch``) against ``nlp.pipe``.
"""
from __future__ import annotations

import random

import numpy as np
import pytest
from spacy.attrs import LEMMA, NORM, ORTH, SENT_START, SPACY

from pipeline.code.arrays import TokenArrays
from pipeline.code.compiled import CompiledRules, compile_rules
from pipeline.code.matching import _pair, _vetoed, longest_first
from pipeline.code.proximity import pair_sides
from pipeline.code.trie import TokenTrie
from pipeline.code.vector import _apply_vetoes
from pipeline.codebook import Rule
from pipeline.nlp import make_nlp, parse


def _spans(rng: random.Random, n: int, base: int) -> set[tuple[int, int]]:
    out = set()
    for _ in range(n):
        start = base + rng.randint(0, 25)
        out.add((start, start + rng.choice([1, 1, 1, 2, 3])))
    return out


@pytest.mark.parametrize("seed", range(12))
def test_proximity_pairs_equal_the_per_doc_pairing(seed: int) -> None:
    rng = random.Random(seed)
    n_rules = 4
    window = np.asarray([rng.randint(1, 6) for _ in range(n_rules)], dtype=np.int64)
    order_ab = np.asarray([rng.random() < 0.5 for _ in range(n_rules)], dtype=bool)
    rows, expected = [], set()
    for doc in range(6):
        for rule in range(n_rules):
            a = _spans(rng, rng.randint(0, 6), doc * 40)
            b = _spans(rng, rng.randint(0, 6), doc * 40)
            rows += [(rule, True, s, e, doc) for s, e in a]
            rows += [(rule, False, s, e, doc) for s, e in b]
            if a and b:
                paired = _pair(sorted(a), sorted(b), int(window[rule]),
                               "ab" if order_ab[rule] else "any")
                expected |= {(rule, s, e) for s, e in longest_first(paired)}
    rng.shuffle(rows)
    if not rows:
        return
    cols = [np.asarray(col) for col in zip(*rows)]
    r, s, e = pair_sides(cols[0].astype(np.int64), cols[1].astype(bool), cols[2].astype(np.int64),
                         cols[3].astype(np.int64), cols[4].astype(np.int64), window, order_ab,
                         longest_first)
    got = list(zip(r.tolist(), s.tolist(), e.tolist()))
    assert len(got) == len(set(got)) and set(got) == expected


def _arrays(bounds: list[int], sents: np.ndarray) -> TokenArrays:
    n = bounds[-1]
    zero = np.zeros(n, dtype=np.uint64)
    return TokenArrays(None, zero, zero, sents, np.zeros(n, dtype=bool),
                       np.asarray(bounds, dtype=np.int64), lambda k: None)


@pytest.mark.parametrize("seed", range(12))
def test_vetoes_equal_the_per_match_test(seed: int) -> None:
    rng = random.Random(seed)
    rules = [Rule(f"r{k}", f"c{k % 2}", "nl", "terms", {}) for k in range(4)]
    for k in range(3):
        params = {"scope": rng.choice(["match", "sentence", "segment"])}
        if rng.random() < 0.5:
            params["rules"] = rng.sample([rule.id for rule in rules[:4]], 2)
        rules.append(Rule(f"x{k}", f"c{k % 2}", "nl", "exclude", params))
    compiled = CompiledRules("nl", rules, [], TokenTrie(), None, {}, frozenset())
    bounds = [0, 30, 31, 70, 100]
    sent_first = np.zeros(100, dtype=np.int64)
    for k in range(100):  # sentence starts (first token of each sentence) per token
        sent_first[k] = k if k in bounds or rng.random() < 0.15 else sent_first[k - 1]
    arrays = _arrays(bounds, np.where(sent_first == np.arange(100), 1, -1))

    def hits(n: int, pool: range) -> list[tuple[int, int, int]]:
        out = set()
        for _ in range(n):
            doc = rng.randrange(len(bounds) - 1)
            lo, hi = bounds[doc], bounds[doc + 1]
            start = rng.randrange(lo, hi)
            out.add((rng.choice(pool), start, min(hi, start + rng.randint(1, 3))))
        return sorted(out)

    cand = hits(60, range(4))
    vetoes = hits(8, range(4, 7))
    cr, cs, ce = (np.asarray(col, dtype=np.int64) for col in zip(*cand))
    vr, vs, ve = (np.asarray(col, dtype=np.int64) for col in zip(*vetoes))
    vd = arrays.doc_index(vs)
    kr, ks, ke = _apply_vetoes(cr, cs, ce, vr, vs, ve, vd, arrays, compiled, sent_first)
    cdoc = arrays.doc_index(cs).tolist()
    expected = []
    for (index, a, b), k in zip(cand, cdoc):
        per: dict[int, list] = {}
        for (v, c, d), vk in zip(vetoes, vd.tolist()):
            if vk == k:
                per.setdefault(v, []).append((c, d))
        if not any(_vetoed((rules[index], a, b), rules[v], sorted(spans), sent_first.tolist())
                   for v, spans in sorted(per.items())):
            expected.append((index, a, b))
    assert list(zip(kr.tolist(), ks.tolist(), ke.tolist())) == expected


TEXTS = {
    "nl": ["We mochten het zelf invullen met het team.", "Het zelf invullen, dat was eigenaarschap!",
           "Eigenaarschap en gedeeld leiderschap bij de leerkrachten.", "", "Zelf, zelf, zelf.",
           "We hebben er geen tijd voor gekregen van de directie"],
    "en": ["We didn't get the time to carry it out ourselves.", "Ownership: the teachers' own way.",
           "Shared leadership and ownership, again and again!", ""],
}
PHRASES = {
    "nl": ["zelf invullen", "het zelf invullen", "eigenaar*", "*schap", "gedeeld leiderschap",
           "de directie", "tijd voor", "zelf zelf", "geen tijd", "team"],
    "en": ["carry it out", "ownership", "own way", "shared leadership", "the teacher*",
           "again and again", "didn't get", "time"],
}


@pytest.mark.parametrize("lang", ["nl", "en"])
def test_trie_walk_equals_the_per_doc_trie(lang: str, tmp_path) -> None:  # noqa: ANN001
    from test_code import make_codebook

    items = ", ".join(f'"{p}"' for p in PHRASES[lang])
    rules = {lang: f"- kind: phrase\n  phrases: [{items}]\n"}
    compiled = compile_rules(make_codebook(tmp_path, ownership=rules), lang)
    rng = random.Random(len(lang))
    texts = [" ".join(rng.sample(TEXTS[lang], 2)) for _ in range(30)] + TEXTS[lang]
    docs = parse(texts, lang)
    for part in (docs[:10], docs[10:]):  # the second batch reuses the memo
        arrays = TokenArrays.from_docs(part)
        types = compiled.types
        tid = types.ids(arrays.vocab, arrays.orth, arrays.lemma)
        ch, s, e = types.walker.hits(types, arrays, tid)
        k = arrays.doc_index(s)
        got = set(zip(k.tolist(), ch.tolist(), (s - arrays.bounds[k]).tolist(),
                      (e - arrays.bounds[k]).tolist()))
        expected = {(k, c, a, b) for k, doc in enumerate(part)
                    for c, a, b in compiled.trie.find(doc)}
        assert got == expected


@pytest.mark.parametrize("lang", ["nl", "en"])
def test_batched_lemmas_and_sentences_equal_the_pipeline(lang: str) -> None:
    nlp = make_nlp(lang)
    rng = random.Random(3)
    words = " ".join(TEXTS[lang]).split() + ["Kozen", "leraren", "gevoelens", "U.S.", "'s", "3,5"]
    attrs = [ORTH, LEMMA, SENT_START, NORM, SPACY]
    for _ in range(3):  # later calls find most forms in the memo
        texts = [" ".join(rng.choice(words) for _ in range(rng.randint(0, 25)))
                 for _ in range(40)]
        fast, slow = parse(texts, lang), list(nlp.pipe(texts))
        for a, b in zip(fast, slow):
            assert a.to_array(attrs).tolist() == b.to_array(attrs).tolist()


@pytest.mark.parametrize("seed", range(20))
def test_derived_equals_the_token_arrays_own(seed: int) -> None:
    """``derived`` (runs and in-place sums) against ``TokenArrays``' running maxima."""
    from pipeline.code.arrays import derived

    rng = np.random.default_rng(seed)
    sizes = rng.integers(0, 5, rng.integers(0, 9)).tolist()  # empty docs included
    n = sum(sizes)
    codes = np.zeros((n, 5), dtype=np.uint32)
    codes[:, 0] = rng.integers(0, 6, n)
    codes[:, 2] = rng.integers(0, 3, n)   # SENT_START + 1
    codes[:, 3] = rng.integers(0, 2, n)
    lengths = rng.integers(0, 9, 6).astype(np.int64)
    for table in (codes, np.asfortranarray(codes)):
        got = derived(table, lengths, sizes)
        bounds = np.zeros(len(sizes) + 1, dtype=np.int64)
        np.cumsum(sizes, out=bounds[1:])
        plain = TokenArrays(None, codes[:, 0], codes[:, 1], codes[:, 2].astype(np.int64) - 1,
                            codes[:, 3].astype(bool), bounds, None)
        first = plain.doc_starts()
        token_lengths = lengths[codes[:, 0].astype(np.int64)]
        want = {"bounds": bounds, "sent": plain.sent, "space": plain.space,
                "doc_starts": first, "sent_starts": plain.sentence_starts(first),
                "lengths": token_lengths, "offsets": plain.char_offsets(token_lengths, first)}
        assert got.keys() == want.keys()
        for name, value in want.items():
            assert got[name].dtype == value.dtype, name
            assert got[name].tolist() == value.tolist(), name
