"""Text features of the supervised coder: lemmas, stems and character n-grams.

The spaCy/NLTK analysis happens once, up front (``analyze``), and yields plain
string columns; the learnable part is a standard scikit-learn ``ColumnTransformer``
of ``TfidfVectorizer``s, so the whole model is built from stock estimators that
skops can persist without custom code.
"""
from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import TfidfVectorizer

from pipeline import columns as C
from pipeline.errors import UsageError

LEMMAS, STEMS = "lemmas", "stems"
FEATURE_COLUMNS = [C.TEXT, LEMMAS, STEMS]


def analyze(segments: pd.DataFrame, docs: Sequence | None = None) -> pd.DataFrame:
    """Return the feature input table: ``text``, ``lemmas``, ``stems`` per segment.

    Args:
        segments: needs ``text`` and (when ``docs`` is None) ``lang``.
        docs: spaCy Docs aligned with the rows (``pipeline.nlp.parse_segments``);
            parsed here when None.

    Raises:
        UsageError: docs not aligned with the segments.
    """
    if docs is None:
        from pipeline.nlp import parse_segments
        docs = parse_segments(segments)
    if len(docs) != len(segments):
        raise UsageError(f"{len(docs)} parsed docs for {len(segments)} segments: not aligned")
    from pipeline.nlp import stem

    lemmas, stems = [], []
    for doc in docs:
        words = [t for t in doc if not (t.is_punct or t.is_space)]
        lemmas.append(" ".join((t.lemma_ or t.lower_).lower() for t in words))
        stems.append(" ".join(stem(t.lower_, doc.lang_) for t in words))
    return pd.DataFrame({C.TEXT: segments[C.TEXT].fillna("").astype(str).str.lower().to_numpy(),
                         LEMMAS: lemmas, STEMS: stems}, index=segments.index)


def build_features(*, char_ngrams: tuple[int, int] = (2, 5), word_ngrams: tuple[int, int] = (1, 2),
                   min_df: int = 1, max_features: int | None = 50_000) -> ColumnTransformer:
    """Return the (unfitted) feature union over the ``analyze`` columns.

    Word n-grams of lemmas catch the vocabulary of a code; stems catch inflections
    the lookup lemmatiser misses; character n-grams inside word boundaries catch
    Dutch compounds ("eigenaarschap", "teameigenaarschap") and spelling variants.
    """
    tok = r"(?u)\S+"  # analyze() already tokenised; keep every token (incl. "n't")
    return ColumnTransformer(
        [
            ("lemmas", TfidfVectorizer(token_pattern=tok, ngram_range=word_ngrams, min_df=min_df,
                                       sublinear_tf=True, max_features=max_features), LEMMAS),
            ("stems", TfidfVectorizer(token_pattern=tok, min_df=min_df, sublinear_tf=True,
                                      max_features=max_features), STEMS),
            ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=char_ngrams, min_df=min_df,
                                      sublinear_tf=True, max_features=max_features), C.TEXT),
        ],
        sparse_threshold=1.0,
    )
