"""Tests of pipeline.nlp: offline pipelines, lemmas, stems, alignment, token table."""
from __future__ import annotations

import pandas as pd
import pytest

from pipeline import columns as C
from pipeline.errors import UsageError
from pipeline.nlp import (
    _word_forms_digest, make_nlp, parse, parse_segments, stem, tokens_table, word_forms,
)

DOC_TEXT = ("I: Hoe ging dat?\nA: De leerkrachten mochten het zelf invullen. Het ging goed.\n"
            "B: The teachers didn't choose.")


@pytest.fixture(scope="module")
def segments() -> pd.DataFrame:
    spans = [(3, 16, "nl"), (20, 76, "nl"), (80, 108, "en")]
    return pd.DataFrame({
        C.SEGMENT_ID: [f"d:{k}" for k in range(3)], C.DOC_ID: "d",
        C.START: [s for s, _, _ in spans], C.END: [e for _, e, _ in spans],
        C.LANG: [lg for _, _, lg in spans], C.TEXT: [DOC_TEXT[s:e] for s, e, _ in spans]})


def test_make_nlp_is_cached_and_offline_components() -> None:
    nlp = make_nlp("nl")
    assert make_nlp("nl") is nlp
    assert nlp.pipe_names == ["lemmatizer", "lemma_lower",
                              f"nl_word_forms_{_word_forms_digest('nl')}", "sentencizer"]
    assert make_nlp("en").pipe_names == ["lemmatizer", "lemma_lower", "sentencizer"]
    assert nlp.get_pipe("lemmatizer").mode == "lookup"


def test_unsupported_language() -> None:
    with pytest.raises(UsageError, match="unsupported language 'xx'.*nl, en"):
        make_nlp("xx")
    with pytest.raises(UsageError, match="unsupported language 'de'"):
        parse(["Hallo"], "de")


def test_dutch_lemmas_and_stems() -> None:
    doc = parse(["De leerkrachten mochten het zelf invullen."], "nl")[0]
    by_text = {t.text: t for t in doc}
    assert by_text["leerkrachten"].lemma_ == "leerkracht"
    assert by_text["mochten"].lemma_ == "mogen"
    assert by_text["leerkrachten"]._.stem == "leerkracht"
    assert stem("leerkrachten", "nl") == "leerkracht"


def test_english_lemmas_are_lower_case() -> None:
    doc = parse(["The teachers didn't choose. We could."], "en")[0]
    lemmas = [t.lemma_ for t in doc]
    assert lemmas[:5] == ["the", "teacher", "do", "not", "choose"]
    assert "we" in lemmas and all(lemma == lemma.lower() for lemma in lemmas)
    assert doc[1]._.stem == "teacher"


def test_sentences_and_empty_texts() -> None:
    docs = parse(["Eerste zin. Tweede zin.", "", None], "nl")
    assert [s.text for s in docs[0].sents] == ["Eerste zin.", "Tweede zin."]
    assert len(docs[1]) == 0 and len(docs[2]) == 0


def test_parse_segments_keeps_row_order(segments: pd.DataFrame) -> None:
    docs = parse_segments(segments)
    assert [d.text for d in docs] == segments[C.TEXT].tolist()
    assert [d.lang_ for d in docs] == ["nl", "nl", "en"]
    mixed = segments.iloc[[2, 0, 1]]
    assert [d.lang_ for d in parse_segments(mixed)] == ["en", "nl", "nl"]


def test_parse_segments_errors(segments: pd.DataFrame) -> None:
    with pytest.raises(UsageError, match="no 'lang' column"):
        parse_segments(segments.drop(columns=[C.LANG]))
    with pytest.raises(UsageError, match="unsupported language 'fr'"):
        parse_segments(segments.assign(**{C.LANG: "fr"}))


def test_tokens_table_document_offsets(segments: pd.DataFrame) -> None:
    docs = parse_segments(segments)
    table = tokens_table(segments, docs)
    assert list(table.columns) == C.TOKEN_COLUMNS
    assert len(table) == sum(len(d) for d in docs)
    for row in table.itertuples(index=False):
        assert DOC_TEXT[row.start:row.end] == row.text
    leer = table[table[C.TEXT] == "leerkrachten"].iloc[0]
    assert (leer[C.SEGMENT_ID], leer[C.LEMMA], leer[C.STEM]) == ("d:1", "leerkracht", "leerkracht")
    the = table[table[C.TEXT] == "The"].iloc[0]
    assert (the[C.LOWER], the[C.LEMMA], bool(the[C.IS_STOP])) == ("the", "the", True)
    assert table[C.IS_PUNCT].dtype == bool and table[C.START].dtype == "int64"
    assert table[table[C.TEXT] == "?"][C.IS_PUNCT].all()
    with pytest.raises(UsageError, match="not aligned"):
        tokens_table(segments, docs[:2])


# --- Dutch word-form table (pipeline/data/nl_verb_forms.tsv) ----------------------------

@pytest.mark.parametrize("form, lemma", [
    ("kozen", "kiezen"), ("koos", "kiezen"), ("besloten", "besluiten"), ("begonnen", "beginnen"),
    ("vertrouwde", "vertrouwen"), ("gekregen", "krijgen"), ("liet", "laten"),
    ("lieten", "laten"), ("mocht", "mogen"), ("mochten", "mogen"), ("overgenomen", "overnemen"),
    ("leraren", "leraar"), ("uren", "uur"), ("collega's", "collega"), ("docenten", "docent"),
    ("scholen", "school"), ("gevoelens", "gevoel"), ("Kozen", "kiezen"),
])
def test_dutch_irregular_forms_and_plurals(form: str, lemma: str) -> None:
    doc = parse([f"{form} ."], "nl")[0]
    assert doc[0].lemma_ == lemma


def test_word_form_table_is_well_formed_and_only_fixes_the_lookup() -> None:
    table = word_forms("nl")
    assert 250 <= len(table) and word_forms("en") == {}
    lookup = make_nlp("nl").get_pipe("lemmatizer").lookups.get_table("lemma_lookup")
    for form, lemma in table.items():
        assert form == form.lower() and lemma == lemma.lower() and "\t" not in form
        assert form != lemma
        assert lookup.get(form, form) != lemma, f"{form}: the lookup already gives {lemma}"
    # ambiguous forms stay with the lookup ("reden" = reason, "geleden" = ago)
    assert not {"reden", "geleden", "namen", "vroeg"} & set(table)
    doc = parse(["Jaren geleden, om die reden."], "nl")[0]
    assert [t.lemma_ for t in doc][1] == "geleden"


@pytest.mark.parametrize("lang", ["nl", "en"])
def test_lazy_lookup_table_is_spacys_table(lang: str) -> None:
    import pickle

    from spacy.lookups import load_lookups
    from spacy.util import load_language_data, registry

    from pipeline.nlp import LazyTable, lookup_tables

    data = load_language_data(registry.lookups.get(lang)["lemma_lookup"])
    ref = load_lookups(lang=lang, tables=["lemma_lookup"]).get_table("lemma_lookup")
    # no two keys share a string id: get(str) from the strings is get() by id
    assert len(ref) == len(data)
    lazy = lookup_tables(lang).get_table("lemma_lookup")
    assert isinstance(lazy, LazyTable)
    for key in [*data, "", "xyzzy", "NOUN", "Huis", "HUIS"]:
        assert lazy.get(key, key) == ref.get(key, key)
    assert lazy._strings is not None  # string lookups left it unfilled
    assert lazy.get(ref.name) == ref.get(ref.name)
    # any other use fills it: then it is spaCy's table in every respect
    assert next(iter(ref)) in lazy and lazy._strings is None
    assert lazy == ref and list(lazy.items()) == list(ref.items())
    assert lazy.bloom.to_bytes() == ref.bloom.to_bytes() and lazy.name == ref.name
    assert lazy.to_bytes() == ref.to_bytes()
    again = pickle.loads(pickle.dumps(lazy))
    assert type(again) is LazyTable and again == ref


def test_lazy_lookup_table_fills_on_first_other_use() -> None:
    from spacy.lookups import Table
    from spacy.strings import get_string_id

    from pipeline.nlp import LazyTable

    data = {"liepen": "lopen", "huizen": "huis"}
    ref = Table(name="t", data=data)
    uses = [len, list, lambda t: t["liepen"], lambda t: get_string_id("huizen") in t,
            lambda t: t.get(get_string_id("liepen")), lambda t: t.to_bytes(), repr,
            lambda t: dict(t), lambda t: t.bloom, lambda t: t == ref]
    for use in uses:
        lazy = LazyTable("t", data)
        assert lazy.get("liepen") == "lopen" and lazy.get("x", 7) == 7
        assert lazy._strings is not None
        use(lazy)
        assert lazy._strings is None and lazy == ref and list(lazy) == list(ref)
    lazy = LazyTable("t", data)
    lazy["lopen"] = "lopen"  # a change fills it first
    assert len(lazy) == 3 and lazy.get("huizen") == "huis"
    assert LazyTable("t", data) == LazyTable("t", data) == ref
    empty, made = LazyTable("t", {}), Table(name="t", data={})
    assert empty.get("x", 1) == 1 and empty.to_bytes() == made.to_bytes()
    assert LazyTable("t").bloom.to_bytes() == Table(name="t").bloom.to_bytes()


def test_make_nlp_never_fills_the_lookup_table() -> None:
    from pipeline.nlp import LazyTable, parse_arrays

    table = make_nlp("nl").get_pipe("lemmatizer").lookups.get_table("lemma_lookup")
    assert isinstance(table, LazyTable)
    docs = parse(["De leerkrachten liepen naar huis."], "nl")
    parse_arrays(["Zij mochten kiezen."], "nl")
    assert [t.lemma_ for t in docs[0]][:3] == ["de", "leerkracht", "lopen"]
    assert table._strings is not None
