"""NLP stage: segments -> spaCy ``Doc`` objects, offline.

Only ``spacy.blank(lang)`` with the lookup lemmatizer from spacy-lookups-data and a
rule-based sentencizer: nothing is downloaded at run time, and results do not depend
on a statistical model version. Stems come from NLTK's Snowball stemmers (pure code).
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

import pandas as pd
from spacy.language import Language
from spacy.tokens import Doc, Token

from pipeline import columns as C
from pipeline.errors import UsageError
from pipeline.languages import STEMMERS, SUPPORTED_LANGUAGES  # noqa: F401 - re-exported
from pipeline.languages import check_lang as _check_lang
from pipeline.nlp_lookups import LOOKUPS_LOADER, LazyTable, lookup_tables  # noqa: F401

if TYPE_CHECKING:
    from pipeline.nlp_rules import RuleNLP

TOKEN_COLUMNS = C.TOKEN_COLUMNS


@Language.component("lemma_lower")
def lemma_lower(doc: Doc) -> Doc:
    """Lower-case every lemma.

    The English lookup table has no entry for many capitalised forms and falls back
    to the text ("The", "We"), while Dutch lemmas are lower-case: normalising here
    makes LEMMA patterns and term matching behave the same in both languages.
    """
    for token in doc:
        lemma = token.lemma_
        if lemma and not lemma.islower():
            token.lemma_ = lemma.lower()
    return doc


WORD_FORMS_FILE = "nl_verb_forms.tsv"


@lru_cache(maxsize=None)
def word_forms(lang: str = "nl") -> dict[str, str]:
    """Return the extra form -> lemma table of a language (package data; empty if none).

    ``pipeline/data/nl_verb_forms.tsv`` (form<TAB>lemma, ``#`` comments): Dutch forms
    the spaCy lookup table has no lemma for (the lookup returns the form itself) or a
    wrong one - strong/irregular verb pasts and participles, past forms of common
    regular verbs, plurals of school-talk nouns. Only such forms are listed (checked
    against the lookup when the table was written), so an entry always wins.
    """
    if lang != "nl":
        return {}
    from importlib.resources import files

    table: dict[str, str] = {}
    text = files("pipeline").joinpath("data", WORD_FORMS_FILE).read_text(encoding="utf-8")
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        form, lemma = line.split("\t")
        table[form.strip().lower()] = lemma.strip().lower()
    return table


@lru_cache(maxsize=None)
def _word_forms_digest(lang: str) -> str:
    import hashlib

    items = sorted(word_forms(lang).items())
    return hashlib.sha1(repr(items).encode("utf-8")).hexdigest()[:8]


@Language.component("nl_word_forms")
def nl_word_forms(doc: Doc) -> Doc:
    """Set the lemma of the forms in ``word_forms("nl")`` (after ``lemma_lower``).

    Rule: a token whose lower-case form is in the table gets the table's lemma. The
    table holds only forms whose lookup lemma is missing (equal to the form, as for
    "kozen", "besloten", "leraren") or wrong ("gevoelens" -> gevoel, not gevoelen), so
    lemmas the lookup gets right are never touched.
    """
    table = word_forms("nl")
    for token in doc:
        lemma = table.get(token.lower_)
        if lemma is not None:
            token.lemma_ = lemma
    return doc


@lru_cache(maxsize=None)
def _stemmer(lang: str):  # noqa: ANN202 - nltk's SnowballStemmer
    # Imported here, not at the top: ``import nltk`` pulls nltk.metrics -> scipy.stats
    # (about 1.5 s), and a coding run never stems.
    from nltk.stem.snowball import SnowballStemmer

    return SnowballStemmer(STEMMERS[lang])


@lru_cache(maxsize=200_000)
def stem(word: str, lang: str) -> str:
    """Return the Snowball stem of a lower-case word (cached: vocabularies are Zipfian)."""
    if lang not in STEMMERS:
        return word
    return _stemmer(lang).stem(word)


def _token_stem(token: Token) -> str:
    return stem(token.lower_, token.doc.lang_)


if not Token.has_extension("stem"):
    Token.set_extension("stem", getter=_token_stem)


@lru_cache(maxsize=None)
def base_vocab(lang: str):  # noqa: ANN201 - spacy.vocab.Vocab
    """Return the (cached) vocab of ``make_nlp(lang)``, built as ``spacy.blank`` builds it.

    Cached token arrays only need a vocab (strings and lexeme attributes); building
    the pipeline (about 0.1 s for ``spacy.blank`` and the affix regexes, 0.15 s for the
    lemma tables) waits until a rule is compiled or a text parsed.

    Raises:
        UsageError: the language is not supported.
    """
    from spacy.util import get_lang_class, registry
    from spacy.vocab import create_vocab

    defaults = get_lang_class(_check_lang(lang))
    # as Language.__init__ does for vocab=True (no vectors name in a blank pipeline)
    vocab = create_vocab(lang, defaults.Defaults)
    vectors = registry.resolve({"vectors": defaults.default_config["nlp"]["vectors"]})
    vocab.vectors = vectors["vectors"](vocab)
    return vocab


_BLANKS: dict[str, Language] = {}


def _blank(lang: str) -> Language:
    """The (cached) ``spacy.blank(lang)`` on ``base_vocab(lang)`` that ``make_nlp`` completes.

    Its tokenizer is spaCy's with the language's defaults, as a ``LazyTokenizer``: the
    same tokens, without adding thousands of special cases a corpus does not use.
    """
    nlp = _BLANKS.get(lang)
    if nlp is None:
        import spacy

        from pipeline.nlp_specials import LAZY_TOKENIZER

        nlp = _BLANKS[lang] = spacy.blank(
            _check_lang(lang), vocab=base_vocab(lang),
            config={"nlp": {"tokenizer": {"@tokenizers": LAZY_TOKENIZER}}})
    return nlp


@lru_cache(maxsize=None)
def base_nlp(lang: str) -> RuleNLP:
    """Return the (cached) vocab and tokenization of ``make_nlp(lang)``, for compiling rules.

    Its vocab is ``base_vocab(lang)`` and its tokenizer gives the tokens of
    ``make_nlp(lang)``'s (``RuleTokenizer``), so compiling rules loads no lookup
    tables (about a second) and, for most terms, builds no tokenizer either.

    Raises:
        UsageError: the language is not supported.
    """
    from pipeline.nlp_rules import RuleNLP

    return RuleNLP(_check_lang(lang))


@lru_cache(maxsize=None)
def make_nlp(lang: str) -> Language:
    """Return the (cached) offline spaCy pipeline of a language.

    ``spacy.blank(lang)`` on ``base_vocab(lang)`` + ``lemmatizer`` (lookup mode, tables from
    spacy-lookups-data) + ``lemma_lower`` + (Dutch) ``nl_word_forms`` + ``sentencizer``.
    Whatever shapes it must be in ``cache.pipeline_fingerprint``.

    Args:
        lang: a language code in ``SUPPORTED_LANGUAGES``.

    Raises:
        UsageError: the language is not supported.
    """
    nlp = _blank(lang)
    nlp.add_pipe("lemmatizer", config={"mode": "lookup"})
    nlp.add_pipe("lemma_lower")
    if word_forms(lang):
        # the table's digest is in the component name: pipe names are part of the
        # DocBin cache key (pipeline.cache), so a changed table gives fresh parses
        nlp.add_pipe("nl_word_forms", name=f"nl_word_forms_{_word_forms_digest(lang)}")
    nlp.add_pipe("sentencizer")
    # The lemmatizer gets the tables of spacy-lookups-data (local package) from
    # ``lookup_tables``: the same tables, filled about four times faster.
    nlp.config["initialize"]["components"]["lemmatizer"] = {
        "lookups": {"@misc": LOOKUPS_LOADER, "lang": lang}}
    nlp.initialize()
    return nlp


def parse(texts: Iterable[str], lang: str, *, batch_size: int = 256) -> list[Doc]:
    """Parse texts of one language.

    Args:
        texts: the texts; None / NaN count as empty text.
        lang: language code.
        batch_size: texts per ``nlp.pipe`` batch.

    Returns:
        One Doc per text, in order.

    Raises:
        UsageError: the language is not supported.
    """
    nlp = make_nlp(_check_lang(lang))
    clean = ["" if t is None or (isinstance(t, float) and t != t) else str(t) for t in texts]
    lemmas = _fused_lemmas(nlp, lang)
    if lemmas is None:
        return list(nlp.pipe(clean, batch_size=batch_size))
    # Same result as nlp.pipe: tokenizer, then the three lemma components and the
    # sentencizer as NumPy steps over all the docs (pipeline.nlp_batch).
    docs = [nlp.make_doc(text) for text in clean]
    lemmas.annotate(docs, nlp.get_pipe("sentencizer"), fresh=True)
    return docs


def parse_arrays(texts: Iterable[str], lang: str, *, batch_size: int = 256) -> list:
    """``[doc.to_array(code.arrays.ATTRS) for doc in parse(texts, lang)]`` without the
    docs (``nlp_fast.parse_arrays``: spaCy's tokenizer once per distinct piece).

    Raises:
        UsageError: the language is not supported.
    """
    from pipeline.nlp_fast import parse_arrays as arrays

    return arrays(texts, lang, batch_size=batch_size)


def _fused_lemmas(nlp: Language, lang: str):  # noqa: ANN202 - FusedLemmas | None
    """The fused lemma step of ``make_nlp(lang)``'s pipeline (None: not that pipeline)."""
    from pipeline.nlp_batch import FusedLemmas

    expected = ["lemmatizer", "lemma_lower", "sentencizer"]
    if word_forms(lang):
        expected.insert(2, f"nl_word_forms_{_word_forms_digest(lang)}")
    if nlp.pipe_names != expected:
        return None
    lemmatizer = nlp.get_pipe("lemmatizer")
    if lemmatizer.mode != "lookup" or lemmatizer.overwrite:
        return None
    fused = _FUSED.get(id(nlp))
    if fused is None or fused.nlp is not nlp:
        lemmatizer(nlp.make_doc(""))  # validates the lookup tables, as its first call does
        fused = _FUSED[id(nlp)] = FusedLemmas(nlp, word_forms(lang) if len(expected) == 4
                                              else {})
    return fused


_FUSED: dict[int, object] = {}


def parse_segments(segments: pd.DataFrame, *, batch_size: int = 256) -> list[Doc]:
    """Parse the ``text`` of every segment with the pipeline of its ``lang``.

    Args:
        segments: a segments table (needs ``text`` and ``lang``).
        batch_size: texts per ``nlp.pipe`` batch.

    Returns:
        Docs aligned with the rows of ``segments`` (``docs[k]`` is row ``k``).

    Raises:
        UsageError: a column is missing or a row has an unsupported language.
    """
    for col in (C.TEXT, C.LANG):
        if col not in segments.columns:
            raise UsageError(f"segments table has no {col!r} column")
    langs = segments[C.LANG].tolist()
    texts = segments[C.TEXT].tolist()
    docs: list[Doc | None] = [None] * len(texts)
    # One pipe per language keeps batching; positions put docs back in row order.
    for lang in dict.fromkeys(langs):
        positions = [k for k, value in enumerate(langs) if value == lang]
        for k, doc in zip(positions, parse([texts[k] for k in positions], lang,
                                           batch_size=batch_size), strict=True):
            docs[k] = doc
    return docs  # type: ignore[return-value]


def tokens_table(segments: pd.DataFrame, docs: Sequence[Doc]) -> pd.DataFrame:
    """Return one row per token with document offsets.

    Args:
        segments: the segments table the docs were parsed from (``segment_id``,
            ``start``).
        docs: Docs aligned with the segment rows.

    Returns:
        Columns ``TOKEN_COLUMNS``: segment_id, i, text, lower, lemma (lower-case),
        stem, is_punct, is_stop, start, end; start/end index the document text
        (segment start + ``token.idx``).

    Raises:
        UsageError: docs and segments are not aligned.
    """
    if len(docs) != len(segments):
        raise UsageError(f"{len(docs)} docs for {len(segments)} segments: not aligned")
    rows = []
    for seg_id, seg_start, doc in zip(segments[C.SEGMENT_ID].tolist(),
                                      segments[C.START].tolist(), docs, strict=True):
        base = int(seg_start)
        for tok in doc:
            start = base + tok.idx
            rows.append((seg_id, tok.i, tok.text, tok.lower_, tok.lemma_.lower(), tok._.stem,
                         tok.is_punct, tok.is_stop, start, start + len(tok.text)))
    table = pd.DataFrame(rows, columns=TOKEN_COLUMNS)
    return table.astype({C.TOKEN_I: "int64", C.START: "int64", C.END: "int64",
                         C.IS_PUNCT: "bool", C.IS_STOP: "bool"})
