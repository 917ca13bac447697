"""Match rows as a table, built column by column (no Python tuple per match).

``match_table`` gives the table that ``pd.DataFrame(match_rows(...))`` with the output
dtypes gives (``match_cache.rows_frame``): same rows in the same order, same dtypes.
Its id columns are taken from per-segment and per-rule arrays and its evidence is
gathered in Arrow (``code.evidence.evidence_array``), so a million matches cost no
million tuples and no conversion of a million strings to Arrow.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from pipeline import columns as C
from pipeline.code.arrays import TokenArrays
from pipeline.code.compiled import CompiledRules
from pipeline.code.evidence import evidence_array
from pipeline.code.matching import _match_columns, _opening_scores, match_rows

_TYPES = {C.START: "int64", C.END: "int64", C.SCORE: "float64"}


def rows_table(rows: list[tuple]) -> pd.DataFrame:
    """Match rows (``MATCH_COLUMNS`` tuples) as a table with the output dtypes."""
    return pd.DataFrame(rows, columns=C.MATCH_COLUMNS).astype(_TYPES)


def match_table(arrays: TokenArrays, compiled: CompiledRules,
                segments: Sequence[tuple[str, str, int, str | None]],
                opening: frozenset[str] | None = None) -> pd.DataFrame:
    """``rows_table(match_rows(arrays, compiled, segments, opening))``, column by column.

    Args:
        arrays: the parsed coded segments of one language.
        compiled: the rules of that language.
        segments: per doc of ``arrays``: (segment id, doc id, segment start, text).
        opening: as for ``match_rows``.
    """
    import pyarrow as pa

    seg_ids = [row[0] for row in segments]
    doc_ids = [row[1] for row in segments]
    code_ids, rule_ids, weights, _ = compiled.rule_columns()
    if not all(type(x) is str for x in [*seg_ids, *doc_ids, *code_ids.tolist(),
                                        *rule_ids.tolist()]):
        # a column of other values is typed from them: let pandas do it
        return rows_table(match_rows(arrays, compiled, segments, opening))
    cols = _match_columns(arrays, compiled, segments, evidence_array)
    if cols is None:
        return rows_table([])
    docs, cr, evidence, start, end = cols
    scores, keep = _opening_scores(compiled, segments, docs, cr, weights, opening)
    if keep is not None:
        docs, cr, start, end, scores = docs[keep], cr[keep], start[keep], end[keep], scores[keep]
        evidence = evidence.filter(pa.array(keep))
    if not len(cr):
        return rows_table([])

    def text(values: list, index: np.ndarray) -> pd.api.extensions.ExtensionArray:
        return pd.array(values, dtype="str").take(index)

    return pd.DataFrame({
        C.SEGMENT_ID: text(seg_ids, docs), C.DOC_ID: text(doc_ids, docs),
        C.CODE_ID: text(code_ids.tolist(), cr), C.RULE_ID: text(rule_ids.tolist(), cr),
        C.EVIDENCE: pd.array(evidence, dtype="str"),
        C.START: start.astype(np.int64), C.END: end.astype(np.int64),
        C.SCORE: scores.astype(np.float64)})[C.MATCH_COLUMNS]
