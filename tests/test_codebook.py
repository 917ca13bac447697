"""Tests of pipeline.codebook: loading, validation problems with path and line, fuzzing."""
from __future__ import annotations

import hashlib
import textwrap
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.codebook import REQUIRED_CODES, load_codebook, validate_codebook
from pipeline.errors import CodebookError, UsageError

HEADER = """\
version: 1
name: Test codebook
description: small test codebook
"""

REQUIRED = """\
  - id: agency
    label: {nl: Agency, en: Agency}
    definition: Acting on one's own initiative.
  - id: alignment
    label: {nl: Afstemming, en: Alignment}
    definition: Fit between innovation and school.
  - id: shared_leadership
    label: {nl: Gedeeld leiderschap, en: Shared leadership}
    definition: Leadership spread over the team.
  - id: amo
    label: {nl: AMO, en: AMO}
    definition: Ability, motivation, opportunity.
    children:
      - id: amo.ability
        label: {nl: Kunnen, en: Ability}
        definition: Being able to.
      - id: amo.motivation
        label: {nl: Willen, en: Motivation}
        definition: Wanting to.
      - id: amo.opportunity
        label: {nl: Mogen, en: Opportunity}
        definition: Being allowed to.
"""

OWNERSHIP = """\
  - id: ownership
    label: {nl: Eigenaarschap, en: Ownership}
    color: "#E69F00"
    guid: 3f2b9a7e-1c2d-4e5f-8a9b-0c1d2e3f4a5b
    definition: The innovation feels like one's own.
    include: ["speaks of own choices"]
    exclude: ["legal ownership"]
    examples:
      positive: ["we mochten het zelf invullen", {text: "We could shape it ourselves", lang: en}]
      negative: ["de eigenaar van het gebouw wilde niet verbouwen"]
    references: ["Bergen, T., & Van Veen, K. (2004)."]
    rules:
      nl:
        - id: ownership.nl.core
          kind: terms
          terms: [Eigenaarschap, eigenaar]
          weight: 0.8
          negation: forbid
        - kind: phrase
          phrases: ["zelf invullen", "door de strot geduw*"]
        - kind: glob
          globs: ["*eigenaarschap", "eigenaar*"]
        - kind: pattern
          patterns: [[{LEMMA: mogen}, {OP: "*", IS_PUNCT: false}, {LOWER: zelf}]]
        - kind: proximity
          a: [we, wij, "team*"]
          b: [kiezen, "beslis*"]
          window: 6
          order: ab
        - kind: exclude
          phrases: ["eigenaar van het gebouw"]
          scope: sentence
      en:
        - kind: terms
          terms: [ownership, no]
    children:
      - id: ownership.collective
        label: {nl: Collectief, en: Collective}
        definition: Shared ownership.
"""


def codebook_text(settings_block: str = "", ownership: str = OWNERSHIP, extra: str = "") -> str:
    return HEADER + settings_block + "codes:\n" + ownership + REQUIRED + extra


def write(tmp_path: Path, text: str | bytes, name: str = "codebook.yaml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def valid(tmp_path: Path) -> Path:
    return write(tmp_path, codebook_text())


def problems_of(tmp_path: Path, text: str) -> list:
    with pytest.raises(CodebookError) as info:
        load_codebook(write(tmp_path, text))
    assert info.value.problems == validate_codebook(tmp_path / "codebook.yaml")
    return info.value.problems


# --- valid codebook ----------------------------------------------------------------

def test_load_valid_codebook(valid: Path) -> None:
    cb = load_codebook(valid)
    assert validate_codebook(valid) == []
    assert cb.version == 1 and cb.name == "Test codebook"
    assert cb.hash == hashlib.sha256(valid.read_bytes()).hexdigest()
    assert cb.path == str(valid)
    assert cb.ids()[:3] == ["ownership", "ownership.collective", "agency"]
    assert set(REQUIRED_CODES) <= set(cb.ids())
    assert cb.top_level() == ["ownership", "agency", "alignment", "shared_leadership", "amo"]
    assert cb.children("amo") == ["amo.ability", "amo.motivation", "amo.opportunity"]
    assert cb.ancestors("amo.ability") == ["amo"]
    assert cb.ancestors("amo") == []
    assert cb.rollup_id("ownership.collective", "top") == "ownership"
    assert cb.rollup_id("ownership.collective", "all") == "ownership.collective"
    assert cb.rollup_id("agency", "top") == "agency"
    assert cb.label("amo.ability", "en") == "Ability"
    assert cb.label("amo.ability", "de") == "Kunnen"  # falls back to default_lang


def test_code_and_rule_fields(valid: Path) -> None:
    cb = load_codebook(valid)
    own = cb.codes["ownership"]
    assert own.parent is None and own.kind == "theme" and own.color == "#E69F00"
    assert own.guid == "3f2b9a7e-1c2d-4e5f-8a9b-0c1d2e3f4a5b"
    assert own.examples_positive == [("we mochten het zelf invullen", "nl"),
                                     ("We could shape it ourselves", "en")]
    assert own.examples_negative == [("de eigenaar van het gebouw wilde niet verbouwen", "nl")]
    assert own.include == ["speaks of own choices"] and own.exclude == ["legal ownership"]
    assert cb.codes["ownership.collective"].parent == "ownership"
    nl = own.rules["nl"]
    assert [r.kind for r in nl] == ["terms", "phrase", "glob", "pattern", "proximity", "exclude"]
    core = nl[0]
    assert (core.id, core.code_id, core.lang, core.weight, core.negation) == (
        "ownership.nl.core", "ownership", "nl", 0.8, "forbid")
    assert core.params == {"terms": ("eigenaarschap", "eigenaar")}  # lower-cased
    assert nl[1].id == "ownership.nl.2" and nl[1].weight == 1.0 and nl[1].negation == "ignore"
    assert nl[3].params["patterns"] == [[{"LEMMA": "mogen"}, {"OP": "*", "IS_PUNCT": False},
                                         {"LOWER": "zelf"}]]
    assert nl[4].params == {"a": ("we", "wij", "team*"), "b": ("kiezen", "beslis*"),
                            "window": 6, "order": "ab"}
    assert nl[5].params == {"phrases": ("eigenaar van het gebouw",), "scope": "sentence"}
    # `no` is a YAML 1.1 boolean; as a term it means the word "no".
    assert own.rules["en"][0].params["terms"] == ("ownership", "no")
    assert [r.id for r in cb.rules("en")] == ["ownership.en.1"]


def test_settings_defaults(valid: Path) -> None:
    s = load_codebook(valid).settings
    assert s.default_lang == "nl" and s.languages == ("nl", "en")
    assert s.unit == "turn" and s.threshold == 0.5
    assert "Interviewster" in s.interviewer_labels and "Onderzoeker" in s.interviewer_labels
    assert {"niet", "geen", "nooit"} <= set(s.negation_cues["nl"])
    assert {"not", "n't", "never"} <= set(s.negation_cues["en"])


def test_settings_given(tmp_path: Path) -> None:
    block = ("settings:\n  default_lang: en\n  threshold: 0.7\n  unit: sentence\n"
             "  interviewer_labels: [INT]\n  negation_cues: {nl: [Niet]}\n")
    cb = load_codebook(write(tmp_path, codebook_text(block)))
    s = cb.settings
    assert (s.default_lang, s.threshold, s.unit, s.interviewer_labels) == ("en", 0.7, "sentence",
                                                                           ("INT",))
    assert s.negation_cues["nl"] == ("niet",)
    assert "not" in s.negation_cues["en"]  # untouched languages keep their defaults
    assert cb.codes["ownership"].examples_positive[0][1] == "en"  # default_lang for plain examples


def test_unknown_code_id_and_level(valid: Path) -> None:
    cb = load_codebook(valid)
    with pytest.raises(UsageError, match="unknown code id 'nope'"):
        cb.ancestors("nope")
    with pytest.raises(UsageError, match="unknown rollup level 'middle'"):
        cb.rollup_id("amo.ability", "middle")


# --- file-level errors ---------------------------------------------------------------

def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(CodebookError, match=r"nope\.yaml.*not found"):
        load_codebook(path)
    assert "not found" in validate_codebook(path)[0].message


def test_malformed_yaml_has_line(tmp_path: Path) -> None:
    probs = problems_of(tmp_path, "version: 1\ncodes:\n  - id: [unclosed\n  - x: y\n")
    assert len(probs) == 1
    assert probs[0].message.startswith("malformed YAML") and probs[0].line in (3, 4)


@pytest.mark.parametrize("text, message", [
    ("", "empty"),
    ("- a\n- b\n", "expected a mapping"),
    (b"version: 1\n\xff\xfe\n", "not UTF-8"),
    ("a: 1\n---\nb: 2\n", "malformed YAML"),
    ("version: 1\ncodes: []\n", "got an empty list"),
])
def test_document_level_problems(tmp_path: Path, text: str | bytes, message: str) -> None:
    with pytest.raises(CodebookError, match=message):
        load_codebook(write(tmp_path, text))


# --- schema problems: path, line and message ------------------------------------------

def _rules(rules_yaml: str) -> str:
    """A codebook whose ownership code has the given nl rules (indented list items)."""
    body = ("  - id: ownership\n    label: {nl: E, en: O}\n    definition: d\n"
            "    rules:\n      nl:\n" + textwrap.indent(textwrap.dedent(rules_yaml), "        "))
    return codebook_text(ownership=body)


RULE_LINE = HEADER.count("\n") + 1 + 5 + 1  # first line of the first rule


@pytest.mark.parametrize("rules, path, message", [
    ("- kind: terms\n  terms: []\n", "codes[0].rules.nl[0].terms", "non-empty list of terms"),
    ("- kind: terms\n  terms: [a b]\n", "codes[0].rules.nl[0].terms[0]", "use a phrase rule"),
    ("- kind: terms\n  terms: [eigen*]\n", "codes[0].rules.nl[0].terms[0]", "use a glob rule"),
    ("- kind: terms\n  terms: x\n", "codes[0].rules.nl[0].terms", "got 'x'"),
    ("- kind: terms\n  terms: [a]\n  weight: 0\n", "codes[0].rules.nl[0].weight", "out of range"),
    ("- kind: terms\n  terms: [a]\n  weight: 1.5\n", "codes[0].rules.nl[0].weight", "out of range"),
    ("- kind: terms\n  terms: [a]\n  weight: high\n", "codes[0].rules.nl[0].weight",
     "expected a number, got 'high'"),
    ("- kind: terms\n  terms: [a]\n  negation: maybe\n", "codes[0].rules.nl[0].negation",
     r"unknown negation mode 'maybe' \(allowed: ignore, forbid, require\)"),
    ("- kind: terms\n  terms: [a]\n  colour: red\n", "codes[0].rules.nl[0].colour",
     r"unknown key 'colour' \(allowed: id, kind, weight, negation, max_matches, terms\)"),
    ("- kind: wibble\n", "codes[0].rules.nl[0].kind", "unknown rule kind 'wibble'"),
    ("- terms: [a]\n", "codes[0].rules.nl[0]", "missing required key 'kind'"),
    ("- kind: glob\n  globs: [ok*, '***']\n", "codes[0].rules.nl[0].globs[1]", "only wildcards"),
    ("- kind: glob\n  globs: ['a[bc]']\n", "codes[0].rules.nl[0].globs[0]",
     r"only \* and \? are allowed"),
    ("- kind: glob\n  globs: ['a b*']\n", "codes[0].rules.nl[0].globs[0]", "matches one token"),
    ("- kind: phrase\n  phrases: ['zelf *']\n", "codes[0].rules.nl[0].phrases[0]", "only wildcards"),
    ("- kind: pattern\n  patterns: [[{FOO: x}]]\n", "codes[0].rules.nl[0].patterns[0]",
     "invalid Matcher pattern: .*FOO"),
    ("- kind: pattern\n  patterns: [[{OP: '%'}]]\n", "codes[0].rules.nl[0].patterns[0]",
     "invalid Matcher pattern"),
    ("- kind: pattern\n  patterns: [[]]\n", "codes[0].rules.nl[0].patterns[0]", "non-empty list"),
    ("- kind: proximity\n  a: [x]\n  b: [y]\n  window: 0\n", "codes[0].rules.nl[0].window",
     ">= 1"),
    ("- kind: proximity\n  a: [x]\n", "codes[0].rules.nl[0]", "missing required key 'b'"),
    ("- kind: proximity\n  a: [x]\n  b: [y]\n  order: ba\n", "codes[0].rules.nl[0].order",
     "unknown order 'ba'"),
    ("- kind: exclude\n  scope: match\n", "codes[0].rules.nl[0]", "needs at least one of"),
    ("- kind: exclude\n  terms: [x]\n  scope: doc\n", "codes[0].rules.nl[0].scope",
     "unknown scope 'doc'"),
    ("- kind: exclude\n  terms: [x]\n  weight: 0.5\n", "codes[0].rules.nl[0].weight",
     "unknown key 'weight'"),
    ("- id: Bad Id\n  kind: terms\n  terms: [x]\n", "codes[0].rules.nl[0].id", "bad rule id"),
])
def test_rule_problems(tmp_path: Path, rules: str, path: str, message: str) -> None:
    probs = problems_of(tmp_path, _rules(rules))
    hits = [p for p in probs if p.path == path]
    assert hits, [(p.path, p.message) for p in probs]
    assert any(__import__("re").search(message, p.message) for p in hits), hits
    assert all(p.line is not None and p.line >= RULE_LINE for p in hits)


def test_glob_problem_line_and_path(tmp_path: Path) -> None:
    text = _rules("- kind: terms\n  terms: [a]\n- kind: glob\n  globs:\n    - ok*\n    - '*'\n")
    probs = problems_of(tmp_path, text)
    assert [(p.path, p.line) for p in probs] == [("codes[0].rules.nl[1].globs[1]", RULE_LINE + 5)]
    assert f"codebook.yaml:{RULE_LINE + 5}: codes[0].rules.nl[1].globs[1]" in str(
        CodebookError("codebook.yaml", probs))


def test_duplicate_rule_ids(tmp_path: Path) -> None:
    probs = problems_of(tmp_path, _rules(
        "- id: r1\n  kind: terms\n  terms: [a]\n- id: r1\n  kind: terms\n  terms: [b]\n"))
    assert [(p.path, p.line) for p in probs] == [("codes[0].rules.nl[1].id", RULE_LINE + 3)]
    assert f"first defined on line {RULE_LINE}" in probs[0].message


def test_default_rule_id_collision(tmp_path: Path) -> None:
    probs = problems_of(tmp_path, _rules(
        "- kind: terms\n  terms: [a]\n- id: ownership.nl.1\n  kind: terms\n  terms: [b]\n"))
    assert len(probs) == 1 and "duplicate rule id 'ownership.nl.1'" in probs[0].message


@pytest.mark.parametrize("change, path, message", [
    (("    definition: The innovation", "    definitio: The innovation"), "codes[0]",
     "missing required key 'definition'"),
    (("    label: {nl: Eigenaarschap, en: Ownership}", "    label: {nl: Eigenaarschap}"),
     "codes[0].label", "missing required language 'en'"),
    (("    label: {nl: Eigenaarschap, en: Ownership}",
      "    label: {nl: Eigenaarschap, en: Ownership, de: E}"),
     "codes[0].label.de", "unknown language 'de'"),
    (("  - id: ownership\n", "  - id: Ownership!\n"), "codes[0].id", r"\[a-z\]\[a-z0-9_\]\*"),
    (("  - id: ownership\n", "  - id: own.ership\n"), "codes[0].id", "must not contain '.'"),
    (("      - id: ownership.collective", "      - id: collective"), "codes[0].children[0].id",
     "must start with its parent's id 'ownership.'"),
    (("    color: \"#E69F00\"", "    color: orange"), "codes[0].color", "hex colour"),
    (("    guid: 3f2b", "    guid: x3f2b"), "codes[0].guid", "not a UUID"),
    (("      en:\n", "      fr:\n"), "codes[0].rules.fr", "unknown language 'fr'"),
    (("    include: [\"speaks of own choices\"]", "    include: 5"), "codes[0].include",
     "expected a list of strings, got '5'"),
    (("  - id: ownership\n", "  - id: ownership\n    kind: mood\n"), "codes[0].kind",
     "unknown code kind 'mood'"),
    (("    examples:\n", "    examples:\n      neutral: [x]\n"), "codes[0].examples.neutral",
     r"unknown key 'neutral' \(allowed: positive, negative\)"),
    (("{text: \"We could shape it ourselves\", lang: en}", "{text: x, lang: de}"),
     "codes[0].examples.positive[1].lang", "unknown language 'de'"),
])
def test_code_problems(tmp_path: Path, change: tuple[str, str], path: str, message: str) -> None:
    old, new = change
    assert old in OWNERSHIP
    probs = problems_of(tmp_path, codebook_text(ownership=OWNERSHIP.replace(old, new, 1)))
    hits = [p for p in probs if p.path == path]
    assert hits, [(p.path, p.message) for p in probs]
    assert any(__import__("re").search(message, p.message) for p in hits), hits
    assert all(p.line is not None for p in hits)


@pytest.mark.parametrize("block, path, message", [
    ("settings:\n  threshold: 0\n", "settings.threshold", "out of range"),
    ("settings:\n  threshold: 1.01\n", "settings.threshold", "out of range"),
    ("settings:\n  languages: [nl, de]\n", "settings.languages[1]", "unknown language 'de'"),
    ("settings:\n  default_lang: fr\n", "settings.default_lang", "unknown language 'fr'"),
    ("settings:\n  languages: [nl]\n  default_lang: en\n", "settings.default_lang",
     "not in settings.languages"),
    ("settings:\n  unit: chapter\n", "settings.unit", "unknown unit 'chapter'"),
    ("settings:\n  colour: red\n", "settings.colour", "unknown setting 'colour'"),
    ("settings:\n  negation_cues: {de: [nicht]}\n", "settings.negation_cues.de",
     "unknown language 'de'"),
    ("settings: [a]\n", "settings", "expected a mapping"),
])
def test_settings_problems(tmp_path: Path, block: str, path: str, message: str) -> None:
    probs = problems_of(tmp_path, codebook_text(block))
    hits = [p for p in probs if p.path == path]
    assert hits and any(message in p.message for p in hits), probs
    assert hits[0].line is not None and 4 <= hits[0].line <= 4 + block.count("\n")


def test_languages_restrict_rules_and_labels(tmp_path: Path) -> None:
    probs = problems_of(tmp_path, codebook_text("settings:\n  languages: [nl]\n"))
    assert [p.path for p in probs] == ["codes[0].rules.en"]
    assert "not in settings.languages" in probs[0].message


def test_top_level_problems_and_required_codes(tmp_path: Path) -> None:
    text = "version: 2\nnmae: x\nname: x\nname: y\ncodes:\n" + OWNERSHIP
    probs = problems_of(tmp_path, text)
    by_path = {}
    for p in probs:
        by_path.setdefault(p.path, []).append(p)
    assert "unsupported schema version 2" in by_path["version"][0].message
    assert by_path["version"][0].line == 1
    assert "unknown key 'nmae' (did you mean 'name'? allowed: version, name, description, settings, vocab, codes)" in \
        by_path["nmae"][0].message
    assert "duplicate key 'name' (first on line 3)" in by_path["name"][0].message
    missing = sorted(p.message.split(" (")[0] for p in by_path["codes"])
    assert missing == sorted(f"missing required code {c!r}" for c in REQUIRED_CODES
                             if c != "ownership")
    assert all(p.line == 6 for p in by_path["codes"])  # where the list of codes starts


def test_duplicate_code_ids(tmp_path: Path) -> None:
    extra = "  - id: agency\n    label: {nl: A, en: A}\n    definition: again\n"
    probs = problems_of(tmp_path, codebook_text(extra=extra))
    assert len(probs) == 1
    first = codebook_text().splitlines().index("  - id: agency") + 1
    assert probs[0].path.endswith(".id") and f"first defined on line {first}" in probs[0].message


def test_all_problems_reported_at_once(tmp_path: Path) -> None:
    text = _rules("- kind: terms\n  terms: []\n- kind: glob\n  globs: ['*']\n"
                  "- kind: pattern\n  patterns: [[{FOO: 1}]]\n")
    text = text.replace("version: 1", "version: 1\nextra: true")
    probs = problems_of(tmp_path, text)
    assert len(probs) == 4
    assert [p.line for p in probs] == sorted(p.line for p in probs)


def test_type_problem_names_value_and_allowed(tmp_path: Path) -> None:
    probs = problems_of(tmp_path, _rules("- kind: proximity\n  a: [x]\n  b: [y]\n  window: 2.5\n"))
    assert probs[0].message == "expected an integer, got '2.5'"


def test_recursive_alias_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    text = codebook_text(extra="  - &loop\n    id: loop\n    label: {nl: L, en: L}\n"
                         "    definition: d\n    children: [*loop]\n")
    with pytest.raises(CodebookError):
        load_codebook(write(tmp_path, text))


# --- fuzzing: nothing but CodebookError ------------------------------------------------

@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def _must_fail_cleanly(path: Path) -> None:
    try:
        load_codebook(path)
    except CodebookError as exc:
        assert exc.problems and all(p.message for p in exc.problems)
        assert validate_codebook(path) == exc.problems


FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300))
def test_fuzz_text(fuzz_dir: Path, text: str) -> None:
    path = fuzz_dir / "text.yaml"
    path.write_text(text, encoding="utf-8")
    _must_fail_cleanly(path)


@FUZZ
@given(st.binary(max_size=300))
def test_fuzz_bytes(fuzz_dir: Path, data: bytes) -> None:
    path = fuzz_dir / "bytes.yaml"
    path.write_bytes(data)
    _must_fail_cleanly(path)


KEYS = ["version", "codes", "settings", "id", "label", "definition", "rules", "nl", "en",
        "kind", "terms", "phrases", "globs", "patterns", "a", "b", "window", "order", "scope",
        "weight", "negation", "children", "examples", "positive", "text", "lang", "LOWER",
        "OP", "threshold", "languages", "negation_cues", "color", "guid"]
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.floats(allow_nan=True),
                    st.sampled_from(["terms", "glob", "*", "a*", "[x", "nl", "amo", "#FFFFFF",
                                     "any", "", "proximity", "exclude", "pattern"]))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(KEYS), inner, max_size=5)),
    max_leaves=30)


@FUZZ
@given(st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=6))
def test_fuzz_structures(fuzz_dir: Path, doc: dict) -> None:
    path = fuzz_dir / "struct.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    _must_fail_cleanly(path)


def _mutated_codebook(path: Path, index: int, value: object) -> Path:
    """A valid codebook whose line ``index`` has its value replaced by ``value`` (as YAML)."""
    lines = OWNERSHIP.splitlines()
    head, sep, _ = lines[index].partition(": ")
    if sep:
        lines[index] = head + ": " + yaml.safe_dump(value, default_flow_style=True,
                                                    width=10_000).strip().replace("\n", " ")
    path.write_text(codebook_text(ownership="\n".join(lines) + "\n"), encoding="utf-8")
    return path


@FUZZ
@given(st.sampled_from(range(len(OWNERSHIP.splitlines()))), VALUES)
def test_fuzz_mutated_valid_codebook(fuzz_dir: Path, index: int, value: object) -> None:
    """Replace the value of one line of a valid codebook by a random YAML value."""
    path = _mutated_codebook(fuzz_dir / "mutated.yaml", index, value)
    try:
        load_codebook(path)
    except CodebookError as exc:
        assert exc.problems


def test_required_codes_can_be_waived_for_imported_codebooks(tmp_path):
    path = tmp_path / "imported.yaml"
    path.write_text("version: 1\ncodes:\n  - id: other\n    label: {nl: Ander, en: Other}\n"
                    "    definition: Something else.\n")
    with pytest.raises(CodebookError, match="missing required code 'agency'"):
        load_codebook(path)
    assert list(load_codebook(path, require_codes=False).codes) == ["other"]
    assert validate_codebook(path, require_codes=False) == []


# --- engine features: max_matches / count_per_rule, vocab, targeted vetoes, settings --------


def test_new_settings_defaults_and_given(tmp_path: Path, valid: Path) -> None:
    s = load_codebook(valid).settings
    assert (s.count_per_rule, s.negation_window, s.negation_scope, s.detect_lang,
            s.glob_lemmas) == (None, 3, "window", "csv", False)
    block = ("settings:\n  count_per_rule: 2\n  negation_window: 5\n  negation_scope: clause\n"
             "  detect_lang: always\n  glob_lemmas: true\n")
    s = load_codebook(write(tmp_path, codebook_text(block), "b.yaml")).settings
    assert (s.count_per_rule, s.negation_window, s.negation_scope, s.detect_lang,
            s.glob_lemmas) == (2, 5, "clause", "always", True)


@pytest.mark.parametrize("block, path, message", [
    ("settings:\n  count_per_rule: 0\n", "settings.count_per_rule", "must be >= 1"),
    ("settings:\n  count_per_rule: two\n", "settings.count_per_rule", "expected an integer"),
    ("settings:\n  negation_window: 0\n", "settings.negation_window", "must be >= 1 token"),
    ("settings:\n  negation_scope: sentence\n", "settings.negation_scope",
     "unknown negation scope 'sentence'"),
    ("settings:\n  detect_lang: sometimes\n", "settings.detect_lang",
     "unknown detect_lang mode 'sometimes'"),
    ("settings:\n  glob_lemmas: maybe\n", "settings.glob_lemmas", "expected true or false"),
])
def test_new_settings_problems(tmp_path: Path, block: str, path: str, message: str) -> None:
    probs = problems_of(tmp_path, codebook_text(block))
    hits = [p for p in probs if p.path == path]
    assert hits and any(message in p.message for p in hits), probs
    assert hits[0].line == 5


def test_max_matches_read_and_checked(tmp_path: Path) -> None:
    cb = load_codebook(write(tmp_path, _rules("- kind: terms\n  terms: [a]\n  max_matches: 2\n")))
    assert cb.codes["ownership"].rules["nl"][0].max_matches == 2
    assert load_codebook(write(tmp_path, codebook_text(), "c.yaml")).rules("nl")[0].max_matches is None
    probs = problems_of(tmp_path, _rules("- kind: terms\n  terms: [a]\n  max_matches: 0\n"))
    assert [(p.path, p.line) for p in probs] == [("codes[0].rules.nl[0].max_matches", RULE_LINE + 2)]
    assert "must be >= 1" in probs[0].message
    probs = problems_of(tmp_path, _rules("- kind: exclude\n  terms: [a]\n  max_matches: 1\n"))
    assert probs[0].path == "codes[0].rules.nl[0].max_matches"
    assert "unknown key 'max_matches'" in probs[0].message


VOCAB = """\
vocab:
  teachers:
    nl: [Leraar, leerkracht, "collega*", "vaste docent"]
    en: [teacher]
  only_nl: {nl: [school]}
"""


def test_vocab_expands_per_language(tmp_path: Path) -> None:
    body = ("  - id: ownership\n    label: {nl: E, en: O}\n    definition: d\n    rules:\n"
            "      nl:\n        - kind: terms\n          terms: [eigen, '@teachers']\n"
            "        - kind: proximity\n          a: ['@teachers', niet aan]\n"
            "          b: [kiezen]\n"
            "      en:\n        - kind: glob\n          globs: ['@teachers', 'own*']\n")
    cb = load_codebook(write(tmp_path, HEADER + VOCAB + "codes:\n" + body + REQUIRED))
    nl = cb.codes["ownership"].rules["nl"]
    assert nl[0].params["terms"] == ("eigen", "leraar", "leerkracht", "collega*", "vaste docent")
    assert nl[1].params["a"] == ("leraar", "leerkracht", "collega*", "vaste docent", "niet aan")
    assert cb.codes["ownership"].rules["en"][0].params["globs"] == ("teacher", "own*")
    assert cb.vocab["teachers"]["en"] == ("teacher",)


def test_vocab_problems_have_path_and_line(tmp_path: Path) -> None:
    body = ("  - id: ownership\n    label: {nl: E, en: O}\n    definition: d\n    rules:\n"
            "      nl:\n        - kind: terms\n          terms: ['@pupils']\n"
            "      en:\n        - kind: terms\n          terms: [a, '@only_nl']\n")
    text = HEADER + VOCAB + "  bad: {de: [x]}\n  worse: {nl: ['@teachers', '*']}\n" \
        + "codes:\n" + body + REQUIRED
    probs = {p.path: p for p in problems_of(tmp_path, text)}
    lines = text.splitlines()
    unknown = probs["codes[0].rules.nl[0].terms[0]"]
    assert "unknown vocabulary '@pupils'" in unknown.message
    assert "'@pupils'" in lines[unknown.line - 1]
    missing = probs["codes[0].rules.en[0].terms[1]"]
    assert "vocabulary '@only_nl' has no 'en' list" in missing.message
    assert "'@only_nl'" in lines[missing.line - 1]
    assert "unknown language 'de'" in probs["vocab.bad.de"].message
    assert "cannot refer to another" in probs["vocab.worse.nl[0]"].message
    assert "only wildcards" in probs["vocab.worse.nl[1]"].message
    assert probs["vocab.worse.nl[1]"].line == 10


def test_proximity_items_may_be_phrases(tmp_path: Path) -> None:
    cb = load_codebook(write(tmp_path, _rules(
        "- kind: proximity\n  a: ['niet aan', 'iets ander*']\n  b: [beginnen]\n")))
    assert cb.rules("nl")[0].params["a"] == ("niet aan", "iets ander*")
    probs = problems_of(tmp_path, _rules("- kind: proximity\n  a: ['niet *']\n  b: [x]\n"))
    assert probs[0].path == "codes[0].rules.nl[0].a[0]" and "only wildcards" in probs[0].message


def test_exclude_rule_targets(tmp_path: Path) -> None:
    ok = _rules("- id: own.a\n  kind: terms\n  terms: [a]\n- id: own.b\n  kind: terms\n"
                "  terms: [b]\n- kind: exclude\n  terms: [c]\n  rules: [own.a]\n")
    cb = load_codebook(write(tmp_path, ok))
    assert cb.rules("nl")[2].params["rules"] == ("own.a",)
    bad = _rules("- id: own.a\n  kind: terms\n  terms: [a]\n- id: own.x\n  kind: exclude\n"
                 "  terms: [c]\n  rules: [own.a, nope, agency.nl.1, own.x]\n")
    bad = bad.replace("    definition: Acting on one's own initiative.\n",
                      "    definition: d\n    rules:\n      nl:\n        - kind: terms\n"
                      "          terms: [zelf]\n", 1)
    probs = {p.path: p for p in problems_of(tmp_path, bad)}
    base = "codes[0].rules.nl[1].rules"
    assert "unknown rule id 'nope'" in probs[f"{base}[1]"].message
    assert "belongs to code 'agency', not 'ownership'" in probs[f"{base}[2]"].message
    assert "is itself an exclude rule" in probs[f"{base}[3]"].message
    assert f"{base}[0]" not in probs
    assert probs[f"{base}[1]"].line == RULE_LINE + 6
    probs = problems_of(tmp_path, _rules("- kind: exclude\n  terms: [c]\n  rules: []\n"))
    assert probs[0].path == "codes[0].rules.nl[0].rules" and "empty list" in probs[0].message


def test_required_codes_setting_waives_or_changes_the_study_codes(tmp_path):
    path = tmp_path / "other_study.yaml"
    body = ("codes:\n  - id: other\n    label: {nl: Ander, en: Other}\n"
            "    definition: Something else.\n")
    path.write_text("version: 1\nsettings: {required_codes: []}\n" + body)
    assert list(load_codebook(path).codes) == ["other"]
    path.write_text("version: 1\nsettings: {required_codes: [other, wellbeing]}\n" + body)
    with pytest.raises(CodebookError, match=r"missing required code 'wellbeing' \(settings\.required_codes"):
        load_codebook(path)


def test_tab_indentation_and_misspelt_keys_get_plain_advice(tmp_path):
    path = tmp_path / "tabs.yaml"
    path.write_text("version: 1\ncodes:\n\t- id: agency\n")
    with pytest.raises(CodebookError, match=r"tabs.yaml:3: .*indented with a tab; YAML needs spaces"):
        load_codebook(path)
    # Every tabbed line is reported, and so is every other problem of the file.
    path.write_text("version: 1\nsettings: {required_codes: []}\ncodes:\n  - id: other\n"
                    "\tlabel: {nl: A, en: A}\n    definition: x\n    colour: red\n"
                    "  - id: second\n\t\tlabel: {nl: B, en: B}\n    definiton: y\n")
    problems = validate_codebook(path)
    tabs = [p.line for p in problems if "indented with a tab" in p.message]
    assert tabs == [5, 9]
    rest = " | ".join(p.message for p in problems if p.line not in tabs)
    assert "unknown key 'colour'" in rest and "unknown key 'definiton'" in rest
    # A file that does not parse with any tab width: the tab lines only.
    path.write_text("version: 1\ncodes:\n\t- id: [unclosed\n")
    assert [p.line for p in validate_codebook(path)] == [3]
    path.write_text("version: 1\nsettings: {required_codes: []}\ncodes:\n  - id: other\n"
                    "    label: {nl: A, en: A}\n    definiton: x\n")
    with pytest.raises(CodebookError, match=r"unknown key 'definiton' \(did you mean 'definition'\?"):
        load_codebook(path)


# --- libyaml composes what PyYAML composes ----------------------------------------------

def _both(monkeypatch: pytest.MonkeyPatch, path: Path) -> tuple[object, object]:
    """``validate_codebook`` and the loaded codes, through libyaml and through PyYAML only."""
    import pipeline.codebook.loader as loader

    def outcome() -> object:
        problems = validate_codebook(path)
        book = None if problems else load_codebook(path)
        return problems, (None if book is None else (book.hash, repr(book.codes),
                                                      repr(book.settings)))

    fast = outcome()
    with monkeypatch.context() as m:
        m.setattr(loader.yaml, "CSafeLoader", None)
        slow = outcome()
    return fast, slow


@pytest.mark.skipif(getattr(yaml, "CSafeLoader", None) is None, reason="no libyaml")
def test_libyaml_and_pyyaml_give_the_same_codebook_and_problems(tmp_path, monkeypatch, valid):
    import pipeline.codebook.loader as loader

    texts = [valid.read_text(encoding="utf-8"), Path("codebook.yaml").read_text(encoding="utf-8"),
             "version: 1\ncodes: [\n", "a: b: c\n", "version: 1\n\tcodes: []\n",
             "version: 1\r\ncodes: []\r\n", "version: [" * 400 + "]" * 400 + "\n",
             "x: \x07\n", codebook_text(extra="  - id: bad\n    label: {nl: L}\n"),
             codebook_text(extra="  - &loop\n    id: loop\n    label: {nl: L, en: L}\n"
                           "    definition: d\n    children: [*loop]\n")]
    for k, text in enumerate(texts):
        path = write(tmp_path, text, name=f"c{k}.yaml")
        fast, slow = _both(monkeypatch, path)
        assert fast == slow, k
    assert loader._depth(yaml.compose("a: [[1]]", Loader=yaml.SafeLoader)) == 4


@FUZZ
@given(st.sampled_from(range(len(OWNERSHIP.splitlines()))), VALUES)
def test_fuzz_libyaml_and_pyyaml_agree(fuzz_dir: Path, index: int, value: object) -> None:
    path = _mutated_codebook(fuzz_dir / "agree.yaml", index, value)
    with pytest.MonkeyPatch.context() as m:
        fast, slow = _both(m, path)
    assert fast == slow
