"""Per-code match cache: a codebook edit re-matches only the codes it changed.

Every step of the rule coder is per code: a rule's channels, overlap filtering
(``longest_first`` per rule), proximity pairing (per rule), negation (per match, with
the codebook-wide cues/window/scope), exclude vetoes (``_vetoed``: only matches of the
veto's own code) and ``max_matches`` (per segment and rule). So the match rows of one
code depend only on the chunk's tokens, that code's rules and those settings, never on
the other codes. The final sort (segment, start, end, code id, rule id) only ties rows
of one code, whose relative order is the same in a full and a per-code matching.

For each chunk and language one entry holds the match rows of every code, tagged with
a digest of everything the code's matching reads (``code_digests``). A re-code reuses
the rows of codes whose digest is unchanged and matches only the others (rules
compiled for those codes alone). Entries are keyed by the chunk-cache key (files,
ingest/segment settings, package versions, parser code) plus the pipeline fingerprint
of the language, written atomically (temp file + rename), and a damaged entry is a
miss. Tables are Parquet (no pickle); the folder can be deleted any time.
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
SOURCES = ("chunk.py", "match_cache.py", "columns.py")


@lru_cache(maxsize=1)
def _source_digest() -> str:
    """Digest of the matcher's code: an edited matcher never reuses stale rows."""
    root = Path(__file__).resolve().parent
    files = sorted([*root.joinpath("code").glob("*.py"), *(root / name for name in SOURCES)])
    h = hashlib.sha256()
    for path in files:
        h.update(path.name.encode("utf-8"))
        try:
            h.update(path.read_bytes())
        except OSError:
            h.update(b"?")
    return h.hexdigest()


def code_digests(book, lang: str) -> dict[str, str]:  # noqa: ANN001
    """Code id -> digest of what its matching in ``lang`` depends on (codes with rules).

    Rules come normalised from the loader (vocab lists expanded, defaults filled in),
    so the digest covers them; the settings read by matching are codebook-wide and in
    every digest, so changing one of them re-matches every code.
    """
    from pipeline.codebook import DEFAULT_NEGATION_CUES

    s = book.settings
    cues = s.negation_cues.get(lang, DEFAULT_NEGATION_CUES.get(lang, ()))
    common = [SUBDIR, _source_digest(), lang, sorted(c.lower() for c in cues),
              s.negation_window, s.negation_scope, s.count_per_rule, s.glob_lemmas]
    rules: dict[str, list] = {}
    for rule in book.rules(lang):
        rules.setdefault(rule.code_id, []).append(
            [rule.id, rule.kind, rule.params, rule.weight, rule.negation, rule.max_matches])
    out = {}
    for code, items in rules.items():
        text = json.dumps([common, code, items], sort_keys=True, default=repr)
        out[code] = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return out


class MatchCache:
    """Match entries of one chunk in ``<folder>/matches-v1``; a None key disables it."""

    def __init__(self, folder: str | Path | None, chunk_key: str | None) -> None:
        self.folder = Path(folder) / SUBDIR if folder is not None and chunk_key else None
        self.key = chunk_key

    def _path(self, lang: str, fingerprint: str) -> Path:
        assert self.folder is not None and self.key is not None
        name = hashlib.sha256(f"{self.key}|{lang}|{fingerprint}".encode()).hexdigest()
        return self.folder / name[:2] / f"{name}.parquet"

    def load(self, lang: str, fingerprint: str,
             digests: dict[str, str]) -> tuple[pd.DataFrame | None, dict[str, str]]:
        """Rows of the codes whose digest is unchanged, and the entry's {code: digest}.

        Returns ``(None, {})`` without an entry (absent, damaged, disabled).
        """
        if self.folder is None:
            return None, {}
        try:
            table = pq.read_table(self._path(lang, fingerprint))
            stored = json.loads(table.schema.metadata[_META].decode("utf-8"))
            frame = table.to_pandas()
            if list(frame.columns) != C.MATCH_COLUMNS or not isinstance(stored, dict):
                return None, {}
        except Exception:  # a damaged entry can fail in Parquet, Arrow or json: a miss
            return None, {}
        same = {code for code, digest in digests.items() if stored.get(code) == digest}
        frame = frame[frame[C.CODE_ID].isin(same)]
        return frame, stored

    def save(self, lang: str, fingerprint: str, digests: dict[str, str],
             frame: pd.DataFrame) -> None:
        """Store the rows of every code of ``digests``; failures are ignored."""
        if self.folder is None:
            return
        path = self._path(lang, fingerprint)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            table = pa.Table.from_pandas(frame[C.MATCH_COLUMNS], preserve_index=False)
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
        match: codes (frozenset, None: all) -> match rows of those codes.

    Returns:
        The rows of every code, unsorted (the caller sorts as a cold run does).
    """
    digests = code_digests(book, lang)
    cached, stored = memo.load(lang, fingerprint, digests)
    have = set() if cached is None else {c for c, d in digests.items() if stored.get(c) == d}
    todo = frozenset(digests) - have
    if not todo:
        if stored != digests:  # codes were removed: keep the entry to the current codes
            memo.save(lang, fingerprint, digests, cached)
        return cached
    new = rows_frame(match(None if not have else todo))
    frames = [f for f in (cached, new) if f is not None and len(f)]
    frame = pd.concat(frames, ignore_index=True) if frames else new
    memo.save(lang, fingerprint, digests, frame)
    return frame
