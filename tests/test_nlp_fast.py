"""The piece memo (``pipeline.nlp_fast``) gives the token arrays spaCy's docs give.

``nlp.parse_arrays`` is held to ``doc.to_array(ATTRS)`` of ``nlp.parse``'s docs (spaCy's
tokenizer on the whole text, then the pipeline's lemma and sentence steps) for every
text of the bundled data, hand-written adversarial strings and random strings built
from fragments that exercise affixes, special cases, URLs and whitespace.
"""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spacy.attrs import LEMMA, NORM, ORTH, SPACY

from pipeline import columns as C
from pipeline.code.arrays import ATTRS
from pipeline.nlp import make_nlp, parse
from pipeline.nlp_fast import (all_eligible, eligible, parse_arrays, piece_tokenizer,
                               printable)
from pipeline.nlp_specials import _patterns

ROOT = Path(__file__).resolve().parent.parent

ADVERSARIAL = [
    "", " ", "  ", "a", "a b", "a  b", " a", "a ", " a b ", "a\nb", "a\n\nb", "a\tb", "a\xa0b",
    "a \xa0b", "a\u2028b", "a\u3000b", "a\x1fb", "a\u200bb", "\n", "a \n b", "a\r\nb",
    "zie http://www.school.nl/a?b=1 en www.vo-raad.nl.", "mail jan.de.vries@school.nl of",
    "(https://x.org/y).", "Dat is :) leuk :-) of ): niet ;)", "a:) ):a", "a:) :a", "x:) -:a",
    "d.w.z. dat", "d.w.z.", "o.a. de a.s. vergadering, m.b.t. de bv. n.a.v. het",
    "Het is z'n taak, 's ochtends en 's avonds, 't is zo'n dag", "'s", "z'n", "zo'n",
    "co-teaching, leer-werktraject en -achtige", "\"Ja\", zei ze. 'Nee'...", "wat…dus",
    "tja... nou.. ja.", "Don't! It's the teacher's, isn't it? I'm 10a.m. e.g. Dr. Smith",
    "U.S.A. vs. etc. Mr. Mrs. Jan. Feb.", "C++ en c++ of 5% of €10,- of 1,5 uur",
    "¯\\_(ツ)_/¯ ಠ_ಠ ^_^ <3 :( :P", "«citaat» “quote” ‘single’", "a.s. a.s.a.p. a.s.", "...",
    "Hé! Wát? Ja.Nee", "1.2.3 4:5 6/7 8-9", "—", "’s morgens ’t", "''", "' ' '", "( ) ( :",
    "e-mail: info@x.nl.", "http://a.b/c http://a.b/c", "ik   ben", "einde. ", ". begin",
]

FRAGMENTS = ["a", "we", "de", "Ik", "school", "d.w.z.", "'s", "z'n", "a.s.", "-", "—", "\"",
             "'", "’", "...", "…", ":)", ":-)", "):", "(", ")", ":", "http://x.nl/a?b=1",
             "www.school.nl", "jan@school.nl", "e.g.", "don't", "10a.m.", "C++", "co-teaching",
             "n.a.v.", "bv.", "'t", "zo'n", "o.a.", ":(", "<3", "^_^", "ಠ_ಠ", "1,5", "5%",
             "€10", "?", "!", ",", ".", "Dr.", "Mr.", "“", "”", "etc.", "'em", "ain't", "can't"]
SEPARATORS = [" ", " ", " ", "", "", "  ", "\n", "\t", "\xa0", " \n "]


def _docs_arrays(texts: list[str], lang: str) -> list[np.ndarray]:
    return [doc.to_array(ATTRS) for doc in parse(texts, lang)]


def _assert_same(texts: list[str], lang: str) -> None:
    fast = parse_arrays(texts, lang)
    slow = _docs_arrays(texts, lang)
    assert len(fast) == len(slow) == len(texts)
    strings = make_nlp(lang).vocab.strings
    for text, a, b in zip(texts, fast, slow, strict=True):
        assert a.dtype == b.dtype == np.uint64
        assert a.shape == b.shape, text
        assert (a == b).all(), text
        for attr in (ORTH, LEMMA, NORM):  # every hash resolves, as with spaCy's docs
            for h in a[:, ATTRS.index(attr)].tolist():
                assert isinstance(strings[h], str)


def _texts(raw: Path) -> dict[str, list[str]]:
    from pipeline.ingest import ingest
    from pipeline.segment import segment

    result = ingest([raw], detect=True)
    segs = segment(result.documents, result.turns)
    by_lang: dict[str, list[str]] = {}
    for text, lang in zip(segs[C.TEXT].tolist(), segs[C.LANG].tolist(), strict=True):
        by_lang.setdefault(lang, []).append(text)
    for text, lang in zip(result.documents[C.TEXT].tolist(),
                          result.documents[C.LANG].tolist(), strict=True):
        by_lang.setdefault(lang, []).append(text)  # whole documents: newlines, blank lines
    return by_lang


@pytest.mark.parametrize("raw", ["data/raw", "data/heldout8/raw"])
def test_every_text_of_the_bundled_data(raw: str) -> None:
    texts = _texts(ROOT / raw)
    assert texts
    for lang, items in texts.items():
        _assert_same(items, lang)
        # and text by text (a batch of one, as a document of one segment)
        for text in items[:40]:
            _assert_same([text], lang)


@pytest.mark.parametrize("lang", ["nl", "en"])
def test_adversarial_strings(lang: str) -> None:
    _assert_same(ADVERSARIAL, lang)
    _assert_same(list(reversed(ADVERSARIAL)), lang)


@pytest.mark.parametrize("lang", ["nl", "en"])
def test_seeded_random_strings(lang: str) -> None:
    rnd = random.Random(7)
    texts = []
    for _ in range(1500):
        parts = []
        for _ in range(rnd.randint(0, 12)):
            parts += [rnd.choice(FRAGMENTS), rnd.choice(SEPARATORS)]
        texts.append("".join(parts[:-1] if rnd.random() < 0.8 else parts))
    _assert_same(texts, lang)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(FRAGMENTS), st.sampled_from(SEPARATORS)),
                max_size=10),
       st.text(alphabet=st.sampled_from("ab.'-:)( \n\xa0"), max_size=12))
def test_random_strings(pieces: list[tuple[str, str]], tail: str) -> None:
    text = "".join(f + s for f, s in pieces) + tail
    for lang in ("nl", "en"):
        _assert_same([text, "a " + text, text + " a"], lang)


def test_a_match_across_a_space_is_tokenized_by_spacy() -> None:
    # "):" and ")" ")" are special-case patterns: the matcher keeps a match spanning
    # the space, which hides the ":)" and "):" of either piece alone
    nlp = make_nlp("en")
    text = "a:) ):a"
    alone = [t.text for piece in text.split(" ") for t in nlp.tokenizer(piece)]
    whole = [t.text for t in nlp.tokenizer(text)]
    assert alone != whole
    _assert_same([text], "en")
    pairs, _, _, _ = _patterns(nlp.tokenizer)
    strings = nlp.vocab.strings
    assert (strings[")"], strings[")"]) in pairs


def test_most_texts_take_the_memo() -> None:
    nlp = make_nlp("nl")
    texts = _texts(ROOT / "data/raw")["nl"]
    parse_arrays(texts[:1], "nl")  # builds the piece tokenizer of the pipeline
    from pipeline.nlp import _fused_lemmas

    lemmas = _fused_lemmas(nlp, "nl")
    sentencizer = nlp.get_pipe("sentencizer")
    pieces = piece_tokenizer(nlp, lambda o: lemmas.values(o, sentencizer), (lemmas, sentencizer))
    fast = [t for t in texts if t and eligible(t, nlp.max_length)]
    assert len(fast) > len(texts) // 2
    *_, bad = pieces._fast(fast)
    assert bad is None or bad.sum() < len(fast) // 20
    # every piece is in the memo, tokenized once: a second pass adds nothing
    assert {p for t in fast for p in t.split(" ")} <= set(pieces.index)
    n = len(pieces.index), pieces.n_tokens
    pieces._fast(fast)
    assert (len(pieces.index), pieces.n_tokens) == n


def test_eligible_allows_only_single_spaces_between_pieces() -> None:
    # every character str.isspace calls whitespace but ' ' fails isprintable
    assert [c for c in map(chr, range(0x110000)) if c.isspace() and c.isprintable()] == [" "]
    assert eligible("a b c", 100)
    for text in ["a  b", " a", "a ", "a\nb", "a\tb", "a\xa0b", "a\u2028b"]:
        assert not eligible(text, 100)
    assert not eligible("a b", 2)


def test_a_batch_is_all_eligible_when_its_join_is() -> None:
    rng = random.Random(7)
    batches = [[t] for t in ADVERSARIAL] + [[], ["a", ""], ["", "a"], ["a", " b"], ["a ", "b"],
                                             ["a", "b c"], ["a", "b\nc"], ["abc", "d"]]
    batches += [rng.sample(ADVERSARIAL, rng.randint(1, 4)) for _ in range(500)]
    for texts in batches:
        for limit in (3, 100):
            want = bool(texts) and all(t and eligible(t, limit) for t in texts)
            assert all_eligible(texts, " ".join(texts), limit) == want, (texts, limit)


def test_printable_is_isprintable() -> None:
    rng = random.Random(8)
    chars = [chr(c) for c in range(512)] + ["\u2028", "\u200b", "ツ", "€", "\U0001f600"]
    texts = ["", *chars, *ADVERSARIAL]
    texts += ["".join(rng.choices(chars, k=rng.randint(1, 12))) for _ in range(3000)]
    texts += ["".join(rng.choices("ab é,.", k=rng.randint(1, 12))) for _ in range(300)]
    for text in texts:
        assert printable(text) == text.isprintable(), repr(text)


def test_spaces_follow_pieces_but_the_last() -> None:
    nlp = make_nlp("nl")
    (part,) = parse_arrays(["Ja, (dat) klopt."], "nl")
    spaces = part[:, ATTRS.index(SPACY)].tolist()
    assert [nlp.vocab.strings[h] for h in part[:, 0].tolist()] == [
        "Ja", ",", "(", "dat", ")", "klopt", "."]
    assert spaces == [0, 1, 0, 0, 1, 0, 0]


def _plain(nlp, texts):  # noqa: ANN001, ANN202
    parts = [nlp.make_doc(t).to_array([ORTH, NORM, SPACY]).reshape(-1, 3) for t in texts]
    return np.concatenate([*parts, np.zeros((0, 3), dtype=np.uint64)])


def _no_values(orth: np.ndarray):  # noqa: ANN202
    return np.zeros(len(orth), dtype=np.uint64), np.zeros(len(orth), dtype=np.uint8)


def test_a_changed_tokenizer_or_a_full_memo_starts_afresh(monkeypatch) -> None:
    import spacy

    from pipeline import nlp_fast

    nlp = spacy.blank("en")
    pieces = nlp_fast.PieceTokenizer(nlp, _no_values)
    texts = ["the zork is here.", "zork, zork!", "a b c d e f g"]

    def check() -> None:
        orth, norm, spacy_, _, _, bounds = pieces.tokens(texts)
        want = _plain(nlp, texts)
        assert (orth == want[:, 0]).all() and (norm == want[:, 1]).all()
        assert (spacy_ == want[:, 2].astype(bool)).all() and bounds[-1] == len(want)

    check()
    nlp.tokenizer.add_special_case("zork", [{ORTH: "zo"}, {ORTH: "rk", NORM: "rock"}])
    check()  # the new special case is used: the memo was emptied
    assert "zo" in {nlp.vocab.strings[h] for h in pieces.rows[:pieces.n_tokens, ATTRS.index(ORTH)].tolist()}
    monkeypatch.setattr(nlp_fast, "_MAX_PIECES", 3)
    check()
    check()
    assert len(pieces.index) <= 3 + len({p for t in texts for p in t.split(" ")})


def test_only_spacys_own_tokenizer_is_supported() -> None:
    import spacy
    from spacy.tokenizer import Tokenizer

    from pipeline.nlp_fast import supported

    class Custom(Tokenizer):
        pass

    nlp = spacy.blank("en")
    assert supported(nlp) and supported(make_nlp("nl"))
    nlp.tokenizer = Custom(nlp.vocab)
    assert not supported(nlp)


@pytest.mark.parametrize("lang", ["nl", "en"])
def test_pieces_looked_up_by_arrow_give_the_same_arrays(lang: str, monkeypatch) -> None:
    """The Arrow split and lookup (``_arrow_ids``) on every call, however big the memo."""
    from pipeline import nlp_fast

    monkeypatch.setattr(nlp_fast, "_ARROW_MIN", 0)
    monkeypatch.setattr(nlp_fast, "_ARROW_RATIO", 10**9)
    calls = []
    original = nlp_fast.PieceTokenizer._arrow_ids

    def spy(self, joined, n):  # noqa: ANN001, ANN202
        got = original(self, joined, n)
        calls.append(got is not None)
        if got is not None:  # the memo ids of the pieces, as the dict gives them
            assert got.tolist() == [self.index[p] for p in joined.split(" ")]
        return got

    monkeypatch.setattr(nlp_fast.PieceTokenizer, "_arrow_ids", spy)
    rng = random.Random(11)
    texts = ADVERSARIAL + ["".join(rng.choice(FRAGMENTS) + rng.choice(SEPARATORS)
                                   for _ in range(rng.randint(1, 12))) for _ in range(300)]
    _assert_same(texts, lang)
    for k in range(0, len(texts), 37):  # batches that find most pieces in the memo
        _assert_same(texts[k:k + 37], lang)
    assert sum(calls) > 5


def test_arrow_lookup_only_while_the_memo_is_small(monkeypatch) -> None:
    import spacy

    from pipeline import nlp_fast

    pieces = nlp_fast.PieceTokenizer(spacy.blank("en"), _no_values)
    words = [f"w{k}" for k in range(600)]
    assert pieces._arrow_ids(" ".join(words[:300]), 300) is not None  # an empty memo
    assert len(pieces.index) == 300
    assert pieces._arrow_ids(" ".join(words[:10]), 10) is None  # too few pieces to pay
    assert pieces._arrow_ids(" ".join(words[300:556]), 256) is None  # memo of 300 > 256
    got = pieces._arrow_ids(" ".join(words[::-1]), 600)
    assert got.tolist() == [pieces.index[w] for w in words[::-1]]
    monkeypatch.setattr(nlp_fast, "_ARROW_MIN", 0)
    assert pieces._arrow_ids("a \ud800 b", 3) is None  # not UTF-8: looked up in Python


def test_a_large_batch_is_parsed_in_runs_with_the_same_arrays(monkeypatch) -> None:
    from pipeline import nlp_fast

    texts = _texts(ROOT / "data/raw")["nl"]
    whole = parse_arrays(texts, "nl")
    calls: list[int] = []
    monkeypatch.setattr(nlp_fast, "PARSE_CHARS", 500)
    real = nlp_fast.PieceTokenizer.token_rows
    monkeypatch.setattr(nlp_fast.PieceTokenizer, "token_rows",
                        lambda self, batch: calls.append(len(batch)) or real(self, batch))
    runs = parse_arrays(texts, "nl")
    assert sum(calls) == len(texts) and len(calls) > 10
    assert sum(map(len, texts)) > 500 * len(calls) // 2
    assert len(runs) == len(whole)
    for a, b, text in zip(runs, whole, texts, strict=True):
        assert a.shape == b.shape and (a == b).all(), text
