"""What the tokens of a whitespace-free piece depend on besides the piece.

``nlp_fast.PieceTokenizer`` tokenizes each distinct piece once and reuses its tokens;
that is only right while the tokenizer is the same (``_state``) and where no special
case spans several pieces (``_patterns``: the special-case matcher's patterns, as
``Tokenizer.add_special_case`` makes them).
"""
from __future__ import annotations

from spacy import util
from spacy.attrs import ORTH
from spacy.tokenizer import Tokenizer
from spacy.util import registry


def _state(tokenizer) -> tuple:  # noqa: ANN001
    """What the tokens of a piece depend on besides the piece (compared by identity; a
    special case added or removed changes the number of rules - ``make_nlp``'s
    tokenizer is never changed after it is built)."""
    rules = tokenizer.rules
    return (type(tokenizer), id(rules), len(rules), tokenizer.prefix_search,
            tokenizer.suffix_search, tokenizer.infix_finditer, tokenizer.token_match,
            tokenizer.url_match, tokenizer.faster_heuristics)


def _patterns(tokenizer):  # noqa: ANN001, ANN202
    """The special-case matcher's patterns: (adjacent ORTH pairs, key -> first ORTH,
    key -> last ORTH, longest key).

    As ``Tokenizer.add_special_case`` adds them: a special case with a prefix, suffix,
    infix or space (every one without ``faster_heuristics``), as the tokenizer splits
    it without special cases - here a tokenizer with the same affixes and no rules, on
    a vocab of its own: ORTH values are string hashes, the same in every vocab, and one
    without the language's lexeme attributes makes the keys' lexemes at less cost (the
    tokenizer reads none of them) and leaves the pipeline's vocab as it was.
    """
    from spacy.vocab import Vocab

    bare = Tokenizer(Vocab(), rules=None, prefix_search=tokenizer.prefix_search,
                     suffix_search=tokenizer.suffix_search,
                     infix_finditer=tokenizer.infix_finditer,
                     token_match=tokenizer.token_match, url_match=tokenizer.url_match)
    pairs: set[tuple[int, int]] = set()
    key_first: dict[str, int] = {}
    key_last: dict[str, int] = {}
    heuristics = tokenizer.faster_heuristics
    for key in tokenizer.rules:
        if heuristics and not (tokenizer.find_prefix(key) or tokenizer.find_infix(key)
                               or tokenizer.find_suffix(key) or " " in key):
            continue
        orths = bare(key).to_array(ORTH).reshape(-1).tolist()
        if not orths:
            continue
        key_first[key], key_last[key] = orths[0], orths[-1]
        pairs.update(zip(orths, orths[1:]))
    return pairs, key_first, key_last, max(map(len, key_first), default=0)


# Substrings of texts a ``LazyTokenizer`` looks up before it adds every special case
# instead (about 0.3 us a substring: at most some 0.15 s, half of adding them all).
# The distinct words of a 100,000-segment corpus take 23,000 (``PieceTokenizer``
# tokenizes each once); a whole text of n characters, up to 24 n (Dutch).
SCAN_BUDGET = 500_000
_FEW = 16   # keys of letters and digits looked for one by one up to this many


class LazyTokenizer(Tokenizer):
    """spaCy's ``Tokenizer`` that adds a special case only when a text it tokenizes
    could need it; its tokens are those of the same ``Tokenizer`` with every rule.

    Building spaCy's Dutch tokenizer adds its 4,670 special cases one by one (each
    validated, split by the affix rules and made into lexemes): about 0.3 s of every
    run that parses, while a corpus uses a few dozen of them. Why the tokens do not
    change (spaCy 3.8, ``spacy/tokenizer.pyx``): a special case acts on a text

    - when its key is looked up: for a whitespace-free span of the text and for the
      strings left while affixes are split off it, all substrings of the span;
    - through the special-case matcher: a match of the key's tokens (the affix rules'
      split of the key) replaces them when its text is the key, and a kept match hides
      the shorter matches it overlaps even when it replaces nothing. A match's tokens
      follow each other with at most one space between two of them, so its text
      without spaces is the key, the concatenation of those tokens.

    So a key without whitespace acts on a text only when it is a substring of the text
    with its whitespace removed. Such keys are added (``add_special_case``) before the
    text is tokenized; keys with whitespace, at once. A key added later is in none of
    the texts tokenized before, so their tokens stay right (spaCy's span cache is
    flushed on every addition anyway). Special cases set ORTH and NORM only
    (``_validate_special_case``, run on all of them here as spaCy does); the strings
    and lexemes of one not added yet are made when it is. Once ``SCAN_BUDGET``
    substrings have been looked up, or for a text that could have more than a quarter
    of that, every special case is added, as ``to_bytes`` does.

    ``rules`` is every special case, added or not (what ``__reduce__``, ``explain``
    and ``nlp_specials._patterns`` read).
    """

    def __init__(self, vocab, rules=None, prefix_search=None, suffix_search=None,  # noqa: ANN001
                 infix_finditer=None, token_match=None, url_match=None,
                 faster_heuristics=True, max_cache_size=10000) -> None:
        super().__init__(vocab, None, prefix_search, suffix_search, infix_finditer, token_match,
                         url_match, faster_heuristics, max_cache_size)
        self._take(rules)

    def _take(self, rules) -> None:  # noqa: ANN001
        self._all: dict = {}
        self._pending: set[str] = set()   # keys not added yet
        self._scanned = 0                  # substrings looked up
        rules = dict(rules or {})
        for key, substrings in rules.items():
            self._validate_special_case(key, substrings)
        for key in sorted(rules):  # as Tokenizer._load_special_cases
            if not key or any(ch.isspace() for ch in key):
                Tokenizer.add_special_case(self, key, rules[key])
            else:
                self._pending.add(key)
        self._all = rules
        # keys of letters and digits only, and the others (each has a character that is
        # neither: the substrings of a text to look up are those holding one)
        self._alnum = {key for key in self._pending if key.isalnum()}
        self._other = self._pending - self._alnum
        self._longest = max(map(len, self._pending), default=0)

    @property
    def rules(self) -> dict:
        """Every special case (key -> token attributes), added to the tokenizer or not."""
        return self._all

    @rules.setter
    def rules(self, rules) -> None:  # noqa: ANN001
        Tokenizer.rules.__set__(self, None)  # flushes the cache and every special case
        self._take(rules)

    def add_special_case(self, string: str, substrings) -> None:  # noqa: ANN001
        """``Tokenizer.add_special_case``, kept in ``rules``."""
        substrings = list(substrings)
        Tokenizer.add_special_case(self, string, substrings)
        self._all[string] = substrings
        self._pending.discard(string)

    def __call__(self, string: str):  # noqa: ANN204 - Doc
        if self._pending and isinstance(string, str):
            self._cover(string)
        return Tokenizer.__call__(self, string)

    def explain(self, text: str) -> list:
        if self._pending and isinstance(text, str):
            self._cover(text)
        return Tokenizer.explain(self, text)

    def to_bytes(self, **kwargs) -> bytes:  # noqa: ANN003
        self.add_all()
        return Tokenizer.to_bytes(self, **kwargs)

    def add_all(self) -> None:
        """Add every special case not added yet."""
        for key in sorted(self._pending):
            Tokenizer.add_special_case(self, key, self._all[key])
        self._pending.clear()
        self._alnum.clear()
        self._other.clear()

    def _cover(self, text: str) -> None:
        """Add the special cases whose keys occur in ``text`` without its whitespace."""
        s = text if text.isalnum() else "".join(text.split())
        n, longest = len(s), self._longest
        if self._scanned > SCAN_BUDGET or n * longest > SCAN_BUDGET // 4:
            self.add_all()
            return
        found: list[str] = []
        alnum, other = self._alnum, self._other
        if alnum and len(alnum) <= _FEW:
            found += [key for key in alnum if key in s]
            self._scanned += len(alnum)
        elif alnum:
            found += [s[i:j] for i in range(n) for j in range(i + 1, min(n, i + longest) + 1)
                      if s[i:j] in alnum]
            self._scanned += n * longest
        if other and not s.isalnum():
            # the substrings holding a character that is neither a letter nor a digit:
            # from each start, those that end after the first such character from there
            marks = [p for p, ch in enumerate(s) if not ch.isalnum()]
            k = 0
            for i in range(n):
                while k < len(marks) and marks[k] < i:
                    k += 1
                if k == len(marks):
                    break
                stop = min(n, i + longest)
                found += [s[i:j] for j in range(marks[k] + 1, stop + 1) if s[i:j] in other]
                self._scanned += max(0, stop - marks[k])
        if found:
            self._flush_cache()  # once, not by every addition (it walks the whole cache)
            for key in sorted(set(found)):
                Tokenizer.add_special_case(self, key, self._all[key])
                self._pending.discard(key)
                alnum.discard(key)
                other.discard(key)


LAZY_TOKENIZER = "qcode.LazyTokenizer.v1"


@registry.tokenizers(LAZY_TOKENIZER)
def create_lazy_tokenizer():  # noqa: ANN201 - Callable[[Language], LazyTokenizer]
    """``spacy.Tokenizer.v1`` (``spacy.language.create_tokenizer``) making a ``LazyTokenizer``."""

    def tokenizer_factory(nlp) -> LazyTokenizer:  # noqa: ANN001
        defaults = nlp.Defaults
        prefixes, suffixes, infixes = defaults.prefixes, defaults.suffixes, defaults.infixes
        return LazyTokenizer(
            nlp.vocab, rules=defaults.tokenizer_exceptions,
            prefix_search=util.compile_prefix_regex(prefixes).search if prefixes else None,
            suffix_search=util.compile_suffix_regex(suffixes).search if suffixes else None,
            infix_finditer=util.compile_infix_regex(infixes).finditer if infixes else None,
            token_match=defaults.token_match, url_match=defaults.url_match)

    return tokenizer_factory
