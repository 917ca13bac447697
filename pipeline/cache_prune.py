"""Keep a cache folder from growing without bound: the entries of the last runs only.

Every entry of the chunk, match, coding, table and coding-file caches belongs to chunk
keys (``chunk_cache.chunk_key``) or to a run's ``table_cache.tables_key``. A corpus
whose files change gets new keys (a transcript added or corrected: its chunk's, and
at most the next few, ``chunk_plan``), and the entries of the old ones are never read
again; kept, they would grow the cache with every change. So each run with the cache appends
its keys to ``runs-v1.json`` in the cache folder, and once that journal holds
``KEEP_RUNS`` runs, the entries of keys none of them used are deleted: least recently
used first, like ccache. A codebook edit keeps every chunk key, so iterating on the
codebook never loses the parsed corpus. DocBin files (``--docbin-cache``), keyed by
their texts, are deleted when no journalled run read or wrote them (their file times).

Safe by construction: only folders with a sha256 name in the known subfolders are
deleted; an entry changed in the last ``GRACE_S`` seconds is kept (a run going on in
another process sharing ``--cache-dir`` may be writing it); a deleted entry is only
ever a miss (every entry is checked on use). An unreadable journal is started again
and nothing is deleted until it holds ``KEEP_RUNS`` runs.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import re
import shutil
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

JOURNAL = "runs-v1.json"
KEEP_RUNS = 4        # runs whose entries are kept (the current one included)
GRACE_S = 3600.0     # entries changed this recently are kept, whatever the journal says
# subfolder -> how an entry's name follows from a chunk key ("chunk"), from a chunk key,
# language and pipeline fingerprint ("chunk|lang"), or from a run's tables key ("tables")
SUBFOLDERS = {"chunks-v2": "chunk", "matches-v3": "chunk|lang", "codings-v3": "chunk|lang",
              "tables-v1": "tables", "coded-v1": "tables"}
_NAME = re.compile(r"[0-9a-f]{64}")
DOCBINS = "docbin-v1"   # ``cache.SUBDIR``: DocBin files, pruned by when runs last used them


# Cache subfolders of earlier entry formats: no version reads them any more.
OBSOLETE_CACHES = ("chunks-v1", "matches-v1", "matches-v2", "codings-v1", "codings-v2")


def drop_obsolete(cache_dir: str | Path | None) -> None:
    """Delete the cache subfolders of earlier formats (once: then they are gone)."""
    if cache_dir is None:
        return
    for name in OBSOLETE_CACHES:
        if (Path(cache_dir) / name).is_dir():
            shutil.rmtree(Path(cache_dir) / name, ignore_errors=True)


def after_run(cache_dir: str | Path | None, chunk_keys: Sequence[str | None],
              tables_key: str | None, started: float | None = None) -> dict[str, int]:
    """``record_and_prune`` for a finished run (``started``: its start, ``time.time()``);
    nothing without a cache folder, and a failure (a read-only cache) costs the pruning
    only, never the run."""
    if cache_dir is None:
        return {"entries": 0, "bytes": 0}
    try:
        return record_and_prune(cache_dir, chunk_keys, tables_key, started=started)
    except OSError:
        return {"entries": 0, "bytes": 0}


def record_and_prune(cache_dir: str | Path, chunk_keys: Sequence[str | None],
                     tables_key: str | None, *, keep: int | None = None,
                     grace_s: float | None = None, now: float | None = None,
                     started: float | None = None) -> dict[str, int]:
    """Add this run to the journal; delete the entries no journalled run used.

    Args:
        cache_dir: the run's cache folder.
        chunk_keys: the run's chunk keys (None: a chunk that was not cached).
        tables_key: ``table_cache.tables_key`` of the run (None: none).
        keep: runs whose entries are kept (default ``KEEP_RUNS``).
        grace_s: entries changed within this many seconds are kept (default ``GRACE_S``).
        now: the time (tests).
        started: when the run started (default ``now``): a DocBin file read or written
            since the oldest journalled run started is kept (``cache.DocCache``).

    Returns:
        ``{"entries": n, "bytes": b}`` deleted (zeros when nothing was pruned).
    """
    folder = Path(cache_dir)
    now = time.time() if now is None else now
    keep = KEEP_RUNS if keep is None else max(1, keep)
    grace_s = GRACE_S if grace_s is None else grace_s
    runs = _read_journal(folder / JOURNAL)
    complete = runs is not None and len(runs) + 1 >= keep
    runs = [*(runs or []), {"time": now, "started": now if started is None else started,
                            "chunks": [k for k in chunk_keys if k], "tables": tables_key}][-keep:]
    from pipeline.store import atomic_write_text

    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / JOURNAL, json.dumps({"runs": runs}))
    if not complete:
        return {"entries": 0, "bytes": 0}
    removed = _prune(folder, live_names(folder, runs), now - grace_s)
    # DocBin files are keyed by text, not by chunk: kept while runs read or write them
    oldest = min(float(r.get("started", r.get("time", now))) for r in runs)
    docbins = _prune_unused(folder / DOCBINS, min(oldest, now - grace_s))
    return {k: removed[k] + docbins[k] for k in removed}


def _prune_unused(root: Path, before: float) -> dict[str, int]:
    """Delete the files of ``root``'s shards last changed before ``before``."""
    removed = {"entries": 0, "bytes": 0}
    if not root.is_dir():
        return removed
    for shard in root.iterdir():
        if len(shard.name) != 2 or not shard.is_dir():
            continue
        for entry in shard.iterdir():
            if entry.name.startswith(".") or not entry.is_file():
                continue
            with contextlib.suppress(OSError):
                st = entry.stat()
                if st.st_mtime < before:
                    entry.unlink()
                    removed["entries"] += 1
                    removed["bytes"] += st.st_size
    return removed


def _read_journal(path: Path) -> list[dict] | None:
    """The journalled runs; [] when there is no journal, None when it is unreadable."""
    try:
        runs = json.loads(path.read_text(encoding="utf-8"))["runs"]
        number = (int, float)
        if not all(isinstance(r, dict) and isinstance(r.get("chunks"), list)
                   and isinstance(r.get("time"), number)
                   and isinstance(r.get("started", 0), number) for r in runs):
            return None
        return runs
    except FileNotFoundError:
        return []
    except (OSError, ValueError, KeyError, TypeError):
        return None


def live_names(folder: Path, runs: Iterable[dict]) -> dict[str, set[str]]:
    """Subfolder -> the names of the entries that the journalled ``runs`` use."""
    chunks: set[str] = set()
    tables: set[str] = set()
    for run in runs:
        chunks.update(k for k in run["chunks"] if isinstance(k, str))
        if isinstance(run.get("tables"), str):
            tables.add(run["tables"])
    # a chunk's match and coding entries are named after its key, each language it
    # has rules in and that language's pipeline fingerprint (``match_cache.MatchCache``)
    pairs: set[tuple[str, str]] = set()
    for key in chunks:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            meta = json.loads((folder / "chunks-v2" / key[:2] / key / "meta.json")
                              .read_text(encoding="utf-8"))
            pairs.update((str(lang), str(fp)) for lang, fp in meta["fingerprints"].items())
    per_lang = {hashlib.sha256(f"{key}|{lang}|{fp}".encode()).hexdigest()
                for key in chunks for lang, fp in pairs}
    names = {"chunk": chunks, "chunk|lang": per_lang, "tables": tables}
    return {sub: names[kind] for sub, kind in SUBFOLDERS.items()}


def _prune(folder: Path, live: dict[str, set[str]], before: float) -> dict[str, int]:
    removed = {"entries": 0, "bytes": 0}
    for sub, names in live.items():
        root = folder / sub
        if not root.is_dir():
            continue
        for shard in root.iterdir():
            if len(shard.name) != 2 or not shard.is_dir():
                continue  # e.g. ``matches-v3/defs`` (match_probe keeps its own newest)
            for entry in shard.iterdir():
                if entry.name in names or not _NAME.fullmatch(entry.name):
                    continue
                try:
                    if entry.stat().st_mtime >= before:
                        continue
                    size = _size(entry)
                except OSError:
                    continue
                _remove(entry)
                if not entry.exists():
                    removed["entries"] += 1
                    removed["bytes"] += size
    return removed


def _size(path: Path) -> int:
    if not path.is_dir():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _remove(entry: Path) -> None:
    """Rename the entry away first (a reader sees all of it or nothing), then delete it."""
    from pipeline.chunk_cache import discard_entry

    if entry.is_dir():
        discard_entry(entry)
    else:
        with contextlib.suppress(OSError):
            entry.unlink()
    with contextlib.suppress(OSError):
        if entry.is_dir():
            shutil.rmtree(entry)
