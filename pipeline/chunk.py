"""One unit of work of a streaming run: a few input files -> coded tables.

``process_chunk`` runs ingest → segment → NLP → rule coding for a chunk of files and
returns its slice of every output table. It is a plain function of picklable
arguments, so the same code runs in-process, in a local process pool and on Dask
workers, and every engine gives the same output. Whole-corpus concerns (metadata rows
without a document, the final sort of errors) stay with the runner.

Chunks hold whole documents, in ``doc_id`` order, and every file with the same stem
lands in the same chunk, so a chunk's tables are exactly the rows a whole-corpus run
would give for those documents, and concatenating chunks in order gives the
whole-corpus tables.
"""
from __future__ import annotations

import hashlib
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from pipeline import columns as C
from pipeline.errors import InputError

# Error-row sort keys; the order reproduces the whole-corpus ingest: file problems in
# path order, metadata column renames, missing metadata, orphan metadata rows, languages.
PHASE_FILE, PHASE_META_COLUMNS, PHASE_NO_META, PHASE_ORPHAN_META, PHASE_LANG = range(5)
ORDER = "_order"


@dataclass
class RunContext:
    """Everything a worker needs besides its files (picklable; sent once per worker)."""

    codebook_path: str
    codebook_hash: str
    unit: str
    interviewer_labels: list[str]
    code_speakers: list[str] | str | None
    text_column: str
    id_column: str
    default_lang: str
    forced_lang: str | None
    meta: pd.DataFrame | None
    meta_name: str
    cache_dir: str | None
    batch_size: int = 256
    # CSV id values used by more than one CSV file of the run (prefixed in every chunk)
    shared_keys: frozenset[str] = frozenset()
    # The codebook the runner loaded and validated (a few KB pickled): a worker need
    # not parse the YAML again (about 0.1 s of CPU per worker for 500 rules).
    book: Any = None
    # The runner's working directory: relative input and cache paths are relative to
    # it, also on a Dask worker started elsewhere (``engine``). None: the worker's own.
    cwd: str | None = None
    # Per-document DocBin entries (``cache.DocCache``) written and read: ``RunOptions.docbin``.
    docbin: bool = False


@dataclass
class ChunkTask:
    """Files of one chunk: (index in path order, path, path as shown in outputs).

    ``key``: the chunk-cache key the runner computed (``task_key``; None: the worker
    computes it), so runner and workers agree on which entries the run uses.
    ``slim``: the runner has the finished documents and segments files (table cache):
    a chunk-cache entry gives only the columns coding and the runner read.
    ``shared_keys``: the run's shared CSV ids when the runner found them after the
    workers got the context (None: ``RunContext.shared_keys``); only chunks with a
    CSV file use them.
    ``reuse``: the runner has the chunk's rows of the coding files (``coded_files``,
    ``coded_slices``): the chunk is not coded, its entry gives what the runner counts
    and reports (and its documents and segments when not ``slim``).
    ``segments_taken``: the runner has the chunk's rows of the segments files too (a
    reused chunk, ``TableCache.moved``): its entry gives its documents and the ids of
    its segments only.
    ``part``: ``(k, n)``: the chunk is the k-th of n parts of its one file (a large
    survey or transcript): it codes the k-th n-th of the file's segments, in order; only
    the first part has the document's row and the file's error rows (``chunk_parts``).
    """

    index: int
    files: list[tuple[int, str, str]]
    key: str | None = None
    slim: bool = False
    shared_keys: frozenset[str] | None = None
    reuse: bool = False
    part: tuple[int, int] | None = None
    segments_taken: bool = False


@dataclass
class ChunkResult:
    """A chunk's slice of the output tables plus counters and timings."""

    index: int
    documents: pd.DataFrame
    segments: pd.DataFrame
    matches: pd.DataFrame
    codings: pd.DataFrame
    errors: pd.DataFrame                 # ERROR_COLUMNS + ORDER
    present: list[str]                   # doc ids read
    failed: list[str]                    # stems of files that could not be read
    stats: dict[str, Any] = field(default_factory=dict)
    codings_csv: bytes | None = None     # codings.csv lines of ``codings`` (None: not made)
    # segments.csv lines of ``segments``, made on a thread while the chunk was coded
    # (None: not made); for the spill where the chunk ran, never pickled (``__getstate__``)
    segments_csv: bytes | None = None

    def __getstate__(self) -> dict[str, Any]:
        """The result as pickled (pool worker or Dask -> runner): without ``segments_csv``.

        The lines are for the spill where the chunk ran (``parts.ChunkSpill``); the
        runner formats a table it must write itself, and would only copy them for nothing.
        """
        state = self.__dict__.copy()
        state["segments_csv"] = None
        return state


# What code_chunk and the runner read of a chunk's tables when their files are cached.
SLIM_COLUMNS = {"documents": [C.DOC_ID, C.PATH, C.SHA256],
                "segments": [C.SEGMENT_ID, C.DOC_ID, C.UNIT_INDEX, C.CODED, C.START, C.LANG,
                             C.TEXT]}
# ... of a chunk that is not coded (``ChunkTask.reuse``): what the runner reads only
REUSE_COLUMNS = {"documents": SLIM_COLUMNS["documents"],
                 "segments": [C.SEGMENT_ID, C.DOC_ID, C.UNIT_INDEX, C.CODED]}

_BOOKS: dict[tuple[str, str], Any] = {}


def reuse_columns(task: ChunkTask) -> dict[str, list[str]] | None:
    """The columns a chunk that is not coded (``ChunkTask.reuse``) reads of its entry."""
    if task.slim:
        return REUSE_COLUMNS
    if task.segments_taken:  # its documents are written from the entry
        return {"segments": REUSE_COLUMNS["segments"]}
    return None


def _codebook(ctx: RunContext):  # noqa: ANN202
    """Load (once per process) the codebook the run validated."""
    from pipeline.codebook import load_codebook

    key = (ctx.codebook_path, ctx.codebook_hash)
    if key not in _BOOKS:
        book = ctx.book
        if book is None or book.hash != ctx.codebook_hash:
            book = load_codebook(ctx.codebook_path)
        if book.hash != ctx.codebook_hash:
            raise InputError(ctx.codebook_path, "changed while the run was going on; run again")
        _BOOKS.clear()
        _BOOKS[key] = book
    return _BOOKS[key]


def remember_codebook(ctx: RunContext, book) -> None:  # noqa: ANN001
    """Use ``book`` (already loaded and validated by the runner) for in-process chunks."""
    _BOOKS.clear()
    _BOOKS[(ctx.codebook_path, ctx.codebook_hash)] = book


def read_chunk(task: ChunkTask, ctx: RunContext, errors: list[dict]):  # noqa: ANN201
    """Read the chunk's files like ``ingest.ingest`` does for a whole corpus."""
    from pipeline.ingest import assign_doc_ids, document_languages, join_metadata, read_files

    # Files sharing a stem are in one chunk, so these ids are the whole-corpus ids.
    doc_ids, id_warnings = assign_doc_ids([p for _, p, _ in task.files],
                                          [s for _, _, s in task.files])

    def report(i: int, file: str, severity: str, message: str) -> None:
        errors.append({C.ERROR_FILE: file, C.ERROR_STAGE: "ingest", C.ERROR_SEVERITY: severity,
                       C.ERROR_MESSAGE: message, ORDER: (PHASE_FILE, task.files[i][0])})

    documents, table, seen, failed = read_files(
        [p for _, p, _ in task.files], doc_ids, [s for _, _, s in task.files], id_warnings,
        text_column=ctx.text_column, id_column=ctx.id_column, report=report)
    positions = {doc_id: task.files[i][0] for doc_id, i in seen.items()}

    def meta_report(phase: int):  # noqa: ANN202
        def report(file: str, severity: str, message: str) -> None:
            if phase == PHASE_NO_META and file == ctx.meta_name:
                return  # column renames: reported once per run by the runner
            doc = next((d for d, p in zip(documents[C.DOC_ID], documents[C.PATH]) if p == file),
                       None)
            errors.append({C.ERROR_FILE: file, C.ERROR_STAGE: "ingest", C.ERROR_SEVERITY: severity,
                           C.ERROR_MESSAGE: message, ORDER: (phase, positions.get(doc, -1))})
        return report

    # Only this chunk's rows: orphan metadata rows are a whole-corpus question (and a
    # language is looked up for the chunk's documents only: the same as in all rows).
    meta = _chunk_meta(ctx.meta, documents[C.DOC_ID].tolist())
    documents = join_metadata(documents, meta, ctx.meta_name, set(), meta_report(PHASE_NO_META))
    documents[C.LANG] = document_languages(documents, meta, ctx.forced_lang, ctx.default_lang,
                                           meta_report(PHASE_LANG), detect=True,
                                           languages=_codebook(ctx).settings.languages)
    documents = documents.sort_values(C.DOC_ID, kind="stable").reset_index(drop=True)
    documents[C.N_CHARS] = documents[C.N_CHARS].astype("int64")
    return documents, table, list(seen), failed


_META_ROWS: list = []  # [(metadata table, doc id -> its row positions)]: the run's, once


def _chunk_meta(meta: pd.DataFrame | None, doc_ids: list) -> pd.DataFrame | None:
    """``meta[meta[doc_id].isin(doc_ids)]``, by row positions indexed once per table.

    A run's metadata has a row per document of the corpus: filtering all of them for
    every chunk made the chunks of a large corpus cost more the larger it was.
    """
    if meta is None:
        return None
    if not _META_ROWS or _META_ROWS[0][0] is not meta:
        rows: dict = {}
        for row, doc_id in enumerate(meta[C.DOC_ID].tolist()):
            rows.setdefault(doc_id, []).append(row)
        _META_ROWS[:] = [(meta, rows)]
    rows = _META_ROWS[0][1]
    wanted = set(doc_ids)
    if any(doc_id != doc_id for doc_id in wanted):  # a NaN id: as isin matches NaN
        return meta[meta[C.DOC_ID].isin(wanted)]
    return meta.take(sorted(r for doc_id in wanted for r in rows.get(doc_id, ())))


def process_chunk(task: ChunkTask, ctx: RunContext) -> ChunkResult:
    """Ingest, segment and code one chunk of files (runs in any worker).

    With a cache folder, a chunk whose files and settings are unchanged comes from the
    chunk cache (``pipeline.chunk_cache``): only matching (of the rules that
    changed, ``pipeline.match_cache``) and aggregation run. A chunk that is part of a
    large file (``task.part``) codes its share of the file's segments
    (``chunk_parts``). A chunk that runs out of memory (a file too large for this
    machine: other documents are coded in one piece) is not coded: its files are error
    rows and the run goes on (``chunk_memory``).

    Args:
        task: The chunk's files.
        ctx: Run-wide settings.

    Returns:
        The chunk's rows of every output table, and counters/timings in ``stats``.

    Raises:
        InputError: out of memory in a chunk whose tables the runner takes from its
            cache (they would hold the documents the chunk could not code).
    """
    try:
        return _process_chunk(task, ctx)
    except MemoryError:
        pass  # handled below, once the exception (and the arrays its frames hold) is gone
    from pipeline.chunk_memory import not_coded

    return not_coded(task, ctx)


def _process_chunk(task: ChunkTask, ctx: RunContext) -> ChunkResult:
    from pipeline.cache import DocCache
    from pipeline.chunk_cache import ChunkCache, ChunkEntry, relocated
    from pipeline.chunk_code import code_chunk, vocab_of
    from pipeline.coding_cache import CodingCache
    from pipeline.match_cache import MatchCache

    clock = time.perf_counter()
    stats: dict[str, Any] = {"pid": os.getpid()}

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        stats[f"{name}_s"] = now - clock
        clock = now

    book = _codebook(ctx)
    chunks = ChunkCache(ctx.cache_dir)
    key = None
    if chunks.folder:
        key = task.key if task.key is not None else task_key(task, ctx, book)
    given = [*(path for _, path, _ in task.files), ctx.meta_name]
    places = [pos for pos, _, _ in task.files]  # the files' positions in this run
    entry = None
    if task.reuse and key is not None:
        # slim: the runner has the documents and segments files; else (a chunk of
        # another corpus's coding files, ``coded_slices.moved``) they are written from these
        entry = chunks.load(key, vocab_of, reuse_columns(task), tokens=False, light=task.slim)
        if entry is not None and relocated(entry, given, places) is not None:
            _stored_ids(entry, stats)
            return _uncoded(task, entry, key, stats, lap)
    if entry is None:
        entry = chunks.load(key, vocab_of, SLIM_COLUMNS if task.slim else None)
    if entry is not None and relocated(entry, given, places) is None:
        # made from other paths, which its messages name where they cannot be moved:
        # coded again, and stored for these paths
        chunks.discard(key)
        entry = None
    segments_csv = None
    # a part's documents' languages and opening units (``chunk_parts.first_languages``,
    # ``first_units``)
    doc_langs = doc_first = None
    if entry is not None:
        documents, segments, errors = entry.documents, entry.segments, entry.errors
        present, failed = entry.present, entry.failed
        if task.part is not None:
            doc_langs, doc_first = entry.stats.get("doc_langs"), entry.stats.get("doc_first")
        _stored_ids(entry, stats)
        lap("ingest")
        lap("segment")
    else:
        if task.part is None:
            documents, segments, errors, present, failed = _read_and_segment(task, ctx, book, lap)
        else:
            from pipeline.chunk_parts import part_of

            (documents, segments, errors, present, failed), doc_langs, doc_first = part_of(
                task, lambda: _read_and_segment(task, ctx, book, lap),
                _key_settings(ctx, book, task), lap)
        if key is not None and task_key(task, ctx, book) != key:
            key = None  # a file changed since it was hashed: nothing of it is cached
        # the segments' CSV lines (Arrow kernels, which release the GIL) on another core
        # while this thread codes the chunk
        from pipeline.csv_rows import LinesOnThread

        segments_csv = LinesOnThread(segments)
    stats["key"] = key  # the key these tables belong to (None: not cacheable)
    cache = DocCache(ctx.cache_dir if ctx.docbin else None)
    # Survey tables by their path (cached slim documents keep only id, path and hash);
    # a part's segments are all of one file (whose row only the first part has)
    tables = (frozenset(d for d, p in zip(documents[C.DOC_ID].tolist(),
                                          documents[C.PATH].tolist())
                        if str(p).lower().endswith(".csv"))
              if task.part is None else frozenset(segments[C.DOC_ID].unique().tolist())
              if task.files[0][1].lower().endswith(".csv") else frozenset())
    parsed = None
    if entry is None and key is not None:
        from pipeline.segment_ids import summary

        # what the runner's check of segment ids across chunks needs, kept in the entry
        # (``_stored_ids``): a later run need not look at the ids of a stored chunk
        ids = summary(segments)
        if ids is not None:
            stats["ids"] = ids

        def parsed(tokens: dict[int, list]) -> None:
            # the entry is encoded and written on the cache thread while this one codes
            # the chunk (saved after the coding, a large file's entry was written alone)
            kept = {} if doc_langs is None else {"doc_langs": doc_langs, "doc_first": doc_first}
            if ids is not None:
                kept.update(ids=ids, **_light(documents, segments))
            _save_entry(chunks, key, book, ChunkEntry(
                documents, segments, errors, present, failed, kept, tokens, {}, [], given, places))

    coded = code_chunk(segments, book, cache, ctx.batch_size,
                       entry.tokens if entry is not None else None,
                       MatchCache(ctx.cache_dir, key), CodingCache(ctx.cache_dir, key), tables,
                       parsed, doc_langs, doc_first)
    lap("nlp_code")
    stats.update(documents=len(documents), segments=len(segments),
                 segments_coded=int(segments[C.CODED].sum()), tokens=coded.n_tokens,
                 cache_hits=cache.hits + coded.n_stored, cache_misses=cache.misses)
    return ChunkResult(task.index, documents, segments, coded.matches, coded.codings,
                       pd.DataFrame(errors, columns=[*C.ERROR_COLUMNS, ORDER]),
                       present, failed, stats, coded.codings_csv,
                       segments_csv.result() if segments_csv is not None else None)


def _light(documents: pd.DataFrame, segments: pd.DataFrame) -> dict[str, Any]:
    """What the runner reads of a chunk that is not coded besides its ids' summary,
    kept in its entry's meta (``chunk_cache.ChunkCache.load(..., light=True)``): its
    documents' ``LIGHT_DOCUMENTS`` and its segments' counts (empty: not JSON-able)."""
    from pipeline.chunk_cache import LIGHT_DOCUMENTS

    rows = [list(row) for row in zip(*(documents[c].tolist() for c in LIGHT_DOCUMENTS))] \
        if len(documents) else []
    if not all(type(v) is str for row in rows for v in row):
        return {}
    return {"documents_rows": rows,
            "counts": {"segments": len(segments),
                       "segments_coded": int(segments[C.CODED].sum()) if len(segments) else 0}}


def _stored_ids(entry, stats: dict[str, Any]) -> None:  # noqa: ANN001
    """The summary of a stored chunk's segment ids (``segment_ids.summary``), if its
    entry has one, into ``stats["ids"]`` (``run_stream`` checks it across chunks)."""
    from pipeline.chunk_cache import stored_ids

    ids = stored_ids(entry.stats)
    if ids is not None:
        stats["ids"] = ids


def _save_entry(chunks, key: str, book, entry) -> None:  # noqa: ANN001
    """Store a chunk entry (``chunk_cache.ChunkCache.save``) with the fingerprints and
    vocabs of its coded languages that have rules, and the codebook's ruled languages."""
    from pipeline.chunk_code import has_rules, vocab_of
    from pipeline.coded_files import ruled_languages

    segments = entry.segments
    # each distinct language once (not a Python test per segment)
    langs = sorted({lang for lang in [
        *(segments.loc[segments[C.CODED].astype(bool), C.LANG].unique().tolist()
          if len(segments) else []),
        *entry.stats.get("doc_langs", {}).values()] if has_rules(book, lang)})
    entry.fingerprints = {lang: vocab_of(lang)[0] for lang in langs}
    entry.ruled = ruled_languages(book)
    chunks.save(key, entry, [vocab_of(lang)[1] for lang in langs])


def _uncoded(task: ChunkTask, entry, key: str, stats: dict[str, Any],  # noqa: ANN001
             lap) -> ChunkResult:  # noqa: ANN001
    """A chunk the runner has the coding files of: its tables and counters, no coding."""
    from pipeline.code import empty_codings
    from pipeline.code.matching import _empty_matches

    for stage in ("ingest", "segment", "nlp_code"):
        lap(stage)
    segments = entry.segments
    if segments is None:  # its meta has the counts (and the ids' summary): not read
        counts = entry.stats["counts"]
        segments = pd.DataFrame({c: pd.Series(dtype=object if c != C.CODED else bool)
                                 for c in REUSE_COLUMNS["segments"]})
        stats.update(segments=counts["segments"], segments_coded=counts["segments_coded"],
                     light=True)
    else:
        stats.update(segments=len(segments), segments_coded=int(segments[C.CODED].sum()))
    stats.update(key=key, documents=len(entry.documents), tokens=0,
                 cache_hits=len(entry.documents), cache_misses=0, uncoded=True,
                 segments_taken=task.segments_taken)
    return ChunkResult(task.index, entry.documents, segments, _empty_matches(),
                       empty_codings(), pd.DataFrame(entry.errors, columns=[*C.ERROR_COLUMNS, ORDER]),
                       entry.present, entry.failed, stats, b"", None)


def _read_and_segment(task: ChunkTask, ctx: RunContext, book, lap):  # noqa: ANN001, ANN202
    """Ingest and segment the chunk's files: (documents, segments, errors, present, failed)."""
    from pipeline import segment as segment_stage
    from pipeline.langid import remembering

    errors: list[dict] = []
    seg_errors: list[dict] = []
    # a survey's language is detected from its answers' words, then each answer's from
    # the same counts
    with remembering():
        documents, turns, present, failed = read_chunk(task, ctx, errors)
        lap("ingest")
        segments = segment_stage.segment(
            documents, turns, unit=ctx.unit, interviewer_labels=ctx.interviewer_labels,
            code_speakers=ctx.code_speakers,
            # --lang forces one language: no detection then
            detect_lang="never" if ctx.forced_lang else book.settings.detect_lang,
            languages=book.settings.languages, errors=seg_errors,
            shared_keys=ctx.shared_keys if task.shared_keys is None else task.shared_keys)
    positions = {shown: pos for pos, _, shown in task.files}
    errors += [{**e, ORDER: (PHASE_FILE, positions.get(e[C.ERROR_FILE], -1))} for e in seg_errors]
    lap("segment")
    return documents, segments, errors, present, failed


def task_key(task: ChunkTask, ctx: RunContext, book, memo=None) -> str | None:  # noqa: ANN001
    """The chunk-cache key of a chunk (``chunk_cache.chunk_key``; None: a file is unreadable;
    ``memo``: a ``digest_memo.DigestMemo`` of the files' digests)."""
    from pipeline.chunk_cache import chunk_key

    settings = _key_settings(ctx, book, task)
    if task.part is not None:
        settings["part"] = list(task.part)
    return chunk_key(task.files, settings, memo)


def _key_settings(ctx: RunContext, book, task: ChunkTask) -> dict[str, Any]:  # noqa: ANN001
    """Everything besides the files that shapes a chunk's documents, segments and errors.

    Of the metadata, the rows of the chunk's documents and the table's columns and
    types (``_meta_digest``); of the CSV ids several files of the run use, all of
    them, for a chunk with a CSV file: an interview and its metadata row added to a
    project leave the keys of the other chunks as they were.
    """
    csv = any(str(path).lower().endswith(".csv") for _, path, _ in task.files)
    return {"unit": ctx.unit, "labels": ctx.interviewer_labels, "speakers": ctx.code_speakers,
            "text_column": ctx.text_column, "id_column": ctx.id_column,
            "default_lang": ctx.default_lang, "forced_lang": ctx.forced_lang,
            # its name is in error rows only (``relocated``)
            "meta": _meta_digest(ctx, task),
            "shared_keys": (hashlib.sha256("\n".join(sorted(ctx.shared_keys)).encode()).hexdigest()
                            if csv else None),
            "languages": list(book.settings.languages), "detect_lang": book.settings.detect_lang}


def _meta_digest(ctx: RunContext, task: ChunkTask) -> str:
    """Digest of what ``read_chunk`` takes of the run's metadata: the rows of the chunk's
    document ids (``_chunk_meta``), with the table's columns and their types; rows moved
    in the file change nothing."""
    from pipeline.chunk_keys import frame_digest
    from pipeline.ingest import assign_doc_ids

    if ctx.meta is None:
        return frame_digest(None)
    doc_ids, _ = assign_doc_ids([p for _, p, _ in task.files], [s for _, _, s in task.files])
    schema, rows = _meta_row_digests(ctx.meta)
    h = hashlib.sha256(schema.encode())
    for doc_id in sorted(set(map(str, doc_ids))):
        for digest in rows.get(doc_id, ()):
            h.update(digest)
    return h.hexdigest()


_META_DIGESTS: list = []  # [(metadata table, (schema digest, doc id -> its rows' digests))]
_META_LOCK = threading.Lock()


def _meta_row_digests(meta: pd.DataFrame) -> tuple[str, dict[str, list[bytes]]]:
    """The digest of a metadata table's columns and types, and of each row by doc id:
    made once per table, as chunk keys are made on two threads for every chunk."""
    with _META_LOCK:
        if _META_DIGESTS and _META_DIGESTS[0][0] is meta:
            return _META_DIGESTS[0][1]
        schema = repr([list(map(str, meta.columns)), [str(t) for t in meta.dtypes]])
        rows: dict[str, list[bytes]] = {}
        at = list(meta.columns).index(C.DOC_ID)
        for values in zip(*(meta[c].tolist() for c in meta.columns)):
            rows.setdefault(str(values[at]), []).append(
                hashlib.sha256(repr(values).encode("utf-8")).digest())
        _META_DIGESTS[:] = [(meta, (hashlib.sha256(schema.encode()).hexdigest(), rows))]
        return _META_DIGESTS[0][1]
