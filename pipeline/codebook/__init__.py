"""Codebook YAML -> validated ``Codebook`` (schema: docs/ARCHITECTURE.md).

Public API: ``load_codebook``, ``validate_codebook``, ``Codebook``, ``Code``,
``Rule``, ``Settings``, ``REQUIRED_CODES``.
"""
from pipeline.codebook.loader import load_codebook, validate_codebook
from pipeline.codebook.model import (
    CODE_KINDS, DEFAULT_NEGATION_CUES, LANGUAGES, REQUIRED_CODES, RULE_KINDS, Code, Codebook,
    Rule, Settings,
)
from pipeline.codebook.rules import glob_problem, is_glob, pattern_problem

__all__ = [
    "CODE_KINDS", "DEFAULT_NEGATION_CUES", "LANGUAGES", "REQUIRED_CODES", "RULE_KINDS",
    "Code", "Codebook", "Rule", "Settings", "glob_problem", "is_glob", "load_codebook",
    "pattern_problem", "validate_codebook",
]
