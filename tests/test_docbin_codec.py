"""The DocBin codec of the parse cache: the messages spaCy's DocBin writes, read back."""
import zlib

import numpy as np
import pytest

from pipeline.docbin_codec import docbin, docbin_arrays, docbin_payloads
from test_cache import MIXED, TEXTS

GROUPS = [TEXTS, [], [""], MIXED, ["", ""], ["Nog één: 3,5 procent!"]]


@pytest.mark.parametrize("lang", ["nl", "en"])
def test_payloads_of_several_documents_are_each_documents_docbin(lang):
    from pipeline.nlp import base_vocab, parse, parse_arrays

    groups = [parse_arrays(texts, lang) for texts in GROUPS]
    table = np.concatenate([p for parts in groups for p in parts])
    sizes = [[len(p) for p in parts] for parts in groups]

    payloads = docbin_payloads(table, sizes, base_vocab(lang))

    assert len(payloads) == len(GROUPS)
    for texts, payload in zip(GROUPS, payloads, strict=True):
        # the message of DocBin.to_bytes, byte for byte, whatever else was in the call
        assert zlib.decompress(payload) == zlib.decompress(docbin(parse(texts, lang)).to_bytes())


def test_payloads_read_back_as_the_arrays():
    from spacy.tokens import DocBin

    from pipeline.nlp import base_vocab, parse_arrays

    groups = [parse_arrays(texts, "nl") for texts in GROUPS]
    table = np.concatenate([p for parts in groups for p in parts])
    payloads = docbin_payloads(table, [[len(p) for p in parts] for parts in groups],
                               base_vocab("nl"))
    for parts, payload in zip(groups, payloads, strict=True):
        back = docbin_arrays(DocBin().from_bytes(payload), base_vocab("nl"))
        assert len(back) == len(parts)
        assert all(np.array_equal(a, b) for a, b in zip(back, parts, strict=True))


def test_a_hash_the_vocab_lacks_is_an_error():
    from pipeline.code.arrays import ATTRS
    from pipeline.nlp import base_vocab

    table = np.zeros((1, len(ATTRS)), dtype=np.uint64)
    table[0, 0] = 12345  # no string of the vocab has this hash
    with pytest.raises(KeyError, match="12345"):
        docbin_payloads(table, [[1]], base_vocab("nl"))
