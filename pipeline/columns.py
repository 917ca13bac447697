"""Column names of every table the pipeline passes between stages.

One place for them, so a rename is one edit and a typo is an ``AttributeError``
instead of a silent ``KeyError`` three stages later. Tables are pandas DataFrames;
the column order below is the order written to disk.
"""
from __future__ import annotations

# --- documents (ingest) -------------------------------------------------------
DOC_ID = "doc_id"            # file stem; unique in a run
PATH = "path"                # source file, relative to the input root when possible
FORMAT = "format"            # txt | md | docx | vtt | srt | csv
ENCODING = "encoding"        # detected encoding of the raw bytes
LANG = "lang"                # nl | en
TEXT = "text"                # NFC, LF-normalised text; every offset refers to it
N_CHARS = "n_chars"
SHA256 = "sha256"            # of the raw file bytes

DOCUMENT_COLUMNS = [DOC_ID, PATH, FORMAT, ENCODING, LANG, N_CHARS, SHA256, TEXT]

# --- turns (ingest) -------------------------------------------------------------
TURN = "turn"                # 0-based turn index inside the document
SPEAKER = "speaker"          # label as written ("I", "Interviewer", "Anja"), "" if none
START = "start"              # character offset into the document text (inclusive)
END = "end"                  # character offset (exclusive)
TIME_START = "time_start"    # seconds, media files only (vtt/srt), else NaN
TIME_END = "time_end"
UNIT_KEY = "unit_key"        # CSV rows: value of the id column, else ""

TURN_COLUMNS = [DOC_ID, TURN, SPEAKER, START, END, TIME_START, TIME_END, UNIT_KEY]

# --- segments (segment) ---------------------------------------------------------
SEGMENT_ID = "segment_id"    # "{doc_id}:{unit_index}", or the CSV id value
UNIT = "unit"                # turn | paragraph | sentence
UNIT_INDEX = "unit_index"    # 0-based index of the unit inside the document
ROLE = "speaker_role"        # interviewer | respondent (not "role": metadata often has a role column)
CODED = "coded"              # bool: the unit is offered to the coders
CONTENT_HASH = "content_hash"  # sha1 of the segment text, 16 hex chars

SEGMENT_COLUMNS = [
    SEGMENT_ID, DOC_ID, UNIT, UNIT_INDEX, TURN, SPEAKER, ROLE, CODED,
    START, END, TIME_START, TIME_END, CONTENT_HASH, LANG, TEXT,
]  # followed by document/row attribute columns (metadata.csv, CSV extra columns)

# --- rule matches and codings (code) ------------------------------------------
CODE_ID = "code_id"          # dotted codebook id, e.g. "amo.ability"
METHOD = "method"            # rules | ml | hybrid | human
SCORE = "score"              # 0..1
RULE = "rule"                # provenance: "rule:<rule id>", "model:<version>", "human:<coder>"
RULES = "rules"              # all rule ids that fired for this segment x code, ";"-joined
EVIDENCE = "evidence"        # matched text (best match), short
N_MATCHES = "n_matches"
RULE_ID = "rule_id"          # bare rule id in the matches table

MATCH_COLUMNS = [SEGMENT_ID, DOC_ID, CODE_ID, RULE_ID, EVIDENCE, START, END, SCORE]
CODING_COLUMNS = [SEGMENT_ID, DOC_ID, CODE_ID, METHOD, SCORE, RULE, RULES, EVIDENCE,
                  N_MATCHES, START, END]

# Working columns of the codings cache (pipeline.coding_cache), never in an output file.
FIRST_MATCH = "_first"       # earliest match start of a coding (orders a segment's codings)
CSV_LINE = "_csv_line"       # the coding's line of codings.csv (bytes)
CACHE_UNIT = "_unit"         # match/codings cache files: the unit (rule or code) of a row

# --- tokens (nlp.tokens_table) -------------------------------------------------------
TOKEN_I = "i"                # token index inside the segment's Doc
LOWER = "lower"
LEMMA = "lemma"              # lower-cased lookup lemma
STEM = "stem"                # NLTK Snowball stem
IS_PUNCT = "is_punct"
IS_STOP = "is_stop"

TOKEN_COLUMNS = [SEGMENT_ID, TOKEN_I, TEXT, LOWER, LEMMA, STEM, IS_PUNCT, IS_STOP, START, END]

# --- human codings / gold / agreement -------------------------------------------
CODER = "coder"
CODE_NAME = "code_name"

# --- errors.csv ---------------------------------------------------------------
ERROR_FILE = "file"
ERROR_STAGE = "stage"
ERROR_SEVERITY = "severity"  # error (file skipped) | warning (file read, something off)
ERROR_MESSAGE = "message"
ERROR_COLUMNS = [ERROR_FILE, ERROR_STAGE, ERROR_SEVERITY, ERROR_MESSAGE]

# --- roles ----------------------------------------------------------------------
INTERVIEWER = "interviewer"
RESPONDENT = "respondent"
OTHER = "other"              # text before the first speaker label of a labelled document (headings)

# --- output file names in the coded folder --------------------------------------
SEGMENTS_FILE = "segments"   # .parquet + .csv
CODINGS_FILE = "codings"     # .parquet + .csv
MATCHES_FILE = "matches"     # .parquet
DOCUMENTS_FILE = "documents"  # .parquet
MANIFEST_FILE = "manifest.json"
ERRORS_FILE = "errors.csv"
REVIEWS_FILE = "reviews.csv"

# --- Parquet ----------------------------------------------------------------------
# Columns written without min/max statistics: no reader filters on free text, and
# encoding a survey's document row copied its whole text twice for them (up to a third
# of a large survey's peak memory: benchmarks/RESULTS.md, session 18).
NO_STATISTICS = frozenset({TEXT})


def parquet_statistics(names: list[str]) -> list[str]:
    """The columns of ``names`` that Parquet files keep statistics for
    (``ParquetWriter(..., write_statistics=...)``): all but ``NO_STATISTICS``."""
    return [name for name in names if name not in NO_STATISTICS]
