"""Benchmark of the stages after coding: ``qcode matrix`` and ``qcode figures``.

Run by hand after ``run_benchmarks.py`` (which leaves the coded folders in
``benchmarks/corpora/runs/size<N>``; a missing one is coded here with ``--no-cache``).
For each size it runs both commands as a user does (subprocesses) and reports wall
time and peak RSS (of the command and its notebook kernel). ``--baseline TREE`` runs
the same commands with the package and notebooks of another checkout
(``git archive <commit> pipeline notebooks | tar -x -C TREE``) in the same sitting,
for a before/after; ``--baseline-figures-max`` bounds the sizes at which the baseline's
figures are timed (they may take very long). The table replaces the block between
the markers in ``benchmarks/RESULTS.md`` (added at its end the first time).

Usage:
    python benchmarks/bench_aggregate.py [--sizes 100000 1000000] [--baseline /tmp/base]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run_benchmarks import ROOT, WORK, _ENV, machine, prepare_bytecode, qcode  # noqa: E402
from make_codebook import make_codebook  # noqa: E402
from make_corpus import make_corpus  # noqa: E402

# every matrix qcode matrix writes, plus a window co-occurrence and a KWIC of a frequent word
MATRIX_ARGS = ["--by", "country", "--window", "1", "--kwic", "vernieuwing"]
START, END = "<!-- bench_aggregate:start -->", "<!-- bench_aggregate:end -->"


def coded(size: int, book: Path) -> Path:
    """The coded folder of the ``size`` corpus (coded now when missing)."""
    out = WORK / f"size{size}"
    if not (out / "manifest.json").exists():
        shutil.rmtree(out, ignore_errors=True)
        qcode(make_corpus(size), book, out, "--no-cache")
    return out


def timed(cmd: list[str], tree: Path) -> dict:
    """Run ``python -m pipeline <cmd>`` with the package in ``tree``: wall time, peak RSS."""
    cmd = [sys.executable, "-m", "pipeline", *cmd]
    env = {**_ENV, "PYTHONPATH": str(tree)}
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=tree, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(cmd)} failed")
    # ru_maxrss of wait4 is the largest of the process and its waited-for children
    return {"wall_s": wall, "peak_rss_mb": usage.ru_maxrss / 1024}


def matrix(folder: Path, book: Path, tree: Path) -> dict:
    """``qcode matrix`` on ``folder``; its timings and the bytes of the files it wrote."""
    out = Path(tempfile.mkdtemp(prefix="qcode-matrix-"))
    run = timed(["matrix", "--coded", str(folder), "--codebook", str(book), "--out", str(out),
                 "--quiet", *MATRIX_ARGS], tree)
    run["files"] = {p.name: p.read_bytes() for p in sorted(out.iterdir())}
    shutil.rmtree(out)
    return run


def figures(folder: Path, book: Path, tree: Path) -> dict:
    """``qcode figures`` (the report notebook, headless) on ``folder``."""
    out = Path(tempfile.mkdtemp(prefix="qcode-figures-"))
    run = timed(["figures", "--coded", str(folder), "--codebook", str(book), "--out", str(out),
                 "--gold", "none", "--quiet"], tree)
    run["png_bytes"] = sum(p.stat().st_size for p in out.glob("*.png"))
    run["svg_bytes"] = sum(p.stat().st_size for p in out.glob("*.svg"))
    shutil.rmtree(out)
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", type=int, default=[100_000, 1_000_000])
    parser.add_argument("--baseline", type=Path, help="a checkout whose pipeline/ to compare")
    parser.add_argument("--baseline-name", help="what the baseline is (e.g. a commit)")
    parser.add_argument("--baseline-figures-max", type=int, default=100_000,
                        help="time the baseline's figures up to this size only")
    parser.add_argument("--report-only", action="store_true",
                        help="rewrite the RESULTS.md block from results_aggregate.json")
    args = parser.parse_args()
    if args.report_only:
        res = json.loads((HERE / "results_aggregate.json").read_text())
        write_block(res)
        return
    prepare_bytecode()
    book = make_codebook(500)
    res: dict = {"machine": machine(), "args": MATRIX_ARGS, "sizes": {},
                 "baseline": (args.baseline_name or str(args.baseline)) if args.baseline else None}
    for size in args.sizes:
        folder = coded(size, book)
        n = json.loads((folder / "manifest.json").read_text())["counts"]
        row = {"segments": n["segments"], "codings": n["codings"],
               "documents": n["documents"], "matrix": matrix(folder, book, ROOT),
               "figures": figures(folder, book, ROOT)}
        if args.baseline:
            row["matrix_baseline"] = matrix(folder, book, args.baseline)
            # a faster aggregate that changes a number is no improvement
            row["same_matrices"] = row["matrix_baseline"].pop("files") == row["matrix"]["files"]
            if size <= args.baseline_figures_max:
                row["figures_baseline"] = figures(folder, book, args.baseline)
        row["matrix"].pop("files")
        res["sizes"][size] = row
        print(size, row, flush=True)
    res["machine"]["load_avg_at_end"] = os.getloadavg()
    (HERE / "results_aggregate.json").write_text(json.dumps(res, indent=1, default=str) + "\n")
    write_block(res)


def write_block(res: dict) -> None:
    """Put the report between the markers of RESULTS.md (at its end the first time)."""
    path = HERE / "RESULTS.md"
    text = path.read_text(encoding="utf-8")
    block = f"{START}\n{report(res)}{END}"
    if START in text and END in text:
        text = text[:text.index(START)] + block + text[text.index(END) + len(END):]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text, encoding="utf-8")
    print(block)


def report(res: dict) -> str:
    """The Markdown block of the results."""
    m, baseline = res["machine"], res.get("baseline")
    lines = ["## After coding: `qcode matrix` and `qcode figures` (generated by "
             "`benchmarks/bench_aggregate.py`)", "",
             f"On the coded benchmark corpora (codebook of 500 patterns); {m.get('cpu', '?')}, "
             f"{m['cores']} cores, {m['ram_gb']} GB RAM, Python {m['python']}; load average at "
             f"end {tuple(round(x, 2) for x in m['load_avg_at_end'])}. `qcode matrix "
             f"{' '.join(res['args'])}` writes every matrix; `qcode figures` runs the report "
             "notebook headless (peak RSS: the command or its kernel, whichever is larger)."
             + (f" Before: the same commands with the package and notebooks of {baseline}, in the "
                "same sitting." if baseline else ""), "",
             "| segments | documents | command | " + ("before wall s | before peak RSS MB | "
                                                     if baseline else "")
             + "wall s | peak RSS MB | " + ("speed-up | same output |" if baseline else ""),
             "|---:|---:|:---|" + ("---:|---:|" if baseline else "") + "---:|---:|"
             + ("---:|:---:|" if baseline else "")]
    for row in res["sizes"].values():
        for name in ("matrix", "figures"):
            now, old = row[name], row.get(f"{name}_baseline")
            cells = [f"{row['segments']:,}", f"{row['documents']:,}", f"`qcode {name}`"]
            if baseline:
                cells += ([f"{old['wall_s']:.1f}", f"{old['peak_rss_mb']:,.0f}"] if old
                          else ["not run", ""])
            cells += [f"{now['wall_s']:.1f}", f"{now['peak_rss_mb']:,.0f}"]
            if baseline:
                same = ({True: "yes", False: "**no**"}[row["same_matrices"]] if name == "matrix"
                        else "drawn differently" if old else "")
                cells += [f"{old['wall_s'] / now['wall_s']:.1f}x" if old else "", same]
            lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    for row in res["sizes"].values():
        sizes = [f"{run['png_bytes'] / 1e6:.1f} MB of PNG and {run['svg_bytes'] / 1e6:.1f} MB "
                 f"of SVG {when}" for run, when in ((row.get("figures_baseline"), "before"),
                                                   (row["figures"], "now")) if run]
        lines.append(f"- {row['segments']:,} segments: the figures took " + ", ".join(sizes) + ".")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
