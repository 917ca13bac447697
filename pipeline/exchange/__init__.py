"""REFI-QDA exchange (``.qdpx`` projects, ``.qdc`` codebooks) with NVivo, ATLAS.ti,
MAXQDA and QualCoder.

Layout: ``model`` (project dataclasses <-> XML element trees, pure; a project's XML
also written one source at a time), ``text`` (decoding and offset conversion, pure),
``selections`` (codings -> sources and selections as columns, pure), ``qdpx_io``
(zip/XML reading with limits and zip-slip checks, deterministic atomic writing, also
streamed), ``export`` and ``import_`` (tables <-> project). ``schemas/`` holds the
REFI-QDA XSDs (MIT, REFI).

Public API: ``export_qdpx`` (returns an ``Exported`` summary), ``export_qdc``,
``build_project``, ``import_refi``, ``read_refi``, ``convert``, ``gold_wide``, ``Limits``,
``ImportResult``, ``SCHEMA_DIR``, ``PROJECT_XSD``, ``CODEBOOK_XSD``.
"""
from __future__ import annotations

from pathlib import Path

from pipeline.exchange.export import (
    Exported, build_project, codebook_bytes, export_qdc, export_qdpx, project_bytes,
)
from pipeline.exchange.import_ import ImportResult, convert, gold_wide, import_refi, read_refi
from pipeline.exchange.qdpx_io import Limits

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
PROJECT_XSD = SCHEMA_DIR / "Project-mrt2019.xsd"
CODEBOOK_XSD = SCHEMA_DIR / "Codebook.xsd"

__all__ = [
    "CODEBOOK_XSD", "Exported", "ImportResult", "Limits", "PROJECT_XSD", "SCHEMA_DIR",
    "build_project", "codebook_bytes", "convert", "export_qdc", "export_qdpx", "gold_wide",
    "import_refi", "project_bytes", "read_refi",
]
