"""Language of a short text (Dutch or English) from stopword ratios, offline.

Survey CSVs mix Dutch and English answers in one file. Function words decide: each
candidate language has a small list of frequent words that are rare in the other;
the language whose words make up the larger share of the text's tokens wins. Texts
with too little evidence (no listed word, or a tie) get the default.
"""
from __future__ import annotations

import re
from collections.abc import Sequence

from pipeline.errors import UsageError

# Frequent function words, chosen to be (nearly) absent from the other language.
# Words shared by both ("in", "is", "was", "we", "hij"/"he"-like false friends such as
# "die", "door", "over", "had") are left out.
STOPWORDS: dict[str, frozenset[str]] = {
    "nl": frozenset("""
        de het een en van dat niet ik je jij zijn er op aan met als voor ook maar om dan
        zo nog wel naar bij uit kan wat ze zij wij ons onze mijn hebben heb heeft hadden
        werd worden wordt geen veel meer nu hier daar omdat want toen wanneer hoe
        waarom welke deze dit mij zich zelf al heel echt gewoon eigenlijk misschien
        moet moeten mogen mocht kunnen konden zou zouden wil willen gaat gaan doen
        leerlingen leraren niets niks nooit altijd samen tijd goed zeer erg
    """.split()),
    "en": frozenset("""
        the a an and of to that not you your they them their it its on at with as for
        but so then there here what who which how why when our my me us our have has
        having were been being would could should will can't don't didn't isn't
        doesn't won't i'm it's we're they're this these those from by about into just
        really very much more some any no nothing never always together time good
        students teachers because while if or than also only
    """.split()),
}
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")
MIN_HITS = 2          # fewer listed words than this: no evidence, the default wins


def detect_language(text: str, candidates: Sequence[str] = ("nl", "en"),
                    default: str = "nl") -> str:
    """Return the candidate language with the highest stopword ratio in ``text``.

    Args:
        text: the text (any length; None/NaN count as empty).
        candidates: languages to choose from (each must have a stopword list).
        default: returned when the text gives no clear evidence (fewer than
            ``MIN_HITS`` listed words, or a tie).

    Raises:
        UsageError: a candidate language without a stopword list.
    """
    for lang in candidates:
        if lang not in STOPWORDS:
            raise UsageError(f"no stopword list for language {lang!r} (supported: "
                             f"{', '.join(STOPWORDS)})")
    if not isinstance(text, str):
        return default
    text = text.replace("\u2019", "'")
    if _lower_commutes(text):
        words = _WORD.findall(text.lower())  # one lower() of the text, not one per word
    else:
        words = [w.lower() for w in _WORD.findall(text)]
    if not words:
        return default
    scores = {lang: sum(map(STOPWORDS[lang].__contains__, words)) for lang in candidates}
    ranked = sorted(scores.items(), key=lambda kv: -kv[1])
    best, hits = ranked[0]
    if hits < MIN_HITS or (len(ranked) > 1 and ranked[1][1] == hits):
        return default
    return best


def _lower_commutes(text: str) -> bool:
    """Whether ``_WORD.findall(text.lower())`` lower-cases the words ``_WORD.findall(text)``.

    True for Latin-1 text (a survey answer in Dutch or English): there ``str.lower``
    maps every character to one character of the same kind (letter, digit, other), so
    the words are found at the same places (tests/test_langid.py checks every
    character). Other text (a Turkish dotted I lowers to two characters) is lowered
    word by word.
    """
    if text.isascii():
        return True
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True
