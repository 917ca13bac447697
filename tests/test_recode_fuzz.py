"""A few steps of ``recode_fuzz``: cached runs after random edits equal runs without the cache."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from recode_fuzz import RecodeFuzz, differences


def test_cached_runs_after_random_edits_equal_runs_without_the_cache(tmp_path: Path) -> None:
    fuzz = RecodeFuzz(seed=12, work=tmp_path / "fuzz")
    for _ in range(4):
        edits, problems = fuzz.step()
        assert problems == [], edits
    assert fuzz.used_cache >= 2   # the steps after the first took from the cache


def test_differences_names_a_changed_file_and_changed_counts(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    (a / "codings.csv").write_text("segment_id,code_id\ns1,agency\n", encoding="utf-8")
    (a / "manifest.json").write_text(json.dumps({"counts": {"codings": 1}, "timings": 1}))
    shutil.copytree(a, b)
    (b / "manifest.json").write_text(json.dumps({"counts": {"codings": 1}, "timings": 2}))
    assert differences(a, b) == []
    (b / "codings.csv").write_text("segment_id,code_id\ns1,ownership\n", encoding="utf-8")
    (b / "manifest.json").write_text(json.dumps({"counts": {"codings": 2}}))
    (b / "errors.csv").write_text("", encoding="utf-8")
    assert differences(a, b) == [
        "other files: ['codings.csv'] / ['codings.csv', 'errors.csv']",
        "codings.csv differs", "counts {'codings': 1} / {'codings': 2}"]
