"""The languages of the NLP stage, importable without spaCy (a re-code from cache
checks a language before it knows whether it will need spaCy at all)."""
from __future__ import annotations

from pipeline.errors import UsageError

# Language code -> Snowball stemmer name. spaCy + spacy-lookups-data must also have a
# lemma lookup table for each; extend both together.
STEMMERS = {"nl": "dutch", "en": "english"}
SUPPORTED_LANGUAGES = tuple(STEMMERS)


def check_lang(lang: object) -> str:
    """Return ``lang`` if the NLP stage supports it.

    Raises:
        UsageError: ``lang`` is not a supported language code.
    """
    if not isinstance(lang, str) or lang not in STEMMERS:
        raise UsageError(f"unsupported language {lang!r} (supported: "
                         f"{', '.join(SUPPORTED_LANGUAGES)})")
    return lang
