"""Build the spaCy pipelines on import: preloaded by the local pool's fork server.

Every pool worker forks from the fork server (``pipeline.engine``), so pipelines
built there once are in every worker already, instead of each worker building its
own (affix regexes and lemma lookup tables: about 0.3 s of CPU for Dutch; the
tokenizer's special cases are added as texts need them, ``nlp_specials.LazyTokenizer``),
and so is their ``nlp_fast`` piece tokenizer (the special-case patterns it checks
pieces against: about 0.09 s).
The fork server starts at the beginning of a run, beside the runner's imports and
planning, but the first chunk waits for it: it builds only ``WARM_LANGUAGES`` (the
default codebook language). Another language is built by ``make_nlp`` (cached) in a
worker that meets it; a Dutch-only corpus never builds the English pipeline.

Importing this module anywhere else only costs the build ``make_nlp`` would do on
first use anyway (it is cached).
"""
from __future__ import annotations

import gc
import os

from pipeline.pool_server import BATCH_GC_THRESHOLD
from pipeline.spacy_lean import lean_spacy_import

# Built before the first worker forks. QCODE_WARM_LANGUAGES (comma-separated, in
# the environment the fork server starts with) overrides it; "" builds none.
WARM_LANGUAGES = ("nl",)


def warm_languages() -> tuple[str, ...]:
    """The languages to build: ``QCODE_WARM_LANGUAGES`` if set, else ``WARM_LANGUAGES``."""
    value = os.environ.get("QCODE_WARM_LANGUAGES")
    if value is None:
        return WARM_LANGUAGES
    return tuple(lang.strip() for lang in value.split(",") if lang.strip())


def warm(languages: tuple[str, ...] | None = None) -> None:
    """Build ``make_nlp`` of ``languages`` (default: ``warm_languages()``); never raises.

    A worker that hits the same problem reports it where it belongs (the chunk
    parsing), so nothing here may raise: the fork server must come up regardless.
    An unsupported language is skipped.

    Args:
        languages: Language codes to build.
    """
    try:
        from pipeline.nlp import SUPPORTED_LANGUAGES, make_nlp, parse_arrays

        for lang in warm_languages() if languages is None else languages:
            if lang in SUPPORTED_LANGUAGES:
                make_nlp(lang)
                parse_arrays([], lang)  # builds the piece tokenizer, parses nothing
    except Exception:  # noqa: BLE001 - see the docstring
        return


# First in the fork server's preload, a batch job whose objects all live until it
# exits: the collector's default thresholds would walk the growing heap of its
# imports and pipelines again and again (about 5% of its CPU, which every worker
# waits for); the workers set the same thresholds (engine._init_worker).
gc.set_threshold(*BATCH_GC_THRESHOLD)
# spaCy without its command line (spacy_lean)
lean_spacy_import()
warm()
