"""What a re-code needs of spaCy's tokenizer and string store, kept in the cache folder.

Compiling a terms/phrase/glob rule splits its items into tokens with the pipeline's
tokenizer (only each token's lower-case form is used), and the matcher resolves the
cached tokens' string hashes; importing spaCy for that costs ~0.4 s of a ~2 s
re-code. Whenever spaCy's tokenizer is built anyway (a run that parses), a
``TokenizerSketch`` of it is saved in ``<cache>/tokenizer-v1/<pipeline fingerprint>-<lang>.json``:

- its prefix, suffix and infix regexes (plain ``re`` patterns and flags) and its
  special-case strings. A whitespace-free piece that is no special case and in which
  none of the three regexes finds anything is ONE token (``Tokenizer._split_affixes``
  strips nothing, ``_attach_tokens`` splits nothing; ``token_match`` and ``url_match``
  only keep a piece whole), and its ``lower_`` is ``str.lower()`` (the vocab's LOWER
  getter). The special-case matcher matches token sequences of special cases, and a
  one-token sequence is a special case's own text (compared without whitespace);
- the pieces compiled so far (those the tokenizer split, such as affixed words, and
  those proven single), with their tokens' lower forms;
- spaCy's symbol table (``StringStore`` gives those strings their symbol id, not
  their hash).

``pipeline_fingerprint`` covers spaCy's version and our pipeline code, so a sketch
never outlives its tokenizer. A damaged or missing file is no sketch: the caller
builds the tokenizer as before. Anything the sketch cannot prove goes to spaCy.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pipeline.codebook import is_glob

SUBDIR = "tokenizer-v1"   # bump when the file's meaning changes
_FOLDER: list[Path | None] = [None]          # the run's cache folder (``use_folder``)
_SKETCHES: dict[tuple[Path, str], TokenizerSketch | None] = {}


def use_folder(folder: str | Path | None) -> None:
    """Make ``folder`` (a run's cache folder; None: none) where sketches are read and saved.

    The codebook loader calls it with the folder of the run's pattern memo; a sketch
    is a fact about spaCy, valid for any run with the same pipeline fingerprint.
    """
    _FOLDER[0] = Path(folder) if folder is not None else None


def folder() -> Path | None:
    """The cache folder set by ``use_folder`` (None: no sketches)."""
    return _FOLDER[0]


def _path(root: Path, lang: str) -> Path:
    from pipeline.cache import pipeline_fingerprint

    return root / SUBDIR / f"{pipeline_fingerprint(lang)}-{lang}.json"


class TokenizerSketch:
    """The regexes, special cases and known splits of one language's tokenizer.

    Args:
        data: the JSON object of a sketch file (see the module docstring).

    Raises:
        ValueError, KeyError, TypeError, re.error: ``data`` is not a sketch.
    """

    def __init__(self, data: dict[str, Any]) -> None:
        if data.get("version") != 1:
            raise ValueError("not a tokenizer sketch")
        self.data = data
        self._patterns = [(str(p), int(f)) for p, f in (data["prefix"], data["suffix"], data["infix"])]
        # compiled on first use (~50 ms), when what a match of the regex needs
        # (``regex_chars``, ~10 ms to find) does not prove that a piece has none
        self._res: dict[int, re.Pattern] = {}
        self._needs: dict[int, Any] = {}   # k -> regex_chars.Need or None (no proof)
        self._specials: frozenset[str] | None = None      # made on first use too
        # as written by ``save`` (JSON of these types; ``_checked`` rejects anything else)
        self.splits: dict[str, list[str]] = _checked(data["splits"], dict)
        self.symbols: dict[str, int] = _checked(data["symbols"], dict)
        self.names: list[str] = _checked(data["names"], list)
        if not all(type(v) is int for v in self.symbols.values()) \
                or not all(type(n) is str for n in self.names):
            raise TypeError("not a symbol table")
        self.new = 0   # splits added since it was read

    @classmethod
    def of_tokenizer(cls, tokenizer) -> TokenizerSketch | None:  # noqa: ANN001
        """The sketch of a spaCy ``Tokenizer`` (None: it has no plain ``re`` affix regexes)."""
        from spacy.symbols import IDS, NAMES

        found = []
        for fn in (tokenizer.prefix_search, tokenizer.suffix_search, tokenizer.infix_finditer):
            pattern = getattr(fn, "__self__", None)
            if not isinstance(pattern, re.Pattern) or not isinstance(pattern.pattern, str):
                return None
            found.append(pattern)
        made = cls({"version": 1, "prefix": [found[0].pattern, found[0].flags],
                    "suffix": [found[1].pattern, found[1].flags],
                    "infix": [found[2].pattern, found[2].flags],
                    "specials": sorted(tokenizer.rules), "splits": {},
                    "symbols": dict(IDS), "names": list(NAMES)})
        made._res = dict(enumerate(found))  # the tokenizer's own compiled regexes
        return made

    def single(self, piece: str) -> bool:
        """Whether spaCy's tokenizer makes ``piece`` (no whitespace) one token."""
        if self._specials is None:
            specials = [str(k) for k in self.data["specials"]]
            self._specials = frozenset(specials) | frozenset("".join(k.split()) for k in specials)
        if not piece or piece in self._specials or any(ch.isspace() for ch in piece):
            return False
        for k, (pattern, flags) in enumerate(self._patterns):
            if k not in self._res:
                if k not in self._needs:
                    from pipeline.code.regex_chars import requirement

                    self._needs[k] = requirement(pattern, flags)
                need = self._needs[k]
                if need is not None and not need.met_by(piece):
                    continue  # no match can lie in the piece
                self._res[k] = re.compile(pattern, flags)
            if self._res[k].search(piece) is not None:
                return False
        return True

    def lowers(self, piece: str) -> list[str] | None:
        """The tokens' lower forms of ``piece`` (whitespace-free); None: not known."""
        known = self.splits.get(piece)
        if isinstance(known, list) and all(type(t) is str for t in known):
            return list(known)
        return [piece.lower()] if self.single(piece) else None

    def remember(self, piece: str, lowers: list[str]) -> None:
        """Note the lower forms spaCy's tokenizer gave ``piece`` (saved by ``save``)."""
        if self.splits.get(piece) != lowers:
            self.splits[piece] = list(lowers)
            self.new += 1

    def save(self, lang: str) -> None:
        """Write the sketch to the cache folder (failures are ignored: no sketch then)."""
        from pipeline.store import atomic_write_text

        root = folder()
        if root is None:
            return
        data = dict(self.data, splits=self.splits)
        try:
            path = _path(root, lang)
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(path, json.dumps(data, ensure_ascii=False, sort_keys=True))
        except OSError:
            return
        self.new = 0


def _checked(value: Any, kind: type) -> Any:
    if not isinstance(value, kind):
        raise TypeError(f"not a {kind.__name__}")
    return value


def sketch(lang: str) -> TokenizerSketch | None:
    """The saved sketch of ``lang``'s tokenizer in the cache folder (None: none readable)."""
    root = folder()
    if root is None:
        return None
    key = (root, lang)
    if key not in _SKETCHES:
        try:
            data = json.loads(_path(root, lang).read_text(encoding="utf-8"))
            _SKETCHES[key] = TokenizerSketch(data)
        except Exception:  # noqa: BLE001 - missing or damaged: no sketch (spaCy decides)
            _SKETCHES[key] = None
    return _SKETCHES[key]


def sketch_of_built(lang: str) -> TokenizerSketch | None:
    """The sketch of ``lang``, made from spaCy's tokenizer and saved when none is saved yet
    but that tokenizer is already built in this process (it is not built for this)."""
    import sys

    root = folder()
    if root is None:
        return None
    found = sketch(lang)
    if found is not None or "pipeline.nlp" not in sys.modules:
        return found
    from pipeline.nlp import _BLANKS

    nlp = _BLANKS.get(lang)
    if nlp is None:
        return None
    made = TokenizerSketch.of_tokenizer(nlp.tokenizer)
    if made is not None:
        made.save(lang)
        _SKETCHES[(root, lang)] = made
    return made


class TermSplitter:
    """Items of rules -> (token lower form, is glob) pairs, as ``compiled._tokens`` with
    ``nlp.base_nlp(lang)``'s tokenizer, which is only built for a piece that the saved
    sketch does not know.

    The pieces split here are noted in the sketch (``done`` saves it), so the next
    compile of the same items needs neither the tokenizer nor the sketch's regexes.
    """

    def __init__(self, lang: str) -> None:
        self.lang = lang
        self.sketch = sketch_of_built(lang)
        self._nlp = None
        self._split: dict[str, list[str]] = {}   # pieces split here, not in the memo

    def nlp(self):  # noqa: ANN201 - nlp_rules.RuleNLP
        """``nlp.base_nlp(lang)`` (built on first use)."""
        if self._nlp is None:
            from pipeline.nlp import base_nlp

            self._nlp = base_nlp(self.lang)
        return self._nlp

    def __call__(self, text: str) -> list[tuple[str, bool]]:
        """Split an item the way documents are tokenized; globs stay whole."""
        out: list[tuple[str, bool]] = []
        for chunk in text.split():
            if is_glob(chunk):
                out.append((chunk, True))
                continue
            lowers = self.sketch.lowers(chunk) if self.sketch is not None else None
            if lowers is None:
                lowers = [tok.lower_ for tok in self.nlp().tokenizer(chunk)]
            if self.sketch is None or chunk not in self.sketch.splits:
                self._split[chunk] = lowers
            out.extend((low, False) for low in lowers)
        return out

    def done(self) -> None:
        """Save the pieces split here in the sketch (made now if spaCy's tokenizer is
        built and none was saved)."""
        if not self._split:
            return
        if self.sketch is None:
            self.sketch = sketch_of_built(self.lang)
        if self.sketch is None:
            return
        for piece, lowers in self._split.items():
            self.sketch.remember(piece, lowers)
        if self.sketch.new:
            self.sketch.save(self.lang)
