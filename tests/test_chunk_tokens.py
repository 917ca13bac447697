"""``chunk_tokens``: the words of a loaded chunk entry, for the probe of a re-code."""
import numpy as np

from pipeline.chunk_tokens import EntryWords, StoredTokens

STRINGS = ["School", "school", "Vernieuwing", "de", "Eigenaarschap", "d.w.z."]


def test_entry_words_answer_as_the_set_of_strings_and_lower_forms():
    full = set(STRINGS) | {s.lower() for s in STRINGS}
    for word in ["school", "School", "vernieuwing", "Vernieuwing", "eigenaarschap", "d.w.z.",
                 "DE", "zzq", ""]:
        assert (word in EntryWords(STRINGS)) == (word in full), word
    words = EntryWords(STRINGS)
    assert "de" in words and words._every is None  # among the strings: nothing lower-cased
    assert "vernieuwing" in words and words._every is not None
    assert set(EntryWords(STRINGS)) == full and len(EntryWords(STRINGS)) == len(full)
    assert EntryWords(STRINGS) and not EntryWords([])


def test_words_are_given_for_any_batch_of_the_entrys_own_parts():
    table = np.arange(12, dtype=np.uint64).reshape(6, 2)
    tokens = StoredTokens()
    tokens.strings = STRINGS
    tokens[0] = [table[0:2], table[2:3]]
    tokens[5] = [table[3:6]]
    every = tokens.parts()
    assert set(tokens.words(every)) >= {"school", "vernieuwing"}
    assert tokens.words([every[0], every[2]]) is not None  # a segment left out
    assert tokens.words([every[0], table[2:3]]) is None     # an equal array, not its part
    assert tokens.words([]) is None
    tokens.strings = None
    assert tokens.words(every) is None
