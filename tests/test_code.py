"""Tests of pipeline.code: every rule kind, offsets, aggregation, rollup, glob index."""
from __future__ import annotations

import fnmatch
import random
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from pipeline import columns as C
from pipeline.code import (
    GlobIndex, aggregate_matches, code_segments, compile_rules, match_segments, rollup,
)
from pipeline.codebook import Codebook, load_codebook
from pipeline.errors import UsageError
from pipeline.nlp import parse_segments

REQUIRED = """\
  - id: agency
    label: {nl: Agency, en: Agency}
    definition: d
    rules:
%(agency)s
  - id: alignment
    label: {nl: Afstemming, en: Alignment}
    definition: d
  - id: shared_leadership
    label: {nl: Gedeeld leiderschap, en: Shared leadership}
    definition: d
  - id: amo
    label: {nl: AMO, en: AMO}
    definition: d
    children:
      - id: amo.ability
        label: {nl: Kunnen, en: Ability}
        definition: d
      - id: amo.motivation
        label: {nl: Willen, en: Motivation}
        definition: d
        rules:
%(motivation)s
      - id: amo.opportunity
        label: {nl: Mogen, en: Opportunity}
        definition: d
  - id: ownership
    label: {nl: Eigenaarschap, en: Ownership}
    definition: d
    rules:
%(ownership)s
    children:
      - id: ownership.collective
        label: {nl: Collectief, en: Collective}
        definition: d
        rules:
%(collective)s
"""


def _block(rules: dict[str, str] | str | None, indent: int) -> str:
    """Render {lang: rules yaml} as the body of a `rules:` mapping."""
    if not rules:
        rules = {"nl": "- kind: terms\n  terms: [zzzneverzzz]\n"}
    if isinstance(rules, str):
        rules = {"nl": rules}
    out = ""
    for lang, body in rules.items():
        out += " " * indent + f"{lang}:\n" + textwrap.indent(textwrap.dedent(body), " " * (indent + 2))
    return out.rstrip("\n")


def make_codebook(tmp_path: Path, ownership=None, collective=None, agency=None,
                  motivation=None, settings: str = "") -> Codebook:
    text = "version: 1\nname: t\n" + settings + "codes:\n" + REQUIRED % {
        "ownership": _block(ownership, 6), "collective": _block(collective, 10),
        "agency": _block(agency, 6), "motivation": _block(motivation, 10)}
    path = tmp_path / "codebook.yaml"
    path.write_text(text, encoding="utf-8")
    return load_codebook(path)


def make_segments(texts: list[str], langs: list[str] | None = None,
                  coded: list[bool] | None = None, doc_id: str = "d") -> tuple[pd.DataFrame, str]:
    """Segments of one document whose text is the texts joined by a speaker prefix."""
    doc, rows = "", []
    for k, text in enumerate(texts):
        doc += f"R{k}: "
        rows.append({C.SEGMENT_ID: f"{doc_id}:{k}", C.DOC_ID: doc_id, C.UNIT_INDEX: k,
                     C.START: len(doc), C.END: len(doc) + len(text),
                     C.CODED: True if coded is None else coded[k],
                     C.LANG: "nl" if langs is None else langs[k], C.TEXT: text})
        doc += text + "\n"
    return pd.DataFrame(rows), doc


def run(cb: Codebook, texts: list[str], **kw) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    segs, doc = make_segments(texts, **kw)
    matches, codings = code_segments(segs, parse_segments(segs), cb)
    for row in matches.itertuples(index=False):  # offsets index the document text
        if "…" not in row.evidence:
            assert doc[row.start:row.end] == row.evidence
    return matches, codings, doc


def own(matches: pd.DataFrame, code: str = "ownership") -> list[str]:
    return matches[matches[C.CODE_ID] == code][C.EVIDENCE].tolist()


# --- rule kinds -------------------------------------------------------------------------

def test_terms_match_lemma_or_lower(tmp_path: Path) -> None:
    cb = make_codebook(tmp_path, ownership="- kind: terms\n  terms: [leerkracht, mochten]\n")
    matches, codings, doc = run(cb, ["De leerkrachten mochten het zelf invullen.",
                                     "Leerkracht zijn is mooi. Mogen wij dat?"])
    assert own(matches) == ["leerkrachten", "mochten", "Leerkracht"]  # lemma, lower, lower
    first = matches.iloc[0]
    assert doc[first[C.START]:first[C.END]] == "leerkrachten"
    assert list(matches.columns) == C.MATCH_COLUMNS
    assert codings[C.SEGMENT_ID].tolist() == ["d:0", "d:1"]


def test_globs_prefix_suffix_infix_general(tmp_path: Path) -> None:
    cb = make_codebook(tmp_path, ownership=(
        "- kind: glob\n  globs: ['eigenaar*', '*leiderschap', '*innov*', 'l??rkracht*']\n"))
    matches, _, _ = run(cb, ["Eigenaarschap en schoolleiderschap.",
                             "Die onderwijsinnovaties en leerkrachten, niet leiders."])
    assert own(matches) == ["Eigenaarschap", "schoolleiderschap", "onderwijsinnovaties",
                            "leerkrachten"]


def test_phrases_with_lemma_and_glob_tokens(tmp_path: Path) -> None:
    cb = make_codebook(tmp_path, ownership=(
        "- kind: phrase\n  phrases: ['zelf invullen', 'het zelf invullen', 'mogen kiezen',"
        " 'door de strot geduw*']\n"))
    matches, _, _ = run(cb, ["We mochten het zelf invullen.",
                             "Het werd door de strot geduwd, we mochten kiezen noch zelf iets."])
    # overlapping phrases of one rule count once (the longest); "mochten kiezen" via lemma
    assert own(matches) == ["het zelf invullen", "door de strot geduwd", "mochten kiezen"]


def test_pattern_rule(tmp_path: Path) -> None:
    cb = make_codebook(tmp_path, ownership=(
        "- kind: pattern\n  patterns: [[{LEMMA: mogen}, {OP: '*', IS_PUNCT: false}, {LOWER: zelf}]]\n"))
    matches, _, _ = run(cb, ["We mochten het zelf invullen.", "We mochten. Zelf niet."])
    assert own(matches) == ["mochten het zelf"]


@pytest.mark.parametrize("window, order, text, expected", [
    (3, "any", "Wij mochten zelf beslissen.", ["Wij mochten zelf beslissen"]),
    (2, "any", "Wij mochten zelf beslissen.", []),
    (3, "ab", "Beslissen mochten wij niet.", []),
    (3, "any", "Beslissen mochten wij niet.", ["Beslissen mochten wij"]),
    (5, "any", "Het team besliste.", ["team besliste"]),
])
def test_proximity_window_and_order(tmp_path: Path, window: int, order: str, text: str,
                                    expected: list[str]) -> None:
    cb = make_codebook(tmp_path, ownership=(
        f"- kind: proximity\n  a: [wij, 'team*']\n  b: ['beslis*']\n  window: {window}\n"
        f"  order: {order}\n"))
    matches, _, _ = run(cb, [text])
    assert own(matches) == expected


def test_proximity_evidence_truncated(tmp_path: Path) -> None:
    cb = make_codebook(tmp_path, ownership=(
        "- kind: proximity\n  a: [wij]\n  b: [beslissen]\n  window: 3\n"))
    long_word = "buitengewoonlangewoordenvoorbeeldtekstomdeevidentieteverlengenxyz"
    matches, _, doc = run(cb, [f"Wij {long_word} {long_word} beslissen."])
    ev = matches.iloc[0][C.EVIDENCE]
    assert len(ev) == 80 and ev.endswith("…") and ev.startswith("Wij ")
    row = matches.iloc[0]
    assert doc[row[C.START]:row[C.END]].endswith("beslissen")


EXCL = "- kind: terms\n  terms: [eigenaar]\n- kind: exclude\n  phrases: ['eigenaar van het gebouw']\n"


@pytest.mark.parametrize("scope, expected", [
    ("match", ["eigenaar", "eigenaar"]),
    ("sentence", ["eigenaar"]),
    ("segment", []),
])
def test_exclusion_scopes(tmp_path: Path, scope: str, expected: list[str]) -> None:
    cb = make_codebook(tmp_path, ownership=EXCL + f"  scope: {scope}\n",
                       collective="- kind: terms\n  terms: [gebouw]\n")
    text = ("De eigenaar van het gebouw was er, en ik eigenaar ook. "
            "Ik ben eigenaar van de vernieuwing.")
    matches, _, _ = run(cb, [text])
    assert own(matches) == expected
    assert own(matches, "ownership.collective") == ["gebouw"]  # vetoes only their own code


def test_exclusion_scope_match_keeps_other_uses(tmp_path: Path) -> None:
    cb = make_codebook(tmp_path, ownership=EXCL)
    matches, codings, _ = run(cb, ["De eigenaar van het gebouw wilde niet verbouwen.",
                                   "Wij voelen ons eigenaar van de vernieuwing."])
    assert matches[C.SEGMENT_ID].tolist() == ["d:1"]
    assert codings[C.SEGMENT_ID].tolist() == ["d:1"]


@pytest.mark.parametrize("mode, text, expected", [
    ("forbid", "Ik voel me geen eigenaar.", []),
    ("forbid", "Ik voel me eigenaar.", ["eigenaar"]),
    ("forbid", "Niet dus. Eigenaar ben ik wel.", ["Eigenaar"]),      # other sentence
    ("forbid", "Niet dat ik me toen eigenaar voelde.", ["eigenaar"]),  # 4 tokens back
    ("require", "Ik voel me geen eigenaar.", ["eigenaar"]),
    ("require", "Ik voel me eigenaar.", []),
])
def test_negation(tmp_path: Path, mode: str, text: str, expected: list[str]) -> None:
    cb = make_codebook(tmp_path, ownership=f"- kind: terms\n  terms: [eigenaar]\n  negation: {mode}\n")
    matches, _, _ = run(cb, [text])
    assert own(matches) == expected


def test_english_negation_uses_lemma_of_nt(tmp_path: Path) -> None:
    cb = make_codebook(tmp_path, ownership={
        "nl": "- kind: terms\n  terms: [eigenaar]\n",
        "en": "- kind: terms\n  terms: [choose]\n  negation: forbid\n"})
    matches, _, _ = run(cb, ["We didn't choose.", "We could choose."], langs=["en", "en"])
    assert matches[C.SEGMENT_ID].tolist() == ["d:1"]


# --- segments, languages, aggregation -----------------------------------------------------

def test_interviewer_segments_are_not_matched(tmp_path: Path) -> None:
    cb = make_codebook(tmp_path, ownership="- kind: terms\n  terms: [eigenaar]\n")
    matches, codings, _ = run(cb, ["Voel je je eigenaar?", "Ja, eigenaar."], coded=[False, True])
    assert matches[C.SEGMENT_ID].tolist() == ["d:1"]
    assert codings[C.SEGMENT_ID].tolist() == ["d:1"]


def test_multiple_languages(tmp_path: Path) -> None:
    cb = make_codebook(tmp_path, ownership={"nl": "- kind: terms\n  terms: [eigenaar]\n",
                                            "en": "- kind: terms\n  terms: [ownership, owner]\n"},
                       agency={"nl": "- kind: terms\n  terms: [initiatief]\n"})
    matches, codings, _ = run(cb, ["Ik ben eigenaar, met initiatief.", "We feel ownership.",
                                   "The owners took initiative.", "Ownership"],
                              langs=["nl", "en", "en", "nl"])
    got = list(zip(matches[C.SEGMENT_ID], matches[C.CODE_ID], matches[C.EVIDENCE], strict=True))
    # agency has no English rules: "initiative" is not coded; "Ownership" in a nl segment neither
    assert got == [("d:0", "ownership", "eigenaar"), ("d:0", "agency", "initiatief"),
                   ("d:1", "ownership", "ownership"), ("d:2", "ownership", "owners")]
    assert codings[[C.SEGMENT_ID, C.CODE_ID]].values.tolist() == [
        ["d:0", "agency"], ["d:0", "ownership"], ["d:1", "ownership"], ["d:2", "ownership"]]


def test_match_segments_skips_other_languages(tmp_path: Path) -> None:
    cb = make_codebook(tmp_path, ownership="- kind: terms\n  terms: [eigenaar]\n")
    segs, _ = make_segments(["eigenaar", "eigenaar"], langs=["nl", "en"])
    out = match_segments(segs, parse_segments(segs), compile_rules(cb, "nl"))
    assert out[C.SEGMENT_ID].tolist() == ["d:0"]
    with pytest.raises(UsageError, match="not aligned"):
        match_segments(segs, [], compile_rules(cb, "nl"))
    with pytest.raises(UsageError, match="unsupported language 'fr'"):
        compile_rules(cb, "fr")


def test_threshold_with_fractional_weights(tmp_path: Path) -> None:
    cb = make_codebook(tmp_path, ownership=(
        "- id: own.weak\n  kind: terms\n  terms: [eigenaar]\n  weight: 0.3\n"
        "- id: own.mid\n  kind: terms\n  terms: [zelf]\n  weight: 0.4\n"))
    matches, codings, _ = run(cb, ["Eigenaar.", "Eigenaar en nog eens eigenaar.",
                                   "Zelf eigenaar."])
    assert len(matches) == 5
    assert codings[C.SEGMENT_ID].tolist() == ["d:1", "d:2"]   # 0.3 alone is below 0.5
    one, two = codings.itertuples(index=False)
    assert one.score == pytest.approx(1 - 0.7 * 0.7) and one.n_matches == 2
    assert (one.rule, one.rules, one.evidence) == ("rule:own.weak", "own.weak", "Eigenaar")
    assert two.score == pytest.approx(1 - 0.7 * 0.6)
    assert (two.rule, two.rules, two.evidence) == ("rule:own.mid", "own.mid;own.weak", "Zelf")
    assert two.method == "rules"
    assert list(codings.columns) == C.CODING_COLUMNS


def test_aggregate_matches_directly() -> None:
    rows = [("b:0", "b", "x", "r2", "late", 50, 54, 0.5),
            ("a:1", "a", "y", "r1", "one", 30, 33, 1.0),
            ("a:0", "a", "y", "r1", "two", 5, 8, 0.5),
            ("a:0", "a", "y", "r1", "two", 5, 8, 0.5),      # identical match counts once
            ("a:0", "a", "x", "r3", "thr", 1, 4, 0.5),
            ("a:0", "a", "x", "r2", "fou", 0, 3, 0.5)]
    m = pd.DataFrame(rows, columns=C.MATCH_COLUMNS)
    out = aggregate_matches(m, threshold=0.5)
    assert out[[C.SEGMENT_ID, C.CODE_ID]].values.tolist() == [
        ["a:0", "x"], ["a:0", "y"], ["a:1", "y"], ["b:0", "x"]]
    first = out.iloc[0]
    assert (first[C.SCORE], first[C.RULE], first[C.RULES], first[C.START]) == (
        0.75, "rule:r2", "r2;r3", 0)
    assert out.iloc[1][C.N_MATCHES] == 1
    assert aggregate_matches(m, threshold=0.6)[C.SEGMENT_ID].tolist() == ["a:0", "a:1"]
    empty = aggregate_matches(m.iloc[:0], threshold=0.5)
    assert list(empty.columns) == C.CODING_COLUMNS and empty.empty


def test_rollup_top_and_all(tmp_path: Path) -> None:
    cb = make_codebook(tmp_path, ownership="- kind: terms\n  terms: [eigenaar]\n  weight: 0.6\n",
                       collective="- kind: terms\n  terms: [samen]\n",
                       motivation="- kind: terms\n  terms: [gemotiveerd]\n")
    _, codings, _ = run(cb, ["Samen eigenaar.", "Gemotiveerd.", "Eigenaar."])
    top = rollup(codings, cb, "top")
    assert top[[C.SEGMENT_ID, C.CODE_ID]].values.tolist() == [
        ["d:0", "ownership"], ["d:1", "amo"], ["d:2", "ownership"]]
    seg0 = top.iloc[0]
    assert seg0[C.SCORE] == 1.0 and seg0[C.EVIDENCE] == "Samen"  # best row: the sub-code
    assert seg0[C.RULES] == "ownership.collective.nl.1;ownership.nl.1" and seg0[C.N_MATCHES] == 2
    assert top.iloc[2][C.SCORE] == pytest.approx(0.6)
    full = rollup(codings, cb, "all")
    assert full[[C.SEGMENT_ID, C.CODE_ID]].values.tolist() == [
        ["d:0", "ownership"], ["d:0", "ownership.collective"], ["d:1", "amo"],
        ["d:1", "amo.motivation"], ["d:2", "ownership"]]
    with pytest.raises(UsageError, match="unknown rollup level"):
        rollup(codings, cb, "mid")
    with pytest.raises(UsageError, match="unknown code id 'ghost'"):
        rollup(codings.assign(**{C.CODE_ID: "ghost"}), cb)
    assert rollup(codings.iloc[:0], cb).empty


def test_no_matches_gives_typed_empty_tables(tmp_path: Path) -> None:
    cb = make_codebook(tmp_path)
    matches, codings, _ = run(cb, ["Niets te zien."])
    assert matches.empty and list(matches.columns) == C.MATCH_COLUMNS
    assert codings.empty and list(codings.columns) == C.CODING_COLUMNS
    assert matches[C.START].dtype == "int64" and codings[C.SCORE].dtype == "float64"


# --- glob index ------------------------------------------------------------------------------

def test_glob_index_agrees_with_fnmatch_on_5000_globs() -> None:
    rng = random.Random(7)
    letters = "abcdeilnorst"

    def word(n: int) -> str:
        return "".join(rng.choice(letters) for _ in range(n))

    shapes = [lambda: word(rng.randint(2, 5)) + "*", lambda: "*" + word(rng.randint(2, 5)),
              lambda: "*" + word(rng.randint(2, 4)) + "*", lambda: word(3),
              lambda: word(2) + "?" + word(2) + "*", lambda: "*" + word(2) + "*" + word(2),
              lambda: word(1) + "*" + word(2)]
    globs = list(dict.fromkeys(rng.choice(shapes)() for _ in range(5000)))
    index = GlobIndex(globs)
    assert len(index) == len(globs)
    # the bulk sits in hash tables; only the irregular shapes need their regex
    assert sum(map(len, index.general.values())) < len(globs) // 2
    words = [word(rng.randint(3, 14)) for _ in range(300)] + ["schoolleiderschap", "a"]
    n_hits = 0
    for w in words:
        expected = {g for g in globs if fnmatch.fnmatchcase(w, g)}
        assert index.match(w) == expected, w
        assert index.match(w) == expected  # cached answer is the same
        n_hits += len(expected)
    assert n_hits > 100  # the sample really exercises matches


def test_glob_index_shapes() -> None:
    index = GlobIndex(["eigenaar*", "*leiderschap", "*innov*", "l??rkracht", "te*m*", "exact"])
    assert index.match("eigenaar") == {"eigenaar*"}
    assert index.match("eigenaarschap") == {"eigenaar*"}
    assert index.match("schoolleiderschap") == {"*leiderschap"}
    assert index.match("innovatie") == {"*innov*"}
    assert index.match("leerkracht") == {"l??rkracht"}
    assert index.match("leerkrachten") == frozenset()
    assert index.match("teamleden") == {"te*m*"}
    assert index.match("exact") == {"exact"} and index.match("exacte") == frozenset()
    with pytest.raises(ValueError, match="no literal"):
        GlobIndex(["*?*"])


def test_compiled_rules_use_one_trie_and_one_matcher(tmp_path: Path) -> None:
    cb = make_codebook(tmp_path, ownership=(
        "- kind: terms\n  terms: [eigenaar]\n- kind: glob\n  globs: ['*schap']\n"
        "- kind: pattern\n  patterns: [[{LOWER: zelf}]]\n- kind: proximity\n  a: [wij]\n"
        "  b: [kiezen]\n"), agency="- kind: pattern\n  patterns: [[{LOWER: initiatief}]]\n")
    compiled = compile_rules(cb, "nl")
    kinds = [r.kind for r in compiled.rules if r.code_id == "ownership"]
    assert kinds == ["terms", "glob", "pattern", "proximity"]
    assert len(compiled.channels) == len(compiled.rules) + 1  # proximity has 2 sides
    assert len(compiled.matcher) == 2
    assert len(compiled.trie.globs) == 1
    empty = compile_rules(cb, "en")
    assert empty.rules == [] and empty.matcher is None


# --- max_matches / count_per_rule, vocab, multi-word proximity, targeted vetoes, lemma globs --

def test_max_matches_keeps_longest_then_earliest(tmp_path: Path) -> None:
    rule = ("- id: own.p\n  kind: phrase\n  phrases: [zelf, zelf kiezen]\n  weight: 0.5\n"
            "  max_matches: 2\n")
    cb = make_codebook(tmp_path, ownership=rule)
    matches, codings, _ = run(cb, ["Zelf, zelf, en toen zelf kiezen, zelf."])
    assert own(matches) == ["Zelf", "zelf kiezen"]  # the longest, then the earliest
    assert codings[C.N_MATCHES].tolist() == [2]
    assert codings[C.SCORE].tolist() == pytest.approx([0.75])


def test_count_per_rule_default_and_rule_override(tmp_path: Path) -> None:
    settings = "settings:\n  count_per_rule: 1\n"
    cb = make_codebook(tmp_path, settings=settings, ownership=(
        "- id: own.t\n  kind: terms\n  terms: [zelf]\n  weight: 0.3\n"
        "- id: own.u\n  kind: terms\n  terms: [samen]\n  weight: 0.3\n  max_matches: 3\n"))
    matches, _, _ = run(cb, ["zelf zelf zelf samen samen samen samen"])
    assert matches[C.RULE_ID].tolist() == ["own.t", "own.u", "own.u", "own.u"]
    unlimited = make_codebook(tmp_path, ownership="- kind: terms\n  terms: [zelf]\n")
    assert len(run(unlimited, ["zelf zelf zelf"])[0]) == 3  # absent: today's behaviour


def test_vocab_items_in_every_list_kind(tmp_path: Path) -> None:
    text = ("version: 1\nname: t\nvocab:\n  teachers:\n    nl: [leraar, 'collega*', vaste docent]\n"
            "    en: [teacher]\ncodes:\n")
    body = REQUIRED % {
        "ownership": _block({"nl": "- kind: terms\n  terms: ['@teachers']\n",
                             "en": "- kind: glob\n  globs: ['@teachers']\n"}, 6),
        "collective": _block("- kind: proximity\n  a: ['@teachers']\n  b: [samen]\n", 10),
        "agency": _block(None, 6), "motivation": _block(None, 10)}
    path = tmp_path / "v.yaml"
    path.write_text(text + body, encoding="utf-8")
    cb = load_codebook(path)
    matches, _, _ = run(cb, ["De leraar en collega's, de vaste docent werkt samen.",
                             "Our teachers agreed."], langs=["nl", "en"])
    assert own(matches) == ["leraar", "collega's", "vaste docent", "teachers"]
    assert own(matches, "ownership.collective") == ["vaste docent werkt samen"]


@pytest.mark.parametrize("window, hit", [(3, True), (2, False)])
def test_proximity_phrase_items_nearest_edges(tmp_path: Path, window: int, hit: bool) -> None:
    cb = make_codebook(tmp_path, ownership=(
        f"- kind: proximity\n  a: ['iets ander*']\n  b: ['niet aan', 'begin*']\n"
        f"  window: {window}\n"))
    matches, _, _ = run(cb, ["We wilden iets anders, dus niet aan beginnen."])
    # "anders" -> "niet" (over ", dus"): 3 tokens edge to edge; start to start it is 4
    assert own(matches) == (["iets anders, dus niet aan"] if hit else [])


def test_targeted_exclude_vetoes_only_its_rules(tmp_path: Path) -> None:
    cb = make_codebook(tmp_path, ownership=(
        "- id: own.a\n  kind: terms\n  terms: [eigenaar]\n"
        "- id: own.b\n  kind: glob\n  globs: ['eigenaar*']\n"
        "- kind: exclude\n  phrases: [eigenaar van het gebouw]\n  rules: [own.a]\n"))
    matches, _, _ = run(cb, ["De eigenaar van het gebouw."])
    assert matches[C.RULE_ID].tolist() == ["own.b"]


def test_glob_lemmas_setting(tmp_path: Path) -> None:
    rule = "- kind: glob\n  globs: ['mog*', 'mocht']\n"
    plain = make_codebook(tmp_path, ownership=rule)
    assert own(run(plain, ["Wij mochten het. Hij mocht."])[0]) == ["mocht"]
    cb = make_codebook(tmp_path, ownership=rule, settings="settings:\n  glob_lemmas: true\n")
    # "mochten": lemma "mogen" matches mog*; "mocht" matches on its form (once)
    assert own(run(cb, ["Wij mochten het. Hij mocht."])[0]) == ["mochten", "mocht"]


def test_negation_window_setting(tmp_path: Path) -> None:
    rule = "- kind: terms\n  terms: [zelf]\n  negation: forbid\n"
    text = ["Niet dat wij het zelf deden."]  # cue 4 tokens before the match
    assert own(run(make_codebook(tmp_path, ownership=rule), text)[0]) == ["zelf"]
    cb = make_codebook(tmp_path, ownership=rule, settings="settings:\n  negation_window: 4\n")
    assert own(run(cb, text)[0]) == []


def test_negation_scope_clause(tmp_path: Path) -> None:
    rule = "- kind: terms\n  terms: [ruimte]\n  negation: forbid\n"
    texts = ["Ik denk dat we de ruimte van de directie nooit gekregen hebben.",
             "Niet echt, maar we kregen de ruimte.",
             "We kregen geen tijd, wel de ruimte."]
    window = make_codebook(tmp_path, ownership=rule)
    assert own(run(window, texts)[0]) == ["ruimte", "ruimte", "ruimte"]
    clause = make_codebook(tmp_path, ownership=rule,
                           settings="settings:\n  negation_scope: clause\n")
    # verb-final "nooit" is in the match's clause; "niet" and "geen" are in other clauses
    assert own(run(clause, texts)[0]) == ["ruimte", "ruimte"]
    required = make_codebook(tmp_path, ownership=rule.replace("forbid", "require"),
                             settings="settings:\n  negation_scope: clause\n")
    assert own(run(required, texts)[0]) == ["ruimte"]


def test_packed_keys_sort_and_compare_as_the_rows():
    import numpy as np

    from pipeline.code.combine import pack_keys

    rng = np.random.default_rng(1)
    keys = [rng.integers(-5, 5, 500), rng.integers(0, 3, 500), rng.integers(10, 900, 500)]
    packed = pack_keys(keys)
    assert np.array_equal(np.argsort(packed, kind="stable"), np.lexsort(keys[::-1]))
    rows = list(zip(*(k.tolist() for k in keys)))
    assert len(set(packed.tolist())) == len(set(rows))
    assert pack_keys([np.array([0, 1 << 40]), np.array([0, 1 << 30])]) is None  # too wide
    assert len(pack_keys([np.zeros(0, dtype=np.int64)])) == 0


def test_duplicates_and_score_order_are_the_pandas_ones():
    import numpy as np
    import pandas as pd

    from pipeline.code.aggregate import _duplicated, _score_order

    rng = np.random.default_rng(2)
    n = 2000
    seg, code, rule = (rng.integers(0, m, n) for m in (40, 3, 6))
    start = rng.integers(0, 50, n)
    end = start + rng.integers(1, 4, n)
    score = rng.choice([0.25, 0.5, 1.0], n)
    frame = pd.DataFrame({"s": seg, "c": code, "r": rule, "a": start, "b": end})
    assert np.array_equal(_duplicated([seg, code, rule, start, end - start]),
                          frame.duplicated().to_numpy())
    wide = np.asarray([0, 1 << 61] * (n // 2))  # too wide to pack: the pandas way
    assert np.array_equal(_duplicated([wide, seg, code, rule, start, end]),
                          frame.assign(w=wide)[["w", "s", "c", "r", "a", "b"]].duplicated())
    expected = np.lexsort((rule, end, start, -score, code, seg))
    assert np.array_equal(_score_order(seg, code, score, start, end, rule), expected)
    score[5] = np.nan
    assert np.array_equal(_score_order(seg, code, score, start, end, rule),
                          np.lexsort((rule, end, start, -score, code, seg)))


def test_sorted_unique_is_np_unique():
    import numpy as np

    from pipeline.code.combine import sorted_unique

    rng = np.random.default_rng(4)
    for n in (0, 1, 2, 7, 500):
        values = np.sort(rng.integers(0, 20, n)) * 50 + rng.integers(-3, 9, n)
        got = sorted_unique(values)
        assert got.dtype == values.dtype and np.array_equal(got, np.unique(values))
