"""Raw interview files → ``documents`` and ``turns`` tables.

Formats: .txt/.md (speaker labels at line start), .docx (plus bold labels),
.vtt/.srt (cues merged per speaker), .csv (one turn per response row). Only
reads input files; never writes them. See docs/ARCHITECTURE.md for the tables.
"""
from __future__ import annotations

from .batch import (FilesRead, IngestResult, display, document_languages, file_roots, ingest,
                    join_metadata, normalise_lang, parents, read_files, shared_csv_keys,
                    turns_table)
from .decode import decode_bytes
from .files import SUPPORTED_SUFFIXES, Ingested, assign_doc_ids, discover, read_file
from .labels import is_label
from .tables import read_metadata

__all__ = [
    "SUPPORTED_SUFFIXES", "FilesRead", "IngestResult", "Ingested", "assign_doc_ids", "decode_bytes",
    "discover", "display", "document_languages", "file_roots", "ingest", "is_label", "join_metadata",
    "normalise_lang", "parents", "read_file", "read_files", "read_metadata", "shared_csv_keys",
    "turns_table",
]
