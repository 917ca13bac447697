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
