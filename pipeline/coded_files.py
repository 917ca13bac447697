"""Finished coding files, reused when no coding of the corpus can have changed.

``codings.parquet``, ``codings.csv`` and ``matches.parquet`` of a rules run follow from
its chunks (``table_cache.tables_key``: files, settings, code), the codebook's coding
state and the code that writes them. The coding state of a language is the digest of
each code (``coding_cache.code_digests``: its match units' digests, which cover its
rules, the matching settings and the matcher's code, plus the threshold and the
aggregation code). A run stores its finished files under its chunks and state; a later
run over the same chunks takes them instead of coding a single chunk when:

- its codebook has the stored state (a re-run, or an edit undone), or
- its codebook differs from a stored state only in items added to term, phrase, glob
  or proximity lists (``match_probe.added_items``: same units, same settings), each
  with a token that no word of the corpus matches.

The second test is ``match_probe``'s argument over the whole corpus instead of one
chunk: an item is a path in the token trie whose every step takes one token (equal to
the step's literal in lower-case form or lemma, or matched by its glob), so an item
with a step that no word of the corpus can take has no hit, changes no other item's
hits, and every later step sees the same hits. The words of the corpus are the
strings of its chunk entries (every form, lemma and norm of the parsed tokens) and
their lower-case forms. A chunk entry holds the tokens of every coded document in the
languages the codebook had rules for when it was made (``ChunkEntry.ruled``), so an
addition in a language is checked only when every chunk entry lists that language
(an entry made before the language had rules lacks its documents).

Entries are folders ``<tables key>/<state key>`` holding hard links to (or copies of)
the run's output files and a ``meta.json`` of their sizes and sha256, the state and
the run's counts; a file that does not match is a miss. The newest ``KEEP`` states
of a corpus are kept; the folder can be deleted any time. A run over another corpus
(a transcript added or removed) takes no entry whole, but the chunks it shares with
the newest entries of its state (``CodedFiles.moved``, ``coded_slices.moved``).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from pipeline import columns as C

SUBDIR = "coded-v1"      # bump when the entry format changes
KEEP = 4                 # states kept per corpus (newest first): each holds the three files
MOVED_TRIES = 2          # entries of other corpora looked at for chunks moved (``moved``)
FILES = (f"{C.CODINGS_FILE}.parquet", f"{C.CODINGS_FILE}.csv", f"{C.MATCHES_FILE}.parquet")
TABLES = ("codings", "matches")      # the runner's names of the tables of FILES
# Code that turns chunk results into these files besides table_cache.SOURCES (whose
# digest is in the tables key) and what the code digests cover.
SOURCES = ("coded_files.py", "csv_rows.py", "chunk.py", "chunk_code.py", "match_probe.py")
STAGED = ".staged"


@lru_cache(maxsize=1)
def _source_digest() -> str:
    from pipeline.chunk_cache import files_digest

    root = Path(__file__).resolve().parent
    return files_digest([root / name for name in SOURCES])


def ruled_languages(book) -> list[str]:  # noqa: ANN001
    """The languages the codebook has rules for (sorted)."""
    return sorted({lang for code in book.codes.values() for lang, rules in code.rules.items()
                   if rules})


def state_of(book) -> dict[str, dict[str, dict[str, str]]]:  # noqa: ANN001
    """The codebook's coding state: language -> ``units`` and ``codes`` digests."""
    from pipeline.coding_cache import code_digests
    from pipeline.match_cache import unit_digests

    return {lang: {"units": dict(sorted(unit_digests(book, lang)[0].items())),
                   "codes": dict(sorted(code_digests(book, lang).items()))}
            for lang in ruled_languages(book)}


def _state_key(state: dict) -> str:
    text = json.dumps([SUBDIR, _source_digest(), state], sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class Found:
    """A stored entry that holds this run's coding files.

    Attributes:
        files: file name -> checked staged copy.
        digests: file name -> sha256 (checked).
        counts: the stored run's ``codings``, ``tokens`` and ``per_code`` counts.
        added: language -> items the codebook added to the entry's state (none: the
            same state).
    """

    files: dict[str, Path]
    digests: dict[str, str]
    counts: dict[str, Any]
    added: dict[str, tuple[str, ...]] = field(default_factory=dict)


class CodedFiles:
    """Entries in ``<folder>/coded-v1``; a None folder disables it."""

    def __init__(self, folder: str | Path | None, memo=None) -> None:  # noqa: ANN001
        self.cache_dir = Path(folder) if folder is not None else None
        self.memo = memo   # a ``digest_memo.DigestMemo`` of the entries' files (None: none)
        self.folder = self.cache_dir / SUBDIR if self.cache_dir is not None else None
        # what the last ``find`` saw: entries whose state only lacks added items that
        # some chunk may hold (``coded_slices``), and the chunks' words it read
        self.near: list[tuple[Path, dict, dict]] = []
        self._words: dict[str, tuple[list[str], set[str]] | None] = {}
        self._unions: dict[tuple, set[str] | None] = {}

    def _corpus(self, tables_key: str) -> Path:
        assert self.folder is not None
        return self.folder / tables_key[:2] / tables_key

    def find(self, tables_key: str | None, book, chunk_keys: list[str],  # noqa: ANN001
             dest: Path) -> Found | None:
        """The newest stored entry of these chunks that holds ``book``'s coding files.

        Args:
            tables_key: ``table_cache.tables_key`` of the run's chunks.
            book: the codebook.
            chunk_keys: the chunk-cache keys (whose entries give the corpus's words).
            dest: folder for the checked copies (the run's parts folder).

        Returns:
            The entry's checked copies and counts, or None (then nothing is left in
            ``dest``).
        """
        if self.folder is None or tables_key is None:
            return None
        try:
            entries = sorted(self._corpus(tables_key).iterdir(), key=_mtime, reverse=True)
        except OSError:
            return None
        state = state_of(book)
        self.near = []
        for path in entries:
            meta = _meta(path)
            if meta is None:
                continue
            added = _added(meta["state"], state, book, self.cache_dir)
            if added is None:
                continue
            langs = sorted(lang for lang, items in added.items() if items)
            if langs:
                words = self._corpus_words(chunk_keys, langs)
                if words is None:
                    continue
                if may_occur(book, added, words):
                    self.near.append((path, meta, added))
                    continue
            got = fetch_files(path, meta, dest, self.memo)
            if got is not None:
                return Found(got[0], got[1], meta["counts"], added)
        return None

    def slices(self, book, chunk_keys: list[str], dest: Path):  # noqa: ANN001, ANN201
        """After a ``find`` that found nothing: the chunks of an entry it saw whose rows
        are this run's (``coded_slices.Slices``, its files linked into ``dest``), or None."""
        from pipeline import coded_slices

        return coded_slices.find(
            self.near, book, lambda k, langs: self._chunk_words(chunk_keys[k], langs),
            len(chunk_keys), dest, self.memo)

    def moved(self, book, chunk_keys: list[str | None], dest: Path):  # noqa: ANN001, ANN201
        """The chunks of this run that an entry of another corpus with ``book``'s state
        holds, found by their keys (``coded_slices.moved``), or None.

        Only the newest ``MOVED_TRIES`` such entries are looked at (a corpus that
        changed keeps most chunks of the run just before)."""
        from pipeline import coded_slices

        if self.folder is None:
            return None
        name = _state_key(state_of(book))
        try:
            paths = sorted(self.folder.glob(f"*/*/{name}"), key=_mtime, reverse=True)
        except OSError:
            return None
        entries = [(path, meta) for path in paths[:MOVED_TRIES]
                   if (meta := _meta(path)) is not None]
        return coded_slices.moved(entries, chunk_keys, dest, self.memo)

    def _chunk_words(self, key: str, langs: list[str]) -> set[str] | None:
        """``chunk_words``, read once per chunk."""
        if key not in self._words:
            got = chunk_words(self.cache_dir, key)
            self._words[key] = got
        got = self._words[key]
        return None if got is None or not set(langs) <= set(got[0]) else got[1]

    def _corpus_words(self, chunk_keys: list[str], langs: list[str]) -> set[str] | None:
        key = (tuple(chunk_keys), tuple(langs))
        if key not in self._unions:
            words: set[str] | None = set()
            for chunk in chunk_keys:
                got = self._chunk_words(chunk, langs)
                if got is None:
                    words = None
                    break
                words |= got
            self._unions = {key: words}
        return self._unions[key]

    def store(self, tables_key: str | None, book, files: dict[str, Path],  # noqa: ANN001
              digests: dict[str, str], counts: dict[str, Any],
              chunks: list[dict] | None = None) -> None:
        """Keep the run's finished files (hard links, else copies); failures are ignored.

        Args:
            tables_key: ``table_cache.tables_key`` of the run's chunks.
            book: the run's codebook.
            files: file name -> the committed output file.
            digests: file name -> sha256 of those bytes (the manifest's).
            counts: ``codings``, ``tokens``, ``per_code`` of the run.
            chunks: every chunk's place in the files (``coded_slices.layout``).
        """
        if self.folder is None or tables_key is None or set(files) != set(FILES):
            return
        from pipeline import match_probe
        from pipeline.match_cache import SUBDIR as MATCHES, unit_texts

        state = state_of(book)
        for lang in state:  # the texts of this state: a later edit is compared with them
            match_probe.remember(self.cache_dir / MATCHES, book, lang, unit_texts(book, lang))
        corpus = self._corpus(tables_key)
        path = corpus / _state_key(state)
        tmp = None
        try:
            corpus.mkdir(parents=True, exist_ok=True)
            if _meta(path) is not None:
                os.utime(path / "meta.json")  # the newest again: kept longest
                return
            tmp = Path(tempfile.mkdtemp(prefix=".new.", dir=corpus))
            meta: dict[str, Any] = {"state": state, "counts": counts, "files": {}}
            if chunks is not None:
                meta["chunks"] = chunks
            for name in FILES:
                try:
                    os.link(files[name], tmp / name)
                except OSError:
                    shutil.copyfile(files[name], tmp / name)
                meta["files"][name] = [(tmp / name).stat().st_size, digests[name]]
            (tmp / "meta.json").write_text(json.dumps(meta, sort_keys=True), encoding="utf-8")
            if path.exists():  # not a whole entry (a damaged one is removed on fetch)
                shutil.rmtree(path, ignore_errors=True)
            os.replace(tmp, path)
            tmp = None
            for stale in sorted(corpus.iterdir(), key=_mtime, reverse=True)[KEEP:]:
                if not stale.name.startswith("."):
                    shutil.rmtree(stale, ignore_errors=True)
        except (OSError, KeyError, TypeError, ValueError):
            return
        finally:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)


def _mtime(path: Path) -> int:
    try:
        return (path / "meta.json").stat().st_mtime_ns
    except OSError:
        return 0


def _meta(path: Path) -> dict | None:
    """An entry's meta (None: absent or not of this format)."""
    try:
        meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    ok = (isinstance(meta, dict) and isinstance(meta.get("state"), dict)
          and isinstance(meta.get("files"), dict) and set(meta["files"]) == set(FILES)
          and _counts_ok(meta.get("counts")))
    return meta if ok else None


def _counts_ok(counts: object) -> bool:
    """Whether ``counts`` are a run's counts as ``store`` writes them."""
    return (isinstance(counts, dict) and isinstance(counts.get("codings"), int)
            and isinstance(counts.get("tokens"), int) and isinstance(counts.get("per_code"), dict)
            and all(isinstance(k, str) and isinstance(v, int)
                    for k, v in counts["per_code"].items()))


def _added(stored: dict, state: dict, book, cache_dir: Path  # noqa: ANN001
           ) -> dict[str, tuple[str, ...]] | None:
    """Per language, the items ``book`` adds to the ``stored`` state, if that is all it
    changes (same languages, units and code digests once the stored unit digests are
    put back); None otherwise."""
    from pipeline import match_probe
    from pipeline.coding_cache import code_digests
    from pipeline.match_cache import SUBDIR as MATCHES, unit_texts

    if set(stored) != set(state):
        return None
    out: dict[str, tuple[str, ...]] = {}
    for lang, now in state.items():
        then = stored[lang]
        if not isinstance(then, dict) or not isinstance(then.get("units"), dict) \
                or set(then["units"]) != set(now["units"]):
            return None
        items: set[str] = set()
        texts = None
        for unit, digest in now["units"].items():
            old = then["units"][unit]
            if old == digest:
                continue
            texts = texts if texts is not None else unit_texts(book, lang)
            before = match_probe.old_text(cache_dir / MATCHES, old)
            got = None if before is None else match_probe.added_items(before, texts[unit])
            if not got:  # not found, or not (only) additions
                return None
            items.update(got)
        # the codings of the stored units: the same threshold and aggregation code
        codes = code_digests(book, lang, then["units"]) if items else now["codes"]
        if codes != then.get("codes"):
            return None
        out[lang] = tuple(sorted(items))
    return out


def chunk_words(cache_dir: Path, key: str) -> tuple[list[str], set[str]] | None:
    """The languages a chunk entry was made with rules for (``ChunkEntry.ruled``) and
    its words: every string of its tokens and its lower-case form (None: no entry)."""
    from pipeline.chunk_cache import SUBDIR as CHUNKS

    folder = cache_dir / CHUNKS / key[:2] / key
    try:
        ruled = json.loads((folder / "meta.json").read_text(encoding="utf-8")).get("ruled")
        strings = json.loads((folder / "strings.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(strings, list) or not isinstance(ruled, list):
        return None
    words = set(strings)
    words.update([w.lower() for w in words])
    return ruled, words


def corpus_words(cache_dir: Path, chunk_keys: list[str], langs: list[str]) -> set[str] | None:
    """Every string of the chunks' entries and its lower-case form.

    None when an entry or its strings are missing, or an entry was made while one of
    ``langs`` had no rules (``ChunkEntry.ruled``: its documents may lack tokens).
    """
    return CodedFiles(cache_dir)._corpus_words(chunk_keys, langs)


def may_occur(book, added: dict[str, tuple[str, ...]], words: set[str]) -> bool:  # noqa: ANN001
    """Whether some added item could have a hit: each of its tokens (a literal, or a
    glob) matches one of ``words`` (``trie_may_match`` of ``match_probe``'s probe)."""
    from pipeline import match_probe

    return any(match_probe.trie_may_match(match_probe.probe_rules(book, lang, items).trie, words)
               for lang, items in added.items() if items)


def fetch_files(path: Path, meta: dict, dest: Path, memo=None,  # noqa: ANN001
                ) -> tuple[dict[str, Path], dict[str, str]] | None:
    """Link (or copy) the entry's files into ``dest`` and check them (as
    ``table_cache.TableCache.fetch``, ``memo`` too); None (nothing left behind) when one
    is damaged."""
    files = meta.get("files") if isinstance(meta, dict) else None
    got = linked_files(path, {name: (files or {}).get(name) for name in FILES}, dest, memo)
    if got is None:
        shutil.rmtree(path, ignore_errors=True)  # so that a run stores a good one
    return got


def linked_files(path: Path, files: dict[str, Any], dest: Path, memo=None,  # noqa: ANN001
                 ) -> tuple[dict[str, Path], dict[str, str]] | None:
    """The files ``name`` of the entry at ``path`` hard-linked (else copied) into ``dest``
    as ``<name>.staged`` and checked against ``files[name]`` (``[size, sha256]``, as a
    ``meta.json`` holds them): (name -> copy, name -> sha256), or None (no copy left)."""
    from pipeline.store import file_digests

    out: dict[str, Path] = {}
    try:
        dest.mkdir(parents=True, exist_ok=True)
        for name, (size, _) in files.items():
            out[name] = dest / f"{name}{STAGED}"
            try:
                os.link(path / name, out[name])
            except OSError:
                out[name].unlink(missing_ok=True)
                shutil.copyfile(path / name, out[name])
            if out[name].stat().st_size != size:
                raise ValueError(f"damaged {name}")
        found = dict(zip(files, file_digests([out[name] for name in files], memo=memo,
                                             ctime=False)))
        if any(found[name] != digest for name, (_, digest) in files.items()):
            raise ValueError("damaged")
    except (OSError, ValueError, KeyError, TypeError):
        for copy in out.values():
            copy.unlink(missing_ok=True)
        return None
    return out, found
