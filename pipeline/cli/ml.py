"""``qcode train`` and ``qcode suggest`` (supervised coder)."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``train`` and ``suggest`` (filled in below)."""
