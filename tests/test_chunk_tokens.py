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


def test_tokens_encoded_a_block_at_a_time_as_all_at_once(monkeypatch):
    from pipeline import chunk_tokens

    class Strings(dict):
        def __contains__(self, h):  # noqa: ANN001, ANN204
            return True

        def __getitem__(self, h):  # noqa: ANN001, ANN204
            return f"s{h}"

    class Vocab:
        strings = Strings()

    rng = np.random.default_rng(4)
    for trial in range(60):
        n = int(rng.integers(0, 2_000))
        pool = rng.integers(1, 2**64 - 1, size=int(rng.integers(1, 300)), dtype=np.uint64)
        if trial % 2:
            pool[0] = 0  # hash 0 (no string) has index 0
        table = np.zeros((n, 5), dtype=np.uint64)
        for col in (0, 1, 4):
            table[:, col] = rng.choice(pool, size=n)
        table[:, 2] = rng.choice(np.array([1, 0, 2**64 - 1], dtype=np.uint64), size=n)
        table[:, 3] = rng.integers(0, 2, size=n)
        monkeypatch.setattr(chunk_tokens, "ENCODE_ROWS", 1 << 30)
        ids, strings, hashes = chunk_tokens.encode_table(table, [Vocab])
        monkeypatch.setattr(chunk_tokens, "ENCODE_ROWS", int(rng.integers(1, 300)))
        got = chunk_tokens.encode_table(table, [Vocab])
        assert (got[0] == ids).all() and got[1] == strings and (got[2] == hashes).all()
        assert got[0].flags.f_contiguous and got[0].dtype == np.uint32
        # the table as parts of any sizes (a chunk's arrays, not concatenated first)
        cuts = sorted(rng.integers(0, n + 1, size=int(rng.integers(0, 40))).tolist())
        parts = [table[a:b] for a, b in zip([0, *cuts], [*cuts, n])]
        got = chunk_tokens.encode_table(parts, [Vocab])
        assert (got[0] == ids).all() and got[1] == strings and (got[2] == hashes).all()
        # the indexes point at the strings of the hashes (0: no string)
        text = ids[:, [0, 1, 4]].reshape(-1)
        assert ((text == 0) == (table[:, [0, 1, 4]].reshape(-1) == 0)).all()
        assert (hashes[text[text > 0] - 1] == table[:, [0, 1, 4]].reshape(-1)[text > 0]).all()
        assert (ids[:, 2].astype(np.int64) - 1 == table[:, 2].view(np.int64)).all()
