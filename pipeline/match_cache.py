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
versions, parser code) plus the pipeline fingerprint of the language; an entry is a
``tagged_store.TaggedEntry`` (a re-code adds a small file of the re-matched units; a
damaged file is a miss). Tables are Arrow IPC files (no pickle); the folder can be deleted
any time.
"""
from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from pipeline import columns as C
from pipeline.entry_tables import take_rows
from pipeline.tagged_store import TaggedEntry

SUBDIR = "matches-v3"   # bump when the entry format changes
# Code whose behaviour shapes match rows; its bytes are in every digest.
SOURCES = ("chunk.py", "chunk_code.py", "match_cache.py", "tagged_store.py", "cache_io.py",
           "columns.py", "nlp_rules.py", "entry_tables.py", "match_probe.py")
_SEP = "\x1f"          # between code id and rule id in unit keys


@lru_cache(maxsize=1)
def _source_digest() -> str:
    """Digest of the matcher's code: an edited matcher never reuses stale rows."""
    from pipeline.chunk_cache import files_digest

    root = Path(__file__).resolve().parent
    return files_digest([*root.joinpath("code").glob("*.py"), *(root / name for name in SOURCES)])


_DIGESTS: dict[tuple, tuple] = {}   # (id, hash, lang) -> (book, _unit_digests(book, lang))


def _of(book, lang: str) -> tuple:  # noqa: ANN001
    key = (id(book), book.hash, lang)
    got = _DIGESTS.get(key)
    if got is None or got[0] is not book:
        if len(_DIGESTS) > 8:
            _DIGESTS.clear()
        got = _DIGESTS[key] = (book, _unit_digests(book, lang))
    return got[1]


def unit_digests(book, lang: str  # noqa: ANN001
                 ) -> tuple[dict[str, str], dict[tuple[str, str], str]]:
    """``_unit_digests`` of a codebook and language, once per process (not per chunk).

    The returned dicts are shared: callers must not change them.
    """
    return _of(book, lang)[:2]


def unit_texts(book, lang: str) -> dict[str, str]:  # noqa: ANN001
    """Unit -> the JSON text its digest is the SHA-256 of (shared: do not change it)."""
    return _of(book, lang)[2]


def _unit_digests(book, lang: str  # noqa: ANN001
                  ) -> tuple[dict[str, str], dict[tuple[str, str], str], dict[str, str]]:
    """Digests of the units of ``lang`` and the unit of every (code id, rule id).

    A unit is one rule (key ``code id`` + ``\x1f`` + ``rule id``), or a whole code (key
    ``code id``) when the code has exclude rules or two rules with one id. Rules come
    normalised from the loader (vocab lists expanded, defaults filled in), so the
    digest covers them; the settings read by matching are codebook-wide and in every
    digest, so changing one of them re-matches every unit.

    Returns:
        ``(unit -> digest, (code id, rule id) -> unit, unit -> hashed JSON text)``.
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
    digests, texts = {}, {}
    for unit, items in units.items():
        texts[unit] = json.dumps([common, unit, items], sort_keys=True, default=repr)
        digests[unit] = hashlib.sha256(texts[unit].encode("utf-8")).hexdigest()
    return digests, unit_of, texts


class MatchCache:
    """Match entries of one chunk in ``<folder>/matches-v3``; a None key disables it."""

    def __init__(self, folder: str | Path | None, chunk_key: str | None) -> None:
        self.folder = Path(folder) / SUBDIR if folder is not None and chunk_key else None
        self.key = chunk_key

    def entry(self, lang: str, fingerprint: str) -> TaggedEntry:
        """The entry of the chunk's match rows in ``lang`` (disabled without a folder)."""
        if self.folder is None or self.key is None:
            return TaggedEntry(None, C.MATCH_COLUMNS)
        name = hashlib.sha256(f"{self.key}|{lang}|{fingerprint}".encode()).hexdigest()
        return TaggedEntry(self.folder / name[:2] / name, C.MATCH_COLUMNS)


def rows_frame(rows: list[tuple]) -> pd.DataFrame:
    """Match rows (``MATCH_COLUMNS`` tuples) as a table with the output dtypes."""
    return pd.DataFrame(rows, columns=C.MATCH_COLUMNS).astype(
        {C.START: "int64", C.END: "int64", C.SCORE: "float64"})


def cached_match(memo: MatchCache, book, lang: str, fingerprint: str, match,  # noqa: ANN001
                 sort, same: dict[str, str] | None = None,  # noqa: ANN001
                 words=None) -> pd.DataFrame:  # noqa: ANN001
    """Match rows of one language: cached units from ``memo``, the others by ``match``.

    Entries hold their rows in output order, so a re-code merges the cached rows
    (sorted runs) with the sorted rows of the re-matched units instead of sorting
    every row from scratch (``sort`` is linear on sorted runs).

    Args:
        memo: the chunk's match cache.
        book: the codebook.
        lang: the language.
        fingerprint: NLP pipeline fingerprint of ``lang`` (the tokens' identity).
        match: (code id, rule id) pairs (frozenset, None: all) -> match rows of those
            rules, sorted as ``sort`` sorts them: a new table (a column is added to it);
            a second argument, compiled rules, is matched instead (``match_probe``).
        sort: (match rows, None or a mask of the rows to keep) -> the kept rows in
            output order (any extra columns kept).
        same: filled with unit -> old digest of the re-matched units when their rows
            are the rows they had at those digests (see ``_unchanged``): codes built
            from them need no new aggregation (``coding_cache.cached_codings``).
        words: () -> the chunk's words or None (``match_probe.unchanged``).

    Returns:
        The rows of every code, in output order.
    """
    digests, unit_of = unit_digests(book, lang)
    entry = memo.entry(lang, fingerprint)
    # stale rows stay in (negative unit ids): the merge drops them in its one take
    cached, have = entry.load(digests, stale=True)
    todo = set(digests) - have
    if not todo:
        if cached is None:
            return rows_frame([])
        live = _live(cached)
        if entry.in_order() and live.all():  # the rows of one ordered file: no sort
            return columns_of(cached, C.MATCH_COLUMNS)
        return sort(cached, live)[C.MATCH_COLUMNS]
    from pipeline import match_probe

    match_probe.remember(memo.folder, book, lang, unit_texts(book, lang))
    kept = (match_probe.unchanged(memo.folder, entry, todo, book, lang, unit_texts(book, lang),
                                  match, words) if cached is not None else None)
    if kept is not None:  # an edit that only added items occurring nowhere in the chunk
        return _relabeled(entry, cached, kept, todo, digests, unit_of, sort, same)
    new = match(frozenset(pair for pair, unit in unit_of.items() if unit not in have)
                if have else None)
    # the frame is this call's own: a column set in place (``assign`` copies the frame)
    new[C.CACHE_UNIT] = _unit_ids(new, unit_of, entry)
    old = _unchanged(entry, cached, new, todo)
    if old is not None:
        # the new rows are the stale rows, in the loaded (output) order: keep that order
        if same is not None:
            same.update(old)
        every = None
        if entry.compacts(len(new)):  # only a compaction stores the loaded rows
            units = cached[C.CACHE_UNIT].to_numpy().copy()
            units[units < 0] = new[C.CACHE_UNIT].to_numpy()
            every = cached.assign(**{C.CACHE_UNIT: units})
        entry.save(new, todo, digests, every, ordered=True)
        return columns_of(cached, C.MATCH_COLUMNS)
    rows = new if cached is None or not len(cached) else sort(
        pd.concat([cached, new], ignore_index=True),
        np.concatenate([_live(cached), np.ones(len(new), dtype=bool)]))
    entry.save(new, todo, digests, rows, ordered=True)
    if rows is new:  # every row just matched: the matcher's integer keys still hold
        from pipeline.code.combine import frame_keys, remember_keys

        keys = frame_keys(new)
        out = new[C.MATCH_COLUMNS]
        if keys is not None:
            remember_keys(out, keys)
        return out
    return rows[C.MATCH_COLUMNS]


def _relabeled(entry: TaggedEntry, cached: pd.DataFrame, kept: dict[str, tuple[str, int]],
               todo: set[str], digests: dict[str, str], unit_of: dict[tuple[str, str], str],
               sort, same: dict[str, str] | None) -> pd.DataFrame:  # noqa: ANN001
    """The output rows when the loaded stale rows of ``kept`` (unit -> (old digest, stale
    id)) are the re-matched units' rows: those rows made live (and stored under the
    units' new digests); other stale rows dropped."""
    units = cached[C.CACHE_UNIT].to_numpy()
    chosen = np.isin(units, [code for _, code in kept.values()])
    old = {unit: digest for unit, (digest, _) in kept.items()}
    if same is not None:
        same.update(old)
    if entry.replaced() == old and bool(chosen.sum() == (units < 0).sum()):
        # one file in output order whose stale rows are all kept: its order is the output's
        new = take_rows(cached, np.flatnonzero(chosen))  # a few rows: taken column by column
        new[C.CACHE_UNIT] = _unit_ids(new, unit_of, entry)
        every = None
        if entry.compacts(len(new)):  # only a compaction stores the loaded rows
            relabeled = units.copy()
            relabeled[chosen] = new[C.CACHE_UNIT].to_numpy()
            every = cached.assign(**{C.CACHE_UNIT: relabeled})
        entry.save(new, todo, digests, every, ordered=True)
        return columns_of(cached, C.MATCH_COLUMNS)
    relabeled = units.copy()
    if chosen.any():
        relabeled[chosen] = _unit_ids(take_rows(cached, np.flatnonzero(chosen)), unit_of, entry)
    rows = sort(cached.assign(**{C.CACHE_UNIT: relabeled}), relabeled >= 0)
    ids = [entry.unit_id(unit) for unit in todo]
    new = rows[np.isin(rows[C.CACHE_UNIT].to_numpy(), ids)].reset_index(drop=True)
    entry.save(new, todo, digests, rows, ordered=True)
    return rows[C.MATCH_COLUMNS]


def _unchanged(entry: TaggedEntry, cached: pd.DataFrame | None, new: pd.DataFrame,
               todo: set[str]) -> dict[str, str] | None:
    """Old digests of the re-matched units if their new rows are their stale rows.

    An edit often changes no match of a chunk (a term that does not occur in it).
    When the entry came from one file in output order (``TaggedEntry.replaced``),
    its stale rows are exactly the rows of the re-matched units at their old digests,
    and the new rows equal them value for value and in order, the loaded rows (stale
    ones counted as live) are the output rows in output order: no merge is needed.

    Returns:
        unit -> old digest of every re-matched unit, or None (not shown unchanged).
    """
    old = entry.replaced()
    if old is None or cached is None or set(old) != todo:
        return None
    stale = cached[C.CACHE_UNIT].to_numpy() < 0
    if int(stale.sum()) != len(new):
        return None
    return old if same_rows(cached, stale, new, C.MATCH_COLUMNS) else None


def columns_of(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """``frame[columns]``; by position when they are its first columns (a loaded entry's
    table: its columns, then ``CACHE_UNIT``), which pandas selects a few times faster."""
    if list(frame.columns[:len(columns)]) == columns:
        return frame.iloc[:, :len(columns)]
    return frame[columns]


def same_rows(before: pd.DataFrame, mask: np.ndarray, after: pd.DataFrame,
              columns: list[str]) -> bool:
    """Whether ``before[mask]`` equals ``after`` in ``columns``: dtypes, values, order.

    What ``DataFrame.equals`` says of the two selections (missing values equal),
    without a pandas copy of the selected rows: Arrow-backed columns are filtered and
    compared by Arrow, NumPy ones by NumPy (other columns by pandas).
    """
    if int(mask.sum()) != len(after):
        return False
    chosen, at = None, None
    for name in columns:
        left, right = before[name], after[name]
        if left.dtype != right.dtype:
            return False
        a, b = left.array, right.array
        if isinstance(a, pd.arrays.ArrowExtensionArray) \
                and isinstance(b, pd.arrays.ArrowExtensionArray):
            if chosen is None:
                chosen = pa.array(mask)
            if not a.__arrow_array__().filter(chosen).equals(b.__arrow_array__()):
                return False
            continue
        x, y = left.to_numpy(), right.to_numpy()
        if x.dtype != y.dtype or x.dtype == object:
            if not left[mask].reset_index(drop=True).equals(right.reset_index(drop=True)):
                return False
            continue
        if at is None:
            at = np.flatnonzero(mask)
        if not np.array_equal(x[at], y, equal_nan=x.dtype.kind == "f"):
            return False
    return True


def _live(rows: pd.DataFrame) -> np.ndarray:
    """Which loaded rows belong to a unit with its current digest (not stale)."""
    return rows[C.CACHE_UNIT].to_numpy() >= 0


def _unit_ids(rows: pd.DataFrame, unit_of: dict[tuple[str, str], str], entry: TaggedEntry,
              ) -> np.ndarray:
    """``entry.unit_id`` of the unit of every match row (by distinct (code, rule) pair)."""
    if not len(rows):
        return np.zeros(0, dtype=np.int64)
    codes, code_names = pd.factorize(rows[C.CODE_ID])
    rules, rule_names = pd.factorize(rows[C.RULE_ID])
    width = len(rule_names)
    # the distinct pairs by one hash pass over the rows (not a sort of them all); the
    # units are asked for in sorted pair order all the same (``unit_id`` numbers new ones)
    inverse, pairs = pd.factorize(codes.astype(np.int64) * width + rules)
    order = np.argsort(pairs, kind="stable")
    ids = np.empty(len(pairs), dtype=np.int64)
    ids[order] = [entry.unit_id(unit_of[(code_names[p // width], rule_names[p % width])])
                  for p in pairs[order].tolist()]
    return ids[inverse]
