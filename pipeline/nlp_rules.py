"""Tokens of rule terms without building the full tokenizer (``nlp.base_nlp``).

Compiling rules tokenizes their terms with ``make_nlp(lang)``'s tokenizer and needs
its vocab, nothing else of the pipeline. A re-code after a one-rule edit compiles a
few terms; building that tokenizer for them would cost more than matching them.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.languages import check_lang as _check_lang
from pipeline.nlp import _BLANKS, _blank, base_vocab

if TYPE_CHECKING:
    from spacy.tokens import Doc


class RuleNLP:
    """What compiling rules needs of ``make_nlp(lang)``: its vocab and its tokenization.

    Attributes:
        lang: the language.
        vocab: ``base_vocab(lang)``, the vocab of ``make_nlp(lang)``.
        tokenizer: a ``RuleTokenizer`` (the tokens ``make_nlp(lang).tokenizer`` gives).
    """

    def __init__(self, lang: str) -> None:
        self.lang = lang
        self.vocab = base_vocab(lang)
        self.tokenizer = RuleTokenizer(lang)


class RuleTokenizer:
    """The tokens of ``make_nlp(lang)``'s tokenizer, building it only when they could differ.

    Building that tokenizer costs about 0.1 s (``spacy.blank`` and the affix regexes;
    its special cases are added as texts need them, ``nlp_specials.LazyTokenizer``), and
    a re-code after a one-rule edit compiles a few terms. Special cases change a text's
    tokens only where one of them occurs in it: spaCy looks them up for substrings of
    the text (``_specials`` while affixes are split) and matches the token sequences of
    the others (``_special_matcher``), and without whitespace such a sequence is a
    substring too. They set no lexeme attribute but ORTH and NORM (NORM only on the
    token; the lexemes are made from their strings either way). So a text without
    whitespace and without a special case among its substrings is tokenized by the same
    tokenizer without special cases; any other text, by the full one (built then). Once
    the full tokenizer is built (a run that parses), it is used for everything.
    """

    def __init__(self, lang: str) -> None:
        self.lang = _check_lang(lang)
        self._bare: object | None = None
        self._safe: bool | None = None    # None: the special cases not looked at yet
        self._keys: frozenset[str] = frozenset()
        self._longest = 0

    def __call__(self, text: str) -> Doc:
        """Tokenize ``text`` as ``make_nlp(self.lang).tokenizer`` does."""
        full = _BLANKS.get(self.lang)
        if full is None and self._needs_specials(text):
            full = _blank(self.lang)
        if full is not None:
            return full.tokenizer(text)
        if text.isalpha():
            # Letters only: every prefix, suffix and infix pattern needs a character
            # that is not a letter (punctuation, quotes, hyphens, symbols, digits), and
            # the URL pattern a dot, so the text is one token. Compiling the affix
            # regexes costs about 0.1 s; a one-rule edit usually adds words like this.
            from spacy.tokens import Doc

            return Doc(base_vocab(self.lang), words=[text], spaces=[False])
        return self._bare_tokenizer()(text)

    def _needs_specials(self, text: str) -> bool:
        """Whether a special case could apply to ``text``."""
        if self._safe is None:
            self._safe = self._read_specials()
        if not self._safe or any(ch.isspace() for ch in text):
            return True
        keys, n = self._keys, len(text)
        return any(text[i:j] in keys for i in range(n)
                   for j in range(i + 1, min(n, i + self._longest) + 1))

    def _read_specials(self) -> bool:
        """Read the special cases' strings; False: one sets more than ORTH/NORM (not safe)."""
        from spacy.attrs import NORM, ORTH
        from spacy.util import get_lang_class

        rules = get_lang_class(self.lang).Defaults.tokenizer_exceptions or {}
        # "number" is a deprecated key that spaCy drops; any other attribute would set
        # a lexeme attribute: then only the full tokenizer gives the same vocab.
        if any(set(props) - {ORTH, NORM, "number"} for subs in rules.values() for props in subs):
            return False
        self._keys = frozenset(key for key in rules if key and not any(c.isspace() for c in key))
        self._longest = max((len(key) for key in self._keys), default=0)
        return True

    def _bare_tokenizer(self):  # noqa: ANN202 - spacy Tokenizer
        """The tokenizer of ``spacy.Tokenizer.v1`` without its rules (built once)."""
        if self._bare is None:
            from spacy import util
            from spacy.tokenizer import Tokenizer
            from spacy.util import get_lang_class

            defaults = get_lang_class(self.lang).Defaults
            prefixes, suffixes, infixes = defaults.prefixes, defaults.suffixes, defaults.infixes
            # as spacy.language.create_tokenizer, with rules=None
            self._bare = Tokenizer(
                base_vocab(self.lang), rules=None,
                prefix_search=util.compile_prefix_regex(prefixes).search if prefixes else None,
                suffix_search=util.compile_suffix_regex(suffixes).search if suffixes else None,
                infix_finditer=util.compile_infix_regex(infixes).finditer if infixes else None,
                token_match=defaults.token_match, url_match=defaults.url_match)
        return self._bare
