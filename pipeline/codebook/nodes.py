"""Typed reading of YAML nodes that records problems instead of raising.

The codebook is parsed with ``yaml.compose`` so every value keeps its line
(``node.start_mark``); these helpers read a node as the type the schema expects and,
when it is not, append a ``Problem`` with the YAML path and the 1-based line, then
return ``None`` so validation can carry on and report everything at once.
"""
from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any

import yaml

from pipeline.errors import Problem

STR_TAG = "tag:yaml.org,2002:str"
NULL_TAG = "tag:yaml.org,2002:null"
# Plain scalars such as `no`, `on`, `1e3` resolve to bool/float in YAML 1.1; where
# the schema wants text we take what the user typed ("no" is an English negation cue).
TEXT_LIKE_TAGS = {STR_TAG, "tag:yaml.org,2002:bool", "tag:yaml.org,2002:int",
                  "tag:yaml.org,2002:float", "tag:yaml.org,2002:timestamp"}


def line_of(node: yaml.Node | None) -> int | None:
    """Return the 1-based line where a node starts, or None."""
    mark = getattr(node, "start_mark", None)
    return mark.line + 1 if mark is not None else None


def describe(node: yaml.Node) -> str:
    """Describe a node for a message: the value as written, or its collection type."""
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if node.tag == NULL_TAG:
        return "an empty value"
    text = str(node.value)
    if len(text) > 40:
        text = text[:39] + "…"
    return repr(text)


class Reader:
    """Collects problems while reading typed values out of YAML nodes."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self._loader = yaml.SafeLoader("")

    def add(self, path: str, message: str, node: yaml.Node | None = None) -> None:
        """Record one problem at ``path`` (line taken from ``node``)."""
        self.problems.append(Problem(path or "<root>", message, line_of(node)))

    def construct(self, node: yaml.Node, path: str) -> tuple[bool, Any]:
        """Build the plain Python value of a node (safe tags only)."""
        try:
            return True, self._loader.construct_object(node, deep=True)
        except RecursionError:
            self.add(path, "value is nested too deeply", node)
        # Timestamps such as 2024-13-45 raise ValueError, unknown tags
        # ConstructorError; any failure to build a value is a problem of the file.
        except Exception as exc:  # noqa: BLE001
            self.add(path, f"invalid value {describe(node)}: {_first_line(exc)}", node)
        return False, None

    def mapping(self, node: yaml.Node, path: str, allowed: Sequence[str],
                required: Sequence[str] = (), what: str = "key") -> dict[str, yaml.Node] | None:
        """Read a mapping with string keys; report unknown, duplicate and missing keys.

        Returns:
            The known keys mapped to their value nodes, or None if ``node`` is not a
            mapping.
        """
        if not isinstance(node, yaml.MappingNode):
            self.add(path, f"expected a mapping with keys {_allowed(allowed)}, "
                     f"got {describe(node)}", node)
            return None
        try:
            self._loader.flatten_mapping(node)  # resolves YAML merge keys (<<)
        except yaml.YAMLError as exc:
            self.add(path, f"invalid merge key: {_first_line(exc)}", node)
            return None
        out: dict[str, yaml.Node] = {}
        seen: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                self.add(path, f"keys must be plain words, got {describe(key_node)}", key_node)
                continue
            key = str(key_node.value)
            sub = f"{path}.{key}" if path else key
            if key in seen:
                self.add(sub, f"duplicate {what} {key!r} (first on line {line_of(seen[key])})",
                         key_node)
                continue
            seen[key] = key_node
            if key not in allowed:
                close = difflib.get_close_matches(key, list(allowed), n=1, cutoff=0.75)
                hint = f"did you mean {close[0]!r}? " if close else ""
                self.add(sub, f"unknown {what} {key!r} ({hint}allowed: {_allowed(allowed)})",
                         key_node)
                continue
            out[key] = value_node
        for key in required:
            if key not in seen:
                self.add(path, f"missing required {what} {key!r}", node)
        return out

    def sequence(self, node: yaml.Node, path: str, what: str = "a list",
                 nonempty: bool = False) -> list[yaml.Node] | None:
        """Read a list node; report anything else (and an empty list if ``nonempty``)."""
        if not isinstance(node, yaml.SequenceNode):
            self.add(path, f"expected {what}, got {describe(node)}", node)
            return None
        if nonempty and not node.value:
            self.add(path, f"expected {what}, got an empty list", node)
        return list(node.value)

    def text(self, node: yaml.Node, path: str, nonempty: bool = True) -> str | None:
        """Read a string; plain scalars count as the text typed (``no`` -> "no")."""
        if not isinstance(node, yaml.ScalarNode) or node.tag == NULL_TAG:
            self.add(path, f"expected text, got {describe(node)}", node)
            return None
        if node.tag not in TEXT_LIKE_TAGS:
            self.add(path, f"unsupported YAML tag {node.tag!r}: expected text", node)
            return None
        value = str(node.value).strip()
        if nonempty and not value:
            self.add(path, "expected text, got an empty string", node)
            return None
        return value

    def texts(self, node: yaml.Node, path: str, nonempty: bool = False,
              what: str = "a list of strings") -> list[tuple[str, str, yaml.Node]]:
        """Read a list of strings; returns (value, path, node) of the valid items."""
        items = self.sequence(node, path, what, nonempty=nonempty)
        out = []
        for i, item in enumerate(items or []):
            value = self.text(item, f"{path}[{i}]")
            if value is not None:
                out.append((value, f"{path}[{i}]", item))
        return out

    def choice(self, node: yaml.Node, path: str, allowed: Sequence[str],
               what: str = "value") -> str | None:
        """Read one of a fixed set of words (``what`` names it in the message)."""
        if not isinstance(node, yaml.ScalarNode) or node.tag not in TEXT_LIKE_TAGS:
            self.add(path, f"expected one of {_allowed(allowed)}, got {describe(node)}", node)
            return None
        value = str(node.value)
        if value not in allowed:
            self.add(path, f"unknown {what} {value!r} (allowed: {_allowed(allowed)})", node)
            return None
        return value

    def boolean(self, node: yaml.Node, path: str) -> bool | None:
        """Read ``true`` / ``false``."""
        if not isinstance(node, yaml.ScalarNode) or node.tag != "tag:yaml.org,2002:bool":
            self.add(path, f"expected true or false, got {describe(node)}", node)
            return None
        ok, value = self.construct(node, path)
        return bool(value) if ok else None

    def number(self, node: yaml.Node, path: str, integer: bool = False) -> float | int | None:
        """Read an int (or, unless ``integer``, a float); booleans are rejected."""
        want = "an integer" if integer else "a number"
        if not isinstance(node, yaml.ScalarNode) or node.tag == STR_TAG:
            self.add(path, f"expected {want}, got {describe(node)}", node)
            return None
        ok, value = self.construct(node, path)
        if not ok:
            return None
        types = (int,) if integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, types):
            self.add(path, f"expected {want}, got {describe(node)}", node)
            return None
        return value


def _allowed(allowed: Sequence[str]) -> str:
    return ", ".join(allowed)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
