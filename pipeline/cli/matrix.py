"""``qcode matrix``: theme matrices, co-occurrence, framework matrix and KWIC as CSV and Excel."""
from __future__ import annotations

import argparse
import io
import re
import sys
from pathlib import Path

import pandas as pd

from pipeline import aggregate as A
from pipeline import columns as C
from pipeline.errors import UsageError
from pipeline.cli.defaults import DEFAULT_CODED, DEFAULT_CODEBOOK, DEFAULT_MATRICES as DEFAULT_OUT


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``qcode matrix``."""
    p = sub.add_parser(
        "matrix", help="code x document/attribute/speaker matrices, co-occurrence, framework, KWIC",
        description="Aggregate the coded tables into theme matrices and write one CSV per "
                    "matrix (and, with --xlsx, one formatted Excel workbook). Filtered runs "
                    "(--where, --speaker, --method) write into a subfolder of --out named after "
                    "the filter, e.g. reports/matrices/country=BE/, so they never overwrite the "
                    "unfiltered matrices. Shares and ratios are rounded to 4 decimals in the CSVs.")
    p.add_argument("--coded", default=DEFAULT_CODED, help=f"coded folder (default: {DEFAULT_CODED})")
    p.add_argument("--codebook", default=None,
                   help=f"codebook for code order and labels (default: {DEFAULT_CODEBOOK} if present)")
    p.add_argument("--out", default=DEFAULT_OUT,
                   help=f"folder for the CSV files (default: {DEFAULT_OUT}); filtered runs write "
                        "to <out>/<filter>/, e.g. <out>/country=BE/")
    p.add_argument("--xlsx", metavar="FILE", help="also write all matrices to one Excel workbook")
    p.add_argument("--by", action="append", default=[], metavar="ATTR[,ATTR]",
                   help="attribute matrix; repeat for several, 'country,sector' for two at once")
    p.add_argument("--value", choices=A.VALUES, default="segments", help="cell value (default: segments)")
    p.add_argument("--level", default="top", help="code level: code, top, all or a depth (default: top)")
    p.add_argument("--window", type=int, default=0,
                   help="co-occurrence window in segments either side (default: 0, same segment)")
    p.add_argument("--where", action="append", default=[], metavar="COL=VALUE",
                   help="keep segments whose attribute COL equals VALUE (repeatable; VALUE may be a|b)")
    p.add_argument("--speaker", action="append", default=[], help="keep only this speaker (repeatable)")
    p.add_argument("--method", action="append", default=[],
                   help="keep only codings of this method: rules, ml, hybrid, human (repeatable)")
    p.add_argument("--case", default=C.DOC_ID, help="framework matrix rows: doc_id or an attribute")
    p.add_argument("--per-cell", type=int, default=2, help="quotes per framework cell (default: 2)")
    p.add_argument("--kwic", metavar="CODE_OR_TERM",
                   help="keyword in context: a code id (its evidence) or a term (* wildcard)")
    p.add_argument("--kwic-window", type=int, default=6, help="KWIC context in tokens (default: 6)")
    p.add_argument("--quiet", "-q", action="store_true", help="print nothing on success")
    p.set_defaults(func=cmd_matrix)


def _level(text: str) -> str | int:
    if text.isdigit():
        return int(text)
    if text not in A.LEVELS:
        raise UsageError(f"--level must be one of {', '.join(A.LEVELS)} or a depth, got {text!r}")
    return text


def _where(items: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for item in items:
        col, sep, value = item.partition("=")
        if not sep or not col:
            raise UsageError(f"--where needs COL=VALUE, got {item!r}")
        out.setdefault(col.strip(), []).extend(v.strip() for v in value.split("|"))
    return out


def filter_name(where: list[str], speakers: list[str], methods: list[str]) -> str:
    """Folder name describing the filters (``country=BE``, ``country=BE+speaker=Griet``).

    Alternatives (``a|b``) become ``a,b``; characters unsafe in file names become ``_``.
    Empty when there is no filter.
    """
    parts = [item.strip() for item in where]
    parts += [f"speaker={s}" for s in speakers] + [f"method={m}" for m in methods]
    text = "+".join(p.replace("|", ",") for p in parts)
    return re.sub(r"[^\w=.,+@-]", "_", text)


def describe_filter(where: list[str], speakers: list[str], methods: list[str]) -> str:
    """Human-readable filter for messages (``country=DE, speaker=X``)."""
    return ", ".join([*where, *(f"speaker={s}" for s in speakers),
                      *(f"method={m}" for m in methods)])


# CSV output: shares and ratios to 4 decimals (the DataFrames keep full precision).
CSV_DECIMALS = 4


def to_csv_text(df: pd.DataFrame) -> str:
    """CSV text of a matrix with floats rounded to ``CSV_DECIMALS`` decimals."""
    buf = io.StringIO()
    df.round(CSV_DECIMALS).to_csv(buf, lineterminator="\n")
    return buf.getvalue()


def _codebook(path: str | None):
    from pipeline.codebook import load_codebook

    if path is None:
        return load_codebook(DEFAULT_CODEBOOK) if Path(DEFAULT_CODEBOOK).is_file() else None
    return load_codebook(path)


def build_matrices(segments: pd.DataFrame, codings: pd.DataFrame, args: argparse.Namespace,
                   codebook) -> dict[str, pd.DataFrame]:
    """Compute every matrix the options ask for, keyed by file stem."""
    level, value = _level(args.level), args.value
    out = {
        f"code_by_document_{value}": A.code_by_document(segments, codings, value=value, level=level,
                                                        codebook=codebook, total=True),
        f"code_by_speaker_{value}": A.code_by_speaker(segments, codings, value=value, level=level,
                                                      codebook=codebook),
    }
    for by in args.by:
        cols = [c.strip() for c in by.split(",") if c.strip()]
        out[f"code_by_{'_'.join(cols)}_{value}"] = A.theme_matrix(
            segments, codings, by=cols, value=value, level=level, codebook=codebook, total=True)
    pairs = A.cooccurrence(segments, codings, window=args.window, level=level, codebook=codebook)
    out["cooccurrence_pairs"] = pairs.set_index("code_a")
    out["cooccurrence_count"] = A.cooccurrence_matrix(pairs, "count")
    out["cooccurrence_c"] = A.cooccurrence_matrix(pairs, "c")
    out["framework"] = A.framework_matrix(segments, codings, case=args.case, level=level,
                                          per_cell=args.per_cell, codebook=codebook)
    if args.kwic:
        applied = {a for c in codings[C.CODE_ID].dropna().unique()
                   for a in (str(c), *A.ancestors(str(c)))}
        is_code = args.kwic in applied or (codebook is not None and args.kwic in codebook.codes)
        kw = A.kwic(segments, codings, code=args.kwic if is_code else None,
                    term=None if is_code else args.kwic, window=args.kwic_window,
                    level="all" if is_code else "code")
        out["kwic"] = kw.set_index(C.SEGMENT_ID)
    return out


def cmd_matrix(args: argparse.Namespace) -> int:
    """Run ``qcode matrix``."""
    from pipeline.store import atomic_write_bytes, atomic_write_text, load_coded

    if args.per_cell < 1:
        raise UsageError("--per-cell must be at least 1")
    where = _where(args.where)
    # matrices need segments and codings only; matches are ~2 GB at a million segments
    data = load_coded(args.coded, skip=("documents", "matches"))
    codebook = _codebook(args.codebook)
    segments, codings = A.filter_coded(data.segments, data.codings, where=where,
                                       speakers=args.speaker or None, methods=args.method or None)
    shown = describe_filter(args.where, args.speaker, [])
    if segments.empty and shown:
        raise UsageError(f"no segments match {shown}")
    matrices = build_matrices(segments, codings, args, codebook)
    if args.kwic and matrices["kwic"].empty:
        print(f"qcode: note: no KWIC hits for {args.kwic}", file=sys.stderr)
    out = Path(args.out)
    sub = filter_name(args.where, args.speaker, args.method)
    if sub:
        out = out / sub
    written = []
    for name, df in matrices.items():
        written.append(atomic_write_text(out / f"{name}.csv", to_csv_text(df)))
    if args.xlsx:
        wb = A.build_workbook(matrices, codebook)
        written.append(atomic_write_bytes(Path(args.xlsx), A.workbook_bytes(wb)))
    if not args.quiet:
        print(f"{len(segments)} segments, {len(codings)} codings -> {len(written)} files:")
        for path in written:
            print(f"  {path}")
    return 0
