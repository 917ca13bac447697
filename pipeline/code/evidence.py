"""The evidence column of match rows: the text each match covers."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from pipeline.code.arrays import TokenArrays

EVIDENCE_LIMIT = 80      # proximity evidence spans two hits and can be long


def evidence_texts(arrays: TokenArrays, segments: Sequence[tuple[str, str, int, str | None]],
                   docs: np.ndarray, tokens: tuple[np.ndarray, np.ndarray],
                   chars: tuple[np.ndarray, np.ndarray], char_end: np.ndarray,
                   proximity: np.ndarray) -> list[str]:
    """The evidence of every match: its doc's text from ``c0`` to ``c1``.

    A doc's text is its tokens' texts and spaces, so a one-token match's text is the
    token's ORTH string: those (most matches) are looked up once per distinct form and
    gathered, and only longer matches are sliced out of their segment's text.

    Args:
        arrays: the batch.
        segments: per doc: (segment id, doc id, segment start, text the doc was parsed from).
        docs: doc of each match.
        tokens: (first token, end token) of each match.
        chars: (first character, end character) of each match in its doc.
        char_end: per token, its end character in its doc.
        proximity: per match, whether a proximity rule made it (evidence cut at
            ``EVIDENCE_LIMIT`` characters).
    """
    (cs, ce), (c0, c1) = tokens, chars
    evidence = np.empty(len(cs), dtype=object)
    single = ce - cs == 1
    if single.any():
        codes, forms = pd.factorize(arrays.orth[cs[single]])
        strings = arrays.vocab.strings
        words = np.empty(len(forms), dtype=object)
        words[:] = [strings[o] for o in forms.tolist()]
        evidence[single] = words[codes]
    multi = np.flatnonzero(~single)
    if len(multi):
        bounds = arrays.bounds
        texts: dict[int, str] = {}
        for k in np.unique(docs[multi]).tolist():
            seg_text = segments[k][3]
            last = int(bounds[k + 1]) - 1
            n_chars = int(char_end[last]) + int(arrays.space[last])
            texts[k] = (seg_text if isinstance(seg_text, str) and len(seg_text) == n_chars
                        else arrays.get_doc(k).text)  # not parsed from this text: the doc's own
        evidence[multi] = [texts[k][a:b] for k, a, b in zip(
            docs[multi].tolist(), c0[multi].tolist(), c1[multi].tolist())]
    out = evidence.tolist()
    for i in np.flatnonzero(proximity).tolist():
        if len(out[i]) > EVIDENCE_LIMIT:
            out[i] = out[i][:EVIDENCE_LIMIT - 1] + "…"
    return out
