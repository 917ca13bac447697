"""benchmarks/run_benchmarks.py: a new run replaces the generated part of RESULTS.md only."""
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _module():
    spec = importlib.util.spec_from_file_location("run_benchmarks",
                                                  ROOT / "benchmarks" / "run_benchmarks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_new_report_keeps_the_history_of_the_results_file():
    rb = _module()
    previous = f"# old generated part\n\n| 1 |\n\n{rb.HISTORY_MARKER}\n\n## Session 5\n\nkept\n"
    out = rb.with_history("# new generated part\n", previous)
    assert out.startswith("# new generated part\n")
    assert "old generated part" not in out
    assert out.endswith(f"{rb.HISTORY_MARKER}\n\n## Session 5\n\nkept\n")
    assert rb.with_history("# new\n", None) == "# new\n"            # no file yet
    assert rb.with_history("# new\n", "# no marker\n") == "# new\n"  # nothing marked to keep


def test_the_results_file_has_its_history_marker():
    rb = _module()
    text = (ROOT / "benchmarks" / "RESULTS.md").read_text(encoding="utf-8")
    assert text.count(rb.HISTORY_MARKER) == 1
    assert "## Session 6" in text.split(rb.HISTORY_MARKER)[1]


def test_edited_codebooks_add_one_word_to_the_first_terms_rule(tmp_path, monkeypatch):
    rb = _module()
    monkeypatch.setattr(rb, "WORK", tmp_path)
    book = tmp_path / "book.yaml"
    book.write_text("codes:\n  - id: a\n    rules:\n    - kind: terms\n      terms:\n      - x\n"
                    "    - kind: terms\n      terms:\n      - y\n")
    edited = rb.edited_codebook(book, rb.MATCHING_EDIT).read_text()
    assert edited.count(f"- {rb.MATCHING_EDIT}\n") == 1
    assert edited.index(rb.MATCHING_EDIT) < edited.index("- x")
    assert rb.edited_codebook(book, "zzedit").name == "codebook_500_edited.yaml"


def test_the_report_shows_the_long_transcript_and_the_survey():
    import json

    rb = _module()
    res = json.loads((ROOT / "benchmarks" / "results.json").read_text())
    res.pop("pain", None)
    assert "One long transcript" not in rb.report(res, 100_000)
    res["pain"] = {"long": {"chars": 308_326, "files_joined": 13, "wall_s": 1.52,
                            "peak_rss_mb": 249.1, "segments": 1_201},
                   "survey": {"answers": 6_400, "wall_s": 2.04, "peak_rss_mb": 404.5,
                              "segments": 6_400}}
    text = rb.report(res, 100_000)
    assert "- one transcript of 308,326 characters (1,201 segments; 13 files of the corpus " \
           "as one): 1.5 s, peak RSS 249 MB" in text
    assert "- a CSV of 6,400 survey answers (`--text-column answer`): 2.0 s, peak RSS 404 MB" in text
    assert "64,000 answers" not in text
    res["pain"]["big_survey"] = {"answers": 64_000, "bytes": 28_800_123, "wall_s": 7.64,
                                 "peak_rss_mb": 1_406.5, "segments": 64_000}
    assert "- a CSV of 64,000 answers (28.8 MB): 7.6 s, peak RSS 1,406 MB" \
        in rb.report(res, 100_000)
    res["pain"]["big_survey"].update(chunks=15, cached={"wall_s": 5.44, "peak_rss_mb": 901.2},
                                     jobs2_wall_s=4.31)
    text = rb.report(res, 100_000)
    assert "- a CSV of 64,000 answers (28.8 MB): 7.6 s, peak RSS 1,406 MB (15 chunks)" in text
    assert "  - the same, a first run with the cache: 5.4 s, peak RSS 901 MB; `--jobs 2` (no " \
           "cache): 4.3 s" in text
    assert "a transcript of" not in text
    res["pain"]["big_long"] = {"files_joined": 600, "bytes": 15_386_040, "chunks": 8,
                               "wall_s": 3.91, "peak_rss_mb": 482.1, "segments": 60_000,
                               "cached": {"wall_s": 3.93, "peak_rss_mb": 558.8}}
    assert "- a transcript of 15.4 MB (600 files of the corpus as one, 60,000 segments): 3.9 s, " \
           "peak RSS 482 MB (8 chunks); a first run with the cache: 3.9 s, peak RSS 559 MB" \
        in rb.report(res, 100_000)


def test_the_parallel_section_shows_cores_busy_and_the_largest_corpus():
    import json

    rb = _module()
    res = json.loads((ROOT / "benchmarks" / "results.json").read_text())
    res.pop("jobs2_large", None)
    for run in [*res["sizes"].values(), res["jobs2"]]:
        run.pop("busy_cpu_s", None)
    text = rb.report(res, 100_000)
    assert "cores busy" not in text and "segments: `--jobs 1` (the corpus-size row)" not in text
    res["sizes"]["100000"].update(wall_s=4.0, busy_cpu_s=4.8)
    res["sizes"]["1000000"].update(wall_s=35.0, busy_cpu_s=42.0)
    res["jobs2"].update(wall_s=3.2, busy_cpu_s=5.6)
    res["jobs2_large"] = {"size": 1_000_000, "wall_s": 21.0, "busy_cpu_s": 40.95,
                          "manifest": res["jobs2"]["manifest"]}
    text = rb.report(res, 100_000)
    assert "- `--jobs 1`: 4.0 s (1.20 cores busy); `--jobs 2`: 3.2 s (1.75 cores busy) " \
           "(**1.25x**)" in text
    assert "- at 1,000,000 segments: `--jobs 1` (the corpus-size row) 35.0 s (1.20 cores busy); " \
           "`--jobs 2` 21.0 s (1.95 cores busy) (**1.67x**)" in text
    assert "at most 2 / (its cores) faster" in text


def test_the_launcher_reports_wall_rss_exit_code_and_busy_cpu(tmp_path):
    import json
    import subprocess
    import sys

    rb = _module()
    got = subprocess.run([sys.executable, "-c", rb._LAUNCH, sys.executable, "-c",
                          "sum(range(3_000_000)); raise SystemExit(2)"],
                         capture_output=True, text=True, check=True).stdout
    wall, rss, code, busy = json.loads(got.strip().splitlines()[-1])
    assert wall > 0 and rss > 1000 and code == 2
    if Path("/proc/stat").exists():
        assert busy is not None and busy >= 0


def test_the_added_transcript_corpus_and_its_report_line(tmp_path, monkeypatch):
    import json

    rb = _module()
    monkeypatch.setattr(rb, "WORK", tmp_path / "work")
    corpus = tmp_path / "seg"
    corpus.mkdir()
    (corpus / f"{rb.ADDED_FROM}.txt").write_text("R: De school is oud.\n", encoding="utf-8")
    (corpus / "int0000006.txt").write_text("R: Ja.\n", encoding="utf-8")
    (corpus / "metadata.csv").write_text(
        f"doc_id,country\n{rb.ADDED_FROM},NL\nint0000006,BE\n", encoding="utf-8")
    added = rb.with_added(corpus)
    assert sorted(p.name for p in added.iterdir()) == [
        f"{rb.ADDED_FROM}.txt", f"{rb.ADDED_FROM}b.txt", "int0000006.txt", "metadata.csv"]
    assert (added / "int0000006.txt").stat().st_ino == (corpus / "int0000006.txt").stat().st_ino
    assert (added / f"{rb.ADDED_FROM}b.txt").read_text() == "R: De schoolgebouw is oud.\n"
    assert (added / "metadata.csv").read_text().splitlines()[-1] == f"{rb.ADDED_FROM}b,NL"
    assert (corpus / "metadata.csv").read_text().count("\n") == 3  # the corpus is as it was

    res = json.loads((ROOT / "benchmarks" / "results.json").read_text())
    manifest = {"throughput": {"chunks_taken": 24, "chunks": 25, "cache_misses": 55}}
    res["added"] = {"cold": {"wall_s": 6.0, "manifest": manifest},
                    "added": {"wall_s": 2.0, "manifest": manifest},
                    "walls": {"cold": [6.0], "added": [2.0]}}
    text = rb.report(res, 100_000)
    assert "2.0 s against 6.0 s (**3.0x**; chunks not coded, their rows taken from the last " \
           "run's files: 24 of 25; documents parsed: 55)" in text
    res["added"]["separately"] = "abc1234"
    assert "measured on its own (`--added-only`) at `abc1234`" in rb.report(res, 100_000)
