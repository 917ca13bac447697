"""``qcode figures``: regenerate the report figures, or check that the committed ones reproduce."""
from __future__ import annotations

import argparse
import sys

from pipeline.cli.defaults import (DEFAULT_CODEBOOK, DEFAULT_CODED, DEFAULT_FIGURES, DEFAULT_GOLD,
                                   DEFAULT_RAW)


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``qcode figures``."""
    p = sub.add_parser(
        "figures", help="run the report notebook: write reports/figures/ and MANIFEST.json",
        description="Execute notebooks/2.0-report-figures.ipynb headless on a coded folder and "
                    "write every report figure (PNG and SVG) with MANIFEST.json. With --check, "
                    "re-code the raw data into a temporary folder, rebuild the figures there and "
                    "fail (exit 1), naming each figure, if any differs from the committed ones.")
    p.add_argument("--coded", default=DEFAULT_CODED, help=f"coded folder (default: {DEFAULT_CODED})")
    p.add_argument("--codebook", default=DEFAULT_CODEBOOK,
                   help=f"codebook YAML (default: {DEFAULT_CODEBOOK})")
    p.add_argument("--out", default=DEFAULT_FIGURES, help=f"figures folder (default: {DEFAULT_FIGURES})")
    p.add_argument("--lang", choices=["nl", "en"], default=None,
                   help="label language (default: nl; with --check the committed one)")
    p.add_argument("--agreement", metavar="CSV",
                   help="agreement table for the agreement figure (default: <coded>/agreement.csv)")
    p.add_argument("--check", action="store_true",
                   help="verify that the committed figures reproduce from the raw data")
    p.add_argument("--raw", default=DEFAULT_RAW, help=f"raw data for --check (default: {DEFAULT_RAW})")
    p.add_argument("--from-coded", action="store_true",
                   help="with --check: rebuild from --coded instead of re-coding --raw")
    p.add_argument("--keep", metavar="DIR", help="with --check: copy the regenerated figures here")
    p.add_argument("--gold", default=DEFAULT_GOLD,
                   help="gold standard scored for the agreement figure, as "
                        f"'qcode run' does (default: {DEFAULT_GOLD}, if present; 'none' to skip)")
    p.add_argument("--quiet", "-q", action="store_true", help="print nothing on success")
    p.set_defaults(func=cmd_figures)


def _gold(path: str | None) -> str | None:
    from pathlib import Path

    if not path or path.lower() == "none":
        return None
    if Path(path).is_file():
        return path
    if path != DEFAULT_GOLD:
        from pipeline.errors import UsageError
        raise UsageError(f"{path}: gold standard not found")
    return None


def cmd_figures(args: argparse.Namespace) -> int:
    """Run ``qcode figures``."""
    from pipeline import report

    if args.check:
        result = report.check_figures(
            args.out, codebook_path=args.codebook, raw=None if args.from_coded else args.raw,
            coded_dir=args.coded, lang=args.lang, keep=args.keep, gold=_gold(args.gold))
        for note in result.notes:
            print(f"qcode: note: {note}", file=sys.stderr)
        if not result.ok:
            for problem in result.problems:
                print(f"qcode: figure differs: {problem}", file=sys.stderr)
            print(f"qcode: error: {len(result.problems)} figure(s) in {args.out} do not reproduce",
                  file=sys.stderr)
            return 1
        if not args.quiet:
            print(f"ok: {len(result.manifest['figures'])} figures in {args.out} reproduce "
                  f"byte for byte")
        return 0
    gold = _gold(args.gold)
    if args.agreement is None and gold is not None:
        # As 'qcode run' does, so the agreement figure never shows a stale table.
        report.gold_agreement(args.coded, gold, raw=report.gold_texts(gold),
                              codebook=args.codebook)
    manifest = report.build_figures(args.coded, args.codebook, args.out, lang=args.lang or "nl",
                                    agreement=args.agreement)
    if not args.quiet:
        print(f"{len(manifest['figures'])} figures written to {args.out}/ "
              f"(+ {report.MANIFEST_NAME})")
    return 0
