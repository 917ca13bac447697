"""The evidence column of match rows: the text each match covers.

A doc's text is its tokens' texts and spaces, so the text of a one-token match is the
token's ORTH string: those (most matches) are looked up once per distinct form and
gathered; only longer matches are sliced out of their segment's text. Both give the
text from the match's first to its end character (``text[c0:c1]``), proximity
evidence cut at ``EVIDENCE_LIMIT`` characters.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from pipeline.code.arrays import TokenArrays

EVIDENCE_LIMIT = 80      # proximity evidence spans two hits and can be long


def evidence_texts(arrays: TokenArrays, segments: Sequence[tuple[str, str, int, str | None]],
                   docs: np.ndarray, tokens: tuple[np.ndarray, np.ndarray],
                   chars: tuple[np.ndarray, np.ndarray], char_end: np.ndarray,
                   proximity: np.ndarray) -> list[str]:
    """The evidence of every match, as a list of strings.

    Args:
        arrays: the batch.
        segments: per doc: (segment id, doc id, segment start, text it was parsed from).
        docs: doc of each match.
        tokens: (first token, end token) of each match.
        chars: (first character, end character) of each match in its doc.
        char_end: per token, its end character in its doc.
        proximity: per match, whether a proximity rule made it.
    """
    gathered, codes, words, sliced, pieces = _parts(arrays, segments, docs, tokens, chars,
                                                    char_end, proximity)
    out = np.empty(len(docs), dtype=object)
    if len(gathered):
        forms = np.empty(len(words), dtype=object)
        forms[:] = words
        out[gathered] = forms[codes]
    if len(sliced):
        out[sliced] = pieces
    return out.tolist()


def evidence_parts(arrays: TokenArrays, segments: Sequence[tuple[str, str, int, str | None]],
                   docs: np.ndarray, tokens: tuple[np.ndarray, np.ndarray],
                   chars: tuple[np.ndarray, np.ndarray], char_end: np.ndarray,
                   proximity: np.ndarray) -> tuple[pa.Array, np.ndarray]:
    """The evidence as Arrow strings: ``(source, index)``, match i's text is ``source[index[i]]``.

    The arguments are ``evidence_texts``'. ``source`` holds each distinct one-token form
    once, then the sliced texts; a caller that reorders or filters the matches does so
    on ``index`` and takes the strings once (no Python string per row is made again).
    """
    gathered, codes, words, sliced, pieces = _parts(arrays, segments, docs, tokens, chars,
                                                    char_end, proximity)
    source = pa.concat_arrays([pa.array(words, type=pa.large_string()),
                               pa.array(pieces, type=pa.large_string())])
    index = np.empty(len(docs), dtype=np.int64)
    index[gathered] = codes
    index[sliced] = len(words) + np.arange(len(sliced), dtype=np.int64)
    return source, index


def _parts(arrays: TokenArrays, segments: Sequence[tuple[str, str, int, str | None]],
           docs: np.ndarray, tokens: tuple[np.ndarray, np.ndarray],
           chars: tuple[np.ndarray, np.ndarray], char_end: np.ndarray,
           proximity: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray, list[str]]:
    """(gathered rows, their form codes, the forms' strings, sliced rows, their texts)."""
    (cs, ce), (c0, c1) = tokens, chars
    # a text's length is c1 - c0: only proximity evidence longer than the limit is cut
    cut = proximity & (c1 - c0 > EVIDENCE_LIMIT)
    single = (ce - cs == 1) & ~cut
    gathered = np.flatnonzero(single)
    codes, forms = pd.factorize(arrays.orth[cs[gathered]])
    strings = arrays.vocab.strings
    words = [strings[o] for o in forms.tolist()]
    sliced = np.flatnonzero(~single)
    pieces: list[str] = []
    if len(sliced):
        bounds = arrays.bounds
        texts: dict[int, str] = {}
        for k in np.unique(docs[sliced]).tolist():
            seg_text = segments[k][3]
            last = int(bounds[k + 1]) - 1
            n_chars = int(char_end[last]) + int(arrays.space[last])
            texts[k] = (seg_text if isinstance(seg_text, str) and len(seg_text) == n_chars
                        else arrays.get_doc(k).text)  # not parsed from this text: the doc's own
        pieces = [texts[k][a:b] for k, a, b in zip(
            docs[sliced].tolist(), c0[sliced].tolist(), c1[sliced].tolist())]
        for i in np.flatnonzero(cut[sliced]).tolist():
            pieces[i] = pieces[i][:EVIDENCE_LIMIT - 1] + "…"
    return gathered, codes, words, sliced, pieces


STR_DTYPE = pd.StringDtype("pyarrow", na_value=np.nan)  # pandas' "str"


def arrow_strings(values: list) -> pa.Array:
    """``values`` as the Arrow array of ``pd.array(values, dtype="str")``, made directly.

    Anything but strings (which pandas would convert or count as missing) goes
    through pandas.
    """
    try:
        strings = pa.array(values, type=pa.large_string())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        strings = None
    if strings is None or strings.null_count or not set(map(type, values)) <= {str}:
        return pd.array(values, dtype="str").__arrow_array__().combine_chunks()
    return strings
