"""``nlp_specials.LazyTokenizer``: spaCy's tokens, with special cases added when needed.

Each test builds its own tokenizers (``_pair``): the one of ``make_nlp`` is shared by
the whole test session and has most special cases added by now.
"""
from __future__ import annotations

import pickle
import random

import pytest
from spacy.attrs import NORM, ORTH, SPACY

from pipeline import nlp_specials
from pipeline.nlp_specials import LAZY_TOKENIZER, LazyTokenizer
from tests.test_nlp_fast import ADVERSARIAL, FRAGMENTS, SEPARATORS


def _pair(lang: str):  # noqa: ANN202 - (spaCy's Tokenizer, a fresh LazyTokenizer)
    import spacy

    plain = spacy.blank(lang).tokenizer
    config = {"nlp": {"tokenizer": {"@tokenizers": LAZY_TOKENIZER}}}
    lazy = spacy.blank(lang, config=config).tokenizer
    assert type(lazy) is LazyTokenizer and type(plain) is not LazyTokenizer
    return plain, lazy


def _tokens(doc) -> list:  # noqa: ANN001
    strings = doc.vocab.strings
    return [(strings[o], strings[n], s) for o, n, s in doc.to_array([ORTH, NORM, SPACY]).tolist()]


def _texts(rules: dict, seed: int) -> list[str]:
    """Every special case in some context, the adversarial strings and random ones."""
    rnd = random.Random(seed)
    keys = sorted(rules)
    texts = list(ADVERSARIAL)
    for key in keys:
        texts.append(rnd.choice(["{}", "({}", "{})", "x{}", "{}x", "{}.", "'{}'", "a {} b",
                                 "{} " + rnd.choice(keys), rnd.choice(keys) + "{}"]).format(key))
    for _ in range(300):
        texts.append("".join(rnd.choice(FRAGMENTS) + rnd.choice(SEPARATORS)
                             for _ in range(rnd.randint(1, 6))))
    rnd.shuffle(texts)
    return texts


@pytest.mark.parametrize("lang", ["nl", "en"])
def test_the_tokens_are_spacys(lang: str, monkeypatch) -> None:
    monkeypatch.setattr(nlp_specials, "SCAN_BUDGET", 10**9)  # never all at once
    plain, lazy = _pair(lang)
    keys = len(lazy.rules)
    assert keys == len(plain.rules) > 1000
    for text in _texts(plain.rules, seed=3):
        assert _tokens(lazy(text)) == _tokens(plain(text)), text
    assert lazy.rules.keys() == plain.rules.keys()


def test_a_special_case_is_added_when_a_text_holds_it(monkeypatch) -> None:
    monkeypatch.setattr(nlp_specials, "SCAN_BUDGET", 10**9)
    plain, lazy = _pair("nl")
    pending = set(lazy._pending)
    assert len(pending) > 4000 and "d.w.z." in pending and "'t" in pending
    lazy("Dat doen we op school ook")  # no special case in it
    assert lazy._pending == pending
    assert _tokens(lazy("Hij zei: d.w.z.")) == _tokens(plain("Hij zei: d.w.z."))
    added = pending - lazy._pending
    assert "d.w.z." in added and "z." in added and "'t" not in added
    assert all(key in "Hijzei:d.w.z." for key in added)
    # a key spread over pieces is in the text without its whitespace
    lazy("dat ' t klopt")
    assert "'t" not in lazy._pending


def test_past_the_budget_every_special_case_is_added(monkeypatch) -> None:
    monkeypatch.setattr(nlp_specials, "SCAN_BUDGET", 1_000)
    plain, lazy = _pair("nl")
    for text in ["school", "leraar,", "(o.a.", "d.w.z.", "Ja."] * 100:
        assert _tokens(lazy(text)) == _tokens(plain(text))
        if not lazy._pending:
            break
    assert not lazy._pending and lazy._scanned > 1_000
    long_text = "a.s. " * 5_000   # a text whose substrings are over a quarter of the budget
    monkeypatch.setattr(nlp_specials, "SCAN_BUDGET", 100_000)
    _, lazy = _pair("nl")
    assert _tokens(lazy(long_text))[:2] == _tokens(plain(long_text))[:2]
    assert not lazy._pending


def test_explain_pickle_and_bytes_give_the_same_tokenizer() -> None:
    plain, lazy = _pair("nl")
    text = "Het is z'n taak, d.w.z. 's ochtends :) (o.a. co-teaching)"
    assert lazy.explain(text) == plain.explain(text)
    copy = pickle.loads(pickle.dumps(lazy))
    assert type(copy) is LazyTokenizer and copy.rules.keys() == plain.rules.keys()
    assert copy._pending  # still lazy after unpickling
    assert _tokens(copy(text)) == _tokens(plain(text))
    data = lazy.to_bytes()  # every special case, as spaCy's
    assert not lazy._pending
    restored = type(plain)(plain.vocab).from_bytes(data)
    assert restored.rules.keys() == plain.rules.keys()
    assert _tokens(restored(text)) == _tokens(plain(text))


def test_rules_set_or_added_by_hand_are_kept() -> None:
    plain, lazy = _pair("en")
    lazy.add_special_case("zork", [{ORTH: "zo"}, {ORTH: "rk", NORM: "rock"}])
    assert "zork" in lazy.rules and "zork" not in lazy._pending
    assert [t.text for t in lazy("the zork.")] == ["the", "zo", "rk", "."]
    lazy.rules = {"xx.": [{ORTH: "xx."}]}
    assert lazy.rules == {"xx.": [{ORTH: "xx."}]} and lazy._pending == {"xx."}
    assert [t.text for t in lazy("a xx. b e.g.")] == ["a", "xx.", "b", "e.g", "."]
    with pytest.raises(ValueError, match="E997"):  # checked when given, as spaCy does
        LazyTokenizer(plain.vocab, rules={"ab": [{ORTH: "a"}]})


def test_make_nlp_tokenizes_lazily() -> None:
    from pipeline.nlp import make_nlp
    from pipeline.nlp_fast import supported

    nlp = make_nlp("nl")
    assert type(nlp.tokenizer) is LazyTokenizer and supported(nlp)
    assert nlp.config["nlp"]["tokenizer"]["@tokenizers"] == LAZY_TOKENIZER
