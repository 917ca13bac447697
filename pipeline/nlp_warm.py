"""Build the spaCy pipelines on import: preloaded by the local pool's fork server.

Every pool worker forks from the fork server (``pipeline.engine``), so pipelines
built there once are in every worker already, instead of each worker building its
own (tokenizer special cases and lemma lookup tables: about 1.5 s of CPU each). The
fork server starts at the beginning of a run, so this overlaps the runner's planning.

Importing this module anywhere else only costs the build ``make_nlp`` would do on
first use anyway (it is cached).
"""
from __future__ import annotations


def warm() -> None:
    """Build ``make_nlp`` of every supported language; a failure is left for later.

    A worker that hits the same problem reports it where it belongs (the chunk
    parsing), so nothing here may raise: the fork server must come up regardless.
    """
    try:
        from pipeline.nlp import SUPPORTED_LANGUAGES, make_nlp

        for lang in SUPPORTED_LANGUAGES:
            make_nlp(lang)
    except Exception:  # noqa: BLE001 - see the docstring
        return


warm()
