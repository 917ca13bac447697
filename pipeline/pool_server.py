"""The local pool's fork server, startable before the heavy imports of a run.

``qcode code --jobs N`` forks its workers from one fork server that has imported
``PRELOAD`` (and built the spaCy pipelines, ``pipeline.nlp_warm``) once. That takes
a few seconds, and the first chunk cannot start before it is done, so the server is
started as early as possible: the CLI starts it before it imports pandas, spaCy and
the stages (``pipeline.cli``), the runner again at the start of a run (a no-op when
it is running). This module imports only the standard library, so starting the
server costs the caller nothing but a fork.
"""
from __future__ import annotations

import gc
from collections.abc import Sequence

# Modules every worker needs; the fork server imports them once.
# ``nlp_warm`` first: it imports spaCy without its command-line package (spacy_lean).
# Also those a chunk imports on first use (a test holds this): imported here once,
# not by every worker on its first chunk.
PRELOAD = ("pipeline.nlp_warm", "pipeline.chunk", "pipeline.chunk_code", "pipeline.chunk_cache",
           "pipeline.match_cache", "pipeline.coding_cache", "pipeline.cache", "pipeline.code",
           "pipeline.code.scan", "pipeline.code.matching", "pipeline.code.proximity",
           "pipeline.code.vector", "pipeline.nlp", "pipeline.nlp_batch", "pipeline.nlp_fast",
           "pipeline.nlp_rules", "pipeline.langid", "pipeline.segment", "pipeline.ingest",
           "pipeline.parts")
# Gen-0 allocations between cyclic collections in a batch run (CPython's default: 700).
# A coding run allocates millions of tuples, lists and frames and frees them by
# reference counting; at the default, the collector runs thousands of times and walks
# the long-lived objects (spaCy, pandas, the run's tables) dozens of times: about 6%
# of a run's CPU. Young cycles are still collected, 50,000 allocations later.
BATCH_GC_THRESHOLD = (50_000, 20, 100)
_COMMANDS = ("code", "run")   # the commands whose --jobs makes a local pool


def start_pool_server() -> None:
    """Start the local pool's fork server now (it imports ``PRELOAD``); idempotent.

    Harmless when a pool is never made: the server waits for requests and exits with
    this process.
    """
    import multiprocessing
    from multiprocessing import forkserver

    multiprocessing.get_context("forkserver").set_forkserver_preload(list(PRELOAD))
    forkserver.ensure_running()


def batch_gc() -> tuple[int, int, int]:
    """Tune the garbage collector for a batch run; return the thresholds to restore.

    Objects alive now (modules, pipelines) are frozen: collections never walk them.
    ``gc.unfreeze`` and ``gc.set_threshold(*returned)`` undo it.
    """
    old = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(*BATCH_GC_THRESHOLD)
    return old


def wants_pool(argv: Sequence[str]) -> bool:
    """Whether a ``qcode`` command line codes with a local pool (``code``/``run`` -j N>1).

    A best-effort look at the raw arguments, before argparse (whose import of every
    command module is what the early start overlaps): the forms ``--jobs N``,
    ``--jobs=N``, ``-j N`` and ``-jN`` and ``--engine``; anything else is left to
    the runner, which starts the server itself.
    """
    args = list(argv)
    if not args or args[0] not in _COMMANDS:
        return False
    jobs, engine = "1", "local"
    k = 1
    while k < len(args):
        arg = args[k]
        if arg == "--":
            break
        nxt = args[k + 1] if k + 1 < len(args) else ""
        if arg in ("--jobs", "-j", "--engine"):
            if arg == "--engine":
                engine = nxt
            else:
                jobs = nxt
            k += 2
            continue
        if arg.startswith("--jobs="):
            jobs = arg.partition("=")[2]
        elif arg.startswith("--engine="):
            engine = arg.partition("=")[2]
        elif arg.startswith("-j") and not arg.startswith("--"):
            jobs = arg[2:]
        k += 1
    return engine == "local" and jobs.isdigit() and int(jobs) > 1
