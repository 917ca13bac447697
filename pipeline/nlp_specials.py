"""What the tokens of a whitespace-free piece depend on besides the piece.

``nlp_fast.PieceTokenizer`` tokenizes each distinct piece once and reuses its tokens;
that is only right while the tokenizer is the same (``_state``) and where no special
case spans several pieces (``_patterns``: the special-case matcher's patterns, as
``Tokenizer.add_special_case`` makes them).
"""
from __future__ import annotations

from spacy.attrs import ORTH


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
    it without special cases - here a tokenizer with the same affixes and no rules.
    """
    from spacy.tokenizer import Tokenizer

    bare = Tokenizer(tokenizer.vocab, rules=None, prefix_search=tokenizer.prefix_search,
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
