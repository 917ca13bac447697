"""``qcode code``, ``qcode run`` and ``qcode validate``."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline import cache_prune
from pipeline import columns as C
from pipeline.errors import UsageError
from pipeline.cli.defaults import (DEFAULT_CODEBOOK, DEFAULT_CODED, DEFAULT_FIGURES, DEFAULT_GOLD,
                                   DEFAULT_MATRICES, DEFAULT_RAW)


def _add_coding_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--codebook", default=DEFAULT_CODEBOOK,
                   help=f"codebook YAML (default: {DEFAULT_CODEBOOK})")
    p.add_argument("--unit", choices=["turn", "paragraph", "sentence"],
                   help="coding unit (default: the codebook's settings.unit, normally 'turn')")
    p.add_argument("--lang", choices=["nl", "en"],
                   help="language of every document (default: metadata 'language' column, "
                        "else the codebook's default language)")
    p.add_argument("--metadata", help="metadata CSV with a doc_id column (default: "
                                      "metadata.csv inside an input folder, if present)")
    p.add_argument("--text-column", default="text",
                   help="CSV inputs: column holding the answer text (default: text)")
    p.add_argument("--id-column", default="id",
                   help="CSV inputs: column holding the response id (default: id)")
    p.add_argument("--code-speakers", metavar="LABELS",
                   help="comma-separated speaker labels to code, or 'all' "
                        "(default: every speaker except the interviewer)")
    p.add_argument("--method", choices=["rules", "ml", "hybrid"], default="rules",
                   help="rules (codebook rules only), ml (a trained model only) or hybrid "
                        "(rule evidence combined with model probability); ml/hybrid need --model")
    p.add_argument("--model", help="model file written by 'qcode train'")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar or summary")
    p.add_argument("--jobs", "-j", type=int, default=1, metavar="N",
                   help="worker processes (default: 1); output is identical for any N")
    p.add_argument("--engine", choices=["local", "dask"], default="local",
                   help="local processes (default) or a dask.distributed cluster")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="--engine dask: scheduler address (tcp://host:8786); default: start "
                        "a local cluster of --jobs workers")
    p.add_argument("--no-cache", action="store_true",
                   help="do not reuse or store cached work (parsed documents, matches, "
                        "codings, output files)")
    p.add_argument("--cache-dir", metavar="DIR",
                   help="cache folder (default: <out>/.cache; safe to delete; entries that "
                        f"none of the last {cache_prune.KEEP_RUNS} runs used are deleted)")
    p.add_argument("--docbin-cache", action="store_true",
                   help="also keep each document's parse as a spaCy DocBin file in the cache "
                        "(<cache>/docbin-v1) and reuse them; off by default, as parsing again "
                        "is faster than reading them back")


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``code``, ``run`` and ``validate``."""
    p = sub.add_parser(
        "code", help="code transcripts against the codebook",
        description="Read transcripts (txt, md, docx, vtt, srt, csv; files or folders), cut them "
                    "into coding units and code them with the codebook. Writes segments, "
                    "codings, matches, manifest.json and errors.csv into --out. Exit code 2 "
                    "when some file could not be read (the rest is coded; errors.csv says why).")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="transcript files or folders")
    p.add_argument("--out", default=DEFAULT_CODED, help=f"output folder (default: {DEFAULT_CODED})")
    _add_coding_options(p)
    p.set_defaults(func=cmd_code)

    p = sub.add_parser(
        "run", help="the main job: code data/raw, then build matrices and figures",
        description=f"Code {DEFAULT_RAW}/ with {DEFAULT_CODEBOOK} into {DEFAULT_CODED}/, then "
                    "write the theme matrices and the report figures. Prints a short summary.")
    p.add_argument("--raw", default=DEFAULT_RAW, help=f"input folder (default: {DEFAULT_RAW})")
    p.add_argument("--out", default=DEFAULT_CODED, help=f"output folder (default: {DEFAULT_CODED})")
    p.add_argument("--figures", default=DEFAULT_FIGURES,
                   help=f"figures folder (default: {DEFAULT_FIGURES})")
    p.add_argument("--no-figures", action="store_true", help="code only; skip matrices and figures")
    p.add_argument("--gold", default=DEFAULT_GOLD,
                   help="gold standard scored against the rule coding for the agreement figure; "
                        "a gold in <set>/gold/ is scored on the texts in <set>/raw/ "
                        f"(default: {DEFAULT_GOLD}, if present; 'none' to skip)")
    _add_coding_options(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser(
        "validate", help="check a codebook and report every problem at once",
        description="Validate a codebook YAML: structure, required codes, ids, rules and "
                    "patterns. Every problem is listed with file, line and YAML path.")
    p.add_argument("codebook", nargs="?", default=DEFAULT_CODEBOOK,
                   help=f"codebook YAML (default: {DEFAULT_CODEBOOK})")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser(
        "rules-report", help="which rules fire most, and which never fire, on a coded folder",
        description="Per codebook rule: matches, segments hit and codings it contributed to on a "
                    "coded folder, so a researcher can prune rules that never fire and check the "
                    "busiest ones. Prints a summary per code; --out writes the full table as CSV.")
    p.add_argument("--coded", default=DEFAULT_CODED, help=f"coded folder (default: {DEFAULT_CODED})")
    p.add_argument("--codebook", default=DEFAULT_CODEBOOK,
                   help=f"the codebook the folder was coded with (default: {DEFAULT_CODEBOOK})")
    p.add_argument("--out", help="write the per-rule table here (CSV)")
    p.add_argument("--top", type=int, default=3, help="busiest rules shown per code (default: 3)")
    p.set_defaults(func=cmd_rules_report)


def _options(args: argparse.Namespace):
    from pipeline.runner import RunOptions

    if args.jobs < 1:
        raise UsageError(f"--jobs must be at least 1, not {args.jobs}")
    if args.scheduler and args.engine != "dask":
        raise UsageError("--scheduler needs --engine dask")
    if args.docbin_cache and args.no_cache:
        raise UsageError("--docbin-cache keeps parses in the cache: it cannot go with --no-cache")
    if args.method != "rules" and not args.model:
        raise UsageError(f"--method {args.method} needs --model MODEL (train one with 'qcode train')")
    return RunOptions(unit=args.unit, lang=args.lang, text_column=args.text_column,
                      id_column=args.id_column, code_speakers=args.code_speakers,
                      metadata=args.metadata, method=args.method, model=args.model,
                      progress=not args.quiet and sys.stderr.isatty(),
                      jobs=args.jobs, engine=args.engine, scheduler=args.scheduler,
                      cache=not args.no_cache, cache_dir=args.cache_dir,
                      docbin=args.docbin_cache)


def _summary(result) -> str:
    counts = result.manifest["counts"]
    lines = [
        f"coded {counts['documents']} documents, {counts['segments_coded']} of "
        f"{counts['segments']} segments -> {result.out_dir}/",
    ]
    per_code = counts.get("codings_per_code", {})
    if per_code:
        width = max(len(k) for k in per_code)
        lines += [f"  {k:<{width}}  {v:>5}" for k, v in per_code.items()]
    throughput = result.manifest.get("throughput", {})
    if throughput.get("coded_files_taken"):
        lines.append("codings as in an earlier run of these files (the edit changes none): "
                     "files taken from the cache")
    elif throughput.get("chunks_taken"):
        lines.append(f"{throughput['chunks_taken']} of {throughput['chunks']} chunks as in an "
                     "earlier run: their rows taken from the cache, the other chunks coded")
    pruned = result.manifest.get("throughput", {}).get("cache_entries_pruned", 0)
    if pruned:
        size = result.manifest["throughput"].get("cache_bytes_pruned", 0) / 1e6
        lines.append(f"cache: deleted {pruned} entries ({size:,.1f} MB) that none of the last "
                     f"{cache_prune.KEEP_RUNS} runs used")
    errors = result.data.errors
    if len(errors):
        bad = errors[errors[C.ERROR_SEVERITY] == "error"]
        lines.append(f"{len(bad)} file(s) skipped, {len(errors) - len(bad)} warning(s); "
                     f"see {result.out_dir}/{C.ERRORS_FILE}")
    return "\n".join(lines)


def cmd_code(args: argparse.Namespace) -> int:
    """Run ``qcode code``."""
    from pipeline.spacy_lean import lean_spacy_import

    lean_spacy_import()  # the coder never runs spaCy's command line: skip importing it
    from pipeline.runner import code_corpus

    missing = [i for i in args.inputs if not Path(i).exists()]
    if missing:
        raise UsageError(f"input not found: {', '.join(missing)}")
    result = code_corpus(args.inputs, codebook=args.codebook, out_dir=args.out,
                         options=_options(args))
    if not args.quiet:
        print(_summary(result))
    return result.exit_code


def cmd_run(args: argparse.Namespace) -> int:
    """Run ``qcode run``: code, then matrices and figures."""
    from pipeline.spacy_lean import lean_spacy_import

    lean_spacy_import()  # the coder never runs spaCy's command line: skip importing it
    from pipeline.runner import code_corpus

    if not Path(args.raw).is_dir():
        raise UsageError(f"{args.raw}: input folder not found (run from the project folder)")
    result = code_corpus([args.raw], codebook=args.codebook, out_dir=args.out,
                         options=_options(args))
    if not args.quiet:
        print(_summary(result))
    if not args.no_figures:
        extra = [c for c in result.data.segments.columns if c not in C.SEGMENT_COLUMNS]
        for line in _later_stages(args, extra):
            if not args.quiet:
                print(line)
    return result.exit_code


def _matrix_attributes(attributes: list[str]) -> list[str]:
    # The study's usual breakdowns, where the metadata has them.
    wanted = [a for a in ("country", "sector", "role") if a in attributes]
    if {"country", "sector"} <= set(wanted):
        wanted.append("country,sector")
    return wanted


def _later_stages(args: argparse.Namespace, attributes: list[str]) -> list[str]:
    """Agreement with the gold standard, theme matrices and report figures."""
    from pipeline import report
    from pipeline.cli import matrix

    done = []
    if args.gold and args.gold.lower() != "none" and Path(args.gold).is_file():
        path = report.gold_agreement(args.out, args.gold, raw=report.gold_texts(args.gold),
                                     codebook=args.codebook)
        done.append(f"agreement with {args.gold}: {path}")
    elif args.gold != DEFAULT_GOLD and args.gold.lower() != "none":
        raise UsageError(f"{args.gold}: gold standard not found")
    matrix_args = argparse.Namespace(
        coded=args.out, codebook=args.codebook, out=DEFAULT_MATRICES,
        xlsx=f"{DEFAULT_MATRICES}/matrices.xlsx", by=_matrix_attributes(attributes),
        value="segments", level="top", window=0, where=[], speaker=[], method=[],
        case=C.DOC_ID, per_cell=2, kwic=None, kwic_window=6, quiet=True)
    matrix.cmd_matrix(matrix_args)
    done.append(f"matrices: CSV files and matrices.xlsx written to {DEFAULT_MATRICES}/")
    built = report.build_figures(args.out, args.codebook, args.figures)
    done.append(f"figures: {len(built['figures'])} files written to {args.figures}/")
    return done


def cmd_validate(args: argparse.Namespace) -> int:
    """Run ``qcode validate``."""
    from pipeline.codebook import load_codebook

    book = load_codebook(args.codebook)
    n_rules = sum(len(r) for code in book.codes.values() for r in code.rules.values())
    print(f"{args.codebook}: OK — {len(book.codes)} codes "
          f"({len(book.top_level())} top-level), {n_rules} rules")
    return 0


def cmd_rules_report(args: argparse.Namespace) -> int:
    """Run ``qcode rules-report``."""
    from pipeline.codebook import load_codebook
    from pipeline.rules_report import rules_report, summarise
    from pipeline.store import atomic_write_text, load_coded

    book = load_codebook(args.codebook)
    data = load_coded(args.coded)
    if data.manifest.get("codebook", {}).get("hash") not in (None, book.hash):
        print(f"qcode: warning: {args.coded} was coded with another version of {args.codebook}; "
              "re-run 'qcode code' for an up-to-date report", file=sys.stderr)
    report = rules_report(book, data.matches, data.codings, data.segments)
    if args.out:
        atomic_write_text(args.out, report.to_csv(index=False, lineterminator="\n"))
    for line in summarise(report, top=args.top):
        print(line)
    return 0
