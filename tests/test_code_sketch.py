"""The tokenizer sketch: compiling rules and re-coding from cache without importing spaCy."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from pipeline.code import sketch as sketch_mod
from pipeline.code.compiled import _tokens
from pipeline.code.sketch import TermSplitter, TokenizerSketch
from pipeline.codebook import is_glob
from pipeline.nlp import base_nlp, make_nlp

ROOT = Path(__file__).resolve().parent.parent
PIECES = ["zzedit", "leerkracht", "e-mail", "zelf-vertrouwen", "o.a.", "z.g.a.n.", "bv.", "'s",
          "d.w.z.", "zo'n", "(school)", "10:30", "3,5", "1.000", "2e", "https://example.org/a?b=c",
          "www.school.be", "info@school.nl", "we'll", "don't", "U.S.", "etc.", "école", ":-)",
          "leerling.", "'t", "thuis!?", "a.s.", "ca.", "nr.", "N.B.", "\"citaat\"", "'quote'",
          "«zo»", "👍", "goed👍", "😀😀", "#tag", "@naam", "50%", "€10", "km/u", "m²", "CO2",
          "Straße", "İstanbul", "ĳsbaan", "ǅ", "ﬁne", "ADJ", "mark", "number", "IS_ALPHA",
          "a", "A.", "...", "--", "x-y-z", "vs.", "mevr.", "dhr.", "Vl.", "blz.", "t.e.m.",
          "p.s.", "St.-Niklaas", "'k", "da's", "m'n", "z'n", "'n", "ho-ho", "half/half"]


def _pieces() -> list[str]:
    """Whitespace-free pieces of the sample data and the codebook, raw and stripped."""
    words = set(PIECES)
    for path in [*sorted((ROOT / "data" / "raw").glob("*.txt")), ROOT / "codebook.yaml"]:
        for word in path.read_text(encoding="utf-8").split():
            words.update({word, word.strip(".,;:!?()[]{}\"'"), word.lower()})
    words.discard("")
    return sorted(words)


def _spacy_lowers(tokenizer, piece: str) -> list[str]:  # noqa: ANN001
    return [t.lower_ for t in tokenizer(piece)]


@pytest.mark.parametrize("lang", ["nl", "en"])
def test_sketch_single_tokens_are_spacys(lang: str) -> None:
    tokenizer = make_nlp(lang).tokenizer
    made = TokenizerSketch.of_tokenizer(tokenizer)
    assert made is not None
    again = TokenizerSketch(json.loads(json.dumps(made.data)))  # as read from its file
    n_single = n_split = 0
    for piece in _pieces():
        lowers = _spacy_lowers(tokenizer, piece)
        n_split += len(lowers) > 1
        if again.single(piece):
            n_single += 1
            assert lowers == [piece.lower()], piece
    assert n_single > 1000 and n_split > 100  # both kinds are tried
    special = {"nl": "o.a.", "en": "don't"}[lang]
    for piece in [special, "(school)", "thuis!?", "goed👍", "uren."]:
        assert not again.single(piece), piece  # special or affixed: spaCy decides
    assert not again.single("two words") and not again.single("")


def test_sketch_splits_remembered_and_saved(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(sketch_mod, "_FOLDER", [None])
    monkeypatch.setattr(sketch_mod, "_SKETCHES", {})
    assert sketch_mod.sketch("nl") is None  # no folder: no sketch
    sketch_mod.use_folder(tmp_path)
    assert sketch_mod.sketch("nl") is None  # no file yet
    monkeypatch.setattr(sketch_mod, "_SKETCHES", {})
    made = TokenizerSketch.of_tokenizer(make_nlp("nl").tokenizer)
    assert made.lowers("thuis!?") is None
    made.remember("thuis!?", _spacy_lowers(make_nlp("nl").tokenizer, "thuis!?"))
    made.save("nl")
    read = sketch_mod.sketch("nl")
    assert read is not None and read.lowers("thuis!?") == ["thuis", "!", "?"]
    assert read.lowers("Zelf") == ["zelf"]
    # a damaged file is no sketch
    path = next((tmp_path / sketch_mod.SUBDIR).glob("*-nl.json"))
    path.write_text("{not json")
    monkeypatch.setattr(sketch_mod, "_SKETCHES", {})
    assert sketch_mod.sketch("nl") is None


@pytest.mark.parametrize("lang", ["nl", "en"])
def test_splitter_gives_the_tokenizers_items(lang: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(sketch_mod, "_FOLDER", [tmp_path])
    monkeypatch.setattr(sketch_mod, "_SKETCHES", {})
    make_nlp(lang)  # the tokenizer is built: the splitter saves its sketch
    items = [*PIECES, "zelf invullen", "door de strot geduwd", "eigenaar*", "iets ander*",
             "e-mail adres", "o.a. de school"]
    split = TermSplitter(lang)
    assert split.sketch is not None
    tokenizer = base_nlp(lang).tokenizer
    assert [split(item) for item in items] == [_tokens(tokenizer, item) for item in items]
    split.done()
    monkeypatch.setattr(sketch_mod, "_SKETCHES", {})
    again = TermSplitter(lang)  # read back: the pieces split above are known
    assert all(again.sketch.lowers(piece) is not None for item in items
               for piece in item.split() if not is_glob(piece))
    assert [again(item) for item in items] == [_tokens(tokenizer, item) for item in items]


BOOK = """\
version: 1
name: mini
settings: {default_lang: nl, required_codes: []}
codes:
  - id: agency
    label: {nl: Agency, en: Agency}
    definition: Teachers steer their own work.
    rules:
      nl:
        - {kind: terms, terms: [zelf, eigenaar]}
        - {kind: phrase, phrases: ["zelf invullen"]}
        - {kind: proximity, a: [we, wij], b: ["kiez*", bepalen], window: 5}
        - kind: pattern
          patterns: [[{LEMMA: mogen}, {OP: "*", IS_PUNCT: false}, {LOWER: zelf}]]
  - id: time
    label: {nl: Tijd, en: Time}
    definition: Time and hours.
    rules:
      nl:
        - {kind: terms, terms: [uren, tijd], negation: forbid}
        - {kind: glob, globs: ["werkdruk*"]}
"""
_SCRIPT = """\
import runpy, sys
sys.argv = ["pipeline", *sys.argv[1:]]
try:
    runpy.run_module("pipeline", run_name="__main__", alter_sys=True)
except SystemExit as exc:
    code = exc.code
else:
    code = 0
print("SPACY_IMPORTED", "spacy" in sys.modules, code)
"""


def _qcode(tmp: Path, out: str, book: str, *extra: str) -> bool:
    """Run ``qcode code`` in a new process; whether it imported spaCy."""
    (tmp / "cb.yaml").write_text(book, encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", _SCRIPT, "code", str(tmp / "raw"), "--out",
                           str(tmp / out), "--codebook", str(tmp / "cb.yaml"), "--quiet", *extra],
                          env=env, capture_output=True, text=True, check=True)
    found = re.search(r"SPACY_IMPORTED (True|False) (\d+)", done.stdout)
    assert found is not None and found.group(2) in ("0", "2"), done.stdout + done.stderr
    return found.group(1) == "True"


def _outputs(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())
            if p.is_file() and p.name not in ("manifest.json", ".qcode.lock")}


def test_recode_of_terms_never_imports_spacy(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    texts = ["I: Hoe ging het?\nR: We mochten het zelf invullen, de e-mail kwam later.\n",
             "I: En de tijd?\nR: Geen uren, niet genoeg tijd. Wij kiezen zelf (o.a. de werkdrukuren).\n",
             "I: Nog iets?\nR: De eigenaar van het gebouw wilde niet. Zelf-vertrouwen groeide.\n"]
    for k, text in enumerate(texts):
        (raw / f"int{k}.txt").write_text(text, encoding="utf-8")
    assert _qcode(tmp_path, "cached", BOOK)  # a cold run parses: spaCy
    assert (tmp_path / "cached" / ".cache" / sketch_mod.SUBDIR).is_dir()
    # a terms edit, a proximity edit and a phrase with a piece the tokenizer splits
    edits = [BOOK.replace("terms: [zelf, eigenaar]", "terms: [zelf, eigenaar, zzedit]"),
             BOOK.replace("a: [we, wij]", "a: [we, wij, ik]"),
             BOOK.replace('phrases: ["zelf invullen"]', 'phrases: ["zelf invullen", "invullen, de"]')]
    for book in edits:
        imported = _qcode(tmp_path, "cached", book)
        _qcode(tmp_path, "fresh", book, "--no-cache")
        assert _outputs(tmp_path / "cached") == _outputs(tmp_path / "fresh")
        assert imported == ("invullen," in book)  # a piece spaCy splits: once, then known
    assert not _qcode(tmp_path, "cached", edits[2].replace('de"]', 'de e-mail"]'))
    # a token-pattern edit re-compiles the pattern with spaCy, and still codes the same
    pattern = BOOK.replace("{LOWER: zelf}]]", "{LOWER: zelf}], [{LOWER: zelf}, {LOWER: invullen}]]")
    assert _qcode(tmp_path, "cached", pattern)
    _qcode(tmp_path, "fresh", pattern, "--no-cache")
    assert _outputs(tmp_path / "cached") == _outputs(tmp_path / "fresh")
    codings = pd.read_csv(tmp_path / "cached" / "codings.csv")
    assert {"agency", "time"} <= set(codings["code_id"])


@pytest.mark.parametrize("lang", ["nl", "en"])
def test_what_the_affix_regexes_need_proves_single_pieces_without_compiling(lang: str) -> None:
    """``regex_chars``: a piece whose characters do not meet what a regex's matches need
    has no match; the sketch then gives spaCy's answer without compiling that regex."""
    from pipeline.code.regex_chars import requirement

    tokenizer = make_nlp(lang).tokenizer
    made = TokenizerSketch.of_tokenizer(tokenizer)
    read = TokenizerSketch(json.loads(json.dumps(made.data)))
    proven = 0
    for k, name in enumerate(("prefix", "suffix", "infix")):
        pattern, flags = made.data[name]
        need = requirement(pattern, flags)
        assert need is not None  # spaCy's regexes are in what the analysis follows
        compiled = re.compile(pattern, flags)
        for piece in _pieces():
            if not need.met_by(piece):
                proven += 1
                assert compiled.search(piece) is None, (name, piece)
    for piece in _pieces():
        assert read.single(piece) == made.single(piece), piece
    assert proven > 2000
    # the Dutch sample words of a re-code need no regex compiled at all
    fresh = TokenizerSketch(json.loads(json.dumps(made.data)))
    assert fresh.single("wandelgangen") and fresh.single("leerkracht")
    assert fresh._res == {} and len(fresh._needs) == 3


@pytest.mark.parametrize(("pattern", "flags", "proofs"), [
    (r"ab|cd", 0, {"xyz": True, "xay": True, "xaby": False, "cxd": False}),  # False: maybe
    (r"(?<=[0-9])km", 0, {"km": True, "1km": False, "10m": True}),
    (r"(?<![0-9])km", 0, {"km": False}),              # a negative lookbehind needs nothing
    (r"x*", 0, {"abc": False}),                         # matches "": no proof
    (r"a?b", 0, {"aaa": True, "b": False}),
    (r"[^a]", 0, {"aaa": False}),                       # a negated set: no analysis
    (r"(a)\1", 0, {"bbb": False}),                      # a back reference: no analysis
    (r"(?i)km", 0, {"KM": False}),                      # case-insensitive: no analysis
    (r"km", re.IGNORECASE, {"KM": False}),
    (r"\d+[.,]\d+", 0, {"abc": True, "1,5": False, "١,٢": False, "١٫٢": True}),
    (r"\w+-\w+", 0, {"e-mail": False, "...": True}),
    (r"a{0}b", 0, {"xa": True, "b": False}),
    (r"(?=\.)x|y", 0, {"x": True, ".x": False, "y": False}),
])
def test_requirement_proofs(pattern: str, flags: int, proofs: dict[str, bool]) -> None:
    from pipeline.code.regex_chars import requirement

    need = requirement(pattern, flags)
    compiled = re.compile(pattern, flags)
    for text, proven in proofs.items():
        got = need is not None and not need.met_by(text)
        assert got == proven, (pattern, text)
        if got:
            assert compiled.search(text) is None
