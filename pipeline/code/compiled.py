"""Compiling the rules of one language into matchers built once per run."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from spacy.matcher import Matcher
from spacy.tokens import Doc

from pipeline.code.trie import TokenTrie
from pipeline.codebook import DEFAULT_NEGATION_CUES, Codebook, Rule, is_glob
from pipeline.errors import UsageError

MAIN, SIDE_A, SIDE_B = "main", "a", "b"


@dataclass
class CompiledRules:
    """The rules of one language, compiled.

    Every rule reports hits through "channels": one per rule (terms, phrase, glob,
    pattern, exclude) or two (proximity sides ``a`` and ``b``). ``hits(doc)`` runs
    the token trie and the spaCy Matcher once per doc and returns the spans of every
    channel.
    """

    lang: str
    rules: list[Rule]
    channels: list[tuple[int, str]]          # channel -> (index in rules, role)
    trie: TokenTrie
    matcher: Matcher | None
    matcher_channels: dict[int, int]         # matcher key hash -> channel
    negation_cues: frozenset[str]
    rule_channels: dict[int, dict[str, int]] = field(default_factory=dict)
    # Patterns with a required literal token (LOWER/LEMMA/ORTH/TEXT, or IN of those) sit
    # in small Matchers that only run on docs containing one of their words: the token
    # Matcher tries every pattern at every token, so one big Matcher would make coding
    # time grow with the number of patterns. ``matcher`` still holds every pattern (for
    # callers that want one Matcher); ``hits`` runs ``unanchored`` + the anchored ones.
    anchored: list[Matcher] = field(default_factory=list)
    anchor_index: dict[str, list[int]] = field(default_factory=dict)
    unanchored: Matcher | None = None
    # settings: default max matches per rule (None: unlimited), negation window/scope
    count_per_rule: int | None = None
    negation_window: int = 3
    negation_scope: str = "window"
    # (key, pattern) of every anchored group / of the unanchored Matcher, to build one
    # Matcher per combination of groups a doc needs (a Matcher call walks the whole doc
    # in Python, so one call with the union of patterns beats one call per group; the
    # set of spans found is the same). Combinations are few: cached, bounded.
    group_patterns: list[list[tuple[str, list]]] = field(default_factory=list)
    unanchored_patterns: list[tuple[str, list]] = field(default_factory=list)
    vocab: object = None
    _combined: dict[tuple[int, ...], Matcher] = field(default_factory=dict, repr=False)

    def max_matches(self, rule: Rule) -> int | None:
        """How many matches of ``rule`` count per segment (None: all)."""
        return rule.max_matches if rule.max_matches is not None else self.count_per_rule

    def hits(self, doc: Doc) -> dict[int, list[tuple[int, int]]]:
        """Return channel -> sorted, distinct (start token, end token) spans in ``doc``."""
        found: dict[int, set[tuple[int, int]]] = defaultdict(set)
        keys, lowers = self.trie.keys(doc)
        for channel, start, end in self.trie.find(doc, keys=keys, lowers=lowers):
            found[channel].add((start, end))
        matchers = [self.unanchored] if self.unanchored is not None else []
        if self.anchor_index:
            index = self.anchor_index
            wanted = {g for token_keys in keys for key in token_keys
                      for g in index.get(key, ())}
            if wanted:
                matchers = [self._matcher_for(tuple(sorted(wanted)))]
        for matcher in matchers:
            for key, start, end in matcher(doc):
                if end > start:  # all-optional patterns can match zero tokens
                    found[self.matcher_channels[key]].add((start, end))
        return {ch: sorted(spans) for ch, spans in found.items()}

    def _matcher_for(self, groups: tuple[int, ...]) -> Matcher:
        """One Matcher holding the unanchored patterns and those of ``groups``."""
        if len(groups) == 1 and self.unanchored is None:
            return self.anchored[groups[0]]
        if self.vocab is None:  # built without the pattern lists: no combining
            first = [self.unanchored] if self.unanchored is not None else []
            return _Several(first + [self.anchored[g] for g in groups])
        matcher = self._combined.get(groups)
        if matcher is None:
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

    def channel(self, rule_index: int, role: str = MAIN) -> int | None:
        """Return the channel of a rule (and proximity side), None if it has none."""
        return self.rule_channels.get(rule_index, {}).get(role)


class _Several:
    """Several Matchers called as one (their matches, concatenated)."""

    def __init__(self, matchers: list[Matcher]) -> None:
        self.matchers = matchers

    def __call__(self, doc: Doc) -> list[tuple[int, int, int]]:
        return [m for matcher in self.matchers for m in matcher(doc)]


def _tokens(tokenizer, text: str) -> list[tuple[str, bool]]:  # noqa: ANN001
    """Split a term or phrase the way documents are tokenized; globs stay whole."""
    out: list[tuple[str, bool]] = []
    for chunk in text.split():
        if is_glob(chunk):
            out.append((chunk, True))
        else:
            out.extend((tok.lower_, False) for tok in tokenizer(chunk))
    return out


def compile_rules(codebook: Codebook, lang: str) -> CompiledRules:
    """Compile every rule of ``lang`` in the codebook.

    Terms, phrases, globs, proximity items and the terms/phrases/globs of exclude
    rules go into one token trie (glob lookups through a ``GlobIndex``); patterns go
    into one spaCy ``Matcher`` on the language's vocab.

    Args:
        codebook: a loaded codebook.
        lang: language code; a language without rules gives an empty compilation.

    Raises:
        UsageError: the language is not supported by the NLP stage.
    """
    from pipeline.nlp import make_nlp

    check_lang(lang)
    rules = codebook.rules(lang)
    cues = codebook.settings.negation_cues.get(lang, DEFAULT_NEGATION_CUES.get(lang, ()))
    trie = TokenTrie()
    channels: list[tuple[int, str]] = []
    rule_channels: dict[int, dict[str, int]] = {}
    matcher = None
    matcher_channels: dict[int, int] = {}
    anchored: list[Matcher] = []
    anchor_index: dict[str, list[int]] = {}
    groups: dict[frozenset[str], int] = {}
    unanchored: Matcher | None = None
    group_patterns: list[list[tuple[str, list]]] = []
    unanchored_patterns: list[tuple[str, list]] = []
    nlp = make_nlp(lang) if rules else None  # no rules: skip building the pipeline
    tokenizer = nlp.tokenizer if nlp is not None else None

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
                    trie.add(_tokens(tokenizer, item), channel)
            continue
        channel = new_channel(index, MAIN)
        for key in ("terms", "phrases"):
            for item in params.get(key, ()):
                trie.add(_tokens(tokenizer, item), channel)
        for glob in params.get("globs", ()):  # vocab items may be phrases: split like one
            trie.add(_tokens(tokenizer, glob), channel)
        if params.get("patterns"):
            assert nlp is not None  # there is a rule, so the pipeline was built
            key = f"{rule.id}#{channel}"
            matcher_channels[nlp.vocab.strings.add(key)] = channel
            if matcher is None:
                matcher = Matcher(nlp.vocab)
            matcher.add(key, params["patterns"])
            for pattern in params["patterns"]:
                anchor = pattern_anchor(pattern)
                if anchor is None:
                    if unanchored is None:
                        unanchored = Matcher(nlp.vocab)
                    unanchored.add(key, [pattern])
                    unanchored_patterns.append((key, pattern))
                    continue
                if anchor not in groups:
                    groups[anchor] = len(anchored)
                    anchored.append(Matcher(nlp.vocab))
                    group_patterns.append([])
                    for word in anchor:
                        anchor_index.setdefault(word, []).append(groups[anchor])
                anchored[groups[anchor]].add(key, [pattern])
                group_patterns[groups[anchor]].append((key, pattern))
    settings = codebook.settings
    trie.glob_lemmas = settings.glob_lemmas
    trie.freeze()
    return CompiledRules(lang, rules, channels, trie, matcher, matcher_channels,
                         frozenset(c.lower() for c in cues), rule_channels,
                         anchored, anchor_index, unanchored, settings.count_per_rule,
                         settings.negation_window, settings.negation_scope,
                         group_patterns, unanchored_patterns,
                         nlp.vocab if nlp is not None else None)


_LITERAL_ATTRS = ("LOWER", "LEMMA", "ORTH", "TEXT")


def pattern_anchor(pattern: list[dict]) -> frozenset[str] | None:
    """Words (lower-case) of which a doc must contain one for ``pattern`` to match.

    The first token that must be present (no ``OP``, or ``OP: "+"``) and is given as a
    literal (``LOWER``/``LEMMA``/``ORTH``/``TEXT``, a string or ``{IN: [...]}``); None
    when no token qualifies. Docs' keys are lower forms and lower-cased lemmas, so a
    lower-cased literal is a necessary condition for every one of these attributes.
    """
    for spec in pattern:
        spec = {str(k).upper(): v for k, v in spec.items()}
        if spec.get("OP") not in (None, "+"):
            continue
        for attr in _LITERAL_ATTRS:
            value = spec.get(attr)
            if isinstance(value, str):
                return frozenset([value.lower()])
            if (isinstance(value, dict) and set(value) == {"IN"} and value["IN"]
                    and all(isinstance(v, str) for v in value["IN"])):
                return frozenset(v.lower() for v in value["IN"])
    return None


def check_lang(lang: object) -> str:
    """Return ``lang`` if the NLP stage supports it, else raise UsageError."""
    from pipeline.nlp import SUPPORTED_LANGUAGES

    if lang not in SUPPORTED_LANGUAGES:
        raise UsageError(f"unsupported language {lang!r} (supported: "
                         f"{', '.join(SUPPORTED_LANGUAGES)})")
    return str(lang)
