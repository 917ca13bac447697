"""Benchmarks of ``qcode code`` (run by hand: ``make bench``); writes benchmarks/RESULTS.md.

Everything reported is measured in this run, on this machine:

* end-to-end ``qcode code`` (a subprocess, as a user runs it) at each corpus size:
  wall time, segments/s, tokens/s (tokens of coded segments), peak RSS;
* the floor: spaCy's bare tokenizer (``spacy.blank("nl").tokenizer``) on the texts of
  the same coded segments;
* a naive baseline: one regular expression per codebook pattern over the raw text of
  the coded segments (text-search autocoding as in QDA tools), at 50/500/5,000 patterns;
* ``qcode code`` at 50/500/5,000 patterns;
* a re-code from the parse cache after a codebook edit vs the cold run;
* ``--jobs 2`` vs ``--jobs 1``;
* one transcript of 300,000 characters and CSVs of 6,400 and 64,000 survey answers.

Usage:
    python benchmarks/run_benchmarks.py [--sizes 10000 100000 1000000] [--main 100000]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from make_codebook import make_codebook  # noqa: E402
from make_corpus import make_corpus  # noqa: E402

WORK = HERE / "corpora" / "runs"


# Runs a command and prints [wall s, peak RSS KB, exit code]. qcode is started from this
# small process, not from the benchmark's: Linux counts the memory a process had when it
# forked and exec'd in the new program's peak RSS (``ru_maxrss``), and the benchmark holds
# up to a million texts by its last runs.
# Also the CPU seconds all cores were busy meanwhile (Linux: /proc/stat; None elsewhere):
# the pool's workers are not this process's children, so their time is not in its
# rusage; the machine's is, with whatever else ran on it.
_LAUNCH = ("import json, os, subprocess, sys, time\n"
           "def busy():\n"
           "    try:\n"
           "        with open('/proc/stat') as fh:\n"
           "            f = [int(x) for x in fh.readline().split()[1:]]\n"
           "    except (OSError, ValueError):\n"
           "        return None\n"
           "    return (sum(f[:3]) + sum(f[5:7])) / os.sysconf('SC_CLK_TCK')\n"
           "before = busy()\n"
           "start = time.perf_counter()\n"
           "proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)\n"
           "_, status, usage = os.wait4(proc.pid, 0)\n"
           "wall, after = time.perf_counter() - start, busy()\n"
           "print(json.dumps([wall, usage.ru_maxrss, os.waitstatus_to_exitcode(status),"
           " None if before is None or after is None else after - before]))\n")


def qcode(corpus: Path, codebook: Path, out: Path, *extra: str) -> dict:
    """Run ``qcode code`` in a subprocess; return wall time, peak RSS and the manifest."""
    cmd = [sys.executable, "-m", "pipeline", "code", str(corpus), "--out", str(out),
           "--codebook", str(codebook), "--quiet", *extra]
    launched = subprocess.run([sys.executable, "-c", _LAUNCH, *cmd], cwd=ROOT, env=_ENV,
                              stdout=subprocess.PIPE, text=True, check=True)
    wall, maxrss, code, busy = json.loads(launched.stdout.strip().splitlines()[-1])
    if code not in (0, 2):
        raise SystemExit(f"{' '.join(cmd)} failed with {code}")
    manifest = json.loads((out / "manifest.json").read_text())
    return {"wall_s": wall, "peak_rss_mb": maxrss / 1024, "manifest": manifest, "busy_cpu_s": busy,
            "segments": manifest["counts"]["segments"],
            "tokens": manifest["throughput"]["tokens"]}


# qcode runs as installed: with the bytecode of its modules (``prepare_bytecode``), which a
# PYTHONDONTWRITEBYTECODE in the caller's environment would otherwise make every run
# compile again (~0.2 s each)
_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def prepare_bytecode() -> None:
    """Compile the package's modules to bytecode, as ``pip install`` leaves them."""
    import compileall

    compileall.compile_dir(str(ROOT / "pipeline"), quiet=1)


def coded_texts(out: Path) -> list[str]:
    import pandas as pd

    seg = pd.read_parquet(out / "segments.parquet", columns=["text", "coded"])
    return seg.loc[seg["coded"].astype(bool), "text"].tolist()


def bare_tokenizer(texts: list[str]) -> dict:
    import spacy

    tokenizer = spacy.blank("nl").tokenizer
    start = time.perf_counter()
    n = sum(len(doc) for doc in tokenizer.pipe(texts, batch_size=1000))
    wall = time.perf_counter() - start
    return {"wall_s": wall, "tokens": n, "tokens_per_s": n / wall, "segments_per_s": len(texts) / wall}


def naive_regexes(codebook: Path) -> list[re.Pattern]:
    """One regex per pattern, as a QDA tool's text search would build them."""
    import yaml

    def walk(codes):
        for code in codes:
            yield code
            yield from walk(code.get("children", []))

    out = []
    book = yaml.safe_load(codebook.read_text(encoding="utf-8"))
    for code in walk(book["codes"]):
        for rules in code.get("rules", {}).values():
            for rule in rules:
                items = [*rule.get("terms", []), *rule.get("phrases", []), *rule.get("globs", []),
                         *rule.get("a", []), *rule.get("b", [])]
                for pat in rule.get("patterns", []):  # its literal words, in order
                    items.append(" ".join(str(v) for t in pat for k, v in t.items()
                                          if k in ("LEMMA", "LOWER") and isinstance(v, str)))
                for item in items:
                    body = r"\s+".join(re.escape(w).replace(r"\*", r"\w*").replace(r"\?", r"\w")
                                       for w in item.split())
                    out.append(re.compile(rf"\b{body}\b", re.IGNORECASE))
    return out


def naive(texts: list[str], codebook: Path) -> dict:
    regexes = naive_regexes(codebook)
    text = "\n".join(texts)
    start = time.perf_counter()
    hits = sum(1 for rx in regexes for _ in rx.finditer(text))
    return {"wall_s": time.perf_counter() - start, "patterns": len(regexes), "hits": hits}


def _cores(run: dict) -> str:
    """", N cores busy" of a run (``qcode``'s ``busy_cpu_s`` over its wall time), or ""."""
    busy = run.get("busy_cpu_s")
    return f" ({busy / run['wall_s']:.2f} cores busy)" if busy else ""


def machine() -> dict:
    info = {"python": platform.python_version(), "platform": platform.platform()}
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        info["cpu"] = next((l.split(":", 1)[1].strip() for l in lscpu.splitlines()
                            if l.startswith("Model name")), "?")
    except OSError:
        info["cpu"] = platform.processor()
    info["cores"] = os.cpu_count()
    with open("/proc/meminfo") as fh:
        info["ram_gb"] = round(int(fh.readline().split()[1]) / 1024 ** 2, 1)
    import spacy
    info["spacy"] = spacy.__version__
    info["load_avg_at_start"] = os.getloadavg()
    info["bytecode"] = "compiled before the runs (as installed)"
    return info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", type=int, default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--main", type=int, default=100_000, help="corpus of the other runs")
    parser.add_argument("--naive-size", type=int, default=10_000)
    parser.add_argument("--naive-main", action="store_true",
                        help="also time the naive baseline (500 patterns) on the --main corpus")
    parser.add_argument("--rare-only", action="store_true",
                        help="only the 50 -> 5,000 patterns series with a fixed number of hits; "
                             "added to an existing results.json")
    parser.add_argument("--pain-only", action="store_true",
                        help="only one long transcript and surveys of 6,400 and 64,000 answers; "
                             "added to an existing results.json")
    parser.add_argument("--added-only", action="store_true",
                        help="only a cold run and the run after adding one transcript, on the "
                             "--main corpus; added to an existing results.json")
    parser.add_argument("--rerun-key", action="store_true",
                        help="re-measure --jobs 1/2 and cold/warm cache on the --main corpus, "
                             "added to an existing results.json")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    prepare_bytecode()
    if args.rare_only or args.rerun_key or args.pain_only or args.added_only:
        res = json.loads((HERE / "results.json").read_text())
        if args.added_only:
            res["added"] = {**added_series(make_corpus(args.main), make_codebook(500),
                                           RECODE_REPEATS), "separately": _commit()}
        if args.rare_only:
            res["rare"] = rare_series(args.naive_size)
        if args.pain_only:
            res["pain"] = pain_points(args.main)
        if args.rerun_key:
            res["rerun"] = rerun_key(args.main)
        write_results(res, args.main)
        print((HERE / "RESULTS.md").read_text())
        return
    books = {n: make_codebook(n) for n in (50, 500, 5000)}
    res: dict = {"machine": machine(), "sizes": {}, "patterns": {}}
    for size in sorted(set(args.sizes) | {args.main, args.naive_size}):
        corpus = make_corpus(size)
        out = WORK / f"size{size}"
        shutil.rmtree(out, ignore_errors=True)
        run = qcode(corpus, books[500], out, "--no-cache")
        run["tokenizer"] = bare_tokenizer(coded_texts(out))
        res["sizes"][size] = run
        print(size, round(run["wall_s"], 1), "s", round(run["peak_rss_mb"]), "MB", flush=True)
    small = make_corpus(args.naive_size)
    texts = coded_texts(WORK / f"size{args.naive_size}")
    for n, book in books.items():
        out = WORK / f"pat{n}"
        shutil.rmtree(out, ignore_errors=True)
        run = qcode(small, book, out, "--no-cache")
        run["naive"] = naive(texts, book)
        res["patterns"][n] = run
        print("patterns", n, round(run["wall_s"], 1), round(run["naive"]["wall_s"], 1), flush=True)
    corpus = make_corpus(args.main)
    res["cache"] = recode_series(corpus, books[500], RECODE_REPEATS)
    print("cache", res["cache"]["walls"], flush=True)
    res["added"] = added_series(corpus, books[500], RECODE_REPEATS)
    print("added", res["added"]["walls"], flush=True)
    out = WORK / "jobs2"
    shutil.rmtree(out, ignore_errors=True)
    res["jobs2"] = qcode(corpus, books[500], out, "--no-cache", "--jobs", "2")
    print("jobs2", round(res["jobs2"]["wall_s"], 1), flush=True)
    largest = max(res["sizes"])
    if largest > args.main:  # where start-up weighs least
        out = WORK / "jobs2_large"
        shutil.rmtree(out, ignore_errors=True)
        res["jobs2_large"] = {"size": largest, **qcode(make_corpus(largest), books[500], out,
                                                       "--no-cache", "--jobs", "2")}
        shutil.rmtree(out, ignore_errors=True)
        print("jobs2 at", largest, round(res["jobs2_large"]["wall_s"], 1), flush=True)
    res["pain"] = pain_points(args.main)
    if args.naive_main:
        texts = coded_texts(WORK / f"size{args.main}")
        res["naive_main"] = {"size": args.main, **naive(texts, books[500])}
        print("naive at", args.main, round(res["naive_main"]["wall_s"], 1), flush=True)
    res["machine"]["load_avg_at_end"] = os.getloadavg()
    cache = res["cache"]
    for run in [*res["sizes"].values(), *res["patterns"].values(), cache["cold"], cache["warm"],
                cache["rare"], cache["matched"], res["jobs2"],
                *([res["jobs2_large"]] if "jobs2_large" in res else [])]:
        run["manifest"] = {k: run["manifest"][k] for k in ("timings_s", "stage_times_s",
                                                            "throughput", "counts")}
    write_results(res, args.main)
    print((HERE / "RESULTS.md").read_text())


# The one-rule edits of a re-code: a word that occurs nowhere (the rule is matched again
# and gives its old rows) and a frequent word (its code's matches and codings change).
MATCHING_EDIT = "vernieuwing"
# A word of a few documents: only the chunks that hold one of them change.
RARE_EDIT = "wandelgangen"


def edited_codebook(book: Path, word: str) -> Path:
    """``book`` with ``word`` added to its first terms rule (``codebook_500_<word>.yaml``)."""
    text = book.read_text()
    new = text.replace("kind: terms\n      terms:\n", f"kind: terms\n      terms:\n      - {word}\n", 1)
    if new == text:
        raise SystemExit(f"{book}: no terms rule to edit")
    # the zzedit file keeps its old name (earlier results refer to it)
    path = WORK / ("codebook_500_edited.yaml" if word == "zzedit" else f"codebook_500_{word}.yaml")
    path.write_text(new)
    return path


RECODE_REPEATS = 3   # cold run + the two re-codes, each time from an empty output folder


def recode_series(corpus: Path, book: Path, repeats: int) -> dict:
    """``repeats`` times: a cold run into an empty folder, the re-codes after the "zzedit"
    edit, the rare word and the matching edit. Returns the median run of each (by wall
    time), every wall time (``walls``) and how many files hold the rare word."""
    runs: dict[str, list[dict]] = {"cold": [], "warm": [], "rare": [], "matched": []}
    edits = {"warm": edited_codebook(book, "zzedit"),
             "rare": edited_codebook(book, RARE_EDIT),
             "matched": edited_codebook(book, MATCHING_EDIT)}
    out = WORK / "cache"
    for _ in range(repeats):
        shutil.rmtree(out, ignore_errors=True)
        runs["cold"].append(qcode(corpus, book, out))
        for name, edited in edits.items():
            runs[name].append(qcode(corpus, edited, out))
    median = {name: sorted(got, key=lambda r: r["wall_s"])[len(got) // 2]
              for name, got in runs.items()}
    files = sorted(corpus.iterdir())
    rare = sum(RARE_EDIT in f.read_text(encoding="utf-8", errors="replace").lower() for f in files)
    return {**median, "rare_files": [rare, len(files)],
            "walls": {name: [round(r["wall_s"], 2) for r in got] for name, got in runs.items()}}


ADDED_FROM = "int0000005"   # the transcript copied (a word changed) as a new interview


def with_added(corpus: Path) -> Path:
    """``corpus`` plus one transcript and its metadata row (``<WORK>/added``): the
    corpus's files hard-linked (the same bytes and paths below the folder), a copy of
    ``ADDED_FROM`` with "school" made "schoolgebouw" as ``<ADDED_FROM>b.txt``, and
    ``metadata.csv`` with its row."""
    folder = WORK / "added"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for path in sorted(corpus.iterdir()):
        if path.name != "metadata.csv":
            os.link(path, folder / path.name)
    text = (corpus / f"{ADDED_FROM}.txt").read_text(encoding="utf-8")
    (folder / f"{ADDED_FROM}b.txt").write_text(text.replace("school", "schoolgebouw"),
                                                encoding="utf-8")
    lines = (corpus / "metadata.csv").read_text(encoding="utf-8").splitlines()
    row = next(line for line in lines if line.startswith(f"{ADDED_FROM},"))
    (folder / "metadata.csv").write_text(
        "\n".join([*lines, row.replace(ADDED_FROM, f"{ADDED_FROM}b", 1)]) + "\n",
        encoding="utf-8")
    return folder


def added_series(corpus: Path, book: Path, repeats: int) -> dict:
    """``repeats`` times: a cold run into an empty folder, then the run after one
    transcript (and its metadata row) was added (``with_added``). Returns the median run
    of each and every wall time."""
    added = with_added(corpus)
    runs: dict[str, list[dict]] = {"cold": [], "added": []}
    out = WORK / "added_out"
    for _ in range(repeats):
        shutil.rmtree(out, ignore_errors=True)
        runs["cold"].append(qcode(corpus, book, out))
        runs["added"].append(qcode(added, book, out))
    shutil.rmtree(out, ignore_errors=True)
    median = {name: sorted(got, key=lambda r: r["wall_s"])[len(got) // 2]
              for name, got in runs.items()}
    for run in median.values():
        run["manifest"] = {k: run["manifest"][k] for k in ("timings_s", "throughput")}
    return {**median, "walls": {name: [round(r["wall_s"], 2) for r in got]
                                for name, got in runs.items()}}


def rerun_key(size: int) -> dict:
    """The key timings again, at the end of the session (less load from other users)."""
    corpus, book = make_corpus(size), make_codebook(500)
    out: dict = {"load_avg_at_start": os.getloadavg()}
    for name, extra in (("jobs1", ["--no-cache"]), ("jobs2", ["--no-cache", "--jobs", "2"])):
        shutil.rmtree(WORK / name, ignore_errors=True)
        out[name] = qcode(corpus, book, WORK / name, *extra)["wall_s"]
    shutil.rmtree(WORK / "cache", ignore_errors=True)
    out["cold"] = qcode(corpus, book, WORK / "cache")["wall_s"]
    out["warm"] = qcode(corpus, edited_codebook(book, "zzedit"), WORK / "cache")["wall_s"]
    out["matched"] = qcode(corpus, edited_codebook(book, MATCHING_EDIT), WORK / "cache")["wall_s"]
    out["load_avg_at_end"] = os.getloadavg()
    print("rerun", out, flush=True)
    return out


def rare_series(size: int) -> dict:
    """qcode at 50/500/5,000 patterns where only ~50 patterns' words occur in the text."""
    corpus = make_corpus(size)
    out = {}
    for n in (50, 500, 5000):
        book = make_codebook(n, real=50)
        run = qcode(corpus, book, WORK / f"rare{n}", "--no-cache")
        run["manifest"] = {k: run["manifest"][k] for k in ("stage_times_s", "counts")}
        out[n] = run
        print("rare", n, round(run["wall_s"], 1), flush=True)
    return out


# The two complaints about QDA tools that issue #7 opens with: one long transcript
# (QualCoder users call files of 300k characters slow) and a survey of 6,400 answers.
LONG_CHARS = 300_000
SURVEY_ANSWERS = 6_400
# Ten times the answers in one file: a file is one document (one chunk), so this shows
# how a survey's time and memory grow with its size.
BIG_SURVEY_ANSWERS = 64_000
# A transcript fifty times as long (~15 MB: 600 interviews of the corpus in one file),
# coded in parts like the large survey.
BIG_LONG_FILES = 600


def pain_points(size: int) -> dict:
    """``qcode code --no-cache`` (500 patterns) on one transcript of at least
    ``LONG_CHARS`` characters (the first files of the ``size`` corpus, in name order, as
    one file) and on CSVs of ``SURVEY_ANSWERS`` and ``BIG_SURVEY_ANSWERS`` answers (coded
    segments of that corpus longer than 40 characters, in order, repeated when there are
    too few; ``--text-column answer``)."""
    import csv
    import itertools

    corpus, book = make_corpus(size), make_codebook(500)
    folder = WORK / "long_input"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    parts: list[str] = []
    for path in sorted(corpus.iterdir()):
        parts.append(path.read_text(encoding="utf-8").strip() + "\n")
        if sum(map(len, parts)) >= LONG_CHARS:
            break
    text = "".join(parts)
    (folder / "one_interview.txt").write_text(text, encoding="utf-8")
    out: dict = {"long": {"chars": len(text), "files_joined": len(parts)}}
    run = qcode(folder, book, WORK / "long", "--no-cache")
    out["long"].update({k: run[k] for k in ("wall_s", "peak_rss_mb", "segments")})
    files = sorted(corpus.iterdir())[:BIG_LONG_FILES]
    if len(files) == BIG_LONG_FILES:
        big = WORK / "big_long_input"
        shutil.rmtree(big, ignore_errors=True)
        big.mkdir(parents=True)
        (big / "interviews.txt").write_text(
            "".join(f.read_text(encoding="utf-8").strip() + "\n" for f in files), encoding="utf-8")
        run = qcode(big, book, WORK / "big_long", "--no-cache")
        out["big_long"] = {"files_joined": len(files), "bytes": (big / "interviews.txt").stat().st_size,
                           "chunks": run["manifest"]["throughput"]["chunks"],
                           **{k: run[k] for k in ("wall_s", "peak_rss_mb", "segments")}}
        shutil.rmtree(WORK / "big_long_cached", ignore_errors=True)
        run = qcode(big, book, WORK / "big_long_cached")
        out["big_long"]["cached"] = {k: run[k] for k in ("wall_s", "peak_rss_mb")}
    sized = WORK / f"size{size}"
    if not (sized / "segments.parquet").exists():
        qcode(corpus, book, sized, "--no-cache")
    texts = [t for t in coded_texts(sized) if len(t) > 40]
    for name, n in (("survey", SURVEY_ANSWERS), ("big_survey", BIG_SURVEY_ANSWERS)):
        survey = WORK / f"{name}_input"
        shutil.rmtree(survey, ignore_errors=True)
        survey.mkdir(parents=True)
        answers = list(itertools.islice(itertools.cycle(texts), n))
        with open(survey / "answers.csv", "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["respondent", "answer"])
            writer.writerows((f"r{k:05d}", t) for k, t in enumerate(answers))
        run = qcode(survey, book, WORK / name, "--no-cache", "--text-column", "answer")
        out[name] = {"answers": len(answers), "bytes": (survey / "answers.csv").stat().st_size,
                     "chunks": run["manifest"]["throughput"]["chunks"],
                     **{k: run[k] for k in ("wall_s", "peak_rss_mb", "segments")}}
        if name == "big_survey":
            # a first run that fills the cache (the default), and two workers
            shutil.rmtree(WORK / f"{name}_cached", ignore_errors=True)
            run = qcode(survey, book, WORK / f"{name}_cached", "--text-column", "answer")
            out[name]["cached"] = {k: run[k] for k in ("wall_s", "peak_rss_mb")}
            run = qcode(survey, book, WORK / f"{name}_jobs2", "--no-cache", "--jobs", "2",
                        "--text-column", "answer")
            out[name]["jobs2_wall_s"] = run["wall_s"]
    print("pain points", out, flush=True)
    return out


HISTORY_MARKER = ("<!-- Everything below this line is kept by run_benchmarks.py: the measurements and "
                  "analyses of earlier sittings. -->")


def with_history(generated: str, previous: str | None) -> str:
    """The new report, followed by the history part of the previous RESULTS.md (if any).

    Everything from ``HISTORY_MARKER`` on is hand-written (sessions, profiles, why a
    target is missed): a new run replaces the generated part only.
    """
    if previous is None or HISTORY_MARKER not in previous:
        return generated
    return generated.rstrip("\n") + "\n\n" + previous[previous.index(HISTORY_MARKER):]


def write_results(res: dict, main_size: int) -> None:
    """Write results.json and RESULTS.md (generated part + the kept history)."""
    (HERE / "results.json").write_text(json.dumps(res, indent=1, default=str) + "\n")
    path = HERE / "RESULTS.md"
    previous = path.read_text(encoding="utf-8") if path.exists() else None
    path.write_text(with_history(report(res, main_size), previous), encoding="utf-8")


def _commit() -> str:
    """The commit of the code measured (``git rev-parse``), for a series run on its own."""
    got = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                         text=True)
    return got.stdout.strip() or "unknown"


def _added_lines(added: dict) -> list[str]:
    """The report's line of ``added_series``."""
    cold, run = added["cold"], added["added"]
    when = (f"; measured on its own (`--added-only`) at `{added['separately']}`, after the "
            "tables above" if added.get("separately") else "")
    return [f"- run after adding one transcript (a copy of `{ADDED_FROM}.txt` with a word "
            f"changed) and its metadata row, right after a cold run (median of "
            f"{len(added['walls']['added'])}, walls {added['walls']}): {run['wall_s']:.1f} s "
            f"against {cold['wall_s']:.1f} s (**{cold['wall_s'] / run['wall_s']:.1f}x**; "
            f"chunks not coded, their rows taken from the last run's files: "
            f"{_chunks_taken(run)}; documents parsed: "
            f"{run['manifest']['throughput']['cache_misses']}{when})"]


def _chunks_taken(run: dict) -> str:
    """How many of a run's chunks took their coding rows from the cache."""
    tp = run["manifest"].get("throughput", {})
    return f"{tp['chunks_taken']} of {tp['chunks']}" if "chunks_taken" in tp else "not recorded"


def _taken(run: dict) -> str:
    """Whether a run took its coding files from the cache (``coded_files``)."""
    got = run["manifest"].get("throughput", {}).get("coded_files_taken")
    return "not recorded" if got is None else ("yes" if got else "no")


def report(res: dict, main_size: int) -> str:
    m = res["machine"]
    lines = ["# Benchmark results", "",
             "Generated by `benchmarks/run_benchmarks.py` (`make bench`); every number below was "
             "measured in one run on this machine.", "",
             f"- CPU: {m['cpu']}, {m['cores']} cores, {m['ram_gb']} GB RAM; {m['platform']}",
             f"- Python {m['python']}, spaCy {m['spacy']}"
             + (f"; qcode's bytecode {m['bytecode']}" if "bytecode" in m else ""),
             f"- load average at start {tuple(round(x, 2) for x in m['load_avg_at_start'])}, "
             f"at end {tuple(round(x, 2) for x in m['load_avg_at_end'])} (the machine is shared: "
             "other processes running at the same time make these numbers noisy)", "",
             "## Corpus size (codebook of 500 patterns, `--jobs 1`, `--no-cache`)", "",
             "| segments | wall s | segments/s | tokens/s | tokenizer tokens/s | e2e / tokenizer | peak RSS MB |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    for size, r in sorted(res["sizes"].items(), key=lambda kv: int(kv[0])):
        tok = r["tokenizer"]["tokens_per_s"]
        tps = r["tokens"] / r["wall_s"]
        lines.append(f"| {int(size):,} | {r['wall_s']:.1f} | {r['segments'] / r['wall_s']:,.0f} | "
                     f"{tps:,.0f} | {tok:,.0f} | {tps / tok:.1%} | {r['peak_rss_mb']:,.0f} |")
    lines += ["", "Wall time is the whole `qcode code` process (start-up, ingest, segmentation, "
              "NLP, coding, writing); tokens are those of the coded (respondent) segments; the "
              "tokenizer column is spaCy's bare tokenizer on exactly those texts.", "",
              "## Codebook size (corpus of "
              f"{int(next(iter(res['patterns'].values()))['segments']):,} segments)", "",
              "| patterns | qcode wall s | qcode nlp+code s | matches | naive regex s | naive / qcode |",
              "|---:|---:|---:|---:|---:|---:|"]
    for n, r in res["patterns"].items():
        st = r["manifest"]["stage_times_s"]
        lines.append(f"| {int(n):,} | {r['wall_s']:.1f} | {st['nlp_code']:.1f} | "
                     f"{r['manifest']['counts']['codings']:,} codings | {r['naive']['wall_s']:.1f} | "
                     f"{r['naive']['wall_s'] / r['wall_s']:.1f}x |")
    cold, warm = res["cache"]["cold"], res["cache"]["warm"]
    j1, j2 = res["sizes"].get(main_size) or res["sizes"][str(main_size)], res["jobs2"]
    lines += ["", "The naive baseline times only the regex scans (texts already in memory); "
              "qcode's time is its whole process.", ""]
    if "naive_main" in res:
        nv = res["naive_main"]
        lines += [f"Naive baseline at {int(nv['size']):,} segments, 500 patterns "
                  "(`--naive-main`; qcode's run is the corpus-size row above): naive "
                  f"{nv['wall_s']:.1f} s, qcode {j1['wall_s']:.1f} s "
                  f"(**{nv['wall_s'] / j1['wall_s']:.1f}x**); qcode's fixed start-up "
                  "(imports, spaCy pipeline) weighs less here than at 10,000 segments.", ""]
    lines += [
              f"## Re-code after a codebook edit ({main_size:,} segments)", "",
              *([f"Each run {len(res['cache']['walls']['cold'])} times (a cold run "
                 "into an empty folder, then the re-codes); the medians, all wall times "
                 f"(s): {res['cache']['walls']}.", ""] if "walls" in res["cache"] else []),
              f"- cold run (parses, fills the cache): {cold['wall_s']:.1f} s",
              f"- re-code from cache after adding a word that occurs nowhere to one rule: "
              f"{warm['wall_s']:.1f} s (**{cold['wall_s'] / warm['wall_s']:.1f}x** faster; stage "
              f"times cold {cold['manifest']['stage_times_s']}, re-code "
              f"{warm['manifest']['stage_times_s']}; coding files taken from the cache, no "
              f"chunk coded: {_taken(warm)})",
              *([f"- re-code after adding the word \"{RARE_EDIT}\", found in "
                 f"{res['cache']['rare_files'][0]:,} of {res['cache']['rare_files'][1]:,} files, "
                 f"to one rule: {res['cache']['rare']['wall_s']:.1f} s "
                 f"(**{cold['wall_s'] / res['cache']['rare']['wall_s']:.1f}x**; chunks not coded, "
                 f"their coding rows taken from the cache: {_chunks_taken(res['cache']['rare'])})"]
                if "rare" in res["cache"] else []),
              *([f"- re-code after adding the frequent word \"{MATCHING_EDIT}\" to one rule (its "
                 f"code's matches and codings change): {res['cache']['matched']['wall_s']:.1f} s "
                 f"(**{cold['wall_s'] / res['cache']['matched']['wall_s']:.1f}x**; coding files "
                 f"taken: {_taken(res['cache']['matched'])})"]
                if "matched" in res["cache"] else []),
              *(_added_lines(res["added"]) if "added" in res else []),
              f"- for comparison, a run without the cache (`--no-cache`, the corpus-size row "
              f"above): {j1['wall_s']:.1f} s, {j1['wall_s'] / warm['wall_s']:.1f}x the first "
              "re-code; the cold run is slower than it because it also writes the caches", "",
              f"## Parallel ({main_size:,} segments, 2 cores)", "",
              f"- `--jobs 1`: {j1['wall_s']:.1f} s{_cores(j1)}; `--jobs 2`: {j2['wall_s']:.1f} s"
              f"{_cores(j2)} (**{j1['wall_s'] / j2['wall_s']:.2f}x**)"]
    if "jobs2_large" in res:
        big2 = res["jobs2_large"]
        big1 = res["sizes"].get(big2["size"]) or res["sizes"][str(big2["size"])]
        lines += [f"- at {int(big2['size']):,} segments: `--jobs 1` (the corpus-size row) "
                  f"{big1['wall_s']:.1f} s{_cores(big1)}; `--jobs 2` {big2['wall_s']:.1f} s"
                  f"{_cores(big2)} (**{big1['wall_s'] / big2['wall_s']:.2f}x**)"]
    if j1.get("busy_cpu_s"):
        lines += ["", "Cores busy: the CPU seconds all cores of the machine were busy during "
                  "the run (`/proc/stat`, other users' work included), divided by its wall "
                  "time. `--jobs 1` already keeps more than one core busy (Arrow encodes and "
                  "the cache is written on threads of their own), so on 2 cores `--jobs 2` can "
                  "be at most 2 / (its cores) faster."]
    lines += [""]
    if "rerun" in res:
        r = res["rerun"]
        lines += [f"## Key numbers re-measured at the end ({main_size:,} segments, `--rerun-key`)", "",
                  f"Load average {tuple(round(x, 2) for x in r['load_avg_at_start'])} at start, "
                  f"{tuple(round(x, 2) for x in r['load_avg_at_end'])} at end.", "",
                  f"- `--jobs 1` {r['jobs1']:.1f} s, `--jobs 2` {r['jobs2']:.1f} s "
                  f"(**{r['jobs1'] / r['jobs2']:.2f}x**)",
                  f"- cache: cold {r['cold']:.1f} s, re-code after an edit {r['warm']:.1f} s "
                  f"(**{r['cold'] / r['warm']:.1f}x**)"
                  + (f", after an edit that changes matches {r['matched']:.1f} s "
                     f"(**{r['cold'] / r['matched']:.1f}x**)" if "matched" in r else ""), ""]
    if "pain" in res:
        lg, sv = res["pain"]["long"], res["pain"]["survey"]
        lines += ["## One long transcript, one survey (`--no-cache`, 500 patterns)", "",
                  f"- one transcript of {lg['chars']:,} characters ({lg['segments']:,} segments; "
                  f"{lg['files_joined']} files of the corpus as one): {lg['wall_s']:.1f} s, "
                  f"peak RSS {lg['peak_rss_mb']:,.0f} MB",
                  f"- a CSV of {sv['answers']:,} survey answers (`--text-column answer`): "
                  f"{sv['wall_s']:.1f} s, peak RSS {sv['peak_rss_mb']:,.0f} MB"]
        big = res["pain"].get("big_survey")
        if big is not None:
            lines += [f"- a CSV of {big['answers']:,} answers ({big['bytes'] / 1e6:.1f} MB): "
                      f"{big['wall_s']:.1f} s, peak RSS {big['peak_rss_mb']:,.0f} MB"
                      + (f" ({big['chunks']} chunks)" if "chunks" in big else "")]
            if "cached" in big:
                lines += [f"  - the same, a first run with the cache: {big['cached']['wall_s']:.1f} s, "
                          f"peak RSS {big['cached']['peak_rss_mb']:,.0f} MB; `--jobs 2` (no "
                          f"cache): {big['jobs2_wall_s']:.1f} s"]
        long = res["pain"].get("big_long")
        if long is not None:
            lines += [f"- a transcript of {long['bytes'] / 1e6:.1f} MB ({long['files_joined']} "
                      f"files of the corpus as one, {long['segments']:,} segments): "
                      f"{long['wall_s']:.1f} s, peak RSS {long['peak_rss_mb']:,.0f} MB "
                      f"({long['chunks']} chunks); a first run with the cache: "
                      f"{long['cached']['wall_s']:.1f} s, peak RSS "
                      f"{long['cached']['peak_rss_mb']:,.0f} MB"]
        lines += ["", "The issue opens with these: QualCoder users find files of 300k "
                  "characters slow and 6,400 survey answers unusable. Every time includes "
                  "qcode's start-up. A file is one document, and a document is coded in one "
                  "piece, except a file of more than 2 MB (`RunOptions.part_bytes`), a survey "
                  "or a transcript: it is read and segmented whole, then parsed, matched and "
                  "aggregated in chunks of about 2 MB of its segments (`pipeline/chunk_parts.py`), "
                  "which `--jobs` shares out. The memory of a run still grows with its largest "
                  "file, less steeply: about 6-10 times the size of a file in parts and 50-60 "
                  "times that of a smaller file (unlike the corpus rows above, where it stays "
                  "flat).", ""]
    lines += ["## Reading the numbers", "",
              "- Peak RSS is that of the `qcode` process (`wait4` rusage); it stays flat because "
              "only a chunk (about 1 MB of input, at most 1.5 MB) is in memory at a time (and at most a few waiting "
              "for the thread that appends them to the outputs as Parquet row groups).",
              "- Throughput per segment varies with the load other users put on the 2 cores: "
              "compare `stage_times_s` in `results.json`; a slower large run that is slower in "
              "every stage by the same factor was starved of CPU, not hit by an O(n^2) step.",
              "- qcode runs spaCy's tokenizer once per distinct space-separated piece of text "
              "(`pipeline/nlp_fast.py`), then lemmas, sentences, the rule matcher, aggregation "
              "and Parquet + CSV writing, besides reading and segmenting the files. The "
              "matcher works on token arrays and word types (NumPy); Python runs per hit only "
              "where rules need it (overlaps, proximity, vetoes) and in spaCy's Matcher for "
              "token patterns.",
              "- A re-code whose edit can change no coding (here: a word that no word of the "
              "corpus matches) takes the coding files a run with the unedited codebook wrote "
              "(`pipeline/coded_files.py`) and codes no chunk. After adding a word of a few "
              "documents, the chunks without one take their coding rows from those files "
              "(Parquet row groups and CSV lines copied, `pipeline/coded_slices.py`) and are "
              "not coded either. A chunk whose codings may change reuses the chunk cache "
              "(documents, segments, token arrays): it skips ingest, segmentation and parsing, "
              "and matches only the edited rule (`pipeline/match_cache.py`). After a "
              "transcript is added, the chunks that did not change take their coding and "
              "segments rows from the last run's files the same way, found by their chunk "
              "keys (`coded_slices.moved`).", ""]
    if "rare" in res:
        lines += ["## Cost of the number of patterns alone (same hits)", "",
                  "Codebooks of 50/500/5,000 patterns of which only ~50 patterns' words occur in "
                  "the corpus (the rest never match), so the work per hit is constant and only "
                  "the number of compiled patterns changes (same corpus as the codebook table, "
                  "measured in a second invocation: `--rare-only`).", "",
                  "| patterns | qcode wall s | nlp+code s | codings |", "|---:|---:|---:|---:|"]
        for n, r in res["rare"].items():
            lines.append(f"| {int(n):,} | {r['wall_s']:.1f} | "
                         f"{r['manifest']['stage_times_s']['nlp_code']:.1f} | "
                         f"{r['manifest']['counts']['codings']:,} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
