"""Dataclasses and constants of a loaded codebook.

The loader (``pipeline.codebook.loader``) builds these from the YAML file after
validation; everything downstream (rule coder, ML coder, exchange, figures) reads
only these objects, never the YAML.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipeline.errors import UsageError

LANGUAGES = ("nl", "en")
REQUIRED_CODES = (
    "agency", "ownership", "alignment", "shared_leadership",
    "amo", "amo.ability", "amo.motivation", "amo.opportunity",
)
CODE_KINDS = ("theme", "facet")
RULE_KINDS = ("terms", "phrase", "glob", "pattern", "proximity", "exclude")
UNITS = ("turn", "paragraph", "sentence")
NEGATION_MODES = ("ignore", "forbid", "require")
ORDERS = ("any", "ab")
SCOPES = ("match", "sentence", "segment")
NEGATION_SCOPES = ("window", "clause")
DETECT_LANG_MODES = ("csv", "never", "always")
DEFAULT_NEGATION_WINDOW = 3
ROLLUP_LEVELS = ("top", "all")

DEFAULT_INTERVIEWER_LABELS = (
    "I", "Int", "Interviewer", "Q", "Moderator", "Onderzoeker", "Interviewster",
)
# Single-token cues, compared with a token's lower-case form and lemma. "n't" is
# how spaCy's English tokenizer splits "didn't"; its lemma is "not".
DEFAULT_NEGATION_CUES: dict[str, tuple[str, ...]] = {
    "nl": ("niet", "geen", "nooit", "nergens", "niks", "niets", "niemand", "noch",
           "geenszins"),
    "en": ("not", "n't", "no", "never", "nothing", "none", "nobody", "neither",
           "nor", "nowhere", "cannot"),
}


@dataclass(frozen=True)
class Settings:
    """The ``settings`` block of the codebook, with defaults filled in."""

    default_lang: str = "nl"
    languages: tuple[str, ...] = LANGUAGES
    unit: str = "turn"
    threshold: float = 0.5
    interviewer_labels: tuple[str, ...] = DEFAULT_INTERVIEWER_LABELS
    negation_cues: dict[str, tuple[str, ...]] = field(
        default_factory=lambda: dict(DEFAULT_NEGATION_CUES))
    count_per_rule: int | None = None      # default max_matches of every rule; None: unlimited
    negation_window: int = DEFAULT_NEGATION_WINDOW   # tokens before a match (scope "window")
    negation_scope: str = "window"         # window | clause
    detect_lang: str = "csv"               # csv | never | always: per-segment language detection
    glob_lemmas: bool = False              # globs also match a token's lemma
    # Codes the study's analyses rely on; another study's codebook sets [].
    required_codes: tuple[str, ...] = REQUIRED_CODES
    # Weight factor of every match in the first coded unit of each document (the
    # respondent's opening turn: who they are, which school); 1: off, 0: not coded.
    opening_weight: float = 1.0


@dataclass(frozen=True)
class Rule:
    """One matching rule of a code, in one language.

    ``params`` holds the kind-specific keys, normalised: term, phrase, glob and
    proximity items are lower-case tuples; ``patterns`` is a list of spaCy Matcher
    patterns; ``window``/``order``/``scope`` carry their defaults.
    """

    id: str
    code_id: str
    lang: str
    kind: str
    params: dict[str, Any]
    weight: float = 1.0
    negation: str = "ignore"
    max_matches: int | None = None   # at most this many matches per segment count (None: all)


@dataclass(frozen=True)
class Code:
    """One code (theme or facet) of the codebook."""

    id: str
    parent: str | None
    kind: str
    label: dict[str, str]
    definition: str
    include: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    examples_positive: list[tuple[str, str]] = field(default_factory=list)  # (text, lang)
    examples_negative: list[tuple[str, str]] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    color: str | None = None
    guid: str | None = None
    rules: dict[str, list[Rule]] = field(default_factory=dict)


@dataclass(frozen=True)
class Codebook:
    """A validated codebook.

    ``codes`` maps id to ``Code`` in file order (depth first: a parent comes before
    its children). ``hash`` is the sha256 of the file bytes, recorded in every run
    manifest so codings can be traced to the exact codebook.
    """

    version: int
    name: str
    description: str
    settings: Settings
    codes: dict[str, Code]
    path: str
    hash: str
    # name -> language -> items (lower-case), as written under the top-level ``vocab`` key;
    # rules already carry the expanded items.
    vocab: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)

    def _code(self, code_id: str) -> Code:
        try:
            return self.codes[code_id]
        except KeyError:
            raise UsageError(
                f"{self.path}: unknown code id {code_id!r} "
                f"(the codebook has {len(self.codes)} codes)") from None

    def ids(self) -> list[str]:
        """Return every code id in file order."""
        return list(self.codes)

    def top_level(self) -> list[str]:
        """Return the ids of the codes without a parent, in file order."""
        return [c.id for c in self.codes.values() if c.parent is None]

    def ancestors(self, code_id: str) -> list[str]:
        """Return the ancestors of a code, nearest first (parent, grandparent, ...).

        Raises:
            UsageError: the code id is not in the codebook.
        """
        out: list[str] = []
        parent = self._code(code_id).parent
        while parent is not None:
            out.append(parent)
            parent = self.codes[parent].parent
        return out

    def children(self, code_id: str) -> list[str]:
        """Return the direct children of a code in file order.

        Raises:
            UsageError: the code id is not in the codebook.
        """
        self._code(code_id)
        return [c.id for c in self.codes.values() if c.parent == code_id]

    def rollup_id(self, code_id: str, level: str) -> str:
        """Return the id a code counts as at an analysis level.

        Args:
            code_id: a code of this codebook.
            level: ``"top"`` (the top-level ancestor, or the code itself when it
                has no parent) or ``"all"`` (the code itself).

        Raises:
            UsageError: unknown code id or level.
        """
        if level not in ROLLUP_LEVELS:
            raise UsageError(f"unknown rollup level {level!r} (allowed: {', '.join(ROLLUP_LEVELS)})")
        chain = self.ancestors(code_id)
        if level == "all" or not chain:
            return code_id
        return chain[-1]

    def label(self, code_id: str, lang: str | None = None) -> str:
        """Return the label of a code in ``lang``, else in the default language.

        Raises:
            UsageError: the code id is not in the codebook.
        """
        labels = self._code(code_id).label
        for key in (lang, self.settings.default_lang):
            if key in labels:
                return labels[key]
        return next(iter(labels.values()), code_id)

    def rules(self, lang: str) -> list[Rule]:
        """Return every rule of language ``lang``, codes in file order."""
        return [r for c in self.codes.values() for r in c.rules.get(lang, [])]
