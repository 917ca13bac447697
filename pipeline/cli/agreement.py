"""``qcode agreement`` (inter-coder agreement) and ``qcode evaluate`` (rules vs gold)."""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import pandas as pd

from pipeline import agreement as ag
from pipeline import columns as C
from pipeline.errors import InputError, UsageError
from pipeline.cli.defaults import DEFAULT_CODED


# --- reading (the only file I/O of agreement) ---------------------------------------

def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV or Parquet table; ids and codes stay strings.

    Raises:
        InputError: missing, unreadable or of an unknown format.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(p, "file not found")
    try:
        if p.suffix.lower() == ".parquet":
            return pd.read_parquet(p)
        if p.suffix.lower() in (".csv", ".tsv", ".txt"):
            return pd.read_csv(p, sep="\t" if p.suffix.lower() == ".tsv" else ",",
                               dtype={C.SEGMENT_ID: str, "id": str, C.CODE_ID: str},
                               keep_default_na=False, encoding="utf-8-sig")
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        raise InputError(p, f"cannot be read as a table ({type(exc).__name__}: {exc})") from exc
    except Exception as exc:  # pyarrow raises its own error types for damaged files
        raise InputError(p, f"cannot be read as a table ({type(exc).__name__})") from exc
    raise InputError(p, "unknown table format; use .csv or .parquet (or a coded folder)")


def read_coder(path: str | Path, name: str, segments_file: str | None = None) -> ag.CodingMatrix:
    """Read one coder's table: a CSV/Parquet file, or a coded folder (its codings over
    the segments offered to the coders)."""
    p = Path(path)
    if p.is_dir():
        from pipeline.store import load_coded
        data = load_coded(p, skip=("documents", "matches"))
        segs = data.segments
        if C.CODED in segs.columns:
            coded = segs[C.CODED].astype(str).str.lower().isin(["true", "1"])
            segs = segs[coded]
        return ag.to_matrix(data.codings, name=name, source=str(p / C.CODINGS_FILE),
                            segments=segs[C.SEGMENT_ID].astype(str).tolist())
    seg_ids = None
    if segments_file:
        seg_ids = read_table(segments_file)
        col = C.SEGMENT_ID if C.SEGMENT_ID in seg_ids.columns else "id"
        if col not in seg_ids.columns:
            raise InputError(segments_file, f"no '{C.SEGMENT_ID}' column")
        seg_ids = seg_ids[col].astype(str).tolist()
    return ag.to_matrix(read_table(p), name=name, source=str(p), segments=seg_ids)


def _coder_names(paths: list[str], names: str | None) -> list[str]:
    if names:
        out = [n.strip() for n in names.split(",")]
        if len(out) != len(paths):
            raise UsageError(f"--names gives {len(out)} names for {len(paths)} tables")
    else:
        out = [Path(p).stem if Path(p).suffix else Path(p).name for p in paths]
    if len(set(out)) != len(out):
        out = [f"{chr(65 + i)}" if i < 26 else f"coder{i + 1}" for i in range(len(paths))]
    return out


def _codebook_codes(path: str | None) -> list[str] | None:
    if not path:
        return None
    from pipeline.codebook import load_codebook
    cb = load_codebook(path)
    return list(cb.ids())


def _check_codes(mats: list[pd.DataFrame], codebook_codes: list[str] | None, level: str,
                 sources: list[str]) -> None:
    if codebook_codes is None:
        return
    known = set(ag.rollup_matrix(pd.DataFrame(columns=codebook_codes, dtype=bool), level).columns)
    for mat, src in zip(mats, sources):
        unknown = [c for c in mat.columns if c not in known]
        if unknown:
            raise InputError(src, f"code(s) not in the codebook: {', '.join(unknown)}")


# --- terminal output ----------------------------------------------------------------

def _fmt(x: object, ci: tuple[object, object] | None = None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    s = f"{x:.2f}" if isinstance(x, float) else str(x)
    if ci is not None and all(isinstance(v, float) and not math.isnan(v) for v in ci):
        s += f" [{ci[0]:.2f},{ci[1]:.2f}]"
    return s


def format_table(res: ag.AgreementResult) -> str:
    """A readable fixed-width rendering of the per-code table."""
    t = res.table
    kappa = "cohen_kappa" if "cohen_kappa" in t.columns else "fleiss_kappa"
    cols = ["agreement", kappa, "alpha"] + (["precision", "recall", "f1"] if res.reference else [])
    header = ["code", "n"] + [f"prev {n}" for n in res.coders] + [
        "kappa" if c == kappa else c for c in cols] + ["Landis&Koch", "Krippendorff"]
    rows = []
    for _, r in t.iterrows():
        row = [str(r[C.CODE_ID]), str(int(r["n_units"]))]
        row += [_fmt(float(r[f"prevalence_{n}"])) for n in res.coders]
        for c in cols:
            ci = (r.get(f"{c}_ci_low"), r.get(f"{c}_ci_high")) if f"{c}_ci_low" in t.columns else None
            row.append(_fmt(float(r[c]), tuple(float(v) for v in ci) if ci else None))
        row += [r["landis_koch"] or "-", r["krippendorff"] or "-"]
        rows.append(row)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths))]
    lines.append("  ".join("-" * w for w in widths))
    for i, r in enumerate(rows):
        if r[0] == ag.MACRO and i:
            lines.append("  ".join("-" * w for w in widths))
        lines.append("  ".join(v.ljust(w) for v, w in zip(r, widths)))
    return "\n".join(lines)


def _report(res: ag.AgreementResult, out: str | None, quiet: bool) -> None:
    if out:
        from pipeline.store import atomic_write_text
        atomic_write_text(out, res.table.to_csv(index=False))
        if len(res.unmatched):
            p = Path(out)
            atomic_write_text(p.with_name(p.stem + ".unmatched.csv"), res.unmatched.to_csv(index=False))
    if not quiet:
        print(f"{res.n_units} units coded by {', '.join(res.coders)}"
              + (f"; reference: {res.reference}" if res.reference else ""))
        print(format_table(res))
    for note in res.notes:
        where = f" ({Path(out).stem}.unmatched.csv)" if out else ""
        print(f"qcode: warning: {note}{where}", file=sys.stderr)
    if len(res.unmatched) and not out and not quiet:
        print(res.unmatched.head(20).to_string(index=False), file=sys.stderr)


# --- commands -----------------------------------------------------------------------

def cmd_agreement(args: argparse.Namespace) -> int:
    """Agreement between two or more coding tables."""
    if len(args.tables) < 2:
        raise UsageError("agreement needs at least two coding tables")
    names = _coder_names(args.tables, args.names)
    reference = args.reference
    if reference is not None:
        if reference.isdigit() and 1 <= int(reference) <= len(names):
            reference = names[int(reference) - 1]
        elif reference not in names:
            raise UsageError(f"--reference {reference!r} is not one of: {', '.join(names)}")
    coders = [read_coder(p, n, args.segments) for p, n in zip(args.tables, names)]
    cb_codes = _codebook_codes(args.codebook)
    rolled = [ag.CodingMatrix(c.name, ag.rollup_matrix(c.matrix, args.level), c.complete)
              for c in coders]
    _check_codes([r.matrix for r in rolled], cb_codes, args.level, args.tables)
    all_codes = None
    if cb_codes is not None:
        all_codes = list(ag.rollup_matrix(pd.DataFrame(columns=cb_codes, dtype=bool), args.level).columns)
    mats, unmatched = ag.align(rolled, all_codes)
    if not len(mats[0].index):
        raise InputError(args.tables[0], "no segment is shared by all coding tables")
    res = ag.agreement(dict(zip(names, mats)), reference=reference, n_boot=args.boot,
                       seed=args.seed, unmatched=unmatched)
    _report(res, args.out, args.quiet)
    return 0


def evaluate_rules(gold: ag.CodingMatrix, rules: ag.CodingMatrix, *, n_boot: int = 1000,
                   seed: int = 0) -> ag.AgreementResult:
    """Precision, recall, F1 and kappa of the rule coder against a wide gold table.

    The rule codings are rolled up to every ancestor and compared on the gold's
    columns (the gold's "top-level" codes include ``amo.ability`` etc.); only the
    gold's segments are units, and gold segments the coder never saw are reported.
    """
    rolled = ag.rollup_matrix(rules.matrix, "all", codes=list(gold.matrix.columns))
    keep = rolled.index.intersection(gold.matrix.index, sort=False)
    rules_on_gold = ag.CodingMatrix(rules.name, rolled.loc[keep, list(gold.matrix.columns)],
                                    rules.complete)
    mats, unmatched = ag.align([gold, rules_on_gold], list(gold.matrix.columns))
    if not len(mats[0].index):
        raise InputError("gold", "none of the gold segments is in the rule codings "
                                 "(different segment ids or unit?)")
    return ag.agreement({gold.name: mats[0], rules.name: mats[1]}, reference=gold.name,
                        n_boot=n_boot, seed=seed, unmatched=unmatched)


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Rule coder (or ML / hybrid, cross-validated) against a gold standard."""
    gold_df = read_table(args.gold)
    if C.CODE_ID in gold_df.columns:
        raise InputError(args.gold, "the gold standard must be a wide table "
                                    "(segment_id + one 0/1 column per code)")
    gold = ag.to_matrix(gold_df, name="gold", source=args.gold)
    if args.methods and args.methods != "rules":
        from pipeline.cli.ml import run_cv_evaluation
        return run_cv_evaluation(args, gold)
    source = args.codings or args.coded
    rules = read_coder(source, "rules", args.segments)
    res = evaluate_rules(gold, rules, n_boot=args.boot, seed=args.seed)
    _report(res, args.out, args.quiet)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``agreement`` and ``evaluate``."""
    p = sub.add_parser(
        "agreement", help="inter-coder agreement per code (kappa, alpha, F1, CIs)",
        description="Compare two or more coding tables (long: segment_id, code_id; or wide: "
                    "segment_id + one 0/1 column per code; CSV or Parquet; or a coded folder). "
                    "Per code: units, prevalence per coder, percent agreement, Cohen's kappa "
                    "(Fleiss' for 3+ coders), Krippendorff's alpha, bootstrap 95% CIs, "
                    "Landis & Koch and Krippendorff verdicts, macro and micro summaries; with "
                    "--reference also precision, recall and F1. Segments not coded by every "
                    "coder are listed, not dropped silently.")
    p.add_argument("tables", nargs="+", metavar="TABLE", help="coding tables (2 or more)")
    p.add_argument("--out", help="write the per-code table as CSV here (and the segments "
                                 "left out as <name>.unmatched.csv)")
    p.add_argument("--level", choices=["top", "all", "none"], default="all",
                   help="roll sub-codes up: all (every code and its ancestors; default), "
                        "top (top-level codes only), none (as coded)")
    p.add_argument("--reference", metavar="NAME|N",
                   help="the coder taken as reference (name or 1-based position): adds "
                        "precision, recall and F1 of the other coder")
    p.add_argument("--codebook", help="codebook YAML: report every code (also unused ones) "
                                      "and reject unknown codes")
    p.add_argument("--segments", help="segments table listing every unit the coders saw "
                                      "(long tables only list coded segments)")
    p.add_argument("--names", help="comma-separated coder names (default: file names)")
    p.add_argument("--boot", type=int, default=1000, help="bootstrap resamples (default 1000; 0: no CIs)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--quiet", "-q", action="store_true", help="no table on the terminal")
    p.set_defaults(func=cmd_agreement)

    p = sub.add_parser(
        "evaluate", help="rule coder (or ml/hybrid, cross-validated) against a gold standard",
        description="Per-code precision, recall, F1 and Cohen's kappa of the automatic coder "
                    "against a gold standard (wide CSV: segment_id + one 0/1 column per code, "
                    "e.g. agency, ownership, alignment, shared_leadership, amo.ability, "
                    "amo.motivation, amo.opportunity), with macro and micro averages. "
                    "Sub-codes of the rule coder roll up to the gold's codes. With "
                    "--methods rules,ml,hybrid: cross-validated comparison grouped by document.")
    p.add_argument("gold", help="gold standard, wide CSV or Parquet")
    p.add_argument("--coded", default=DEFAULT_CODED,
                   help=f"coded folder with the rule codings (default: {DEFAULT_CODED})")
    p.add_argument("--codings", help="a codings table instead of --coded")
    p.add_argument("--segments", help="with --codings: segments table of every unit coded")
    p.add_argument("--out", help="write the per-code table as CSV here")
    p.add_argument("--boot", type=int, default=1000, help="bootstrap resamples (default 1000; 0: no CIs)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--methods", default="rules",
                   help="comma-separated: rules, ml, hybrid (ml/hybrid: cross-validated; "
                        "needs --codebook and the segment texts in --coded)")
    p.add_argument("--codebook", default="codebook.yaml", help="codebook YAML (for ml/hybrid)")
    p.add_argument("--folds", type=int, default=5, help="cross-validation folds (default 5)")
    p.add_argument("--readme", help="with --methods: also write the comparison table into "
                                    "this Markdown file between the evaluation markers")
    p.add_argument("--quiet", "-q", action="store_true", help="no table on the terminal")
    p.set_defaults(func=cmd_evaluate)
