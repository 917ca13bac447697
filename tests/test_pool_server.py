"""The CLI's early start of the fork server and the batch garbage-collector settings."""
from __future__ import annotations

import gc

import pytest

from pipeline.pool_server import BATCH_GC_THRESHOLD, batch_gc, wants_pool


@pytest.mark.parametrize("argv, expected", [
    (["code", "in", "--jobs", "2"], True),
    (["code", "in", "--jobs=3"], True),
    (["run", "-j", "2"], True),
    (["code", "-j2", "in"], True),
    (["code", "in", "--jobs", "1"], False),
    (["code", "in"], False),
    (["code", "in", "--jobs", "2", "--engine", "dask"], False),
    (["code", "in", "--engine=dask", "-j4"], False),
    (["matrix", "--jobs", "2"], False),
    (["code", "--", "--jobs", "2"], False),
    (["code", "in", "--jobs", "x"], False),
    ([], False),
])
def test_wants_pool(argv: list[str], expected: bool) -> None:
    assert wants_pool(argv) is expected


def test_batch_gc_is_undone() -> None:
    before = gc.get_threshold()
    restore = batch_gc()
    try:
        assert gc.get_threshold() == BATCH_GC_THRESHOLD
        assert gc.get_freeze_count() > 0
    finally:
        gc.set_threshold(*restore)
        gc.unfreeze()
    assert gc.get_threshold() == before


@pytest.mark.parametrize("caller_froze", [False, True])
def test_cli_main_leaves_the_callers_gc_as_it_was(tmp_path, capsys, caller_froze: bool) -> None:
    from pipeline.cli import main
    before = gc.get_threshold()
    if caller_froze:
        gc.freeze()
    frozen = gc.get_freeze_count()
    try:
        # a command that gets past the gc set-up and fails: the finally block still runs
        assert main(["code", str(tmp_path / "missing"), "--out", str(tmp_path / "out")]) == 1
        assert "missing" in capsys.readouterr().err
        assert gc.get_threshold() == before
        if caller_froze:   # the caller's frozen objects are not thawed behind its back
            assert gc.get_freeze_count() >= frozen > 0
        else:
            assert gc.get_freeze_count() == 0
    finally:
        gc.unfreeze()


def _python(code: str, **env: str) -> str:
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = str(Path(__file__).resolve().parents[1])
    full = {**os.environ, "PYTHONPATH": root, **env}
    return subprocess.run([sys.executable, "-c", code], env=full, check=True,
                          capture_output=True, text=True).stdout.strip()


def test_lean_spacy_import_skips_spacys_cli_and_keeps_it_importable() -> None:
    out = _python(
        "import sys\n"
        "from pipeline.spacy_lean import lean_spacy_import\n"
        "lean_spacy_import(now=True)\n"
        "import spacy\n"
        "print('spacy.cli' in sys.modules, 'weasel' in sys.modules)\n"
        "print(spacy.blank('nl')('Wij mochten het zelf invullen.')[1].text)\n"
        "print(isinstance(spacy.info(silent=True), dict))\n"
        "import spacy.cli\n"
        "print(callable(spacy.cli.download))\n")
    assert out.splitlines() == ["False False", "mochten", "True", "True"]


def test_lean_spacy_import_waits_for_the_first_import() -> None:
    out = _python(
        "import sys\n"
        "from pipeline.spacy_lean import lean_spacy_import\n"
        "lean_spacy_import(); lean_spacy_import()\n"
        "print('spacy' in sys.modules)\n"
        "import spacy.tokens\n"
        "print('spacy.cli' in sys.modules,\n"
        "      any(type(f).__name__ == '_LeanFinder' for f in sys.meta_path))\n")
    assert out.splitlines() == ["False", "False False"]


def test_fork_server_warms_the_default_language_only() -> None:
    code = ("import pipeline.nlp_warm as w\n"
            "from pipeline.nlp import make_nlp\n"
            "print(w.warm_languages(), make_nlp.cache_info().currsize)\n")
    assert _python(code) == "('nl',) 1"
    assert _python(code, QCODE_WARM_LANGUAGES="en, nl") == "('en', 'nl') 2"
    assert _python(code, QCODE_WARM_LANGUAGES="") == "() 0"
    assert _python(code, QCODE_WARM_LANGUAGES="xx") == "('xx',) 0"


def test_fork_server_builds_the_piece_tokenizer_of_what_it_warms() -> None:
    code = ("import pipeline.nlp_warm\n"
            "from pipeline import nlp_fast\n"
            "from pipeline.nlp import make_nlp\n"
            "got = nlp_fast._TOKENIZERS.get(id(make_nlp('nl')))\n"
            "print(len(nlp_fast._TOKENIZERS), got is not None and got.nlp is make_nlp('nl'))\n")
    assert _python(code) == "1 True"
    assert _python(code, QCODE_WARM_LANGUAGES="") == "0 False"


def test_fork_server_preloads_with_the_batch_gc_thresholds() -> None:
    code = "import gc\nimport pipeline.nlp_warm\nprint(tuple(gc.get_threshold()))\n"
    assert _python(code, QCODE_WARM_LANGUAGES="") == str(BATCH_GC_THRESHOLD)


def test_a_worker_imports_no_pipeline_module_on_its_first_chunk(tmp_path) -> None:
    """What a chunk needs is in PRELOAD: imported once by the fork server, not by each
    worker on its first chunk (the first chunk of every worker is on the critical path)."""
    import pickle
    from pathlib import Path

    from pipeline import ingest
    from pipeline.codebook import load_codebook
    from pipeline.runner import RunOptions, _context, plan_chunks

    root = Path(__file__).resolve().parents[1]
    book_path = root / "codebook.yaml"
    book = load_codebook(book_path)
    inputs = [root / "data" / "raw"]
    ctx = _context(RunOptions(cache=False), book, book_path, book.settings.unit, inputs, tmp_path)
    files = ingest.discover(inputs)
    task = plan_chunks(files, [f.name for f in files], chunk_bytes=1 << 30)[0]
    job = tmp_path / "job.pkl"
    job.write_bytes(pickle.dumps((task, ctx)))
    code = ("import pickle, sys\n"
            "from pipeline.pool_server import PRELOAD\n"
            "for name in PRELOAD:\n"
            "    __import__(name)\n"
            f"task, ctx = pickle.loads(open({str(job)!r}, 'rb').read())\n"
            "before = set(sys.modules)\n"
            "from pipeline.chunk import process_chunk\n"
            "result = process_chunk(task, ctx)\n"
            "assert len(result.segments) and len(result.codings), result.errors\n"
            "print(sorted(m for m in set(sys.modules) - before if m.startswith('pipeline')))\n")
    assert _python(code, QCODE_WARM_LANGUAGES="") == "[]"
