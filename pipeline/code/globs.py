"""An index of one-token globs whose lookup cost does not grow with the number of globs.

A codebook can carry thousands of globs for Dutch compounds ("*leiderschap",
"eigenaar*"). Testing every glob against every token would make coding time grow
with the codebook; instead globs are sorted into hash tables by shape and a word is
looked up by its own prefixes, suffixes and substrings, so the work per word depends
on the word's length (and the few globs that actually match), not on the codebook.

Shapes:
    ``abc``      exact (no wildcard)            -> dict lookup of the word
    ``abc*``     prefix                         -> dict lookup of word[:L]
    ``*abc``     suffix                         -> dict lookup of word[-L:]
    ``*abc*``    infix                          -> dict lookup of word[i:i+L]
    anything else (``?``, ``a*b``, ``*a*b``)    -> indexed by its longest literal
                 chunk (an infix lookup), then confirmed with its compiled regex.
"""
from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable

WILDCARDS = "*?"


def _collapse(glob: str) -> str:
    return re.sub(r"\*+", "*", glob)


def glob_regex(glob: str) -> re.Pattern[str]:
    """Compile a one-token glob (``*`` any run of characters, ``?`` one character)."""
    parts = []
    for ch in glob:
        parts.append(".*" if ch == "*" else "." if ch == "?" else re.escape(ch))
    return re.compile("".join(parts), re.DOTALL)


class GlobIndex:
    """Which of many globs match a word, by hash lookups on the word's pieces."""

    def __init__(self, globs: Iterable[str]) -> None:
        self.exact: dict[str, set[str]] = defaultdict(set)
        self.prefix: dict[str, set[str]] = defaultdict(set)
        self.suffix: dict[str, set[str]] = defaultdict(set)
        self.infix: dict[str, set[str]] = defaultdict(set)
        # anchor literal -> [(glob, regex)]
        self.general: dict[str, list[tuple[str, re.Pattern[str]]]] = defaultdict(list)
        self._cache: dict[str, frozenset[str]] = {}
        for glob in dict.fromkeys(globs):
            self._add(glob)
        self._prefix_lens = sorted({len(k) for k in self.prefix})
        self._suffix_lens = sorted({len(k) for k in self.suffix})
        self._infix_lens = sorted({len(k) for k in self.infix})
        self._general_lens = sorted({len(k) for k in self.general})

    def __len__(self) -> int:
        return (sum(map(len, self.exact.values())) + sum(map(len, self.prefix.values()))
                + sum(map(len, self.suffix.values())) + sum(map(len, self.infix.values()))
                + sum(map(len, self.general.values())))

    def _add(self, glob: str) -> None:
        shape = _collapse(glob)
        body = shape.strip("*")
        if not any(ch in WILDCARDS for ch in shape):
            self.exact[shape].add(glob)
        elif not any(ch in WILDCARDS for ch in body) and body:
            lead, trail = shape.startswith("*"), shape.endswith("*")
            table = self.infix if lead and trail else self.suffix if lead else self.prefix
            table[body].add(glob)
        else:
            chunks = [c for c in re.split(r"[*?]", shape) if c]
            if not chunks:  # only wildcards: the validator rejects these
                raise ValueError(f"glob {glob!r} has no literal characters")
            anchor = max(chunks, key=len)
            self.general[anchor].append((glob, glob_regex(shape)))

    def match(self, word: str) -> frozenset[str]:
        """Return the globs (as written) that match ``word`` entirely."""
        hit = self._cache.get(word)
        if hit is not None:
            return hit
        found: set[str] = set()
        n = len(word)
        found.update(self.exact.get(word, ()))
        for size in self._prefix_lens:
            if size > n:
                break
            found.update(self.prefix.get(word[:size], ()))
        for size in self._suffix_lens:
            if size > n:
                break
            found.update(self.suffix.get(word[n - size:], ()))
        for size in self._infix_lens:
            if size > n:
                break
            for key in {word[i:i + size] for i in range(n - size + 1)}:
                found.update(self.infix.get(key, ()))
        for size in self._general_lens:
            if size > n:
                break
            for key in {word[i:i + size] for i in range(n - size + 1)}:
                for glob, regex in self.general.get(key, ()):
                    if regex.fullmatch(word):
                        found.add(glob)
        result = frozenset(found)
        if len(self._cache) < 500_000:  # bounded: a corpus vocabulary, not a leak
            self._cache[word] = result
        return result
