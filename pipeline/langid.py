"""Language of a short text (Dutch or English) from stopword ratios, offline.

Survey CSVs mix Dutch and English answers in one file. Function words decide: each
candidate language has a small list of frequent words that are rare in the other;
the language whose words make up the larger share of the text's tokens wins. Texts
with too little evidence (no listed word, or a tie) get the default.
"""
from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

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
# ``_WORD`` for Latin-1 text: the letters below 256 spelled out (made from ``_WORD``'s own
# class, so it finds the same words), usable on bytes.
_LATIN1_LETTERS = "[" + re.escape("".join(
    c for c in map(chr, range(256)) if re.fullmatch(r"[^\W\d_]", c))) + "]"
_LATIN1_WORD = re.compile(f"{_LATIN1_LETTERS}+(?:'{_LATIN1_LETTERS}+)?")
# Latin-1 text as bytes: letters and apostrophes kept, every other byte a space. A word
# never spans a space, so the words of a space-free run are the run itself when it has
# no apostrophe (almost all runs), else ``_BYTES_WORD``'s words of the run.
_KEPT = frozenset(ord(c) for c in map(chr, range(256)) if _LATIN1_WORD.fullmatch(c)) | {39}
_SPACED = bytes(b if b in _KEPT else 32 for b in range(256))
_BYTES_WORD = re.compile(_LATIN1_WORD.pattern.encode("latin-1"))
MIN_HITS = 2          # fewer listed words than this: no evidence, the default wins
# Where ``detect_language(..., pieces=True)`` cuts a text: no word spans a line break, so
# the pieces' words are the text's words (a survey CSV's answers are joined by it).
PIECE_BREAK = "\n\n"
_LANGS = tuple(STOPWORDS)
_STOP_BYTES = tuple(frozenset(w.encode("latin-1") for w in STOPWORDS[lang]) for lang in _LANGS)
_MEMO = threading.local()   # .hits: text -> hits per language of _LANGS, in ``remembering``


def detect_language(text: str, candidates: Sequence[str] = ("nl", "en"),
                    default: str = "nl", *, pieces: bool = False) -> str:
    """Return the candidate language with the highest stopword ratio in ``text``.

    Args:
        text: the text (any length; None/NaN count as empty).
        candidates: languages to choose from (each must have a stopword list).
        default: returned when the text gives no clear evidence (fewer than
            ``MIN_HITS`` listed words, or a tie).
        pieces: count the words of the text's pieces between blank lines
            (``PIECE_BREAK``) one piece at a time: the same counts, and inside
            ``remembering`` each piece's counts are kept for a later call on that
            piece alone (a survey's answer, whose language is detected again).

    Raises:
        UsageError: a candidate language without a stopword list.
    """
    for lang in candidates:
        if lang not in STOPWORDS:
            raise UsageError(f"no stopword list for language {lang!r} (supported: "
                             f"{', '.join(STOPWORDS)})")
    if not isinstance(text, str):
        return default
    if pieces:
        totals = [0] * len(_LANGS)
        for piece in text.split(PIECE_BREAK):
            for k, n in enumerate(stopword_hits(piece)):
                totals[k] += n
        hits = tuple(totals)
    else:
        hits = stopword_hits(text)
    scores = {lang: hits[_LANGS.index(lang)] for lang in candidates}
    ranked = sorted(scores.items(), key=lambda kv: -kv[1])
    best, top = ranked[0]
    if top < MIN_HITS or (len(ranked) > 1 and ranked[1][1] == top):
        return default
    return best


def stopword_hits(text: str) -> tuple[int, ...]:
    """How many of ``text``'s words are on each stopword list (``STOPWORDS`` order).

    Inside ``remembering``, a text's counts are computed once.
    """
    memo = getattr(_MEMO, "hits", None)
    if memo is not None:
        got = memo.get(text)
        if got is None:
            got = memo[text] = _count(text)
        return got
    return _count(text)


@contextmanager
def remembering() -> Iterator[None]:
    """Keep the stopword counts of every text seen (in this thread) until the block ends.

    A chunk detects a survey's language from all its answers (``pieces=True``) and
    then each answer's: the answers' words are then found once. Nested blocks share
    the outer block's counts.
    """
    outer = getattr(_MEMO, "hits", None)
    if outer is None:
        _MEMO.hits = {}
    try:
        yield
    finally:
        if outer is None:
            _MEMO.hits = None


def _count(text: str) -> tuple[int, ...]:
    text = text.replace("\u2019", "'")
    if _lower_commutes(text):
        # one lower() of the text, not one per word; it stays Latin-1 (every Latin-1
        # character lowers to one Latin-1 character: tests/test_langid.py), and its
        # bytes split at spaces are its words (``_SPACED``), without a regex
        return _count_spaced(text.lower().encode("latin-1").translate(_SPACED))
    words = [w.lower() for w in _WORD.findall(text)]
    return tuple(sum(map(STOPWORDS[lang].__contains__, words)) for lang in _LANGS)


def _count_spaced(data: bytes) -> tuple[int, ...]:
    """Stopword hits of the words of ``data`` (lower-cased Latin-1, ``_SPACED``)."""
    runs = data.split()
    counts = [sum(map(stop.__contains__, runs)) for stop in _STOP_BYTES]
    at = data.find(b"'")
    while at >= 0:  # a run with an apostrophe: its own words instead of itself
        begin, end = data.rfind(b" ", 0, at) + 1, data.find(b" ", at)
        end = len(data) if end < 0 else end
        run = data[begin:end]
        words = _BYTES_WORD.findall(run)
        for k, stop in enumerate(_STOP_BYTES):
            counts[k] += sum(map(stop.__contains__, words)) - (run in stop)
        at = data.find(b"'", end)
    return tuple(counts)


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
