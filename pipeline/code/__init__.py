"""Rule coder: codebook rules -> matches -> codings (contract: docs/ARCHITECTURE.md).

Public API: ``compile_rules``, ``match_segments``, ``aggregate_matches``,
``code_segments``, ``rollup``, ``CompiledRules``, ``GlobIndex``.
"""
from pipeline.code.aggregate import aggregate_matches, code_segments, empty_codings, rollup
from pipeline.code.compiled import CompiledRules, compile_rules
from pipeline.code.globs import GlobIndex
from pipeline.code.matching import match_segments

__all__ = [
    "CompiledRules", "GlobIndex", "aggregate_matches", "code_segments", "compile_rules",
    "empty_codings", "match_segments", "rollup",
]
