"""Validation of the ``rules`` entries of a code (one rule mapping at a time)."""
from __future__ import annotations

import math
import re
from typing import Any

import yaml

from pipeline.codebook.model import NEGATION_MODES, ORDERS, RULE_KINDS, SCOPES, Rule
from pipeline.codebook.nodes import Reader
from pipeline.codebook.patterns import PatternMemo, pattern_problem

RULE_ID_RE = re.compile(r"^[a-z][a-z0-9_.\-]*$")
COMMON_KEYS = ("id", "kind", "weight", "negation")
KIND_KEYS: dict[str, tuple[str, ...]] = {
    "terms": ("terms",),
    "phrase": ("phrases",),
    "glob": ("globs",),
    "pattern": ("patterns",),
    "proximity": ("a", "b", "window", "order"),
    "exclude": ("terms", "phrases", "globs", "patterns", "scope", "rules"),
}
REQUIRED_KEYS: dict[str, tuple[str, ...]] = {
    "terms": ("terms",), "phrase": ("phrases",), "glob": ("globs",),
    "pattern": ("patterns",), "proximity": ("a", "b"), "exclude": (),
}
EXCLUDE_ITEMS = ("terms", "phrases", "globs", "patterns")
DEFAULT_WINDOW = 5
WILDCARDS = "*?"
# fnmatch would treat these as syntax; a token glob only knows * and ?.
FORBIDDEN_GLOB_CHARS = "[]{}\\"


def glob_problem(glob: str) -> str | None:
    """Return why ``glob`` is not a valid one-token glob, or None if it is."""
    if not glob:
        return "empty glob"
    if any(ch.isspace() for ch in glob):
        return f"glob {glob!r} contains a space: a glob matches one token"
    bad = sorted({ch for ch in glob if ch in FORBIDDEN_GLOB_CHARS})
    if bad:
        return (f"glob {glob!r} contains {', '.join(map(repr, bad))}: only * and ? "
                "are allowed as wildcards")
    if all(ch in WILDCARDS for ch in glob):
        return f"glob {glob!r} has only wildcards and would match every token"
    return None


def is_glob(item: str) -> bool:
    """Return True if a term/phrase token uses wildcards."""
    return any(ch in WILDCARDS for ch in item)


class RuleReader:
    """Reads the rules of one code in one language."""

    def __init__(self, reader: Reader, patterns: PatternMemo | None = None) -> None:
        self.r = reader
        self.patterns = patterns  # valid token patterns remembered (None: spaCy checks each)
        # top-level ``vocab``: name -> language -> items; "@name" in a list expands to it
        self.vocab: dict[str, dict[str, tuple[str, ...]]] = {}
        # exclude rules' ``rules:`` targets, checked once every rule is read:
        # (exclude rule id, code id, lang, target id, YAML path, node)
        self.targets: list[tuple[str, str, str, str, str, yaml.Node]] = []
        self._lang = ""
        self._rule_id = ""
        self._code_id = ""
        self.opening = 1.0   # settings.opening_weight, set by the schema before the codes

    def rule(self, node: yaml.Node, path: str, code_id: str, lang: str,
             index: int) -> tuple[Rule | None, yaml.Node | None]:
        """Validate one rule mapping; return the Rule (None if invalid) and its id node."""
        r = self.r
        if not isinstance(node, yaml.MappingNode):
            r.add(path, f"expected a rule mapping with keys {', '.join(COMMON_KEYS)}, ...", node)
            return None, None
        kind = self._kind(node, path)
        if kind is None:  # unknown kind: key checks would only add noise
            return None, None
        allowed = ("id", "kind") + (() if kind == "exclude"
                                    else ("weight", "negation", "max_matches"))
        keys = r.mapping(node, path, allowed + KIND_KEYS[kind], REQUIRED_KEYS[kind])
        if keys is None:
            return None, None
        n_before = len(r.problems)
        rule_id = f"{code_id}.{lang}.{index + 1}"
        if "id" in keys:
            given = r.text(keys["id"], f"{path}.id")
            if given is not None and not RULE_ID_RE.match(given):
                r.add(f"{path}.id", f"bad rule id {given!r}: use lower-case letters, digits, "
                      "'_', '.', '-', starting with a letter", keys["id"])
            rule_id = given or rule_id
        weight = 1.0
        if "weight" in keys:
            w = r.number(keys["weight"], f"{path}.weight")
            if w is not None and not (0 < w <= 1):  # NaN fails this too
                r.add(f"{path}.weight", f"weight {w!r} is out of range: must be > 0 and <= 1",
                      keys["weight"])
            weight = float(w) if w is not None and not math.isnan(w) else weight
        negation = "ignore"
        if "negation" in keys:
            negation = r.choice(keys["negation"], f"{path}.negation", NEGATION_MODES,
                                "negation mode") or negation
        max_matches = None
        if "max_matches" in keys:
            n = r.number(keys["max_matches"], f"{path}.max_matches", integer=True)
            if n is not None and n < 1:
                r.add(f"{path}.max_matches", f"max_matches {n} must be >= 1",
                      keys["max_matches"])
            elif n is not None:
                max_matches = int(n)
        self._lang, self._rule_id, self._code_id = lang, rule_id, code_id
        params = self._params(kind, keys, path, node)
        if len(r.problems) > n_before or params is None:
            return None, keys.get("id")
        if kind != "exclude" and self.opening != 1.0:
            # settings.opening_weight: in the params, so match-cache digests see it
            params["opening"] = self.opening
        return (Rule(rule_id, code_id, lang, kind, params, weight, negation, max_matches),
                keys.get("id"))

    def _kind(self, node: yaml.MappingNode, path: str) -> str | None:
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.value == "kind":
                return self.r.choice(value_node, f"{path}.kind", RULE_KINDS, "rule kind")
        self.r.add(path, f"missing required key 'kind' (one of {', '.join(RULE_KINDS)})", node)
        return None

    def _params(self, kind: str, keys: dict[str, yaml.Node], path: str,
                node: yaml.Node) -> dict[str, Any] | None:
        params: dict[str, Any] = {}
        if kind == "proximity":
            for side in ("a", "b"):
                if side in keys:
                    params[side] = self._items(keys[side], f"{path}.{side}", "item")
            window = DEFAULT_WINDOW
            if "window" in keys:
                w = self.r.number(keys["window"], f"{path}.window", integer=True)
                if w is not None and w < 1:
                    self.r.add(f"{path}.window", f"window {w} must be >= 1 token", keys["window"])
                window = w if w is not None else window
            params["window"] = window
            order = "any"
            if "order" in keys:
                order = self.r.choice(keys["order"], f"{path}.order", ORDERS, "order") or order
            params["order"] = order
            return params
        for key, item_kind in (("terms", "term"), ("phrases", "phrase"), ("globs", "glob")):
            if key in keys:
                params[key] = self._items(keys[key], f"{path}.{key}", item_kind)
        if "patterns" in keys:
            params["patterns"] = self._patterns(keys["patterns"], f"{path}.patterns")
        if kind == "exclude":
            if not any(k in keys for k in EXCLUDE_ITEMS):
                self.r.add(path, "an exclude rule needs at least one of "
                           f"{', '.join(EXCLUDE_ITEMS)}", node)
                return None
            scope = "match"
            if "scope" in keys:
                scope = self.r.choice(keys["scope"], f"{path}.scope", SCOPES, "scope") or scope
            params["scope"] = scope
            if "rules" in keys:
                targets = self.r.texts(keys["rules"], f"{path}.rules", nonempty=True,
                                       what="a non-empty list of rule ids")
                for value, sub, item in targets:
                    self.targets.append((self._rule_id, self._code_id, self._lang, value,
                                         sub, item))
                params["rules"] = tuple(dict.fromkeys(v for v, _, _ in targets))
        return params

    def vocab_items(self, node: yaml.Node, path: str) -> tuple[str, ...]:
        """Read the items of one ``vocab`` list: words, globs or phrases, lower-cased."""
        out = []
        for value, sub, item in self.r.texts(node, path, nonempty=True,
                                             what="a non-empty list of words"):
            value = " ".join(value.lower().split())
            if value.startswith("@"):
                self.r.add(sub, f"{value!r}: a vocabulary cannot refer to another one", item)
                continue
            problem = next((glob_problem(tok) for tok in value.split()
                            if is_glob(tok) and glob_problem(tok)), None)
            if problem:
                self.r.add(sub, problem, item)
            else:
                out.append(value)
        return tuple(dict.fromkeys(out))

    def _expand(self, value: str, sub: str, item: yaml.Node) -> tuple[str, ...] | None:
        """Items of vocabulary ``@name`` in the current rule's language (None: a problem)."""
        name = value[1:]
        if name not in self.vocab:
            known = ", ".join(sorted(self.vocab)) or "none defined"
            self.r.add(sub, f"unknown vocabulary {value!r} (top-level vocab: {known})", item)
            return None
        items = self.vocab[name].get(self._lang)
        if items is None:
            self.r.add(sub, f"vocabulary {value!r} has no {self._lang!r} list "
                       f"(add vocab.{name}.{self._lang})", item)
            return None
        return items

    def _items(self, node: yaml.Node, path: str, item_kind: str) -> tuple[str, ...]:
        """Read terms / phrases / globs / proximity items, lower-cased.

        Proximity items ("item") may be words, globs or phrases; "@name" expands to the
        top-level vocabulary ``name`` in the rule's language (its items may be words,
        globs or phrases: they all go through the same token trie).
        """
        out = []
        what = "proximity item" if item_kind == "item" else item_kind
        for value, sub, item in self.r.texts(node, path, nonempty=True,
                                             what=f"a non-empty list of {what}s"):
            value = " ".join(value.lower().split())
            if value.startswith("@"):
                out.extend(self._expand(value, sub, item) or ())
                continue
            problem = None
            if item_kind in ("phrase", "item"):
                problem = next((glob_problem(tok) for tok in value.split()
                                if is_glob(tok) and glob_problem(tok)), None)
            elif " " in value:
                hint = "use a phrase rule" if item_kind == "term" else "a glob matches one token"
                problem = f"{item_kind} {value!r} has several words: {hint}"
            elif item_kind == "glob" or is_glob(value):
                problem = glob_problem(value)
                if problem is None and item_kind == "term":
                    problem = f"term {value!r} contains a wildcard: use a glob rule"
            if problem:
                self.r.add(sub, problem, item)
            else:
                out.append(value)
        return tuple(dict.fromkeys(out))

    def _patterns(self, node: yaml.Node, path: str) -> list[list[dict[str, Any]]]:
        out = []
        for i, item in enumerate(self.r.sequence(node, path, "a non-empty list of patterns",
                                                 nonempty=True) or []):
            ok, value = self.r.construct(item, f"{path}[{i}]")
            if not ok:
                continue
            problem = (self.patterns.problem(value) if self.patterns is not None
                       else pattern_problem(value))
            if problem:
                self.r.add(f"{path}[{i}]", problem, item)
            else:
                out.append(value)
        return out
