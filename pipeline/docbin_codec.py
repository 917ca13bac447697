"""A spaCy ``DocBin`` of parsed segments as bytes and back, without Doc objects.

The entries of the parse cache (``pipeline.cache``) are ``DocBin`` messages: ``docbin``
builds one from docs, ``docbin_payloads`` (``docbin_bytes``: one document) from the
``code.arrays.ATTRS`` arrays of ``nlp.parse_arrays``, and ``docbin_arrays`` reads those
arrays back; every message is ``DocBin.to_bytes``'s, so spaCy reads them as well.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # spaCy is imported where used: the runner process never needs it
    from spacy.tokens import Doc, DocBin

# Attributes the coder reads: lower/lemma/punct come from ORTH+LEMMA via the vocab.
_ATTRS = ["ORTH", "LEMMA", "NORM", "SENT_START"]


def docbin(docs: Sequence[Doc]) -> DocBin:
    """``DocBin(attrs=_ATTRS, docs=docs)`` without its per-token Python loop.

    ``DocBin.add`` collects each token's strings one ``Token`` at a time; here they come
    from the distinct hashes of the same attributes (``Doc.to_array``), so the DocBin
    (arrays, spaces, flags, strings) is the same, several times faster.
    """
    import numpy as np
    from spacy.attrs import DEP, ENT_ID, ENT_KB_ID, ENT_TYPE, LEMMA, MORPH, NORM, ORTH, SPACY, TAG
    from spacy.tokens import DocBin

    out = DocBin(attrs=_ATTRS, store_user_data=False)
    string_attrs = [ORTH, TAG, LEMMA, NORM, MORPH, DEP, ENT_TYPE, ENT_KB_ID, ENT_ID]
    hashes = []
    for doc in docs:
        if doc.spans or doc.user_hooks:  # span labels etc.: DocBin's own code
            out.add(doc)
            continue
        array = doc.to_array(out.attrs).reshape(len(doc), len(out.attrs))
        out.tokens.append(array)
        out.spaces.append(np.asarray(doc.to_array(SPACY), dtype=bool).reshape(-1, 1))
        out.flags.append({"has_unknown_spaces": doc.has_unknown_spaces})
        out.cats.append(doc.cats)
        out.span_groups.append(doc.spans.to_bytes())
        if len(doc):
            hashes.append(doc.to_array(string_attrs).reshape(-1))
    if hashes and docs:
        strings = docs[0].vocab.strings
        out.strings.update(strings[h] if h else "" for h in np.unique(np.concatenate(hashes)).tolist())
    return out


def docbin_bytes(parts: Sequence, vocab) -> bytes:  # noqa: ANN001
    """``docbin(docs).to_bytes()`` of the docs whose ``code.arrays.ATTRS`` arrays are
    ``parts``, compressed faster (``docbin_payloads`` of one document)."""
    import numpy as np

    from pipeline.code.arrays import ATTRS

    width = len(ATTRS)
    table = np.concatenate([*(p.reshape(-1, width) for p in parts),
                            np.zeros((0, width), dtype=np.uint64)])
    return docbin_payloads(table, [[len(p) for p in parts]], vocab)[0]


def docbin_payloads(table, sizes: Sequence[Sequence[int]], vocab) -> list[bytes]:  # noqa: ANN001
    """The ``docbin_bytes`` of several documents at once: one payload per document.

    The docs of ``nlp.parse`` have no spans, user hooks, categories or unknown spaces,
    and their TAG, MORPH, DEP and entity hashes are 0 (the string ""): the DocBin holds
    the ``_ATTRS`` columns, the spaces and the strings of the hashes, all in the arrays.
    The message is ``DocBin.to_bytes``'s, byte for byte; only the zlib level differs
    (3, not 6: half the time for a few per cent more bytes; any level decompresses).
    The strings of all the documents are looked up and sorted once, and each
    document's are picked by their rank: no Python set or sort per document.

    Args:
        table: the ``code.arrays.ATTRS`` arrays of the documents' texts, concatenated
            (``(n_tokens, 5)`` uint64).
        sizes: per document, the number of tokens of each of its texts, in table order.
        vocab: the vocab whose StringStore has the table's hashes.

    Returns:
        The compressed DocBin of each document, in order.
    """
    import zlib

    import numpy as np
    import pandas as pd
    from spacy.attrs import LEMMA, NORM, ORTH, SPACY
    from spacy.tokens import Doc, DocBin

    from pipeline.code.arrays import ATTRS

    empty = DocBin(attrs=_ATTRS, store_user_data=False)
    table = table.reshape(-1, len(ATTRS))
    tokens = np.ascontiguousarray(table[:, [ATTRS.index(attr) for attr in empty.attrs]])
    spaces = table[:, ATTRS.index(SPACY)].astype(bool)
    # TAG, MORPH, DEP and the entity columns are 0 for every token: their string "",
    # in the strings of every document with a token; hash 0 of the text columns too
    codes, found = pd.factorize(table[:, [ATTRS.index(a) for a in (ORTH, LEMMA, NORM)]]
                                .reshape(-1))
    named = np.flatnonzero(found != 0)
    names = [vocab.strings[h] for h in found[named].tolist()]
    order = sorted(range(len(names)), key=names.__getitem__)
    ordered = [names[k] for k in order]
    rank = np.full(len(found), len(names), dtype=np.int64)  # hash 0: past the names
    rank[named[order]] = np.arange(len(names))
    ranks = rank[codes]  # three per token
    seen = np.zeros(len(names) + 1, dtype=bool)
    no_spans = Doc(vocab).spans.to_bytes()
    pack = _packer()
    out = []
    at = 0
    for lengths in sizes:
        end = at + sum(lengths)
        strings: list[str] = []
        if end > at:
            mine = ranks[3 * at:3 * end]
            seen[mine] = True
            strings = ["", *map(ordered.__getitem__, np.flatnonzero(seen[:-1]).tolist())]
            seen[mine] = False
        n = len(lengths)
        msg = {"version": empty.version, "attrs": empty.attrs,
               "tokens": tokens[at:end].tobytes("C") if end > at else b"",
               "spaces": spaces[at:end].tobytes("C") if end > at else b"",
               "lengths": np.asarray(lengths, dtype="int32").tobytes("C"),
               "strings": strings, "cats": [{} for _ in range(n)],
               "flags": [{"has_unknown_spaces": False} for _ in range(n)],
               "span_groups": [no_spans] * n}
        out.append(zlib.compress(pack(msg), 3))
        at = end
    return out


def _packer():  # noqa: ANN202
    """``srsly.msgpack_dumps``: the same bytes for a message of plain values, without
    srsly's packer, which looks up its encoders' entry points on every call (about a
    quarter of a document's payload time)."""
    try:
        from srsly.msgpack._packer import Packer
    except ImportError:  # another srsly layout: its own function
        import srsly

        return srsly.msgpack_dumps
    return Packer(use_bin_type=True).pack


def docbin_arrays(data: DocBin, vocab) -> list | None:  # noqa: ANN001
    """The ``code.arrays.ATTRS`` arrays of ``data.get_docs(vocab)``, without the docs.

    Adds the strings to the vocab as ``get_docs`` does. None when the entry holds
    more than ``docbin_bytes`` writes (other attributes, unknown spaces, spans,
    categories, user data) or a NORM of 0 (a Doc reads the lexeme's then): only
    ``get_docs`` gives those docs.
    """
    import numpy as np
    from spacy.attrs import IDS, NORM, SPACY
    from spacy.tokens import Doc

    from pipeline.code.arrays import ATTRS

    attrs = list(data.attrs)
    if sorted(attrs) != sorted(IDS[name] for name in _ATTRS) or any(data.cats) or any(
            flags.get("has_unknown_spaces") for flags in data.flags) or any(
            u is not None for u in data.user_data):
        return None
    empty_spans = Doc(vocab).spans.to_bytes()
    if any(groups and groups != empty_spans for groups in data.span_groups):
        return None
    for string in data.strings:
        vocab[string]  # as get_docs: every string in the StringStore, with its lexeme
    norm = attrs.index(NORM)
    columns = [(ATTRS.index(attr), attrs.index(attr)) for attr in attrs]
    space = ATTRS.index(SPACY)
    parts = []
    for tokens, spaces in zip(data.tokens, data.spaces, strict=True):
        if len(tokens) and not tokens[:, norm].all():
            return None
        part = np.empty((len(tokens), len(ATTRS)), dtype=np.uint64)
        for to, source in columns:
            part[:, to] = tokens[:, source]
        part[:, space] = spaces.reshape(-1)
        parts.append(part)
    return parts
