"""Tests of pipeline.langid: stopword-ratio language detection."""
from __future__ import annotations

import pytest

from pipeline.errors import UsageError
from pipeline.langid import detect_language


@pytest.mark.parametrize("text, expected", [
    ("We mochten het zelf invullen, dat was fijn.", "nl"),
    ("Ik heb er eigenlijk niet zoveel tijd voor gekregen.", "nl"),
    ("We could shape it ourselves and the team decided.", "en"),
    ("The school didn't give us any time for it.", "en"),
    ("Onze leraren kregen geen uren, but the board said nothing about that at all.", "en"),
])
def test_detects_dutch_and_english(text: str, expected: str) -> None:
    assert detect_language(text) == expected
    assert detect_language(text, default="en" if expected == "nl" else "nl") == expected


@pytest.mark.parametrize("text", ["", "ok", "Goed!", "Yes", "123 456", None, float("nan")])
def test_no_evidence_gives_the_default(text: object) -> None:
    assert detect_language(text, default="en") == "en"  # type: ignore[arg-type]
    assert detect_language(text, default="nl") == "nl"  # type: ignore[arg-type]


def test_tie_gives_the_default_and_candidates_restrict() -> None:
    assert detect_language("the de and en", default="en") == "en"
    assert detect_language("the de and en", default="nl") == "nl"
    assert detect_language("We could shape it ourselves.", candidates=("nl",)) == "nl"


def test_unknown_candidate_language() -> None:
    with pytest.raises(UsageError, match="no stopword list for language 'de'"):
        detect_language("Wir haben das", candidates=("nl", "de"))


def _detect_word_by_word(text, candidates=("nl", "en"), default="nl"):  # noqa: ANN001, ANN202
    """The previous detect_language: every word lower-cased alone."""
    from pipeline.langid import _WORD, MIN_HITS, STOPWORDS

    if not isinstance(text, str):
        return default
    words = [w.lower().replace("\u2019", "'") for w in _WORD.findall(text.replace("\u2019", "'"))]
    if not words:
        return default
    scores = {lang: sum(w in STOPWORDS[lang] for w in words) for lang in candidates}
    ranked = sorted(scores.items(), key=lambda kv: -kv[1])
    best, hits = ranked[0]
    if hits < MIN_HITS or (len(ranked) > 1 and ranked[1][1] == hits):
        return default
    return best


def test_lowering_the_text_finds_the_words_lowered():
    """Every Latin-1 character lowers to one character of the same kind for ``_WORD``."""
    from pipeline.langid import _WORD, _lower_commutes

    for code in range(256):
        char = chr(code)
        text = f"Ab{char}cd {char}x{char} y'{char}"
        assert _lower_commutes(text)
        assert _WORD.findall(text.lower()) == [w.lower() for w in _WORD.findall(text)], code
    assert not _lower_commutes("İstanbul")  # lowers to two characters: word by word


def test_detection_matches_word_by_word_lowering():
    import random

    rng = random.Random(5)
    alphabet = list("aAbdeEhiInNtTrRoO ',.\u2019-_09") + ["é", "Ë", "ß", "İ", "Σ", "ﬁ", "µ"]
    words = ["de", "het", "The", "AND", "niet", "NOT", "we're", "DON\u2019T", "zelf", "Ook"]
    for _ in range(3000):
        text = " ".join(rng.choice(words) if rng.random() < 0.6
                        else "".join(rng.choices(alphabet, k=rng.randint(1, 8)))
                        for _ in range(rng.randint(0, 12)))
        for default in ("nl", "en"):
            assert detect_language(text, default=default) == _detect_word_by_word(
                text, default=default), text


def test_latin1_words_are_the_words():
    """``_LATIN1_WORD`` finds what ``_WORD`` finds in Latin-1 text, which lowers to Latin-1."""
    import random

    from pipeline.langid import _LATIN1_WORD, _WORD

    for code in range(256):
        char = chr(code)
        assert len(char.lower()) == 1 and ord(char.lower()) < 256, code
        text = f"Ab{char}cd {char}x{char} y'{char} {char}'{char}{char}"
        assert _LATIN1_WORD.findall(text) == _WORD.findall(text), code
    rng = random.Random(11)
    alphabet = [chr(c) for c in range(256)]
    for _ in range(2000):
        text = "".join(rng.choices(alphabet, k=rng.randint(0, 40)))
        assert _LATIN1_WORD.findall(text) == _WORD.findall(text), text


def _random_texts(seed: int, n: int):  # noqa: ANN202
    import random

    rng = random.Random(seed)
    alphabet = list("aAbdeEhiInNtTrRoO ',.\u2019-_09\n") + ["\n\n", "é", "Ë", "ß", "İ", "Σ", "µ"]
    words = ["de", "het", "The", "AND", "niet", "NOT", "we're", "DON\u2019T", "zelf", "Ook",
             "\n\n", "'\n\n", "\n\n'", "can'\n\nt"]
    for _ in range(n):
        yield "".join(rng.choice(words) if rng.random() < 0.6
                      else "".join(rng.choices(alphabet, k=rng.randint(1, 8)))
                      for _ in range(rng.randint(0, 30)))


def test_pieces_count_the_words_of_the_whole_text():
    from pipeline.langid import PIECE_BREAK, stopword_hits

    for text in _random_texts(7, 3000):
        pieces = [stopword_hits(p) for p in text.split(PIECE_BREAK)]
        assert tuple(map(sum, zip(*pieces))) == stopword_hits(text), repr(text)
        for default in ("nl", "en"):
            assert detect_language(text, default=default, pieces=True) == \
                detect_language(text, default=default), repr(text)
    assert detect_language("de\n\nhet", pieces=True, default="en") == "nl"
    assert detect_language(None, pieces=True, default="en") == "en"  # type: ignore[arg-type]


def test_remembering_counts_each_text_once(monkeypatch):
    import threading

    from pipeline import langid

    seen: list[str] = []
    count = langid._count
    monkeypatch.setattr(langid, "_count", lambda text: seen.append(text) or count(text))
    survey = "Het was de tijd.\n\nThe time was right and the team too.\n\nOk"
    with langid.remembering():
        assert detect_language(survey, pieces=True) == "en"
        with langid.remembering():  # nested: the same counts
            assert detect_language("The time was right and the team too.") == "en"
        assert detect_language("Het was de tijd.", default="en") == "nl"
        other: list[str] = []
        worker = threading.Thread(target=lambda: other.append(detect_language("Ok")))
        worker.start()
        worker.join()  # another thread has no counts of this block
    assert seen == ["Het was de tijd.", "The time was right and the team too.", "Ok", "Ok"]
    assert other == ["nl"]
    detect_language("Het was de tijd.")  # outside the block: counted again
    assert seen[-1] == "Het was de tijd." and len(seen) == 5


def _hits_by_regex(text: str) -> tuple[int, ...]:
    """Stopword hits as the first detect_language counted them: ``_WORD``, each word
    lower-cased alone."""
    from pipeline.langid import _WORD, STOPWORDS

    words = [w.lower() for w in _WORD.findall(text.replace("\u2019", "'"))]
    return tuple(sum(w in STOPWORDS[lang] for w in words) for lang in STOPWORDS)


def test_the_words_of_the_spaced_bytes_are_the_regex_words():
    import random

    from pipeline.langid import stopword_hits

    rng = random.Random(17)
    latin1 = [chr(c) for c in range(256)]
    words = ["de", "het", "The", "can't", "CAN'T", "don\u2019t", "we're", "i'm", "it's", "'s",
             "rock'n'roll", "de'", "'de", "''", "'", "a'b'c", "x'de", "o'l'de", "niet", "_de_"]
    cases = ["", "'", "''", "de'de", "'de de'", "de''de", "de'", "'de", "can't'", "'can't",
             "a'b'de'the", "de\nhet\u2019s", "d\xe9 h\xc9t"]
    for _ in range(4000):
        cases.append("".join(rng.choice(words) if rng.random() < 0.5
                             else "".join(rng.choices(latin1 + ["'", " "] * 20,
                                                      k=rng.randint(1, 6)))
                             for _ in range(rng.randint(0, 14))))
    for text in cases:
        assert stopword_hits(text) == _hits_by_regex(text), repr(text)
