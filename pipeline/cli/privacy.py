"""``qcode pseudonymise`` (placeholder until the privacy module lands)."""
from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``qcode pseudonymise``."""
