"""What characters a regular expression's matches need: a proof that it finds nothing in a text.

``TokenizerSketch.single`` asks whether spaCy's prefix, suffix or infix regex finds
anything in a word. Compiling those regexes takes ~50 ms (the infix one alone ~35 ms)
in every re-code that adds a word the sketch has not seen; parsing them takes ~10 ms.
The parse tree tells what a match needs of the text (``requirement``): every
character a match consumes is consumed by a literal or a character set of the
pattern. A sequence needs, for each of its parts that cannot match the empty string,
one character of the text that this part can consume; an alternation needs what one
of its branches needs; a lookahead or lookbehind needs what its pattern needs (it
looks at characters of the text); a negative one, an anchor or a word boundary
needs nothing. A text whose characters do not meet that has no match
(``Need.met_by``): e.g. "wandelgangen", whose letters no infix of spaCy's Dutch
tokenizer consumes (they need a "-", "." and the like), nor any suffix (units such as
"km" need a digit before them).

Anything the analysis does not follow (negated sets, ``.``, back references,
case-insensitive, ASCII or locale flags) gives no answer, and neither does a pattern
that can match the empty string: the caller compiles the regex as before.
"""
from __future__ import annotations

import bisect
from collections.abc import Iterable

try:  # CPython's own parser of ``re`` (``sre_parse`` before 3.11)
    import re._parser as _P
except ImportError:  # pragma: no cover - another Python: no analysis, always compiled
    _P = None

# flags that change nothing of which characters a set holds
_PLAIN_FLAGS = 32 | 64 | 16 | 8   # UNICODE, VERBOSE, DOTALL, MULTILINE
_CATEGORIES = ("CATEGORY_DIGIT", "CATEGORY_SPACE", "CATEGORY_WORD")


class _Unsupported(Exception):
    """A construct the analysis does not follow."""


class Chars:
    """A set of characters: code points, ranges and Unicode categories (``\\d \\s \\w``)."""

    def __init__(self, points: Iterable[int], ranges: Iterable[tuple[int, int]],
                 categories: Iterable[str]) -> None:
        self.points = frozenset(points)
        self.starts: list[int] = []   # sorted, disjoint ranges [starts[k], ends[k]]
        self.ends: list[int] = []
        for lo, hi in sorted(ranges):
            if self.starts and lo <= self.ends[-1] + 1:
                self.ends[-1] = max(self.ends[-1], hi)
            else:
                self.starts.append(lo)
                self.ends.append(hi)
        self.categories = frozenset(categories)

    def holds(self, ch: str) -> bool:
        """Whether ``ch`` is in the set (as ``_sre`` decides it without ASCII or LOCALE)."""
        code = ord(ch)
        if code in self.points:
            return True
        k = bisect.bisect_right(self.starts, code) - 1
        if k >= 0 and code <= self.ends[k]:
            return True
        return (("CATEGORY_DIGIT" in self.categories and ch.isdecimal())
                or ("CATEGORY_SPACE" in self.categories and ch.isspace())
                or ("CATEGORY_WORD" in self.categories and (ch.isalnum() or ch == "_")))


class Need:
    """What a match needs of a text: ``kind`` "char" (one character of ``chars``),
    "all" (every one of ``parts``) or "any" (one of ``parts``)."""

    def __init__(self, kind: str, chars: Chars | None = None,
                 parts: list[Need] | None = None) -> None:
        self.kind, self.chars, self.parts = kind, chars, parts or []

    def met_by(self, text: str) -> bool:
        """False when no match of the pattern can lie in ``text``; True: maybe one can."""
        if self.kind == "char":
            assert self.chars is not None
            return any(self.chars.holds(ch) for ch in set(text))
        if self.kind == "all":
            return all(part.met_by(text) for part in self.parts)
        return any(part.met_by(text) for part in self.parts)


def requirement(pattern: str, flags: int = 0) -> Need | None:
    """What any match of ``pattern`` needs (None: no answer; compile and search)."""
    if _P is None:
        return None
    try:
        tree = _P.parse(pattern, flags)
        if tree.state.flags & ~_PLAIN_FLAGS:  # case-insensitive, ASCII, LOCALE, ...
            return None
        return _sequence(tree)
    except Exception:  # noqa: BLE001 - re.error, _Unsupported, a node of another version
        return None


def _sequence(items: Iterable) -> Need | None:
    """What a sequence of parse nodes needs (None: it can match the empty string)."""
    needs = [need for item in items if (need := _node(*item)) is not None]
    if not needs:
        return None
    return needs[0] if len(needs) == 1 else Need("all", parts=needs)


def _node(op, av) -> Need | None:  # noqa: ANN001, C901, PLR0911 - one branch per node type
    name = getattr(op, "name", None)
    if name == "LITERAL":
        return Need("char", Chars([av], [], []))
    if name == "IN":
        points, ranges, categories = [], [], []
        for kind, value in av:
            kind = getattr(kind, "name", None)
            if kind == "LITERAL":
                points.append(value)
            elif kind == "RANGE":
                ranges.append(value)
            elif kind == "CATEGORY" and getattr(value, "name", None) in _CATEGORIES:
                categories.append(value.name)
            else:  # NEGATE, a negated category
                raise _Unsupported(kind)
        return Need("char", Chars(points, ranges, categories))
    if name == "BRANCH":
        branches = [_sequence(branch) for branch in av[1]]
        if any(branch is None for branch in branches):
            return None
        return Need("any", parts=branches)
    if name == "SUBPATTERN":
        _group, add_flags, del_flags, sub = av
        if add_flags & ~_PLAIN_FLAGS or del_flags & ~_PLAIN_FLAGS:
            raise _Unsupported("inline flags")
        return _sequence(sub)
    if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
        low, _high, sub = av
        return _sequence(sub) if low > 0 else None
    if name == "ATOMIC_GROUP":
        return _sequence(av)
    if name == "ASSERT":  # a lookaround: what it looks at is in the text too
        try:
            return _sequence(av[1])
        except _Unsupported:
            return None  # it needs something; leaving it out only weakens the proof
    if name in ("ASSERT_NOT", "AT"):
        return None  # need nothing
    raise _Unsupported(name)  # ANY, NOT_LITERAL, GROUPREF, GROUPREF_EXISTS, ...
