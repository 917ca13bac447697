"""The ``qcode`` command line.

Each command group lives in its own module under ``pipeline.cli`` and exposes
``register(subparsers)``, which adds its sub-command(s) and sets ``func`` on the
parser to a callable ``func(args) -> int`` (the exit code). This module only wires
them together and turns user errors into one-line messages.

Exit codes: 0 all inputs handled; 1 fatal (bad codebook, bad arguments, any
``PipelineError``); 2 some inputs were skipped (the rest is written; errors.csv
says why).
"""
from __future__ import annotations

import argparse
import gc
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from pipeline import __version__
from pipeline.errors import PipelineError
from pipeline.pool_server import batch_gc, start_pool_server, wants_pool

# Command modules, in the order their commands appear in ``qcode --help``.
COMMAND_MODULES = [
    "pipeline.cli.coding",      # code, run, validate
    "pipeline.cli.exchange",    # export, import (REFI-QDA)
    "pipeline.cli.agreement",   # agreement, evaluate
    "pipeline.cli.ml",          # train, suggest
    "pipeline.cli.review",      # review export/import/apply/status
    "pipeline.cli.privacy",     # pseudonymise
    "pipeline.cli.matrix",      # matrix
    "pipeline.cli.figures",     # figures [--check]
]

# The module that registers each command: ``qcode code ...`` imports only the coding
# commands (the others pull in pandas-heavy modules such as agreement and review at
# import, ~0.05-0.4 s of start-up). A test holds this table to the modules.
COMMANDS = {
    "code": "pipeline.cli.coding", "run": "pipeline.cli.coding",
    "validate": "pipeline.cli.coding", "rules-report": "pipeline.cli.coding",
    "export": "pipeline.cli.exchange", "import": "pipeline.cli.exchange",
    "agreement": "pipeline.cli.agreement", "evaluate": "pipeline.cli.agreement",
    "train": "pipeline.cli.ml", "suggest": "pipeline.cli.ml",
    "review": "pipeline.cli.review",
    "pseudonymise": "pipeline.cli.privacy", "pseudonymize": "pipeline.cli.privacy",
    "matrix": "pipeline.cli.matrix",
    "figures": "pipeline.cli.figures",
}

EXIT_OK, EXIT_FATAL, EXIT_PARTIAL = 0, 1, 2
_FAST_EXIT: list[bool] = []


def _fast_exit() -> None:
    """At interpreter exit, skip the garbage collector's walks over what a run left.

    A command leaves spaCy, pandas and their objects in memory; CPython's final
    collections walk all of them (about 0.3 s) though the OS reclaims the memory
    anyway. ``gc.freeze`` in an atexit hook (which runs before the modules are torn
    down, and after the command: in-process callers such as tests are unaffected)
    leaves them to reference counting. Other atexit hooks (logging, multiprocessing,
    ``weakref.finalize``) run as before.
    """
    if not _FAST_EXIT:
        import atexit
        import gc

        atexit.register(gc.freeze)
        _FAST_EXIT.append(True)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """Return the top-level argument parser.

    Args:
        command: the command about to be parsed (the first argument): when it is
            one of ``COMMANDS``, only its module is imported and registered (its
            parsing, help and errors are the same); None or another word: every
            command, as ``qcode --help`` and an unknown command need them all.
    """
    parser = argparse.ArgumentParser(
        prog="qcode",
        description=(
            "Auto-code interview transcripts against a codebook, measure agreement "
            "with human coders, and build theme matrices and report figures."
        ),
    )
    parser.add_argument("--version", action="version", version=f"qcode {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    module = COMMANDS.get(command) if command is not None else None
    for name in [module] if module is not None else COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def _arrow_allocator() -> None:
    """Arrow allocates with the system's malloc in this process and in its workers.

    pyarrow's default here, mimalloc, kept freed memory: loading the tables of a
    million coded segments took 1.85 GB against 1.39 GB; ``qcode matrix`` on them
    19.4 s and 3.2 GB against 16.8 s and 2.8 GB; coding ran as fast, with a 13-21%
    lower peak. Set before pyarrow allocates (the variable is read then); a value the
    user set is kept.
    """
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code instead of exiting."""
    _fast_exit()
    _arrow_allocator()
    if wants_pool(sys.argv[1:] if argv is None else argv):
        # the workers' fork server imports and builds while we import the commands
        start_pool_server()
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(args_list[0] if args_list else None)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or bad arguments (2)
        return EXIT_OK if exc.code in (0, None) else EXIT_FATAL
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_FATAL
    logging.basicConfig(
        level=logging.ERROR if getattr(args, "quiet", False) else logging.WARNING,
        format="qcode: %(levelname)s: %(message)s",
    )
    # A command is a batch job; in-process callers get gc back after, and objects they had
    # frozen themselves stay frozen (unfreeze cannot tell theirs from ours)
    caller_froze = gc.get_freeze_count() > 0
    restore = batch_gc()
    try:
        return int(args.func(args) or 0)
    except PipelineError as exc:
        print(f"qcode: error: {exc}", file=sys.stderr)
        return EXIT_FATAL
    except BrokenPipeError:  # output piped into `head` and closed: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except OSError as exc:   # e.g. an output folder that cannot be made or written
        where = exc.filename if exc.filename is not None else "qcode"
        print(f"qcode: error: {where}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FATAL
    except KeyboardInterrupt:
        print("qcode: interrupted; outputs already written are intact", file=sys.stderr)
        return 130
    except MemoryError:  # (a coding run reports a chunk's files instead: ``chunk_memory``)
        print("qcode: error: out of memory; outputs already written are intact", file=sys.stderr)
        return EXIT_FATAL
    finally:
        gc.set_threshold(*restore)
        if not caller_froze:
            gc.unfreeze()
