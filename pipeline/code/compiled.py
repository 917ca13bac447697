"""Compiling the rules of one language into matchers built once per run."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from pipeline.code.sketch import TermSplitter
from pipeline.code.tokpat import TokenPatterns
from pipeline.code.trie import TokenTrie
from pipeline.code.types import TypeTable
from pipeline.codebook import DEFAULT_NEGATION_CUES, Codebook, Rule, is_glob
from pipeline.errors import UsageError

if TYPE_CHECKING:  # spaCy is imported where it is used: a re-code of terms never needs it
    from spacy.matcher import Matcher
    from spacy.tokens import Doc

MAIN, SIDE_A, SIDE_B = "main", "a", "b"


@dataclass
class CompiledRules:
    """The rules of one language, compiled.

    Every rule reports hits through "channels": one per rule (terms, phrase, glob,
    pattern, exclude) or two (proximity sides ``a`` and ``b``). Terms, phrases and
    globs sit in one token trie; token patterns in ``token_patterns`` (run on token
    arrays, ``pipeline.code.tokpat``) when it covers them, else in spaCy Matchers,
    grouped by the words a doc must contain for them to match
    (``pattern_requirements``), so a Matcher only runs on the docs that can hold one
    of its patterns (``pipeline.code.scan``).
    """

    lang: str
    rules: list[Rule]
    channels: list[tuple[int, str]]          # channel -> (index in rules, role)
    trie: TokenTrie
    matcher: Matcher | None                  # every pattern (for callers that want one)
    matcher_channels: dict[int, int]         # matcher key hash -> channel
    negation_cues: frozenset[str]
    rule_channels: dict[int, dict[str, int]] = field(default_factory=dict)
    # settings: default max matches per rule (None: unlimited), negation window/scope
    count_per_rule: int | None = None
    negation_window: int = 3
    negation_scope: str = "window"
    # Patterns grouped by their requirements: group g holds (key, pattern) pairs that
    # can only match a doc containing a word of each set in requirements[g]. Patterns
    # without a required literal token are "unanchored" and run on every doc.
    group_patterns: list[list[tuple[str, list]]] = field(default_factory=list)
    requirements: list[tuple[frozenset[str], ...]] = field(default_factory=list)
    unanchored_patterns: list[tuple[str, list]] = field(default_factory=list)
    vocab: object = None
    # per group: the most tokens one of its patterns can match (None: unbounded)
    group_max_len: list[int | None] = field(default_factory=list)
    # patterns run on token arrays (``tokpat``); the others go through the Matcher
    token_patterns: TokenPatterns | None = None
    _combined: dict[tuple[int, ...], Matcher] = field(default_factory=dict, repr=False)
    _types: TypeTable | None = field(default=None, repr=False)
    _columns: tuple | None = field(default=None, repr=False)
    _vetoes: tuple | None = field(default=None, repr=False)
    _opening: tuple | None = field(default=None, repr=False)   # (factors or None,)

    def max_matches(self, rule: Rule) -> int | None:
        """How many matches of ``rule`` count per segment (None: all)."""
        return rule.max_matches if rule.max_matches is not None else self.count_per_rule

    @property
    def types(self) -> TypeTable:
        """The run's word-type table (built on first use, kept for every later doc)."""
        if self._types is None:
            self._types = TypeTable(self.trie, self.negation_cues, self.requirements)
        return self._types

    def hits(self, doc: Doc) -> dict[int, list[tuple[int, int]]]:
        """Return channel -> sorted, distinct (start token, end token) spans in ``doc``."""
        from pipeline.code.arrays import TokenArrays
        from pipeline.code.scan import find_hits

        arrays = TokenArrays.from_docs([doc])
        found = find_hits(arrays, self, self.types.ids(arrays.vocab, arrays.orth, arrays.lemma))
        return {ch: sorted(spans) for ch, spans in found.get(0, {}).items()}

    def matcher_for(self, groups: tuple[int, ...]) -> Matcher | None:
        """One Matcher holding the unanchored patterns and those of ``groups``.

        A Matcher call walks the whole doc in Python, so one call with the union of the
        patterns a doc needs beats one call per group (the set of spans found is the
        same). Combinations are few: cached, bounded.
        """
        if not groups and not self.unanchored_patterns:
            return None
        matcher = self._combined.get(groups)
        if matcher is None:
            from spacy.matcher import Matcher

            if len(self._combined) >= 4096:
                self._combined.clear()
            matcher = Matcher(self.vocab)
            for key, pattern in self.unanchored_patterns:
                matcher.add(key, [pattern])
            for g in groups:
                for key, pattern in self.group_patterns[g]:
                    matcher.add(key, [pattern])
            self._combined[groups] = matcher
        return matcher

    def rule_columns(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per rule: code id, rule id (object arrays), weight (float), is proximity."""
        if self._columns is None:
            rules = self.rules
            self._columns = (np.asarray([r.code_id for r in rules], dtype=object),
                             np.asarray([r.id for r in rules], dtype=object),
                             np.asarray([float(r.weight) for r in rules], dtype=np.float64),
                             np.asarray([r.kind == "proximity" for r in rules], dtype=bool))
        return self._columns

    def opening_factors(self) -> np.ndarray | None:
        """Per rule: factor on its weight in a document's first coded unit
        (``settings.opening_weight``, carried in the params); None when every factor is 1."""
        if self._opening is None:
            factors = np.asarray([float(r.params.get("opening", 1.0)) for r in self.rules],
                                 dtype=np.float64)
            self._opening = (factors if len(factors) and (factors != 1.0).any() else None,)
        return self._opening[0]

    def veto_tables(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per rule: code number, veto scope (0 segment, 1 match, 2 sentence), whether
        its veto lists target rules; and the sorted ``veto * n_rules + rule`` keys of
        the targeted pairs (``matching._vetoed``)."""
        if self._vetoes is None:
            rules, n = self.rules, len(self.rules)
            codes = {code: k for k, code in enumerate(dict.fromkeys(r.code_id for r in rules))}
            scope = [{"segment": 0, "match": 1}.get(r.params.get("scope", "match"), 2)
                     for r in rules]
            targets = [r.params.get("rules") if r.kind == "exclude" else None for r in rules]
            allowed = sorted(v * n + x for v, t in enumerate(targets) if t
                             for x, rule in enumerate(rules) if rule.id in t)
            self._vetoes = (np.asarray([codes[r.code_id] for r in rules], dtype=np.int64),
                            np.asarray(scope, dtype=np.int8),
                            np.asarray([bool(t) for t in targets], dtype=bool),
                            np.asarray(allowed, dtype=np.int64))
        return self._vetoes

    def channel(self, rule_index: int, role: str = MAIN) -> int | None:
        """Return the channel of a rule (and proximity side), None if it has none."""
        return self.rule_channels.get(rule_index, {}).get(role)


def _tokens(tokenizer, text: str) -> list[tuple[str, bool]]:  # noqa: ANN001
    """Split a term or phrase the way documents are tokenized; globs stay whole."""
    out: list[tuple[str, bool]] = []
    for chunk in text.split():
        if is_glob(chunk):
            out.append((chunk, True))
        else:
            out.extend((tok.lower_, False) for tok in tokenizer(chunk))
    return out


def compile_rules(codebook: Codebook, lang: str,
                  only: frozenset[tuple[str, str]] | None = None) -> CompiledRules:
    """Compile every rule of ``lang`` in the codebook (or some of them).

    Terms, phrases, globs, proximity items and the terms/phrases/globs of exclude
    rules go into one token trie (glob lookups through a ``GlobIndex``); patterns go
    into one spaCy ``Matcher`` on the language's vocab. Without patterns, and with
    every item known to the tokenizer sketch, spaCy is not imported.

    Args:
        codebook: a loaded codebook.
        lang: language code; a language without rules gives an empty compilation.
        only: only the rules whose (code id, rule id) is in this set (None: every
            rule). A code's matches do not depend on other codes' rules, nor a rule's
            on the other rules of a code without exclude rules, so they are the same
            whichever others are compiled with them (``pipeline.match_cache``).

    Raises:
        UsageError: the language is not supported by the NLP stage.
    """
    check_lang(lang)
    rules = codebook.rules(lang)
    if only is not None:
        rules = [rule for rule in rules if (rule.code_id, rule.id) in only]
    cues = codebook.settings.negation_cues.get(lang, DEFAULT_NEGATION_CUES.get(lang, ()))
    trie = TokenTrie()
    channels: list[tuple[int, str]] = []
    rule_channels: dict[int, dict[str, int]] = {}
    matcher = None
    matcher_channels: dict[int, int] = {}
    groups: dict[tuple[frozenset[str], ...], int] = {}
    group_patterns: list[list[tuple[str, list]]] = []
    unanchored_patterns: list[tuple[str, list]] = []
    group_max_len: list[int | None] = []
    token_patterns = TokenPatterns()
    # the tokenizer and vocab only (no lookup tables), built when needed
    split = TermSplitter(lang)
    nlp = None

    def new_channel(index: int, role: str) -> int:
        channels.append((index, role))
        rule_channels.setdefault(index, {})[role] = len(channels) - 1
        return len(channels) - 1

    for index, rule in enumerate(rules):
        params = rule.params
        if rule.kind == "proximity":
            for role, key in ((SIDE_A, "a"), (SIDE_B, "b")):
                channel = new_channel(index, role)
                for item in params[key]:
                    trie.add(split(item), channel)
            continue
        channel = new_channel(index, MAIN)
        for key in ("terms", "phrases"):
            for item in params.get(key, ()):
                trie.add(split(item), channel)
        for glob in params.get("globs", ()):  # vocab items may be phrases: split like one
            trie.add(split(glob), channel)
        if params.get("patterns"):
            from spacy.matcher import Matcher

            nlp = split.nlp()
            key = f"{rule.id}#{channel}"
            matcher_channels[nlp.vocab.strings.add(key)] = channel
            if matcher is None:
                matcher = Matcher(nlp.vocab)
            matcher.add(key, params["patterns"])
            for pattern in params["patterns"]:
                if token_patterns.add(pattern, channel):
                    continue
                needs = pattern_requirements(pattern)
                if not needs:
                    unanchored_patterns.append((key, pattern))
                    continue
                if needs not in groups:
                    groups[needs] = len(group_patterns)
                    group_patterns.append([])
                    group_max_len.append(0)
                g = groups[needs]
                group_patterns[g].append((key, pattern))
                longest, current = pattern_max_len(pattern), group_max_len[g]
                group_max_len[g] = (None if longest is None or current is None
                                    else max(longest, current))
    split.done()
    settings = codebook.settings
    trie.glob_lemmas = settings.glob_lemmas
    trie.freeze()
    return CompiledRules(lang, rules, channels, trie, matcher, matcher_channels,
                         frozenset(c.lower() for c in cues), rule_channels,
                         settings.count_per_rule, settings.negation_window,
                         settings.negation_scope, group_patterns, list(groups),
                         unanchored_patterns, nlp.vocab if nlp is not None else None,
                         group_max_len, _frozen_patterns(token_patterns))


def _frozen_patterns(patterns: TokenPatterns) -> TokenPatterns | None:
    if not len(patterns):
        return None
    patterns.freeze()
    return patterns


_LITERAL_ATTRS = ("LOWER", "LEMMA", "ORTH", "TEXT")


def _literal(spec: dict) -> frozenset[str] | None:
    """The lower-cased words one token spec must be (None: not a literal spec)."""
    for attr in _LITERAL_ATTRS:
        value = spec.get(attr)
        if isinstance(value, str):
            return frozenset([value.lower()])
        if (isinstance(value, dict) and set(value) == {"IN"} and value["IN"]
                and all(isinstance(v, str) for v in value["IN"])):
            return frozenset(v.lower() for v in value["IN"])
    return None


def _required_specs(pattern: list[dict]) -> list[dict]:
    """Token specs that must be present (no ``OP``, or ``OP: "+"``), keys upper-cased."""
    out = []
    for spec in pattern:
        spec = {str(k).upper(): v for k, v in spec.items()}
        if spec.get("OP") in (None, "+"):
            out.append(spec)
    return out


def pattern_anchor(pattern: list[dict]) -> frozenset[str] | None:
    """Words (lower-case) of which a doc must contain one for ``pattern`` to match.

    The first token that must be present (no ``OP``, or ``OP: "+"``) and is given as a
    literal (``LOWER``/``LEMMA``/``ORTH``/``TEXT``, a string or ``{IN: [...]}``); None
    when no token qualifies. Docs' keys are lower forms and lower-cased lemmas, so a
    lower-cased literal is a necessary condition for every one of these attributes.
    """
    needs = pattern_requirements(pattern)
    return needs[0] if needs else None


def pattern_requirements(pattern: list[dict]) -> tuple[frozenset[str], ...]:
    """Every word set of which a doc must contain one word for ``pattern`` to match.

    One set per required literal token (see ``pattern_anchor``), in pattern order,
    without repeats; empty when the pattern has no required literal token. All of them
    are necessary, so a doc lacking any one cannot match and the Matcher is skipped.
    """
    found = (_literal(spec) for spec in _required_specs(pattern))
    return tuple(dict.fromkeys(words for words in found if words is not None))


_BOUNDS = re.compile(r"^\{(\d*)(,?)(\d*)\}$")


def pattern_max_len(pattern: list[dict]) -> int | None:
    """The most tokens ``pattern`` can match; None when unbounded (``*``, ``+``, ``{n,}``).

    An unknown operator counts as unbounded, so the answer is always an upper bound.
    """
    total = 0
    for spec in pattern:
        op = {str(k).upper(): v for k, v in spec.items()}.get("OP")
        if op in (None, "?", "!"):
            total += 1
            continue
        found = _BOUNDS.match(op) if isinstance(op, str) else None
        if found is None:
            return None
        low, comma, high = found.groups()
        if comma and not high:
            return None  # {n,}
        total += int(high or low or 0)
    return total


def check_lang(lang: object) -> str:
    """Return ``lang`` if the NLP stage supports it, else raise UsageError."""
    from pipeline.languages import SUPPORTED_LANGUAGES

    if lang not in SUPPORTED_LANGUAGES:
        raise UsageError(f"unsupported language {lang!r} (supported: "
                         f"{', '.join(SUPPORTED_LANGUAGES)})")
    return str(lang)
