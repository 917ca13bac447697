"""Validation of the codebook document: top level, settings and the code tree."""
from __future__ import annotations

import re
import uuid

import yaml

from pipeline.codebook.model import (
    CODE_KINDS, DEFAULT_INTERVIEWER_LABELS, DEFAULT_NEGATION_CUES, DEFAULT_NEGATION_WINDOW,
    DETECT_LANG_MODES, LANGUAGES, NEGATION_SCOPES, REQUIRED_CODES, UNITS, Code, Codebook,
    Rule, Settings,
)
from pipeline.codebook.nodes import Reader, describe, line_of
from pipeline.codebook.patterns import PatternMemo
from pipeline.codebook.rules import RuleReader

SCHEMA_VERSIONS = (1,)
TOP_KEYS = ("version", "name", "description", "settings", "vocab", "codes")
SETTINGS_KEYS = ("default_lang", "languages", "unit", "threshold", "interviewer_labels",
                 "negation_cues", "negation_window", "negation_scope", "count_per_rule",
                 "detect_lang", "glob_lemmas", "required_codes", "opening_weight")
VOCAB_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
CODE_KEYS = ("id", "kind", "label", "color", "guid", "definition", "include", "exclude",
             "examples", "references", "rules", "children")
CODE_REQUIRED = ("id", "label", "definition")
NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
COLOR_RE = re.compile(r"^#[0-9A-Fa-f]{6}$")
UNKNOWN_PARENT = "\0"


class CodebookBuilder:
    """Walks the composed YAML tree, collecting every problem and the codes."""

    def __init__(self, reader: Reader, require_codes: bool = True,
                 patterns: PatternMemo | None = None) -> None:
        self.r = reader
        self.require_codes = require_codes
        self.rules = RuleReader(reader, patterns)
        self.settings = Settings()
        self.codes: dict[str, Code] = {}
        self.code_lines: dict[str, int | None] = {}
        self.rule_lines: dict[str, int | None] = {}

    def build(self, root: yaml.Node, path: str, digest: str) -> Codebook | None:
        """Validate the document; return the Codebook, or None if any problem was found."""
        r = self.r
        keys = r.mapping(root, "", TOP_KEYS, ("version", "codes"))
        if keys is None:
            return None
        version = 1
        if "version" in keys:
            v = r.number(keys["version"], "version", integer=True)
            if v is not None and v not in SCHEMA_VERSIONS:
                r.add("version", f"unsupported schema version {v} (supported: "
                      f"{', '.join(map(str, SCHEMA_VERSIONS))})", keys["version"])
            version = v if v is not None else version
        name = r.text(keys["name"], "name") if "name" in keys else ""
        description = (r.text(keys["description"], "description", nonempty=False)
                       if "description" in keys else "")
        if "settings" in keys:
            self.settings = self._settings(keys["settings"])
        self.rules.opening = self.settings.opening_weight
        vocab: dict[str, dict[str, tuple[str, ...]]] = {}
        if "vocab" in keys:
            vocab = self._vocab(keys["vocab"])
        self.rules.vocab = vocab
        if "codes" in keys:
            items = r.sequence(keys["codes"], "codes", "a non-empty list of codes", nonempty=True)
            for i, item in enumerate(items or []):
                self._code(item, f"codes[{i}]", None)
            for code_id in self.settings.required_codes if self.require_codes else ():
                if code_id not in self.code_lines and items:
                    r.add("codes", f"missing required code {code_id!r} (settings.required_codes "
                          "lists the codes this study's analyses need; a codebook for another "
                          "study sets 'required_codes: []')", keys["codes"])
        self._check_targets()
        if r.problems:
            return None
        return Codebook(version, name or "", description or "", self.settings, self.codes,
                        path, digest, vocab)

    # --- vocab -----------------------------------------------------------------------
    def _vocab(self, node: yaml.Node) -> dict[str, dict[str, tuple[str, ...]]]:
        """Read ``vocab: {name: {lang: [items]}}``; items are words, globs or phrases."""
        r = self.r
        out: dict[str, dict[str, tuple[str, ...]]] = {}
        if not isinstance(node, yaml.MappingNode):
            r.add("vocab", "expected a mapping of vocabulary names to {language: [items]}, "
                  f"got {describe(node)}", node)
            return out
        names = [str(k.value) for k, _ in node.value if isinstance(k, yaml.ScalarNode)]
        for name, lnode in (r.mapping(node, "vocab", names, what="vocabulary") or {}).items():
            path = f"vocab.{name}"
            if not VOCAB_NAME_RE.match(name):
                r.add(path, f"bad vocabulary name {name!r}: use letters, digits and '_', "
                      "starting with a letter", lnode)
                continue
            by_lang = r.mapping(lnode, path, LANGUAGES, what="language")
            if by_lang is None:
                continue
            if not by_lang:
                r.add(path, "a vocabulary needs at least one language list", lnode)
            out[name] = {}
            for lang, items in by_lang.items():
                if lang not in self.settings.languages:
                    r.add(f"{path}.{lang}", f"language {lang!r} is not in settings.languages "
                          f"({', '.join(self.settings.languages)})", items)
                out[name][lang] = self.rules.vocab_items(items, f"{path}.{lang}")
        return out

    def _check_targets(self) -> None:
        """``exclude`` rules with ``rules:``: each id must be a rule of the same code and language."""
        r = self.r
        by_id = {rule.id: rule for code in self.codes.values()
                 for rules in code.rules.values() for rule in rules}
        known = set(self.rule_lines)
        for veto_id, code_id, lang, target, path, node in self.rules.targets:
            rule = by_id.get(target)
            if target not in known:
                r.add(path, f"unknown rule id {target!r} (exclude rule {veto_id!r} can only "
                      f"veto rules of its own code {code_id!r})", node)
            elif rule is None:
                continue  # the target rule has problems of its own
            elif rule.code_id != code_id:
                r.add(path, f"rule {target!r} belongs to code {rule.code_id!r}, not "
                      f"{code_id!r}: an exclude rule only vetoes rules of its own code", node)
            elif rule.lang != lang:
                r.add(path, f"rule {target!r} is a {rule.lang!r} rule; exclude rule "
                      f"{veto_id!r} is {lang!r}", node)
            elif rule.kind == "exclude":
                r.add(path, f"rule {target!r} is itself an exclude rule", node)

    # --- settings -------------------------------------------------------------------
    def _settings(self, node: yaml.Node) -> Settings:
        r = self.r
        keys = r.mapping(node, "settings", SETTINGS_KEYS, what="setting")
        if keys is None:
            return Settings()
        languages = LANGUAGES
        if "languages" in keys:
            got = r.texts(keys["languages"], "settings.languages", nonempty=True)
            seen: list[str] = []
            for value, sub, item in got:
                if value not in LANGUAGES:
                    r.add(sub, f"unknown language {value!r} (allowed: {', '.join(LANGUAGES)})", item)
                elif value in seen:
                    r.add(sub, f"language {value!r} is listed twice", item)
                else:
                    seen.append(value)
            languages = tuple(seen) or languages
        default_lang = "nl" if "nl" in languages else languages[0]
        if "default_lang" in keys:
            got_lang = r.choice(keys["default_lang"], "settings.default_lang", LANGUAGES,
                                "language")
            if got_lang is not None and got_lang not in languages:
                r.add("settings.default_lang", f"default language {got_lang!r} is not in "
                      f"settings.languages ({', '.join(languages)})", keys["default_lang"])
            default_lang = got_lang or default_lang
        unit = "turn"
        if "unit" in keys:
            unit = r.choice(keys["unit"], "settings.unit", UNITS, "unit") or unit
        threshold = 0.5
        if "threshold" in keys:
            t = r.number(keys["threshold"], "settings.threshold")
            if t is not None and not (0 < t <= 1):
                r.add("settings.threshold", f"threshold {t!r} is out of range: must be > 0 "
                      "and <= 1", keys["threshold"])
            elif t is not None:
                threshold = float(t)
        labels = DEFAULT_INTERVIEWER_LABELS
        if "interviewer_labels" in keys:
            labels = tuple(v for v, _, _ in r.texts(keys["interviewer_labels"],
                                                     "settings.interviewer_labels"))
        cues = dict(DEFAULT_NEGATION_CUES)
        if "negation_cues" in keys:
            got_cues = r.mapping(keys["negation_cues"], "settings.negation_cues", LANGUAGES,
                                 what="language")
            for lang, cue_node in (got_cues or {}).items():
                sub = f"settings.negation_cues.{lang}"
                cues[lang] = tuple(v.lower() for v, _, _ in r.texts(cue_node, sub))
        count_per_rule = _positive_int(r, keys, "count_per_rule", None, "")
        window = _positive_int(r, keys, "negation_window", DEFAULT_NEGATION_WINDOW, " token")
        scope = "window"
        if "negation_scope" in keys:
            scope = r.choice(keys["negation_scope"], "settings.negation_scope", NEGATION_SCOPES,
                             "negation scope") or scope
        detect = "csv"
        if "detect_lang" in keys:
            detect = r.choice(keys["detect_lang"], "settings.detect_lang", DETECT_LANG_MODES,
                              "detect_lang mode") or detect
        glob_lemmas = False
        if "glob_lemmas" in keys:
            glob_lemmas = r.boolean(keys["glob_lemmas"], "settings.glob_lemmas") or False
        required = REQUIRED_CODES
        if "required_codes" in keys:
            required = tuple(v for v, _, _ in r.texts(keys["required_codes"],
                                                       "settings.required_codes"))
        opening = 1.0
        if "opening_weight" in keys:
            o = r.number(keys["opening_weight"], "settings.opening_weight")
            if o is not None and not (0 <= o <= 1):  # NaN fails this too
                r.add("settings.opening_weight", f"opening_weight {o!r} is out of range: must "
                      "be >= 0 and <= 1 (a factor on the weights of the matches in a "
                      "document's first coded unit; 1: off)", keys["opening_weight"])
            elif o is not None:
                opening = float(o)
        return Settings(default_lang, languages, unit, threshold, labels, cues, count_per_rule,
                        window, scope, detect, glob_lemmas, required, opening)

    # --- codes -------------------------------------------------------------------
    def _code(self, node: yaml.Node, path: str, parent: str | None) -> None:
        r = self.r
        keys = r.mapping(node, path, CODE_KEYS, CODE_REQUIRED)
        if keys is None:
            return
        n_before = len(r.problems)
        code_id = r.text(keys["id"], f"{path}.id") if "id" in keys else None
        if code_id is not None:
            self._check_id(code_id, parent, f"{path}.id", keys["id"])
            if code_id in self.code_lines:
                r.add(f"{path}.id", f"duplicate code id {code_id!r} (first defined on line "
                      f"{self.code_lines[code_id]})", keys["id"])
            else:
                self.code_lines[code_id] = line_of(keys["id"])
        kind = "theme"
        if "kind" in keys:
            kind = r.choice(keys["kind"], f"{path}.kind", CODE_KINDS, "code kind") or kind
        label: dict[str, str] = {}
        if "label" in keys:
            lab = r.mapping(keys["label"], f"{path}.label", LANGUAGES,
                            self.settings.languages, what="language")
            for lang, lnode in (lab or {}).items():
                value = r.text(lnode, f"{path}.label.{lang}")
                if value is not None:
                    label[lang] = value
        definition = r.text(keys["definition"], f"{path}.definition") if "definition" in keys else None
        lists = {}
        for key in ("include", "exclude", "references"):
            lists[key] = ([v for v, _, _ in r.texts(keys[key], f"{path}.{key}")]
                          if key in keys else [])
        color = None
        if "color" in keys:
            color = r.text(keys["color"], f"{path}.color")
            if color is not None and not COLOR_RE.match(color):
                r.add(f"{path}.color", f"color {color!r} is not a hex colour like '#E69F00'",
                      keys["color"])
        guid = None
        if "guid" in keys:
            guid = r.text(keys["guid"], f"{path}.guid")
            if guid is not None and not _is_uuid(guid):
                r.add(f"{path}.guid", f"guid {guid!r} is not a UUID such as "
                      "'3f2b...-....-....-....-............'", keys["guid"])
        positive, negative = self._examples(keys.get("examples"), f"{path}.examples")
        rules = self._rules(keys.get("rules"), f"{path}.rules", code_id or "code")
        if code_id is not None and len(r.problems) == n_before:
            self.codes[code_id] = Code(
                id=code_id, parent=parent, kind=kind, label=label, definition=definition or "",
                include=lists["include"], exclude=lists["exclude"],
                examples_positive=positive, examples_negative=negative,
                references=lists["references"], color=color, guid=guid, rules=rules)
        if "children" in keys:
            for i, child in enumerate(r.sequence(keys["children"], f"{path}.children",
                                                 "a list of codes") or []):
                # An invalid parent id still lets us check the children's own fields.
                self._code(child, f"{path}.children[{i}]",
                           code_id if code_id is not None else UNKNOWN_PARENT)

    def _check_id(self, code_id: str, parent: str | None, path: str, node: yaml.Node) -> None:
        if parent == UNKNOWN_PARENT:
            return
        if parent is None:
            if "." in code_id:
                self.r.add(path, f"top-level code id {code_id!r} must not contain '.': "
                           "put it under its parent's children", node)
                return
            name = code_id
        else:
            if not code_id.startswith(parent + "."):
                self.r.add(path, f"child id {code_id!r} must start with its parent's id "
                           f"{parent + '.'!r}", node)
                return
            name = code_id[len(parent) + 1:]
        if not NAME_RE.match(name):
            self.r.add(path, f"bad id {code_id!r}: each part must match [a-z][a-z0-9_]* "
                       "(lower-case letters, digits, '_'; children '<parent id>.<name>')", node)

    def _examples(self, node: yaml.Node | None, path: str
                  ) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        out: dict[str, list[tuple[str, str]]] = {"positive": [], "negative": []}
        if node is None:
            return out["positive"], out["negative"]
        keys = self.r.mapping(node, path, ("positive", "negative")) or {}
        for key, lnode in keys.items():
            for i, item in enumerate(self.r.sequence(lnode, f"{path}.{key}") or []):
                sub = f"{path}.{key}[{i}]"
                if isinstance(item, yaml.MappingNode):
                    ex = self.r.mapping(item, sub, ("text", "lang"), ("text",))
                    if ex is None or "text" not in ex:
                        continue
                    text = self.r.text(ex["text"], f"{sub}.text")
                    lang = (self.r.choice(ex["lang"], f"{sub}.lang", LANGUAGES, "language")
                            if "lang" in ex else self.settings.default_lang)
                    if text is not None and lang is not None:
                        out[key].append((text, lang))
                else:
                    text = self.r.text(item, sub)
                    if text is not None:
                        out[key].append((text, self.settings.default_lang))
        return out["positive"], out["negative"]

    def _rules(self, node: yaml.Node | None, path: str, code_id: str) -> dict[str, list[Rule]]:
        rules: dict[str, list[Rule]] = {}
        if node is None:
            return rules
        by_lang = self.r.mapping(node, path, LANGUAGES, what="language") or {}
        for lang, lnode in by_lang.items():
            if lang not in self.settings.languages:
                self.r.add(f"{path}.{lang}", f"language {lang!r} is not in settings.languages "
                           f"({', '.join(self.settings.languages)})", lnode)
            out: list[Rule] = []
            for i, item in enumerate(self.r.sequence(lnode, f"{path}.{lang}", "a list of rules")
                                     or []):
                sub = f"{path}.{lang}[{i}]"
                rule, id_node = self.rules.rule(item, sub, code_id, lang, i)
                if rule is None:
                    continue
                where = id_node if id_node is not None else item
                if rule.id in self.rule_lines:
                    self.r.add(f"{sub}.id" if id_node is not None else sub,
                               f"duplicate rule id {rule.id!r} (first defined on line "
                               f"{self.rule_lines[rule.id]})", where)
                    continue
                self.rule_lines[rule.id] = line_of(where)
                out.append(rule)
            rules[lang] = out
        return rules


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _positive_int(r, keys: dict, name: str, default: int | None,  # noqa: ANN001
                  unit: str) -> int | None:
    """``settings.<name>`` as an integer >= 1 (a problem is reported otherwise), or ``default``."""
    if name not in keys:
        return default
    n = r.number(keys[name], f"settings.{name}", integer=True)
    if n is not None and n < 1:
        r.add(f"settings.{name}", f"{name} {n} must be >= 1{unit}", keys[name])
    return int(n) if n is not None and n >= 1 else default
