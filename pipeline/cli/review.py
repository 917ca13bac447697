"""``qcode review export|import|apply|status``: the human review workflow.

``export`` writes a review sheet (one row per segment x proposed code); ``import``
appends the coder's decisions to ``reviews.csv`` in the coded folder (append-only:
the existing bytes are kept as they are and new lines added after them, written
atomically under the folder's lock); ``apply`` writes the final coding (automatic
codings overridden by the latest current decisions) plus the stale decisions and
the auto-vs-review tables for ``qcode agreement``; ``status`` prints per code how
well auto-coding matched the review.
"""
from __future__ import annotations

import argparse
import io
import sys
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from pipeline import columns as C
from pipeline import review as R
from pipeline import review_sheet as RS
from pipeline.errors import ReviewError
from pipeline.cli.defaults import DEFAULT_CODED, DEFAULT_CODEBOOK

AUTO_TABLE = "reviewed_auto.csv"      # long tables for `qcode agreement`
HUMAN_TABLE = "reviewed_human.csv"
EXIT_PARTIAL = 2
DESCRIPTION = (
    "The human review workflow. 'export' writes a review sheet (one row per segment and "
    "proposed code); 'import' appends the coder's decisions to reviews.csv in the coded folder "
    "(append-only); 'apply' writes final_codings (automatic codings overridden by the latest "
    "decisions; 'qcode export --qdpx' then exports it), the stale decisions and the "
    "auto-vs-review tables for 'qcode agreement'; 'status' prints per code how well "
    "auto-coding matched the review.")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``qcode review`` and its sub-commands."""
    p = subparsers.add_parser("review", help="export codings for review, import decisions, apply them",
                              description=DESCRIPTION)
    sub = p.add_subparsers(dest="review_command", metavar="ACTION")

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument("--coded", default=DEFAULT_CODED,
                       help=f"coded folder (default: {DEFAULT_CODED})")
        q.add_argument("--codebook", default=DEFAULT_CODEBOOK,
                       help=f"codebook YAML for code ids and labels (default: {DEFAULT_CODEBOOK}; "
                            "when missing, the codes in the coded folder)")

    q = sub.add_parser("export", help="write a review sheet (.xlsx or .csv)")
    common(q)
    q.add_argument("--out", help="review file, .xlsx (default) or .csv "
                                 "(default: <coded>/review.xlsx)")
    q.add_argument("--proposed-only", action="store_true",
                   help="leave out segments without proposed codes")
    q.add_argument("--lang", choices=["nl", "en"], help="language of the code labels")
    q.set_defaults(func=run_export)

    q = sub.add_parser("import", help="append the decisions of a review sheet to reviews.csv")
    common(q)
    q.add_argument("file", help="the filled-in review sheet (.xlsx or .csv); add_codes may "
                                "name codes by id or by label (nl or en, any case), "
                                "separated by ';' or ','")
    q.add_argument("--coder", required=True, help="name of the coder who made the decisions")
    q.set_defaults(func=run_import)

    q = sub.add_parser("apply", help="write final_codings (auto codings overridden by decisions)")
    common(q)
    q.set_defaults(func=run_apply)

    q = sub.add_parser("status", help="per code: does auto-coding agree with the review?")
    common(q)
    q.set_defaults(func=run_status)
    p.set_defaults(func=lambda args: (p.print_help(), 1)[1])


def _codes(args: argparse.Namespace, codings: pd.DataFrame, reviews: pd.DataFrame | None = None,
           lang: str | None = None) -> dict[str, str]:
    """Known code ids and labels: the codebook when present, else those in use."""
    path = Path(args.codebook)
    if path.exists():
        from pipeline.codebook import load_codebook
        book = load_codebook(path)
        return {cid: book.label(cid, lang) for cid in book.ids()}
    used = set(codings[C.CODE_ID].astype(str))
    if reviews is not None:
        used |= set(reviews[C.CODE_ID].astype(str))
    return {cid: "" for cid in sorted(used - {""})}


def _aliases(args: argparse.Namespace, codes: dict[str, str]) -> dict[str, str]:
    """Names a coder may type in add_codes: ids and labels (nl and en) of the codebook."""
    path = Path(args.codebook)
    book = None
    if path.exists():
        from pipeline.codebook import load_codebook
        book = load_codebook(path)
    return RS.code_aliases(book, codes)


def read_reviews(coded: Path) -> pd.DataFrame:
    """Load ``reviews.csv`` of a coded folder (empty table when there is none)."""
    path = coded / C.REVIEWS_FILE
    if not path.exists():
        return R.empty_reviews()
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except Exception as exc:   # any parse failure means a damaged file the user must look at
        raise ReviewError(f"{path}: cannot be read ({type(exc).__name__}); it is append-only, "
                          "restore it from a backup rather than editing it") from None
    return R.validate_reviews(df, path)


def run_export(args: argparse.Namespace) -> int:
    from pipeline.review_io import to_csv, to_xlsx
    from pipeline.store import atomic_write, atomic_write_bytes, load_coded
    coded = Path(args.coded)
    out = Path(args.out) if args.out else coded / "review.xlsx"
    if out.suffix.lower() not in (".xlsx", ".csv"):
        raise ReviewError(f"{out}: the review file must end in .xlsx or .csv")
    # what the review table shows: not the documents, nor the matches' other columns
    data = load_coded(coded, skip=("documents",), columns={
        "segments": [C.SEGMENT_ID, C.DOC_ID, C.SPEAKER, C.CONTENT_HASH, C.TEXT, C.START, C.CODED],
        "codings": [C.SEGMENT_ID, C.CODE_ID, C.METHOD, C.SCORE, C.RULE, C.EVIDENCE, C.START,
                    C.END],
        "matches": [C.SEGMENT_ID, C.CODE_ID, C.START, C.END]})
    codes = _codes(args, data.codings, lang=args.lang)
    batches = R.review_batches(data.segments, data.codings, data.matches, labels=codes,
                               proposed_only=args.proposed_only)
    n_rows = n_seg = 0
    if out.suffix.lower() == ".csv":   # written piece by piece
        def write(path: Path) -> None:
            nonlocal n_rows, n_seg
            with open(path, "wb") as fh:
                for k, table in enumerate(batches):
                    fh.write(to_csv(table, header=k == 0))
                    n_rows, n_seg = n_rows + len(table), n_seg + table[C.SEGMENT_ID].nunique()

        atomic_write(out, write)
    else:
        table = pd.concat(list(batches), ignore_index=True)
        atomic_write_bytes(out, to_xlsx(table, codes))
        n_rows, n_seg = len(table), table[C.SEGMENT_ID].nunique()
    print(f"{out}: {n_rows} rows to review ({n_seg} segments); fill in 'decision' "
          f"(accept/reject), '{R.ADD_CODES}' and '{R.MEMO}', then "
          f"`qcode review import {out} --coder NAME`")
    return 0


def _csv_lines(decisions: pd.DataFrame, header: bool) -> bytes:
    buf = io.StringIO()
    decisions[R.REVIEW_COLUMNS].to_csv(buf, index=False, header=header, lineterminator="\n")
    return buf.getvalue().encode("utf-8")


def append_reviews(coded: Path, decisions: pd.DataFrame) -> Path:
    """Append decisions to ``reviews.csv``: old bytes kept as is, written atomically.

    The caller holds the folder's lock.
    """
    from pipeline.store import atomic_write_bytes
    path = coded / C.REVIEWS_FILE
    old = path.read_bytes() if path.exists() else b""
    if old and not old.endswith(b"\n"):
        old += b"\n"   # a file ending without newline (edited by hand) still appends cleanly
    return atomic_write_bytes(path, old + _csv_lines(decisions, header=not old))


def run_import(args: argparse.Namespace) -> int:
    from pipeline.review_io import read_review_file
    from pipeline.store import load_coded, output_lock
    coded, src = Path(args.coded), Path(args.file)
    raw, checks = read_review_file(src)
    with output_lock(coded):
        data = load_coded(coded)
        codes = _codes(args, data.codings, read_reviews(coded))
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        decisions, problems = RS.parse_decisions(
            raw, segments=data.segments, codes=codes, coder=args.coder, timestamp=stamp,
            source=src.name, text_matches=checks, aliases=_aliases(args, codes))
        for prob in problems:
            kept = RS.KEPT_NOTE in prob.message
            print(f"qcode: warning: {prob.format(str(src))}{'' if kept else ' (row skipped)'}",
                  file=sys.stderr)
        skipped = [p for p in problems if RS.KEPT_NOTE not in p.message]
        n_ignored = len(problems) - len(skipped)
        if len(decisions):
            append_reviews(coded, decisions)
    stale = R.classify(decisions, data.segments)
    n_stale = int((stale[R.STALE_REASON] != "").sum()) if len(stale) else 0
    print(f"{coded / C.REVIEWS_FILE}: {len(decisions)} decision(s) by {args.coder.strip()} appended"
          f"{f'; {len(skipped)} row(s) skipped' if skipped else ''}"
          f"{f'; {n_ignored} unknown added code(s) ignored' if n_ignored else ''}"
          f"{f'; {n_stale} on segments whose text changed since the export (stale)' if n_stale else ''}")
    return EXIT_PARTIAL if problems else 0


def run_apply(args: argparse.Namespace) -> int:
    from pipeline.store import atomic_write_bytes, load_coded, output_lock, write_table
    coded = Path(args.coded)
    with output_lock(coded):
        data = load_coded(coded)
        reviews = read_reviews(coded)
        result = R.final_codings(data.codings, reviews, data.segments)
        write_table(result.codings, coded / R.FINAL_FILE)
        atomic_write_bytes(coded / R.STALE_FILE,
                           result.stale.to_csv(index=False, lineterminator="\n").encode("utf-8"))
        comp = R.auto_vs_review(data.codings, reviews, data.segments)
        for name, df in ((AUTO_TABLE, comp.auto), (HUMAN_TABLE, comp.review)):
            atomic_write_bytes(coded / name, df.to_csv(index=False, lineterminator="\n").encode("utf-8"))
    counts = result.codings[R.REVIEW_STATUS].value_counts()
    parts = ", ".join(f"{counts.get(k, 0)} {k}" for k in ("auto", "accepted", "added", "stale"))
    print(f"{coded / R.FINAL_FILE}.parquet/.csv: {len(result.codings)} codings ({parts})")
    print(f"{coded / AUTO_TABLE}, {coded / HUMAN_TABLE}: {len(comp.segments)} fully reviewed "
          f"segment(s) for `qcode agreement`")
    if len(result.stale):
        print(f"qcode: warning: {len(result.stale)} decision(s) are stale (segment text changed "
              f"or gone) and were not applied; see {coded / R.STALE_FILE}", file=sys.stderr)
        return EXIT_PARTIAL
    return 0


def run_status(args: argparse.Namespace) -> int:
    from pipeline.store import load_coded
    coded = Path(args.coded)
    data = load_coded(coded)
    reviews = read_reviews(coded)
    comp = R.auto_vs_review(data.codings, reviews, data.segments)
    summary = R.review_summary(comp)
    stale = R.final_codings(data.codings, reviews, data.segments).stale
    print(f"{len(reviews)} decision(s); {len(comp.segments)} fully reviewed segment(s); "
          f"{len(stale)} stale")
    if len(summary):
        print(summary.to_string(index=False, float_format=lambda x: f"{x:.2f}"))
    return 0

