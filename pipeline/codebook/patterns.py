"""Token patterns (``kind: pattern``) validated by spaCy's Matcher, and a memo of valid ones.

Validating a pattern needs spaCy's ``Matcher``, and importing spaCy costs about a third
of a second: more than a whole re-code spends on some of its steps, and a re-code of
an edit that touches no token pattern never runs spaCy on one. ``PatternMemo``
remembers the patterns found valid in the run's cache folder, as empty files named
by a digest of the pattern's exact value, the versions of spaCy and pydantic (the
Matcher's schema) and this module's code: a pattern found there is valid without
importing spaCy. Problems are never remembered: an invalid pattern goes to spaCy
every time, so its message is the one ``pattern_problem`` gives.
"""
from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

SUBDIR = "patterns-v1"   # cache subfolder (bump when what a file means changes)


@lru_cache(maxsize=1)
def _vocab():  # noqa: ANN202 - spaCy Vocab; built once, lazily
    # a bare Vocab: the Matcher validates against the pattern schema and only adds
    # strings to the vocab; ``spacy.blank`` would also build a tokenizer (its regexes)
    from spacy.vocab import Vocab
    return Vocab()


def pattern_problem(pattern: Any) -> str | None:
    """Return why ``pattern`` is not a valid spaCy Matcher token pattern, or None.

    Validates by adding the pattern to a ``Matcher(validate=True)``: that is the
    authority on what spaCy accepts.
    """
    from spacy.matcher import Matcher

    if not isinstance(pattern, list) or not pattern:
        return "a pattern is a non-empty list of token dicts"
    if not all(isinstance(tok, dict) for tok in pattern):
        return "each token of a pattern must be a mapping such as {LOWER: zelf}"
    try:
        Matcher(_vocab(), validate=True).add("check", [pattern])
    # spaCy raises MatchPatternError, ValueError, re.error, TypeError ... for bad
    # patterns; all of them mean "fix this pattern".
    except Exception as exc:  # noqa: BLE001
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip().startswith("-")]
        detail = "; ".join(ln.lstrip("- ") for ln in lines) or str(exc).strip().splitlines()[0]
        return f"invalid Matcher pattern: {detail[:300]}"
    return None


def _plain(value: Any) -> bool:
    """Whether ``value`` is plain YAML data (its ``repr`` is then its exact identity)."""
    if isinstance(value, dict):
        return all(type(k) is str and _plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    return value is None or type(value) in (str, bool, int, float)


@lru_cache(maxsize=1)
def _context() -> str:
    """What besides the pattern decides its validity: library versions and this code."""
    from importlib import metadata

    found = []
    for name in ("spacy", "pydantic"):
        try:
            found.append(metadata.version(name))
        except metadata.PackageNotFoundError:
            found.append("none")
    found.append(hashlib.sha256(Path(__file__).read_bytes()).hexdigest())
    return "\x1f".join([SUBDIR, *found])


class PatternMemo:
    """Valid token patterns remembered in ``<folder>/patterns-v1`` (None: no memo).

    ``problem`` answers like ``pattern_problem``; the patterns it found valid are
    written by ``save`` (after the codebook turned out valid and the run holds its
    output folder), never while validating.
    """

    def __init__(self, folder: str | os.PathLike[str] | None) -> None:
        self.root = Path(folder) if folder is not None else None   # the cache folder
        self.folder = self.root / SUBDIR if self.root is not None else None
        self._new: list[str] = []

    def _key(self, pattern: Any) -> str | None:
        if self.folder is None or not _plain(pattern):
            return None
        text = f"{_context()}\x1f{pattern!r}"
        return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()

    def problem(self, pattern: Any) -> str | None:
        """``pattern_problem(pattern)``, without spaCy for a pattern found valid before."""
        key = self._key(pattern)
        if key is not None and self.folder is not None and (self.folder / key).is_file():
            return None
        problem = pattern_problem(pattern)
        if problem is None and key is not None:
            self._new.append(key)
        return problem

    def save(self) -> None:
        """Remember the patterns found valid since the last save (failures are ignored)."""
        if self.folder is None or not self._new:
            return
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            for key in self._new:
                (self.folder / key).touch()  # empty: a reader sees the name or nothing
        except OSError:
            pass
        self._new = []
