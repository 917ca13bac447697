"""Wiring of the stages into a coding run (the only place that knows their order).

Like a Kedro pipeline: the stage modules are plain functions on tables; this module
feeds them, times them, and hands the result to ``store``. The CLI and notebooks call
``code_corpus``.
"""
from __future__ import annotations

import os
import platform
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from pipeline import __version__
from pipeline import columns as C
from pipeline import ingest as ingest_stage
from pipeline import segment as segment_stage
from pipeline import cache_io, cache_prune, chunk_parts, coded_files, memory_need, table_cache
from pipeline.cache import default_cache_dir
from pipeline.chunk import (SLIM_COLUMNS, ChunkTask, RunContext, remember_codebook,
                            reuse_columns)
from pipeline.chunk_plan import plan_chunks  # noqa: F401 - re-exported
from pipeline.codebook import Codebook, load_codebook
from pipeline.codebook.patterns import PatternMemo
from pipeline.csv_keys import SHARED_KEYS, SharedKeys, defer_keys, shared_keys  # noqa: F401
from pipeline.engine import start_pool_server
from pipeline.ingest import display, file_roots  # path display identical to ingest()
from pipeline.parts import PARTS_PREFIX, PartWriter
from pipeline.run_stream import TABLES, StreamedRun, stream_chunks
from pipeline.store import CodedData, LazyCodedData, commit_staged, output_lock


EXIT_OK, EXIT_PARTIAL = 0, 2
_VERSIONED = ("pandas", "pyarrow", "spacy", "spacy-lookups-data", "nltk", "scikit-learn")


@dataclass
class RunOptions:
    """Options of a coding run; recorded verbatim in the manifest."""

    unit: str | None = None            # None: the codebook's settings.unit
    lang: str | None = None            # force one language for every document
    text_column: str = "text"
    id_column: str = "id"
    code_speakers: list[str] | str | None = None
    metadata: str | None = None
    method: str = "rules"              # rules | ml | hybrid
    model: str | None = None
    batch_size: int = 500
    progress: bool = True
    jobs: int = 1                      # local worker processes (dask: LocalCluster size)
    engine: str = "local"              # local | dask
    scheduler: str | None = None       # dask scheduler address; None: a LocalCluster
    cache: bool = True                 # reuse cached work (chunks, matches, codings, outputs)
    # also keep each document's parse as a spaCy DocBin file (cache/docbin-v1) and read
    # those back; off: parsing again is faster than reading one (benchmarks/RESULTS.md)
    docbin: bool = False
    cache_dir: str | None = None       # None: <out>/.cache
    chunk_bytes: int = 1_000_000       # raw input bytes per chunk (memory vs overhead)
    # a file larger than this (a survey, a long transcript) is coded in parts of about
    # this many bytes of it (``chunk_parts``; None: never): each part is read whole but
    # coded alone, and ``--jobs`` shares the parts out
    part_bytes: int | None = 2_000_000


@dataclass
class RunResult:
    """What a run produced, for the CLI summary and for notebooks."""

    data: CodedData | LazyCodedData  # streaming runs: big tables load on first access
    manifest: dict[str, Any]
    exit_code: int
    out_dir: Path
    codebook: Codebook = field(repr=False)


def versions(packages: tuple[str, ...] = _VERSIONED) -> dict[str, str]:
    """Versions of Python, this package and the libraries that shape the output.

    Args:
        packages: distribution names to report (default: those that shape codings).
    """
    found = {"python": platform.python_version(), "qcode": __version__}
    for name in packages:
        try:
            found[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def _cache_dir(opts: RunOptions, out_dir: str | Path) -> str | None:
    """The run's cache folder (None: ``--no-cache``)."""
    if not opts.cache:
        return None
    return str(Path(opts.cache_dir) if opts.cache_dir else default_cache_dir(out_dir))


def _context(opts: RunOptions, book: Codebook, codebook: str | Path, unit: str,
             inputs: list[Path], out_dir: str | Path) -> RunContext:
    from pipeline.ingest.batch import find_metadata, load_metadata, normalise_lang
    from pipeline.errors import UsageError

    default = normalise_lang(book.settings.default_lang)
    if default is None:
        raise UsageError(f"unknown default language {book.settings.default_lang!r}; use nl or en")
    forced = None
    if opts.lang is not None:
        forced = normalise_lang(opts.lang)
        if forced is None:
            raise UsageError(f"unknown language {opts.lang!r}; use nl or en")
    meta_paths = [Path(opts.metadata)] if opts.metadata is not None else find_metadata(inputs)
    meta, meta_name = load_metadata(meta_paths)
    labels = list(dict.fromkeys([*segment_stage.DEFAULT_INTERVIEWER_LABELS,
                                 *book.settings.interviewer_labels]))
    cache_dir = _cache_dir(opts, out_dir)
    return RunContext(str(Path(codebook).resolve()), book.hash, unit, labels, opts.code_speakers,
                      opts.text_column, opts.id_column, default, forced, meta, meta_name,
                      cache_dir, batch_size=min(opts.batch_size, 1000), book=book,
                      cwd=os.getcwd(), docbin=opts.docbin)


def code_corpus(inputs: Sequence[str | Path], *, codebook: str | Path, out_dir: str | Path,
                options: RunOptions | None = None) -> RunResult:
    """Code transcripts end to end and write the coded folder, streaming in chunks.

    The codebook is validated before anything is written; files that cannot be read
    are listed in ``errors.csv`` and the run goes on with the rest. Documents flow
    through ingest -> segment -> NLP -> coding in chunks (``options.chunk_bytes``)
    on the chosen engine; each chunk's rows are spilled to disk, so peak memory does
    not grow with the corpus, and the outputs are renamed into place at the end,
    manifest last.

    Args:
        inputs: Files and/or folders of transcripts.
        codebook: Path of the codebook YAML.
        out_dir: Output folder (``data/coded``).
        options: Run options.

    Returns:
        The run result; ``exit_code`` is 2 when some input was skipped. ``data``
        loads the big tables from ``out_dir`` on first access.
    """
    opts = options or RunOptions()
    timings: dict[str, float] = {}
    started = clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 3)
        clock = now

    if opts.engine == "local" and opts.jobs > 1:
        start_pool_server()  # its imports and pipeline build overlap the planning below
    # token patterns validated by earlier runs need no spaCy (``codebook.patterns``)
    patterns = PatternMemo(_cache_dir(opts, out_dir))
    book = load_codebook(codebook, patterns=patterns)
    unit = opts.unit or book.settings.unit
    lap("codebook")
    with output_lock(out_dir):
        patterns.save()
        cache_prune.drop_obsolete(_cache_dir(opts, out_dir))
        paths = [Path(p) for p in inputs]
        ctx = _context(opts, book, codebook, unit, paths, out_dir)
        remember_codebook(ctx, book)  # in-process chunks need not load it again
        files = ingest_stage.discover(paths)
        roots = {p.resolve(): p for p in paths if p.is_dir()}
        shown = [display(f, root) for f, root in zip(files, file_roots(files, roots))]
        tasks = plan_chunks(files, shown, chunk_bytes=opts.chunk_bytes,
                            part_bytes=opts.part_bytes)
        if not (opts.engine == "dask" and opts.scheduler):  # a cluster's memory is not ours
            memory_need.warn(files, shown, jobs=opts.jobs, cache=ctx.cache_dir is not None,
                             parts=[t.files[0][1] for t in tasks if t.part is not None],
                             part_bytes=opts.part_bytes or 0)
        prepare = None
        if len(tasks) > 1 and defer_keys(opts, ctx):
            prepare = SharedKeys(files, opts)
        elif len(tasks) > 1:  # one chunk sees every clash itself
            ctx.shared_keys = shared_keys(files, opts, ctx.cache_dir)
        lap("plan")
        # Under the lock, parts left by a killed run are stale: clear them first.
        for stale in Path(out_dir).glob(f"{PARTS_PREFIX}*"):
            shutil.rmtree(stale, ignore_errors=True)
        writer = PartWriter(out_dir)
        try:
            tables = table_cache.prepare(tasks, ctx, book, engine=opts.engine,
                                         dest=writer.dir)
            coded, slices = _coded(tables, tasks, ctx, book, opts, writer.dir)
            # another corpus: the segments rows of chunks whose coding rows are taken too
            segments = (tables.cache.moved([t.key for t in tasks], writer.dir / "table-slices")
                        if tables.files is None and slices is not None else None)
            if segments is not None:
                segments.chunks = {k: v for k, v in segments.chunks.items() if k in slices.chunks}
            for task in tasks:  # a model pass reads the segment parts: whole tables then
                task.slim = tables.files is not None and opts.method == "rules"
                task.reuse = coded is not None or (slices is not None
                                                   and task.index in slices.chunks)
                task.segments_taken = segments is not None and task.index in segments.chunks
            outputs = [(name, base, csv) for name, base, csv in (
                (TABLES[0], C.DOCUMENTS_FILE, False), (TABLES[1], C.SEGMENTS_FILE, True),
                (TABLES[2], C.CODINGS_FILE, True), (TABLES[3], C.MATCHES_FILE, False))
                if (tables.files is None or name not in table_cache.TABLES)
                and (coded is None or name not in coded_files.TABLES)]
            for name, base, csv in outputs:  # final files written as the chunks come
                writer.stream(name, base, csv=csv,
                              splice=slices is not None and name in coded_files.TABLES
                              or bool(segments and segments.chunks) and name == "segments")
            # chunks that are not coded only read their entries' small files: in this
            # process, whatever --jobs says (workers would cost more to start)
            streamed = opts if coded is None or opts.engine != "local" else replace(opts, jobs=1)
            with cache_io.prefetching(_read_ahead(tasks, ctx, streamed)):
                run = stream_chunks(tasks, ctx, streamed, writer, len(files), tables, prepare,
                                    coded=coded is not None, slices=slices,
                                    segments=segments)
            if coded is not None:  # the stored run's counts of what it coded
                run.counts["codings"] = int(coded.counts["codings"])
                run.counts["tokens"] = int(coded.counts["tokens"])
                run.per_code = {str(k): int(v) for k, v in coded.counts["per_code"].items()}
            lap("ingest+nlp+code")
            if opts.method != "rules":
                _model_pass(opts, book, writer, run)
                lap("model")
            staged = dict(tables.files or {})
            staged.update(coded.files if coded is not None else {})
            for name, base, csv in outputs:
                staged.update(writer.finalize(name, base, csv=csv))
            if tables.files is None:
                tables.cache.store(table_cache.tables_key(run.keys), staged,
                                   _tables_layout(staged, writer, run))
            errors = run.errors
            err_path = writer.dir / "errors.csv.staged"
            err_path.write_bytes(errors.to_csv(index=False, lineterminator="\n").encode("utf-8"))
            staged[C.ERRORS_FILE] = err_path
            lap("write")
            pruned = cache_prune.after_run(ctx.cache_dir, run.keys,
                                           table_cache.tables_key(run.keys),
                                           time.time() - (time.perf_counter() - started))
            timings["total"] = round(time.perf_counter() - started, 3)
            manifest = _manifest(opts, book, codebook, unit, run, timings, len(tasks))
            # the coding files of an earlier run were taken: no chunk was coded
            manifest["throughput"]["coded_files_taken"] = coded is not None
            # chunks not coded: their coding rows came from a stored entry's files
            manifest["throughput"]["chunks_taken"] = sum(task.reuse for task in tasks)
            # entries of chunks no recent run used, deleted (``cache_prune``)
            manifest["throughput"]["cache_entries_pruned"] = pruned["entries"]
            manifest["throughput"]["cache_bytes_pruned"] = pruned["bytes"]
            manifest = commit_staged(out_dir, staged, manifest,
                                     {**writer.digests, **tables.cache.digests,
                                      **(coded.digests if coded else {})})
            if coded is None and opts.method == "rules":
                _store_coded(ctx, book, run, writer, Path(out_dir), manifest["outputs"])
            tables.cache.memo.save()
        finally:
            writer.close()
            chunk_parts.forget()  # a run that stopped between a file's parts
    n_failed = run.n_failed
    data = LazyCodedData(out_dir, errors, manifest)
    return RunResult(data=data, manifest=manifest, exit_code=EXIT_PARTIAL if n_failed else EXIT_OK,
                     out_dir=Path(out_dir), codebook=book)


def _read_ahead(tasks: list[ChunkTask], ctx: RunContext,
                opts: RunOptions) -> list[tuple[str, cache_io.Job]]:
    """Prefetch jobs of the chunks' cache files: only when they run in this process."""
    if opts.engine != "local" or opts.jobs != 1 or ctx.cache_dir is None \
            or any(task.key is None for task in tasks):
        return []
    return [(task.key, cache_io.chunk_job(ctx.cache_dir, task.key, reuse_columns(task),
                                          tokens=False, light=task.slim)
             if task.reuse else
             cache_io.chunk_job(ctx.cache_dir, task.key, SLIM_COLUMNS if task.slim else None))
            for task in tasks]


def _coded(tables: table_cache.RunTables, tasks: list[ChunkTask], ctx: RunContext,
           book: Codebook, opts: RunOptions, dest: Path):  # noqa: ANN202
    """The stored coding files of this run (``coded_files.Found``), or else the chunks
    whose rows a stored entry holds (``coded_slices.Slices``): (found, slices), when
    the rules code it. Without the run's documents and segments files (another
    corpus), only chunks a stored entry of another corpus holds (``CodedFiles.moved``)."""
    if opts.method != "rules" or not tasks or ctx.cache_dir is None:
        return None, None
    keys = [task.key for task in tasks]
    store = coded_files.CodedFiles(ctx.cache_dir, tables.cache.memo)
    if tables.files is None:  # another corpus: the chunks a recent run had
        return None, store.moved(book, keys, dest / "slices")
    found = store.find(table_cache.tables_key(keys), book, keys, dest)
    return found, (store.slices(book, keys, dest / "slices") if found is None else None)


def _tables_layout(staged: dict[str, Path], writer: PartWriter,
                   run: StreamedRun) -> list[dict] | None:
    """Every chunk's place in the run's segments files (``coded_slices.tables_layout``),
    or None (not written part by part: a model pass)."""
    from pipeline.coded_slices import SEGMENTS_CSV, SEGMENTS_FILE, tables_layout

    if "segments" not in writer.csv_sizes or SEGMENTS_FILE not in staged:
        return None
    rows = [writer.schemas[p][1] for p in writer.parts.get("segments", [])]
    return tables_layout({SEGMENTS_FILE: staged[SEGMENTS_FILE],
                          SEGMENTS_CSV: staged.get(SEGMENTS_CSV)},
                         rows, writer.csv_sizes["segments"], run.keys, run.renamed)


def _store_coded(ctx: RunContext, book: Codebook, run: StreamedRun, writer: PartWriter,
                 out_dir: Path, digests: dict[str, str]) -> None:
    """Keep the committed coding files for a later run (``coded_files``), with every
    chunk's place in them, streamed or merged (``coded_slices.layout``)."""
    from pipeline.coded_slices import layout

    if ctx.cache_dir is None:
        return
    counts = {"codings": run.counts["codings"], "tokens": run.counts["tokens"],
              "per_code": dict(sorted(run.per_code.items()))}
    files = {name: out_dir / name for name in coded_files.FILES}
    chunks = None
    if "codings" in writer.csv_sizes:
        rows = {name: [writer.schemas[p][1] for p in writer.parts.get(name, [])]
                for name in coded_files.TABLES}
        chunks = layout(files, rows, writer.csv_sizes["codings"],
                        [t for t, _ in run.chunk_counts], [p for _, p in run.chunk_counts],
                        run.keys, run.renamed)
    coded_files.CodedFiles(ctx.cache_dir).store(
        table_cache.tables_key(run.keys), book, files, digests, counts, chunks)


def _manifest(opts: RunOptions, book: Codebook, codebook: str | Path, unit: str, run: StreamedRun,
              timings: dict[str, float], n_chunks: int) -> dict[str, Any]:
    wall = max(run.wall_s, 1e-9)
    return {
        "qcode_version": __version__,
        "codebook": {"path": str(codebook), "hash": book.hash, "version": book.version},
        "inputs": run.inputs,
        "options": {**asdict(opts), "unit": unit},
        "versions": versions(),
        "counts": {
            "documents": run.counts["documents"],
            "files_failed": run.n_failed,
            "segments": run.counts["segments"],
            "segments_coded": run.counts["segments_coded"],
            "codings": run.counts["codings"],
            "codings_per_code": dict(sorted(run.per_code.items())),
        },
        "timings_s": timings,
        # Worker-side stage times summed over chunks (CPU seconds across all workers).
        "stage_times_s": {k: round(v, 3) for k, v in run.stage_s.items()},
        "throughput": {
            "chunks": n_chunks,
            "tokens": run.counts["tokens"],
            "segments_per_s": round(run.counts["segments"] / wall, 1),
            "documents_per_s": round(run.counts["documents"] / wall, 2),
            "tokens_per_s": round(run.counts["tokens"] / wall, 1),
            "cache_hits": run.counts["cache_hits"],
            "cache_misses": run.counts["cache_misses"],
        },
    }


def _model_pass(opts: RunOptions, book: Codebook, writer: PartWriter, run: StreamedRun) -> None:
    """ml/hybrid: the model re-codes the spilled chunks, on the run's engine.

    The rule codings of a chunk are replaced by the model's (ml) or the combination's
    (hybrid); a few chunks' segments and codings are in memory at a time, so a model
    run is memory-bounded like a rule run (``pipeline.model_pass``).
    """
    from pipeline.errors import UsageError
    from pipeline.model_pass import model_codings

    if not opts.model:
        raise UsageError(f"--method {opts.method} needs --model MODEL (train one with 'qcode train')")
    from pipeline import ml

    model = ml.load_model(opts.model, codebook=book)
    chunks = list(zip(writer.parts.get("segments", []), writer.parts.get("codings", [])))
    writer.reset("codings")
    per_code: dict[str, int] = {}
    n_codings = 0
    for codings in model_codings(chunks, model, opts.method, jobs=opts.jobs, engine=opts.engine,
                                 scheduler=opts.scheduler):
        writer.add("codings", codings)
        n_codings += len(codings)
        for code, n in codings[C.CODE_ID].value_counts().items():
            per_code[str(code)] = per_code.get(str(code), 0) + int(n)
    run.counts["codings"] = n_codings
    run.per_code = dict(sorted(per_code.items()))
