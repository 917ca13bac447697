"""The ``qcode`` parser: commands registered lazily, one module per command."""
from __future__ import annotations

import argparse
import importlib

from pipeline.cli import COMMAND_MODULES, COMMANDS, build_parser


def _commands(parser: argparse.ArgumentParser) -> list[str]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return list(sub.choices)


def test_command_table_matches_the_modules():
    found = {}
    for name in COMMAND_MODULES:
        parser = argparse.ArgumentParser()
        importlib.import_module(name).register(parser.add_subparsers())
        found.update({command: name for command in _commands(parser)})
    assert found == COMMANDS


def test_a_known_command_registers_only_its_module():
    assert _commands(build_parser("code")) == ["code", "run", "validate", "rules-report"]
    args = build_parser("code").parse_args(["code", "in", "--out", "o", "--jobs", "2"])
    full = build_parser().parse_args(["code", "in", "--out", "o", "--jobs", "2"])
    assert vars(args) == vars(full)


def test_no_or_unknown_command_registers_every_command():
    assert _commands(build_parser()) == list(COMMANDS)
    assert _commands(build_parser("--help")) == list(COMMANDS)
    assert _commands(build_parser("nonsense")) == list(COMMANDS)


def test_arrow_allocates_with_the_system_malloc_unless_the_user_chose(tmp_path):
    """Set before pyarrow allocates, so a fresh ``qcode`` process (and its workers) use it."""
    import os
    import subprocess
    import sys

    probe = ("import pipeline.cli as c, sys; c._arrow_allocator(); import pyarrow as pa; "
             "sys.stdout.write(pa.default_memory_pool().backend_name)")
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    chosen = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True,
                            text=True, check=True).stdout
    assert chosen == "system"
    kept = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True, env={**env, "ARROW_DEFAULT_MEMORY_POOL": "jemalloc"})
    assert kept.stdout in ("jemalloc", "mimalloc")   # the user's (mimalloc if no jemalloc)
    assert kept.stdout != "system"


def test_an_output_that_cannot_be_written_is_one_line(tmp_path, capsys):
    from pipeline.cli import main

    blocker = tmp_path / "file"
    blocker.write_text("x")   # a file where the output folder should be
    from pathlib import Path

    book = Path(__file__).resolve().parents[1] / "codebook.yaml"
    assert main(["export", str(tmp_path), "--qdc", str(blocker / "sub" / "codes.qdc"),
                 "--codebook", str(book)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("qcode: error: ") and str(blocker) in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_out_of_memory_is_one_line(tmp_path, capsys, monkeypatch):
    from pathlib import Path

    from pipeline.cli import coding, main

    def short_of_memory(args):  # noqa: ANN001, ANN202
        raise MemoryError

    monkeypatch.setattr(coding, "cmd_validate", short_of_memory)
    book = Path(__file__).resolve().parents[1] / "codebook.yaml"
    assert main(["validate", str(book)]) == 1
    err = capsys.readouterr().err
    assert err == "qcode: error: out of memory; outputs already written are intact\n"
