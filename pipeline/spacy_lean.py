"""Import spaCy without its command-line package (start-up time of ``qcode code``).

``import spacy`` imports ``spacy.cli`` for the one name ``spacy.info``, and with it
the CLI's dependencies (weasel, httpx, typer, the download and project commands):
about 0.2 s of CPU per process. The coder never runs spaCy's command line, so
``lean_spacy_import`` makes the first ``import spacy`` of this process run with
placeholder ``spacy.cli`` modules, removed again as soon as spaCy is imported;
``spacy.info`` then imports the real command-line package when it is first called,
and ``import spacy.cli`` works as usual. Nothing else of spaCy imports ``spacy.cli``.
A failure of the lean import falls back to the plain one, so this changes only
start-up time, never results.

Used by ``qcode code``/``run`` and by the local pool's fork server, whose first
preload (``nlp_warm``) imports spaCy: the first chunk of a ``--jobs`` run waits for it.
"""
from __future__ import annotations

import importlib.abc
import importlib.util
import sys
import types
from typing import Any

_STUBS = ("spacy.cli", "spacy.cli.info")


def _info(*args: Any, **kwargs: Any) -> Any:
    """``spacy.info``, importing spaCy's command-line package on first use."""
    from importlib import import_module

    return import_module("spacy.cli.info").info(*args, **kwargs)


class _Stub(types.ModuleType):
    """A placeholder ``spacy.cli`` module."""


class _LeanLoader(importlib.abc.Loader):
    """Runs spaCy's own loader with the placeholders in place."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self.loader = loader

    def create_module(self, spec):  # noqa: ANN001, ANN201
        return self.loader.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        placed = []
        for name in _STUBS:
            if name not in sys.modules:
                stub = _Stub(name)
                stub.info = _info  # type: ignore[attr-defined]
                sys.modules[name] = stub
                placed.append(name)
        try:
            self.loader.exec_module(module)
        except Exception:  # noqa: BLE001 - a spaCy that needs its CLI: the plain import
            for name in [n for n in sys.modules if n.startswith("spacy.")]:
                sys.modules.pop(name, None)
            self.loader.exec_module(module)
        finally:
            for name in placed:
                if isinstance(sys.modules.get(name), _Stub):
                    sys.modules.pop(name, None)


class _LeanFinder(importlib.abc.MetaPathFinder):
    """Finds ``spacy`` once (its real spec, with ``_LeanLoader``), then steps aside."""

    def find_spec(self, fullname, path=None, target=None):  # noqa: ANN001, ANN201
        if fullname != "spacy":
            return None
        _remove_finder()
        spec = importlib.util.find_spec("spacy")
        if spec is None or spec.loader is None:
            return None
        spec.loader = _LeanLoader(spec.loader)
        return spec


def _remove_finder() -> None:
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _LeanFinder)]


def lean_spacy_import(now: bool = False) -> None:
    """Make this process's first ``import spacy`` skip ``spacy.cli``; idempotent.

    Args:
        now: Import spaCy (and ``spacy.tokens``) right away.
    """
    if "spacy" not in sys.modules and not any(isinstance(f, _LeanFinder)
                                              for f in sys.meta_path):
        sys.meta_path.insert(0, _LeanFinder())
    if now:
        import spacy.tokens  # noqa: F401

