"""``qcode export`` and ``qcode import``: REFI-QDA round trip with QDA tools."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.errors import UsageError
from pipeline.cli.defaults import DEFAULT_CODED, DEFAULT_CODEBOOK


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``export`` and ``import``."""
    p = sub.add_parser(
        "export", help="export a coded run (.qdpx) or the codebook (.qdc) for QDA tools",
        description="Write a REFI-QDA project (.qdpx: texts, codebook, every coding as a "
                    "selection by a user naming the method, cases and variables from the "
                    "metadata, code families as sets) for NVivo, ATLAS.ti, MAXQDA or QualCoder; "
                    "or only the codebook (.qdc). Once 'qcode review apply' has written "
                    "final_codings, the reviewed coding is exported: each coding once, under "
                    "the user who decided it (the reviewer for accepted and added codings, "
                    "'qcode rules' etc. for codings nobody reviewed). Output is deterministic.")
    p.add_argument("coded_dir", nargs="?", default=DEFAULT_CODED, metavar="CODED_DIR",
                   help=f"coded folder (default: {DEFAULT_CODED}); not needed with --qdc alone")
    p.add_argument("--qdpx", metavar="FILE", help="write the project to FILE (.qdpx)")
    p.add_argument("--qdc", metavar="FILE", help="write the codebook to FILE (.qdc)")
    p.add_argument("--codebook", default=DEFAULT_CODEBOOK,
                   help=f"codebook YAML the run used (default: {DEFAULT_CODEBOOK})")
    p.add_argument("--lang", choices=["nl", "en"],
                   help="language of the code names (default: the codebook's default)")
    p.add_argument("--offsets", choices=["codepoint", "utf16"], default="codepoint",
                   help="offset unit: codepoint (REFI-QDA, default) or utf16 (NVivo)")
    p.add_argument("--span", choices=["segment", "evidence"], default="segment",
                   help="code the whole segment (default) or only the best evidence")
    p.add_argument("--name", help="project name (default: the coded folder's name)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--final", action="store_true",
                       help="export the reviewed coding (final_codings from 'qcode review apply'): "
                            "accepted and added codings under the reviewing coder's name, rejected "
                            "and stale ones left out (default when final_codings exists)")
    which.add_argument("--auto", action="store_true",
                       help="export the automatic codings, ignoring any review")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser(
        "import", help="import human coding from a .qdpx/.qdc as gold",
        description="Read a REFI-QDA project or codebook and write OUT/codebook.yaml, OUT/raw/ "
                    "(texts as UTF-8 .txt) and OUT/codings.csv (doc_id, start, end, text, "
                    "code_id, code_name, coder). With --segments also OUT/gold.csv (segment_id + "
                    "0/1 per code) for 'qcode agreement'.")
    p.add_argument("file", metavar="FILE", help=".qdpx project or .qdc codebook")
    p.add_argument("--out", required=True, help="output folder (must be empty unless --force)")
    p.add_argument("--codebook", help="map imported codes to this codebook's ids (by GUID, "
                                      "then by name or label)")
    p.add_argument("--segments", metavar="CODED_DIR",
                   help="coded folder whose segments the gold is aligned to (writes gold.csv)")
    p.add_argument("--offsets", choices=["auto", "codepoint", "utf16"], default="auto",
                   help="offset unit of the file (default auto: utf16 for NVivo, else codepoint)")
    p.add_argument("--force", action="store_true", help="write into a non-empty --out")
    p.set_defaults(func=cmd_import)


def cmd_export(args: argparse.Namespace) -> int:
    """Run ``qcode export``."""
    from pipeline.codebook import load_codebook
    from pipeline.exchange import export_qdc, export_qdpx

    if not args.qdpx and not args.qdc:
        raise UsageError("qcode export: give --qdpx FILE and/or --qdc FILE")
    codebook = load_codebook(args.codebook)
    if args.qdc:
        export_qdc(Path(args.qdc), codebook, lang=args.lang)
        print(f"codebook: {len(codebook.codes)} codes -> {args.qdc}")
    if args.qdpx:
        from pipeline.exchange.export import FINAL_FILE, has_final, load_final

        coded = Path(args.coded_dir)
        if not coded.is_dir():
            raise UsageError(f"{args.coded_dir}: coded folder not found; run 'qcode code' first")
        codings = None
        if args.final or (not args.auto and has_final(coded)):
            codings, n_stale = load_final(coded)
            if not args.final:
                print(f"note: exporting the reviewed coding ({coded / FINAL_FILE}); "
                      "use --auto for the automatic codings only")
            if n_stale:
                print(f"qcode: warning: {n_stale} coding(s) left out because their review "
                      f"decision is stale (segment text changed); see {coded}/review_stale.csv "
                      "and review them again", file=sys.stderr)
        done = export_qdpx(coded, Path(args.qdpx), codebook, name=args.name,
                           lang=args.lang, offsets=args.offsets, span=args.span,
                           codings=codings)
        users = ", ".join(sorted(done.users))
        print(f"project: {done.sources} sources, {done.selections} coded selections "
              f"(users: {users or 'none'}) -> {args.qdpx}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    """Run ``qcode import``."""
    from pipeline.exchange import import_refi

    path = Path(args.file)
    if not path.is_file():
        raise UsageError(f"{path}: file not found")
    reference = None
    if args.codebook:
        from pipeline.codebook import load_codebook

        reference = load_codebook(args.codebook)
    segments = None
    if args.segments:
        from pipeline.store import load_coded

        segments = load_coded(args.segments).segments
    result = import_refi(path, Path(args.out), offsets=args.offsets, reference=reference,
                         segments=segments, force=args.force)
    n_codes = len(result.code_ids)
    print(f"imported {len(result.texts)} texts, {len(result.codings)} codings, {n_codes} codes "
          f"(offsets: {result.offsets}) -> {args.out}/", file=sys.stdout)
    if result.gold is not None:
        print(f"gold: {len(result.gold)} segments -> {args.out}/gold.csv")
    return 0
