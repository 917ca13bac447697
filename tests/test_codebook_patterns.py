"""Token-pattern validation and its memo of valid patterns (``pipeline.codebook.patterns``)."""
from __future__ import annotations

from pathlib import Path

import pytest

import pipeline.codebook.patterns as patterns
from pipeline.codebook import load_codebook
from pipeline.codebook.patterns import PatternMemo, pattern_problem
from pipeline.errors import CodebookError

GOOD = [{"LEMMA": "mogen"}, {"OP": "*", "IS_PUNCT": False}, {"LOWER": "zelf"}]
BAD = [{"FOO": "x"}]


def _spy(monkeypatch):
    calls = []
    original = patterns.pattern_problem

    def counted(pattern):
        calls.append(pattern)
        return original(pattern)

    monkeypatch.setattr(patterns, "pattern_problem", counted)
    return calls


def test_valid_patterns_are_remembered_after_save_and_problems_never(tmp_path, monkeypatch):
    calls = _spy(monkeypatch)
    memo = PatternMemo(tmp_path)
    assert memo.problem(GOOD) is None
    bad = memo.problem(BAD)
    assert bad == pattern_problem(BAD) and bad.startswith("invalid Matcher pattern")
    assert not (tmp_path / patterns.SUBDIR).exists()  # nothing written before save
    memo.save()
    assert len(list((tmp_path / patterns.SUBDIR).iterdir())) == 1  # the valid one only
    again = PatternMemo(tmp_path)
    assert again.problem(GOOD) is None
    assert again.problem(BAD) == bad  # spaCy again, with the same message
    assert calls == [GOOD, BAD, BAD]


@pytest.mark.parametrize("other", [
    [{"LEMMA": "mogen"}, {"OP": "*", "IS_PUNCT": 0}, {"LOWER": "zelf"}],   # 0 is not False
    [{"LOWER": "zelf"}, {"OP": "*", "IS_PUNCT": False}, {"LEMMA": "mogen"}],
    [{"LEMMA": "mogen"}, {"IS_PUNCT": False, "OP": "*"}, {"LOWER": "zelf"}],  # key order
])
def test_only_the_same_value_is_known(tmp_path, monkeypatch, other):
    calls = _spy(monkeypatch)
    memo = PatternMemo(tmp_path)
    memo.problem(GOOD)
    memo.save()
    PatternMemo(tmp_path).problem(other)
    assert calls == [GOOD, other]


def test_other_versions_or_values_that_are_not_plain_data_are_not_remembered(
        tmp_path, monkeypatch):
    calls = _spy(monkeypatch)
    memo = PatternMemo(tmp_path)
    memo.problem(GOOD)
    memo.save()
    monkeypatch.setattr(patterns, "_context", lambda: "another spaCy")
    PatternMemo(tmp_path).problem(GOOD)
    odd = [{"LOWER": "zelf", 1: "x"}]  # a key YAML reads as an int
    odd_memo = PatternMemo(tmp_path)
    assert odd_memo.problem(odd) == pattern_problem(odd)
    odd_memo.save()
    assert calls == [GOOD, GOOD, odd]
    assert PatternMemo(None).problem(GOOD) is None  # no folder: always spaCy


BOOK = """\
version: 1
name: t
codes:
  - id: agency
    label: {nl: A, en: A}
    definition: d
    rules:
      nl:
        - kind: pattern
          patterns: [%s]
"""


def test_load_codebook_with_a_memo_gives_the_same_codebook_and_errors(tmp_path, monkeypatch):
    path = tmp_path / "book.yaml"
    path.write_text(BOOK % "[{LEMMA: mogen}, {OP: '*', IS_PUNCT: false}, {LOWER: zelf}]",
                    encoding="utf-8")
    memo = PatternMemo(tmp_path / "cache")
    first = load_codebook(path, require_codes=False, patterns=memo)
    memo.save()
    calls = _spy(monkeypatch)
    second = load_codebook(path, require_codes=False, patterns=PatternMemo(tmp_path / "cache"))
    assert calls == []  # known valid: spaCy not asked
    assert second.rules("nl") == first.rules("nl") and second.hash == first.hash
    path.write_text(BOOK % "[{FOO: x}]", encoding="utf-8")
    with pytest.raises(CodebookError) as plain:
        load_codebook(path, require_codes=False)
    with pytest.raises(CodebookError) as memoised:
        load_codebook(path, require_codes=False, patterns=PatternMemo(tmp_path / "cache"))
    assert str(memoised.value) == str(plain.value)
    assert "invalid Matcher pattern" in str(plain.value)


def test_a_run_remembers_its_valid_patterns_and_an_invalid_codebook_writes_none(
        tmp_path, repo_root, monkeypatch):
    from pipeline.runner import RunOptions, code_corpus

    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "a.txt").write_text("I: Vraag?\nR: We mochten het zelf doen.\n", encoding="utf-8")
    bad = tmp_path / "book.yaml"  # the study's required codes are missing
    bad.write_text(BOOK % "[{LOWER: zelf}]", encoding="utf-8")
    with pytest.raises(CodebookError):
        code_corpus([raw], codebook=bad, out_dir=tmp_path / "bad",
                    options=RunOptions(progress=False))
    assert not (tmp_path / "bad" / ".cache").exists()
    book = repo_root / "codebook.yaml"
    code_corpus([raw], codebook=book, out_dir=tmp_path / "out",
                options=RunOptions(progress=False))
    memo = tmp_path / "out" / ".cache" / patterns.SUBDIR
    known = {p.name for p in memo.iterdir()}
    assert known
    calls = _spy(monkeypatch)
    code_corpus([raw], codebook=book, out_dir=tmp_path / "out",
                options=RunOptions(progress=False))
    assert calls == []  # every pattern known: spaCy validated none
    assert {p.name for p in memo.iterdir()} == known
