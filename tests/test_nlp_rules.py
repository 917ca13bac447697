"""``nlp.base_nlp``'s tokenizer gives the tokens of ``make_nlp``'s without building it."""
from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.nlp import base_nlp, base_vocab, make_nlp
from pipeline.nlp_rules import RuleTokenizer

ROOT = Path(__file__).resolve().parent.parent


def _words(lang: str) -> list[str]:
    words = {"o.a.", "z.g.a.n.", "bv.", "'s", "d.w.z.", "zo'n", "e-mail", "(school)", "10:30",
             "https://example.org/a?b=c", "we'll", "don't", "U.S.", "etc.", "école", ":-)",
             "zelf-vertrouwen", "leerling.", "'t", "thuis!?", "a.s.", "ca.", "nr.", "N.B."}
    for path in sorted((ROOT / "data" / "raw").glob("*.txt"))[:20]:
        words.update(path.read_text(encoding="utf-8").split())
    words.update((ROOT / "codebook.yaml").read_text(encoding="utf-8").split())
    return sorted(words)


@pytest.mark.parametrize("lang", ["nl", "en"])
def test_bare_path_gives_the_full_tokens(lang: str) -> None:
    full = make_nlp(lang).tokenizer
    rules = RuleTokenizer(lang)
    n_bare = n_letters = 0
    for word in _words(lang):
        expected = [(t.text, t.lower_, t.whitespace_) for t in full(word)]
        if not rules._needs_specials(word):
            n_bare += 1
            bare = rules._bare_tokenizer()
            assert [(t.text, t.lower_, t.whitespace_) for t in bare(word)] == expected, word
            n_letters += word.isalpha()
        assert [(t.text, t.lower_, t.whitespace_) for t in rules(word)] == expected, word
    assert n_bare > 100  # the bare path is the common one
    assert n_letters > 100  # ... and among it the one-token path (letters only)


@pytest.mark.parametrize("lang", ["nl", "en"])
def test_letters_only_are_one_token_without_the_affix_regexes(lang: str, monkeypatch) -> None:
    import pipeline.nlp as nlp

    monkeypatch.setattr(nlp, "_BLANKS", {})  # as in a re-code: no full tokenizer built
    monkeypatch.setattr("pipeline.nlp_rules._BLANKS", nlp._BLANKS)
    rules = RuleTokenizer(lang)
    words = ["zzedit", "leerkracht", "École", "Straße", "ĳsbaan", "naïef", "Ωmega", "ab"]
    docs = [rules(word) for word in words]
    assert rules._bare is None  # no regex compiled
    full = nlp.make_nlp(lang).tokenizer
    for word, doc in zip(words, docs):
        assert [(t.text, t.lower_, t.whitespace_, t.norm_) for t in doc] == [
            (t.text, t.lower_, t.whitespace_, t.norm_) for t in full(word)]
    # every single letter, alone and between letters, is one token of the full tokenizer
    letters = [chr(cp) for cp in range(0x3000) if chr(cp).isalpha()][::7]
    for text in [*letters, *("ab" + ch + "cd" for ch in letters[::5])]:
        if not rules._needs_specials(text):
            assert len(full(text)) == 1, text


def test_special_cases_and_whitespace_take_the_full_tokenizer() -> None:
    rules = RuleTokenizer("nl")
    assert rules._needs_specials("o.a.")
    assert rules._needs_specials("(o.a.)")
    assert rules._needs_specials("two words")
    assert not rules._needs_specials("schoolplein")


def test_base_nlp_has_the_pipeline_vocab() -> None:
    assert base_nlp("nl").vocab is base_vocab("nl")
    assert base_nlp("nl").tokenizer.lang == "nl"
