"""Match cache: a codebook edit re-matches only the rules it changed.

Every step of the rule coder is per rule or per code: a rule's channels, overlap
filtering (``longest_first`` per rule), proximity pairing (per rule), negation (per
match, with the codebook-wide cues/window/scope) and ``max_matches`` (per segment and
rule) are per rule; only exclude vetoes (``_vetoed``: matches of the veto's own code)
join the rules of one code. So the match rows of a rule depend only on the chunk's
tokens, the settings and that rule (or, in a code with exclude rules, that code's
rules), never on the other rules. That is the unit of caching (``unit_digests``). The
final sort (segment, start, end, code id, rule id) only ties rows of one rule, whose
relative order is the same in a full and a partial matching.

For each chunk and language one entry holds the match rows of every unit, tagged with
a digest of everything the unit's matching reads. A re-code reuses the rows of units
whose digest is unchanged and matches only the others (rules compiled for them alone).
Entries are keyed by the chunk-cache key (files, ingest/segment settings, package
versions, parser code) plus the pipeline fingerprint of the language, written
atomically (temp file + rename); a damaged entry is a miss. Tables are Parquet (no
pickle); the folder can be deleted any time.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from functools import lru_cache
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline import columns as C

SUBDIR = "matches-v1"   # bump when the entry format changes
_META = b"qcode.codes"  # Parquet schema metadata: {code id: digest} of the entry
# Code whose behaviour shapes match rows; its bytes are in every digest.
SOURCES = ("chunk.py", "chunk_code.py", "match_cache.py", "columns.py")
_SEP = "\x1f"          # between code id and rule id in unit keys


@lru_cache(maxsize=1)
def _source_digest() -> str:
    """Digest of the matcher's code: an edited matcher never reuses stale rows."""
    from pipeline.chunk_cache import files_digest

    root = Path(__file__).resolve().parent
    return files_digest([*root.joinpath("code").glob("*.py"), *(root / name for name in SOURCES)])


def unit_digests(book, lang: str  # noqa: ANN001
                 ) -> tuple[dict[str, str], dict[tuple[str, str], str]]:
    """Digests of the units of ``lang`` and the unit of every (code id, rule id).

    A unit is one rule (key ``code id`` + ``\x1f`` + ``rule id``), or a whole code (key
    ``code id``) when the code has exclude rules or two rules with one id. Rules come
    normalised from the loader (vocab lists expanded, defaults filled in), so the
    digest covers them; the settings read by matching are codebook-wide and in every
    digest, so changing one of them re-matches every unit.

    Returns:
        ``(unit -> digest, (code id, rule id) -> unit)``.
    """
    from pipeline.codebook import DEFAULT_NEGATION_CUES

    s = book.settings
    cues = s.negation_cues.get(lang, DEFAULT_NEGATION_CUES.get(lang, ()))
    common = [SUBDIR, _source_digest(), lang, sorted(c.lower() for c in cues),
              s.negation_window, s.negation_scope, s.count_per_rule, s.glob_lemmas]
    by_code: dict[str, list] = {}
    for rule in book.rules(lang):
        by_code.setdefault(rule.code_id, []).append(rule)
    units: dict[str, list] = {}
    unit_of: dict[tuple[str, str], str] = {}
    for code, rules in by_code.items():
        ids = [rule.id for rule in rules]
        whole = len(set(ids)) < len(ids) or any(rule.kind == "exclude" for rule in rules)
        for rule in rules:
            unit = code if whole else f"{code}{_SEP}{rule.id}"
            unit_of[(code, rule.id)] = unit
            units.setdefault(unit, []).append(
                [rule.id, rule.kind, rule.params, rule.weight, rule.negation, rule.max_matches])
    digests = {}
    for unit, items in units.items():
        text = json.dumps([common, unit, items], sort_keys=True, default=repr)
        digests[unit] = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return digests, unit_of


class MatchCache:
    """Match entries of one chunk in ``<folder>/matches-v1``; a None key disables it."""

    def __init__(self, folder: str | Path | None, chunk_key: str | None) -> None:
        self.folder = Path(folder) / SUBDIR if folder is not None and chunk_key else None
        self.key = chunk_key

    def _path(self, lang: str, fingerprint: str) -> Path:
        assert self.folder is not None and self.key is not None
        name = hashlib.sha256(f"{self.key}|{lang}|{fingerprint}".encode()).hexdigest()
        return self.folder / name[:2] / f"{name}.parquet"

    def load(self, lang: str, fingerprint: str, digests: dict[str, str],
             unit_of: dict[tuple[str, str], str]) -> tuple[pd.DataFrame | None, dict[str, str]]:
        """Rows of the units whose digest is unchanged, and the entry's {unit: digest}.

        Returns ``(None, {})`` without an entry (absent, damaged, disabled).
        """
        if self.folder is None:
            return None, {}
        frame, stored = read_tagged(self._path(lang, fingerprint), C.MATCH_COLUMNS)
        if frame is None:
            return None, {}
        same = {unit for unit, digest in digests.items() if stored.get(unit) == digest}
        # One vectorised string op: iterating Arrow-backed strings in Python is ~1 us a row.
        keep = {f"{code}{_SEP}{rule}" for (code, rule), unit in unit_of.items() if unit in same}
        pairs = frame[C.CODE_ID] + _SEP + frame[C.RULE_ID]
        return frame[pairs.isin(keep).to_numpy()], stored

    def save(self, lang: str, fingerprint: str, digests: dict[str, str],
             frame: pd.DataFrame) -> None:
        """Store the rows of every unit of ``digests``; failures are ignored."""
        if self.folder is not None:
            write_tagged(self._path(lang, fingerprint), frame[C.MATCH_COLUMNS], digests)


def read_tagged(path: Path, columns: list[str]) -> tuple[pd.DataFrame | None, dict[str, str]]:
    """A cache table and its {unit: digest} tag; ``(None, {})`` if absent or damaged."""
    try:
        table = pq.read_table(path)
        stored = json.loads(table.schema.metadata[_META].decode("utf-8"))
        frame = table.to_pandas()
        if list(frame.columns) != columns or not isinstance(stored, dict):
            return None, {}
    except Exception:  # a damaged entry can fail in Parquet, Arrow or json: a miss
        return None, {}
    return frame, stored


def write_tagged(path: Path, frame: pd.DataFrame, digests: dict[str, str]) -> None:
    """Write a cache table tagged with ``digests`` atomically; failures are ignored."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_pandas(frame, preserve_index=False)
        meta = {**(table.schema.metadata or {}),
                _META: json.dumps(digests, sort_keys=True).encode("utf-8")}
        buf = io.BytesIO()
        pq.write_table(table.replace_schema_metadata(meta), buf)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(buf.getvalue())
            os.replace(tmp, path)  # atomic: readers see a whole entry or none
        except OSError:
            Path(tmp).unlink(missing_ok=True)
    except (OSError, TypeError, ValueError, pa.ArrowException):
        return


def rows_frame(rows: list[tuple]) -> pd.DataFrame:
    """Match rows (``MATCH_COLUMNS`` tuples) as a table with the output dtypes."""
    return pd.DataFrame(rows, columns=C.MATCH_COLUMNS).astype(
        {C.START: "int64", C.END: "int64", C.SCORE: "float64"})


def cached_match(memo: MatchCache, book, lang: str, fingerprint: str, match,  # noqa: ANN001
                 ) -> pd.DataFrame:
    """Match rows of one language: cached codes from ``memo``, the others by ``match``.

    Args:
        memo: the chunk's match cache.
        book: the codebook.
        lang: the language.
        fingerprint: NLP pipeline fingerprint of ``lang`` (the tokens' identity).
        match: (code id, rule id) pairs (frozenset, None: all) -> match rows of those rules.

    Returns:
        The rows of every code, unsorted (the caller sorts as a cold run does).
    """
    digests, unit_of = unit_digests(book, lang)
    cached, stored = memo.load(lang, fingerprint, digests, unit_of)
    have = set() if cached is None else {u for u, d in digests.items() if stored.get(u) == d}
    if cached is not None and len(have) == len(digests):
        if stored != digests:  # rules were removed: keep the entry to the current ones
            memo.save(lang, fingerprint, digests, cached)
        return cached
    todo = frozenset(pair for pair, unit in unit_of.items() if unit not in have)
    new = rows_frame(match(todo if have else None))
    frames = [f for f in (cached, new) if f is not None and len(f)]
    frame = pd.concat(frames, ignore_index=True) if frames else new
    memo.save(lang, fingerprint, digests, frame)
    return frame
