"""Wiring of the stages into a coding run (the only place that knows their order).

Like a Kedro pipeline: the stage modules are plain functions on tables; this module
feeds them, times them, and hands the result to ``store``. The CLI and notebooks call
``code_corpus``.
"""
from __future__ import annotations

import platform
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline import __version__
from pipeline import columns as C
from pipeline import ingest as ingest_stage
from pipeline import segment as segment_stage
from pipeline.codebook import Codebook, load_codebook
from pipeline.store import CodedData, output_lock, write_coded

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


@dataclass
class RunResult:
    """What a run produced, for the CLI summary and for notebooks."""

    data: CodedData
    manifest: dict[str, Any]
    exit_code: int
    out_dir: Path
    codebook: Codebook = field(repr=False)


def versions() -> dict[str, str]:
    """Versions of Python, this package and the libraries that shape the output."""
    found = {"python": platform.python_version(), "qcode": __version__}
    for name in _VERSIONED:
        try:
            found[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def _progress(total: int, enabled: bool, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not enabled, desc=desc, unit="seg", leave=False)


def code_segments_batched(segments: pd.DataFrame, codebook: Codebook, *, batch_size: int = 500,
                          progress: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Parse and rule-code the coded segments in batches.

    Args:
        segments: Segments table; only rows with ``coded`` true are parsed and coded.
        codebook: The loaded codebook.
        batch_size: Segments per batch (bounds the number of spaCy Docs alive at once).
        progress: Show a progress bar on stderr.

    Returns:
        ``(matches, codings)`` for all segments.
    """
    from pipeline.code import code_segments
    from pipeline.nlp import parse_segments

    todo = segments[segments[C.CODED]]
    match_parts, coding_parts = [], []
    with _progress(len(todo), progress, "coding") as bar:
        # A segment never spans two batches, so per-batch aggregation is exact.
        for begin in range(0, len(todo), batch_size):
            batch = todo.iloc[begin:begin + batch_size]
            m, c = code_segments(batch, parse_segments(batch), codebook)
            match_parts.append(m)
            coding_parts.append(c)
            bar.update(len(batch))
    matches = (pd.concat(match_parts, ignore_index=True) if match_parts
               else pd.DataFrame(columns=C.MATCH_COLUMNS))
    codings = (pd.concat(coding_parts, ignore_index=True) if coding_parts
               else pd.DataFrame(columns=C.CODING_COLUMNS))
    return matches, codings


def code_corpus(inputs: Sequence[str | Path], *, codebook: str | Path, out_dir: str | Path,
                options: RunOptions | None = None) -> RunResult:
    """Code transcripts end to end and write the coded folder.

    The codebook is validated before anything is written; files that cannot be read
    are listed in ``errors.csv`` and the run goes on with the rest.

    Args:
        inputs: Files and/or folders of transcripts.
        codebook: Path of the codebook YAML.
        out_dir: Output folder (``data/coded``).
        options: Run options.

    Returns:
        The run result; ``exit_code`` is 2 when some input was skipped.
    """
    opts = options or RunOptions()
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 3)
        clock = now

    book = load_codebook(codebook)
    unit = opts.unit or book.settings.unit
    lap("codebook")
    with output_lock(out_dir):
        got = ingest_stage.ingest(
            list(inputs), metadata=opts.metadata, text_column=opts.text_column,
            id_column=opts.id_column, default_lang=book.settings.default_lang, lang=opts.lang)
        lap("ingest")
        labels = list(dict.fromkeys([*segment_stage.DEFAULT_INTERVIEWER_LABELS,
                                     *book.settings.interviewer_labels]))
        segments = segment_stage.segment(got.documents, got.turns, unit=unit,
                                         interviewer_labels=labels,
                                         code_speakers=opts.code_speakers)
        lap("segment")
        matches, codings = code_segments_batched(segments, book, batch_size=opts.batch_size,
                                                 progress=opts.progress)
        lap("nlp+code")
        if opts.method != "rules":
            codings = _apply_model(opts, book, segments, codings)
            lap("model")
        errors = got.errors.reindex(columns=C.ERROR_COLUMNS)
        n_failed = int((errors[C.ERROR_SEVERITY] == "error").sum())
        manifest = {
            "qcode_version": __version__,
            "codebook": {"path": str(codebook), "hash": book.hash, "version": book.version},
            "inputs": [
                {"doc_id": d, "path": p, "sha256": h}
                for d, p, h in zip(got.documents[C.DOC_ID], got.documents[C.PATH],
                                   got.documents[C.SHA256])
            ],
            "options": {**asdict(opts), "unit": unit},
            "versions": versions(),
            "counts": {
                "documents": int(len(got.documents)),
                "files_failed": n_failed,
                "segments": int(len(segments)),
                "segments_coded": int(segments[C.CODED].sum()),
                "codings": int(len(codings)),
                "codings_per_code": {k: int(v) for k, v in
                                     codings[C.CODE_ID].value_counts().sort_index().items()},
            },
            "timings_s": timings,
        }
        data = CodedData(documents=got.documents, segments=segments, codings=codings,
                         matches=matches, errors=errors, manifest=manifest)
        manifest = write_coded(out_dir, data)
        lap("store")
        manifest["timings_s"] = timings
    return RunResult(data=data, manifest=manifest, exit_code=EXIT_PARTIAL if n_failed else EXIT_OK,
                     out_dir=Path(out_dir), codebook=book)


def _apply_model(opts: RunOptions, book: Codebook, segments: pd.DataFrame,
                 rule_codings: pd.DataFrame) -> pd.DataFrame:
    from pipeline.errors import UsageError

    if not opts.model:
        raise UsageError(f"--method {opts.method} needs --model MODEL (train one with 'qcode train')")
    from pipeline import ml

    model = ml.load_model(opts.model, codebook=book)
    return ml.apply_model(model, segments[segments[C.CODED]], None, rule_codings, opts.method)
