"""``LightVocab``: spaCy's string hashes, symbols and lower forms without spaCy."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from spacy.strings import StringStore
from spacy.strings import hash_string as spacy_hash
from spacy.symbols import IDS, NAMES

from pipeline.code import lightvocab
from pipeline.code.arrays import TokenArrays, rebuild_doc
from pipeline.code.lightvocab import LightVocab, hash_string, spacy_vocab
from pipeline.code.types import TypeTable
from pipeline.code.trie import TokenTrie
from pipeline.nlp import base_vocab, make_nlp

ROOT = Path(__file__).resolve().parent.parent
STRINGS = ["a", "zzedit", "leerkracht", "École", "Straße", "👍", "goed👍", "e-mail", "'s",
           "ADJ", "mark", "number", "IS_ALPHA", "nsubj", "x" * 300, "€", "\u00a0", "ĳ", "ǅ",
           "İ", "Ω", "日本語", "1.000", "https://example.org/a?b=c", "ﬁ"]


def _strings() -> list[str]:
    words = set(STRINGS)
    for path in sorted((ROOT / "data" / "raw").glob("*.txt"))[:10]:
        words.update(path.read_text(encoding="utf-8").split())
    return sorted(words)


def test_hash_is_spacys() -> None:
    assert lightvocab.available()
    words = _strings()
    assert len(words) > 1000
    assert [hash_string(w) for w in words] == [spacy_hash(w) for w in words]


def test_strings_add_and_lookup_as_a_string_store() -> None:
    light = LightVocab("nl", dict(IDS), list(NAMES))
    store = StringStore()
    words = ["", *_strings()]
    assert [light.strings.add(w) for w in words] == [store.add(w) for w in words]
    for w in words:
        h = store.add(w)
        assert light.strings[h] == store[h] and h in light.strings
    assert light.strings[0] == "" and light.strings[IDS["ADJ"]] == "ADJ"
    assert light._real is None  # nothing needed spaCy's vocab


def test_lexeme_lower_and_the_real_vocab() -> None:
    light = LightVocab("nl", dict(IDS), list(NAMES))
    real = base_vocab("nl")
    for w in _strings():
        h = light.strings.add(w)
        assert light[h].lower_ == real[real.strings.add(w)].lower_, w
    h = light.strings.add("zzlightonly")
    assert light._real is None
    # something the light vocab cannot answer builds the real one with its strings
    assert spacy_vocab(light) is real and light._real is real
    assert real.strings[h] == "zzlightonly"
    later = light.strings.add("zzlater")  # added to both from now on
    assert real.strings[later] == "zzlater" and light[later].lower_ == "zzlater"


def test_matcher_types_and_docs_with_a_light_vocab() -> None:
    nlp = make_nlp("nl")
    docs = [nlp("Wij kiezen ZELF de leerkracht, mark het nummer."), nlp("Geen ADJ: 👍 e-mail.")]
    arrays = TokenArrays.from_docs(docs)
    light = LightVocab("nl", dict(IDS), list(NAMES))
    for doc in docs:
        for token in doc:
            light.strings.add(token.text)
            light.strings.add(token.lemma_)
    trie = TokenTrie()
    trie.add([("zelf", False)], 0)
    trie.freeze()
    plain, lit = TypeTable(trie, frozenset({"geen"}), []), TypeTable(trie, frozenset({"geen"}), [])
    a = plain.ids(nlp.vocab, arrays.orth, arrays.lemma)
    b = lit.ids(light, arrays.orth, arrays.lemma)
    assert np.array_equal(a, b) and plain.keys == lit.keys
    assert np.array_equal(plain.cue.data, lit.cue.data)
    part = docs[0].to_array(["ORTH", "LEMMA", "SENT_START", "SPACY", "NORM"])
    assert rebuild_doc(light, part).text == docs[0].text
