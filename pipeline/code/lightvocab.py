"""A vocab for re-coding cached tokens without importing spaCy.

A chunk-cache entry stores its tokens' strings; the matcher only needs the string of
a hash (word types, evidence) and a lexeme's lower form. ``LightVocab`` gives those
with spaCy's own hashes (MurmurHash64A, seed 1, of the UTF-8 bytes: the ``hash64``
function spaCy links from the ``murmurhash`` package, called through that module's
exported C function) and spaCy's symbol table (from the tokenizer sketch: a symbol's
string has its symbol id, as in ``StringStore.add``). Whatever it does not know (a
hash it never saw, a Doc, a lexeme's flags) goes to the real vocab, built on first
need with every string seen so far, so it answers as ``nlp.base_vocab`` would.
"""
from __future__ import annotations

import sys
from functools import lru_cache

_VOCABS: dict[str, object] = {}


@lru_cache(maxsize=1)
def _hash64():  # noqa: ANN202 - a ctypes function, or None when it cannot be had
    """``murmurhash.mrmr.hash64`` (``uint64_t (void *, int, uint64_t)``) as a ctypes function."""
    try:
        import ctypes

        import murmurhash.mrmr as mrmr

        capsule = mrmr.__pyx_capi__["hash64"]
        api = ctypes.pythonapi
        api.PyCapsule_GetName.restype = ctypes.c_char_p
        api.PyCapsule_GetName.argtypes = [ctypes.py_object]
        api.PyCapsule_GetPointer.restype = ctypes.c_void_p
        api.PyCapsule_GetPointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
        name = api.PyCapsule_GetName(capsule)
        if name != b"uint64_t (void *, int, uint64_t)":
            return None
        pointer = api.PyCapsule_GetPointer(capsule, name)
        kind = ctypes.CFUNCTYPE(ctypes.c_uint64, ctypes.c_char_p, ctypes.c_int, ctypes.c_uint64)
        return kind(pointer)
    except Exception:  # noqa: BLE001 - no such function: the real vocab is used
        return None


def hash_string(text: str) -> int:
    """spaCy's ``strings.hash_string``: MurmurHash64A (seed 1) of the UTF-8 bytes.

    Raises:
        RuntimeError: the hash function is not available (``available()`` is False).
    """
    fn = _hash64()
    if fn is None:
        raise RuntimeError("murmurhash's hash64 is not available")
    data = text.encode("utf-8")
    return int(fn(data, len(data), 1))


def available() -> bool:
    """Whether ``hash_string`` works without spaCy."""
    return _hash64() is not None


class _Lexeme:
    """What the matcher reads of a lexeme: ``lower_`` (spaCy's LOWER getter: ``str.lower``)."""

    __slots__ = ("lower_",)

    def __init__(self, lower: str) -> None:
        self.lower_ = lower


class LightStrings:
    """The part of a ``StringStore`` the matcher uses: ``add``, ``[hash]``, ``in``."""

    def __init__(self, owner: LightVocab, symbols: dict[str, int], names: list[str]) -> None:
        self._owner = owner
        self._names = names
        self._by_hash: dict[int, str] = {}
        # text -> hash of every string added (and of the symbols, and "" -> 0): the
        # strings of a chunk-cache entry are mostly those of the entries before it
        self._known: dict[str, int] = {**symbols, "": 0}
        self._hash = _hash64()

    def add(self, text: str) -> int:
        """Add ``text``; return its hash (0 for "", the symbol id of a symbol)."""
        h = self._known.get(text)
        return h if h is not None else self._add_new(text)

    def _add_new(self, text: str) -> int:
        data = text.encode("utf-8")
        h = self._known[text] = self._hash(data, len(data), 1)
        self._by_hash[h] = text
        real = self._owner._real
        if real is not None:  # once it is built, it holds every string added here
            real.strings.add(text)
        return h

    def __getitem__(self, key: int) -> str:
        text = self._by_hash.get(key)
        if text is not None:
            return text
        if isinstance(key, int) and 0 <= key < len(self._names):
            return self._names[key]  # as StringStore: 0 is "", small ids are symbols
        return self._owner.real().strings[key]

    def __contains__(self, key: int) -> bool:
        if key in self._by_hash or (isinstance(key, int) and 0 <= key < len(self._names)):
            return True
        return key in self._owner.real().strings

    def values(self) -> list[str]:
        """Every string added (not the symbols)."""
        return list(self._by_hash.values())


class LightVocab:
    """``nlp.base_vocab(lang)`` for cached tokens, without spaCy until something needs it.

    Args:
        lang: the language.
        symbols, names: spaCy's symbol table (``spacy.symbols.IDS`` and ``NAMES``).
    """

    def __init__(self, lang: str, symbols: dict[str, int], names: list[str]) -> None:
        self.lang = lang
        self._real = None
        self.strings = LightStrings(self, symbols, names)

    def __getitem__(self, orth: int) -> _Lexeme:
        if self._real is not None:
            return self._real[orth]
        return _Lexeme(self.strings[orth].lower())

    def real(self):  # noqa: ANN201 - spacy.vocab.Vocab
        """The real vocab (``base_vocab(lang)``), holding every string added here."""
        if self._real is None:
            from pipeline.nlp import base_vocab

            real = base_vocab(self.lang)
            add = real.strings.add
            for text in self.strings.values():
                add(text)
            self._real = real
        return self._real


def spacy_vocab(vocab):  # noqa: ANN001, ANN201
    """The spaCy vocab behind ``vocab`` (a ``LightVocab``'s real one, else ``vocab``)."""
    return vocab.real() if isinstance(vocab, LightVocab) else vocab


def run_vocab(lang: str):  # noqa: ANN201
    """The vocab of ``lang`` for this process: ``nlp.base_vocab(lang)`` when spaCy is
    imported already (or no sketch / hash function is available), else a ``LightVocab``.

    The first answer for a language is kept, so the cached strings added to it
    resolve for every later chunk.
    """
    got = _VOCABS.get(lang)
    if got is None:
        light = None
        if "spacy" not in sys.modules and available():
            from pipeline.code.sketch import sketch

            found = sketch(lang)
            if found is not None:
                light = LightVocab(lang, found.symbols, found.names)
        if light is None:
            from pipeline.nlp import base_vocab

            return base_vocab(lang)
        got = _VOCABS[lang] = light
    return got
