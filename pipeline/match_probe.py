"""A re-match skipped when an edit only added items that occur nowhere in the chunk.

A typical codebook edit adds a synonym to a rule. The unit of that rule (or of its
code, for codes with exclude rules) gets a new digest, so ``match_cache`` would match
it again in every chunk, although in most chunks the new word does not occur. Here
the unit's current definition is compared with the definition of its stale rows (the
JSON text whose SHA-256 is their digest, kept in ``<cache>/matches-v3/defs/``):

- when the two differ only in items added to the term, phrase, glob or proximity
  lists of its rules (same rules, kinds, weights, negation, caps, other parameters,
  and the same codebook-wide settings and matcher code, which are in the text), and
- none of the added items occurs in the chunk's tokens,

the unit's rows are its stale rows. ``compile_rules`` splits every list item the same
way and adds it to one token trie; an item without a hit changes no other item's hits,
and every later step (overlaps, proximity pairs, negation, ``max_matches``, exclude
vetoes) works on the hits, the tokens and those unchanged settings only. Whether an
added item occurs is found by matching a probe: one terms rule with all the added
items, weight 1, no negation, no cap and no opening factor, for which every trie hit
gives a row. Any doubt (a definition not found, a damaged file, anything but pure
additions, a probe hit) means the unit is matched again as before. When the chunk's
tokens are those of its cache entry, the entry's strings settle most probes without
matching (``trie_may_match``): no item can have a hit when one of its tokens matches
no string, and an item of one literal word that is a string may have one.

A definitions file holds every unit text of one codebook version and language; a
text is used only if its SHA-256 is the digest asked for, so a damaged or foreign
file is a miss. The newest ``KEEP`` files are kept.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pipeline.tagged_store import TaggedEntry

SUBDIR = "defs"
KEEP = 64                                   # definition files kept (one per codebook version)
LISTS = ("terms", "phrases", "globs", "a", "b")   # params whose items go into the token trie
_SAVED: set[tuple[str, str, str]] = set()   # (folder, codebook hash, lang) saved by this process
_READ: dict[tuple[str, int], dict[str, str]] = {}  # (file, mtime_ns) -> digest -> text
_FOUND: dict[tuple[str, str], str | None] = {}     # (folder, digest) -> old_text's answer
_PROBES: dict[tuple, Any] = {}              # (codebook hash, lang, items) -> CompiledRules


def remember(folder: Path | None, book, lang: str, texts: dict[str, str]) -> None:  # noqa: ANN001
    """Keep the unit texts of this codebook version (once per process and version).

    Written on the run's cache-writing thread when there is one; failures are ignored
    (the next re-code then matches again, as without this file).
    """
    if folder is None or (str(folder), book.hash, lang) in _SAVED:
        return
    _SAVED.add((str(folder), book.hash, lang))
    from pipeline import cache_io

    digests = {hashlib.sha256(t.encode("utf-8")).hexdigest(): t for t in texts.values()}
    name = hashlib.sha256(f"{book.hash}|{lang}".encode()).hexdigest()[:32]
    cache_io.behind(_save, folder / SUBDIR, name, digests)


def _save(folder: Path, name: str, digests: dict[str, str]) -> None:
    from pipeline.store import atomic_write_text

    path = folder / f"{name}.json"
    try:
        if not path.exists():
            folder.mkdir(parents=True, exist_ok=True)
            atomic_write_text(path, json.dumps(digests, sort_keys=True, ensure_ascii=False))
        files = sorted(folder.glob("*.json"), key=_mtime, reverse=True)
        for old in files[KEEP:]:
            old.unlink(missing_ok=True)
    except OSError:
        return


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0


def old_text(folder: Path | None, digest: str) -> str | None:
    """The unit text whose SHA-256 is ``digest`` (None: not kept); looked up once per
    process (every chunk of a re-code asks for the same digests)."""
    if folder is None:
        return None
    key = (str(folder), digest)
    if key not in _FOUND:
        _FOUND[key] = _look_up(folder, digest)
    return _FOUND[key]


def _look_up(folder: Path, digest: str) -> str | None:
    try:
        files = sorted((folder / SUBDIR).glob("*.json"), key=_mtime, reverse=True)
    except OSError:
        return None
    for path in files:
        key = (str(path), _mtime(path))
        if key not in _READ:
            try:
                got = json.loads(path.read_text(encoding="utf-8"))
                _READ[key] = got if isinstance(got, dict) else {}
            except (OSError, ValueError):
                _READ[key] = {}
        text = _READ[key].get(digest)
        if isinstance(text, str) and hashlib.sha256(text.encode("utf-8")).hexdigest() == digest:
            return text
    return None


def added_items(old_text: str, new_text: str) -> tuple[str, ...] | None:
    """The items ``new_text`` adds to ``old_text``'s lists, if that is all it changes.

    Both are unit texts (``[settings, unit, [[rule id, kind, params, weight, negation,
    max_matches], ...]]``). None when anything else differs, or a list lost or
    reordered an item.
    """
    try:
        old, new = json.loads(old_text), json.loads(new_text)
    except ValueError:
        return None
    if not (isinstance(old, list) and isinstance(new, list) and len(old) == len(new) == 3):
        return None
    if old[:2] != new[:2] or not isinstance(old[2], list) or not isinstance(new[2], list) \
            or len(old[2]) != len(new[2]):
        return None
    added: list[str] = []
    for before, after in zip(old[2], new[2]):
        if not (isinstance(before, list) and isinstance(after, list)
                and len(before) == len(after) == 6):
            return None
        if before[:2] != after[:2] or before[3:] != after[3:]:
            return None
        params, now = before[2], after[2]
        if not (isinstance(params, dict) and isinstance(now, dict)) or set(params) != set(now):
            return None
        for key, value in now.items():
            if key in LISTS and isinstance(value, list) and isinstance(params[key], list):
                extra = _extra(params[key], value)
                if extra is None:
                    return None
                added.extend(extra)
            elif params[key] != value:
                return None
    return tuple(added)


def _extra(old: list, new: list) -> list[str] | None:
    """``new``'s items that are not ``old``'s, if ``old`` is a subsequence of ``new``."""
    k, extra = 0, []
    for item in new:
        if k < len(old) and item == old[k]:
            k += 1
        else:
            extra.append(item)
    if k != len(old) or not all(isinstance(item, str) for item in extra):
        return None
    return extra


def probe_rules(book, lang: str, items: tuple[str, ...]):  # noqa: ANN001, ANN201
    """The probe: one terms rule with ``items`` (compiled once per process)."""
    key = (book.hash, lang, items)
    if key not in _PROBES:
        from pipeline.code import compile_rules
        from pipeline.codebook.model import Rule

        rule = Rule(id="probe", code_id="probe", lang=lang, kind="terms",
                    params={"terms": items, "opening": 1.0})
        _PROBES[key] = compile_rules(_Book([rule], book.settings), lang)
    return _PROBES[key]


class _Book:
    """What ``compile_rules`` reads of a codebook: its rules and settings."""

    def __init__(self, rules: list, settings) -> None:  # noqa: ANN001
        self._rules, self.settings = rules, settings

    def rules(self, lang: str) -> list:
        return [rule for rule in self._rules if rule.lang == lang]


def unchanged(folder: Path | None, entry: TaggedEntry, todo: set[str], book, lang: str,  # noqa: ANN001
              texts: dict[str, str], match, words=None,  # noqa: ANN001
              ) -> dict[str, tuple[str, int]] | None:
    """Units of ``todo`` whose loaded stale rows are their rows now, if that holds for all.

    Args:
        folder: the match cache's folder (``MatchCache.folder``).
        entry: the loaded entry (``load(..., stale=True)``).
        todo: the units whose current digest no file has.
        book, lang: the codebook and language.
        texts: ``match_cache.unit_texts(book, lang)``.
        match: ``(only, rules)`` -> match rows of the chunk with those compiled rules.
        words: () -> the chunk's words (every string of the tokens matched, and more)
            or None; with them the probe is settled without matching when no item can
            have a hit (``trie_may_match``), or when every item is one literal word
            that is among them (then some item may occur: matched again).

    Returns:
        unit -> (old digest, its rows' ``CACHE_UNIT``) for every unit of ``todo``, or
        None (match them again).
    """
    chosen: dict[str, tuple[str, int]] = {}
    for code, (unit, digest) in entry.stale_units().items():  # newest file first
        if unit in todo and unit not in chosen:
            chosen[unit] = (digest, code)
    if set(chosen) != todo:
        return None
    added: set[str] = set()
    for unit, (digest, _) in chosen.items():
        before = old_text(folder, digest)
        got = None if before is None else added_items(before, texts[unit])
        if not got:  # nothing found, or not (only) additions
            return None
        added.update(got)
    probe = probe_rules(book, lang, tuple(sorted(added)))
    known = words() if words is not None else None
    if known is not None:
        if not trie_may_match(probe.trie, known):
            return chosen
        root = probe.trie.root
        if not root.glob and not any(child.lit or child.glob for child in root.lit.values()):
            return None
    if len(match(None, probe)):
        return None
    return chosen


def trie_may_match(trie, words: set[str]) -> bool:  # noqa: ANN001
    """Whether a ``TokenTrie`` could have a hit in a text whose words are among ``words``.

    A hit follows the trie from the root to an end over one token per step, each equal
    to the step's literal (lower-case form or lemma) or matched by its glob: an item
    with a step that no word can take has none.
    """
    globs: set[str] | None = None
    todo = [trie.root]
    while todo:
        node = todo.pop()
        if node.ends:
            return True
        todo += [child for key, child in node.lit.items() if key in words]
        if node.glob:
            if globs is None:  # the globs some word matches
                globs = set().union(*map(trie.globs.match, words)) if words else set()
            todo += [child for glob, child in node.glob.items() if glob in globs]
    return False
