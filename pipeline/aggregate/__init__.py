"""Aggregation of the coded tables: theme matrices, co-occurrence, framework matrices, KWIC.

Pure functions on the ``segments`` and ``codings`` tables (see docs/ARCHITECTURE.md);
nothing here reads or writes files. Typical use::

    seg, cod = filter_coded(data.segments, data.codings, where={"country": "NL"})
    m = theme_matrix(seg, cod, by="sector", value="share", level="top", codebook=cb)
"""
from __future__ import annotations

from pipeline.aggregate._common import (
    LEVELS,
    ancestors,
    apply_level,
    attribute_columns,
    filter_coded,
    word_count,
)
from pipeline.aggregate.cooccurrence import (
    MEASURES,
    code_windows,
    cooccurrence,
    cooccurrence_matrix,
)
from pipeline.aggregate.export import build_workbook, codebook_table, sheet_name, workbook_bytes
from pipeline.aggregate.framework import exemplars, framework_matrix, kwic, quote
from pipeline.aggregate.matrices import (
    VALUES,
    code_by_attribute,
    code_by_document,
    code_by_speaker,
    flatten_columns,
    theme_matrix,
)
from pipeline.aggregate.portrait import document_portrait

__all__ = [
    "LEVELS", "MEASURES", "VALUES", "ancestors", "apply_level", "attribute_columns",
    "build_workbook", "workbook_bytes", "code_by_attribute", "code_by_document", "code_by_speaker",
    "code_windows", "codebook_table", "cooccurrence", "cooccurrence_matrix",
    "document_portrait", "exemplars", "filter_coded", "flatten_columns", "framework_matrix",
    "kwic", "quote", "sheet_name", "theme_matrix", "word_count",
]
