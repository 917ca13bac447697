"""``pipeline.languages``: the NLP stage's languages, checked without importing spaCy."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline import nlp
from pipeline.errors import UsageError
from pipeline.languages import STEMMERS, SUPPORTED_LANGUAGES, check_lang

ROOT = Path(__file__).resolve().parent.parent


def test_check_lang() -> None:
    assert SUPPORTED_LANGUAGES == ("nl", "en") and set(STEMMERS) == set(SUPPORTED_LANGUAGES)
    assert [check_lang(lang) for lang in SUPPORTED_LANGUAGES] == ["nl", "en"]
    for bad in ("fr", None, 1, "NL"):
        with pytest.raises(UsageError, match="unsupported language"):
            check_lang(bad)
    assert nlp.SUPPORTED_LANGUAGES is SUPPORTED_LANGUAGES and nlp._check_lang is check_lang


def test_the_coder_imports_without_spacy() -> None:
    code = ("import sys\nimport pipeline.code, pipeline.code.compiled, pipeline.languages\n"
            "import pipeline.code.sketch, pipeline.code.lightvocab, pipeline.chunk_code\n"
            "print('spacy' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, check=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert done.stdout.strip() == "False", done.stderr
