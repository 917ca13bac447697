"""Parse once, code many times: a folder of spaCy ``DocBin`` files.

Re-coding after a codebook edit does not change a single token, so the parsed
segments of a document are stored under a key made of everything that shapes the
parse: the segment texts, the language, the spaCy and spacy-lookups-data versions
and the code that builds and runs the pipeline (``pipeline_fingerprint``, computed
without building it). A changed text, unit or pipeline gives a new key; nothing is
ever invalidated in place. One file per document keeps the file count low (a
million segments in ten thousand documents is ten thousand files).

The folder only holds derived data and can be deleted at any time. Entries are
written atomically (temp file + rename), and an unreadable, truncated or mismatched
entry is treated as a miss: parsed again and overwritten, never an error.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Sequence
from functools import lru_cache
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # spaCy is imported where used: the runner process never needs it
    from spacy.tokens import Doc, DocBin

CACHE_DIRNAME = ".cache"      # inside the output folder; gitignored (.gitignore: .cache/)
SUBDIR = "docbin-v1"          # bump when the entry format changes
# Attributes the coder reads: lower/lemma/punct come from ORTH+LEMMA via the vocab.
_ATTRS = ["ORTH", "LEMMA", "NORM", "SENT_START"]


def default_cache_dir(out_dir: str | Path) -> Path:
    """Return the default cache folder of an output folder (``<out>/.cache``)."""
    return Path(out_dir) / CACHE_DIRNAME


# Modules and data whose code builds and runs the pipeline (``nlp.make_nlp``, ``nlp.parse``).
FINGERPRINT_SOURCES = ("nlp.py", "nlp_lookups.py", "nlp_batch.py", "nlp_fast.py", "cache.py",
                       "languages.py")


@lru_cache(maxsize=None)
def pipeline_fingerprint(lang: str) -> str:
    """Hash of what, besides the text, determines a parse in ``lang``.

    Computed without building the pipeline (a warm re-code need not build it): the
    pipeline is ``spacy.blank(lang)`` plus our components, so its config and its
    output follow from the language, the spaCy and spacy-lookups-data versions, the
    Python version and Unicode database (string and regex behaviour of the
    tokenizer), and the source of the modules and data files that build and run it.
    """
    import platform
    import unicodedata

    from pipeline.chunk_cache import files_digest

    found = []
    for name in ("spacy", "spacy-lookups-data"):
        try:
            found.append(importlib_metadata.version(name))
        except importlib_metadata.PackageNotFoundError:
            found.append("none")
    root = Path(__file__).resolve().parent
    sources = files_digest([*root.joinpath("data").glob("*"),
                            *(root / name for name in FINGERPRINT_SOURCES)])
    parts = [SUBDIR, lang, *found, platform.python_version(), unicodedata.unidata_version,
             sources]
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


def cache_key(texts: Sequence[str], lang: str) -> str:
    """Key of the parse of ``texts`` (in order) with the ``lang`` pipeline."""
    h = hashlib.sha256(pipeline_fingerprint(lang).encode("ascii"))
    for text in texts:
        data = text.encode("utf-8")
        # Length prefixes: ["ab", "c"] and ["a", "bc"] must not collide.
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


def _n_chars(doc: Doc) -> int:
    if not len(doc):
        return 0
    last = doc[-1]
    return last.idx + len(last.text_with_ws)


def docbin(docs: Sequence[Doc]) -> DocBin:
    """``DocBin(attrs=_ATTRS, docs=docs)`` without its per-token Python loop.

    ``DocBin.add`` collects each token's strings one ``Token`` at a time; here they come
    from the distinct hashes of the same attributes (``Doc.to_array``), so the DocBin
    (arrays, spaces, flags, strings) is the same, several times faster.
    """
    import numpy as np
    from spacy.attrs import DEP, ENT_ID, ENT_KB_ID, ENT_TYPE, LEMMA, MORPH, NORM, ORTH, SPACY, TAG
    from spacy.tokens import DocBin

    out = DocBin(attrs=_ATTRS, store_user_data=False)
    string_attrs = [ORTH, TAG, LEMMA, NORM, MORPH, DEP, ENT_TYPE, ENT_KB_ID, ENT_ID]
    hashes = []
    for doc in docs:
        if doc.spans or doc.user_hooks:  # span labels etc.: DocBin's own code
            out.add(doc)
            continue
        array = doc.to_array(out.attrs).reshape(len(doc), len(out.attrs))
        out.tokens.append(array)
        out.spaces.append(np.asarray(doc.to_array(SPACY), dtype=bool).reshape(-1, 1))
        out.flags.append({"has_unknown_spaces": doc.has_unknown_spaces})
        out.cats.append(doc.cats)
        out.span_groups.append(doc.spans.to_bytes())
        if len(doc):
            hashes.append(doc.to_array(string_attrs).reshape(-1))
    if hashes and docs:
        strings = docs[0].vocab.strings
        out.strings.update(strings[h] if h else "" for h in np.unique(np.concatenate(hashes)).tolist())
    return out


def docbin_bytes(parts: Sequence, vocab) -> bytes:  # noqa: ANN001
    """``docbin(docs).to_bytes()`` of the docs whose ``code.arrays.ATTRS`` arrays are
    ``parts``, compressed faster.

    The docs of ``nlp.parse`` have no spans, user hooks, categories or unknown spaces,
    and their TAG, MORPH, DEP and entity hashes are 0 (the string ""): the DocBin holds
    the ``_ATTRS`` columns, the spaces and the strings of the hashes, all in the arrays.
    The message is ``DocBin.to_bytes``'s, byte for byte; only the zlib level differs
    (3, not 6: half the time for a few per cent more bytes; any level decompresses).
    """
    import zlib

    import numpy as np
    import pandas as pd
    import srsly
    from spacy.attrs import LEMMA, NORM, ORTH, SPACY
    from spacy.tokens import Doc, DocBin

    from pipeline.code.arrays import ATTRS

    empty = DocBin(attrs=_ATTRS, store_user_data=False)
    width = len(ATTRS)
    parts = [p.reshape(-1, width) for p in parts]
    table = np.concatenate([*parts, np.zeros((0, width), dtype=np.uint64)])
    tokens = np.ascontiguousarray(table[:, [ATTRS.index(attr) for attr in empty.attrs]])
    spaces = table[:, ATTRS.index(SPACY)].astype(bool)
    strings: set[str] = set()
    if len(table):
        # TAG, MORPH, DEP and the entity columns are 0 for every token: their string ""
        found = pd.unique(table[:, [ATTRS.index(a) for a in (ORTH, LEMMA, NORM)]].reshape(-1))
        strings = set(map(vocab.strings.__getitem__, found[found != 0].tolist()))
        strings.add("")
    n = len(parts)
    msg = {"version": empty.version, "attrs": empty.attrs,
           "tokens": tokens.tobytes("C") if len(tokens) else b"",
           "spaces": spaces.tobytes("C") if len(spaces) else b"",
           "lengths": np.asarray([len(p) for p in parts], dtype="int32").tobytes("C"),
           "strings": sorted(strings), "cats": [{} for _ in range(n)],
           "flags": [{"has_unknown_spaces": False} for _ in range(n)],
           "span_groups": [Doc(vocab).spans.to_bytes()] * n}
    return zlib.compress(srsly.msgpack_dumps(msg), 3)


def docbin_arrays(data: DocBin, vocab) -> list | None:  # noqa: ANN001
    """The ``code.arrays.ATTRS`` arrays of ``data.get_docs(vocab)``, without the docs.

    Adds the strings to the vocab as ``get_docs`` does. None when the entry holds
    more than ``docbin_bytes`` writes (other attributes, unknown spaces, spans,
    categories, user data) or a NORM of 0 (a Doc reads the lexeme's then): only
    ``get_docs`` gives those docs.
    """
    import numpy as np
    from spacy.attrs import IDS, NORM, SPACY
    from spacy.tokens import Doc

    from pipeline.code.arrays import ATTRS

    attrs = list(data.attrs)
    if sorted(attrs) != sorted(IDS[name] for name in _ATTRS) or any(data.cats) or any(
            flags.get("has_unknown_spaces") for flags in data.flags) or any(
            u is not None for u in data.user_data):
        return None
    empty_spans = Doc(vocab).spans.to_bytes()
    if any(groups and groups != empty_spans for groups in data.span_groups):
        return None
    for string in data.strings:
        vocab[string]  # as get_docs: every string in the StringStore, with its lexeme
    norm = attrs.index(NORM)
    columns = [(ATTRS.index(attr), attrs.index(attr)) for attr in attrs]
    space = ATTRS.index(SPACY)
    parts = []
    for tokens, spaces in zip(data.tokens, data.spaces, strict=True):
        if len(tokens) and not tokens[:, norm].all():
            return None
        part = np.empty((len(tokens), len(ATTRS)), dtype=np.uint64)
        for to, source in columns:
            part[:, to] = tokens[:, source]
        part[:, space] = spaces.reshape(-1)
        parts.append(part)
    return parts


class DocCache:
    """Parsed segments on disk, keyed by ``cache_key``.

    Args:
        folder: Cache folder; None disables caching (``--no-cache``).
    """

    def __init__(self, folder: str | Path | None) -> None:
        self.folder = Path(folder) / SUBDIR if folder is not None else None
        self.hits = 0
        self.misses = 0

    def _path(self, key: str) -> Path:
        assert self.folder is not None
        return self.folder / key[:2] / f"{key}.spacy"

    def load(self, key: str, texts: Sequence[str], lang: str) -> list[Doc] | None:
        """Return the cached docs of ``texts``, or None when absent or unusable."""
        if self.folder is None:
            return None
        path = self._path(key)
        try:
            data = path.read_bytes()
        except OSError:
            return None
        from spacy.tokens import DocBin

        from pipeline.nlp import base_vocab

        try:  # the vocab is all a DocBin needs: the pipeline is built only to parse
            docs = list(DocBin().from_bytes(data).get_docs(base_vocab(lang)))
        except Exception:  # a damaged entry can fail in msgpack, zlib or spaCy: rebuild it
            return None
        # The key already hashes the texts; a cheap length check catches a foreign or
        # mangled file without paying for Doc.text (which re-joins every token).
        if len(docs) != len(texts) or any(_n_chars(d) != len(t) for d, t in zip(docs, texts)):
            return None
        return docs

    def load_arrays(self, key: str, texts: Sequence[str], lang: str) -> list | None:
        """The ``code.arrays.ATTRS`` arrays of ``load(key, texts, lang)``'s docs, or None."""
        if self.folder is None:
            return None
        try:
            data = self._path(key).read_bytes()
        except OSError:
            return None
        import numpy as np
        from spacy.attrs import ORTH, SPACY
        from spacy.tokens import DocBin

        from pipeline.code.arrays import ATTRS
        from pipeline.nlp import base_vocab

        vocab = base_vocab(lang)
        try:
            parts = docbin_arrays(DocBin().from_bytes(data), vocab)
        except Exception:  # a damaged entry can fail in msgpack, zlib or spaCy: rebuild it
            return None
        if parts is None:  # not written by docbin_bytes: read it as docs
            docs = self.load(key, texts, lang)
            return None if docs is None else [doc.to_array(ATTRS) for doc in docs]
        if len(parts) != len(texts):
            return None
        # the length check of ``load``: the characters of the tokens and their spaces
        sizes = np.asarray([len(p) for p in parts], dtype=np.int64)
        table = np.concatenate([*parts, np.zeros((0, len(ATTRS)), dtype=np.uint64)])
        forms, inverse = np.unique(table[:, ATTRS.index(ORTH)], return_inverse=True)
        strings = vocab.strings
        lengths = np.asarray([len(strings[f]) for f in forms.tolist()], dtype=np.int64)
        widths = lengths[inverse.reshape(-1)] + table[:, ATTRS.index(SPACY)].astype(np.int64)
        total = np.zeros(len(widths) + 1, dtype=np.int64)
        np.cumsum(widths, out=total[1:])
        ends = np.cumsum(sizes)
        if (total[ends] - total[ends - sizes]).tolist() != [len(t) for t in texts]:
            return None
        return parts

    def save(self, key: str, docs: Sequence[Doc]) -> None:
        """Store docs under ``key``; failures (disk full, read-only) are ignored."""
        self._store(key, lambda: docbin(docs).to_bytes())

    def save_arrays(self, key: str, parts: Sequence, lang: str) -> None:
        """Store the docs of ``code.arrays.ATTRS`` arrays (``nlp.parse_arrays``) under ``key``."""
        from pipeline.nlp import base_vocab

        self._store(key, lambda: docbin_bytes(parts, base_vocab(lang)))

    def _store(self, key: str, payload_of) -> None:  # noqa: ANN001
        if self.folder is None:
            return
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            payload = payload_of()
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            with os.fdopen(fd, "wb") as fh:
                fh.write(payload)
            os.replace(tmp, path)  # atomic: a concurrent reader sees old or new, never half
        except OSError:
            return

    def parse(self, texts: Sequence[str], lang: str, *, batch_size: int = 256) -> list[Doc]:
        """Return docs of ``texts`` from the cache, parsing (and storing) on a miss."""
        from pipeline.nlp import parse

        return self._through(texts, lang, self.load,
                             lambda: parse(texts, lang, batch_size=batch_size), self.save)

    def parse_arrays(self, texts: Sequence[str], lang: str, *, batch_size: int = 256) -> list:
        """``[doc.to_array(code.arrays.ATTRS) for doc in self.parse(texts, lang)]``, no docs.

        The same cache entries as ``parse``: a hit is read as arrays, a miss parsed by
        ``nlp.parse_arrays`` and stored as the DocBin of its docs.
        """
        from pipeline.nlp import parse_arrays

        return self._through(texts, lang, self.load_arrays,
                             lambda: parse_arrays(texts, lang, batch_size=batch_size),
                             lambda key, parts: self.save_arrays(key, parts, lang))

    def parse_arrays_each(self, groups: Sequence[Sequence[str]], lang: str, *,
                          batch_size: int = 256) -> list[list]:
        """``[self.parse_arrays(texts, lang) for texts in groups]``, the misses parsed in one call.

        Each group (a document's texts) keeps its own cache entry, hit and miss count;
        ``nlp.parse_arrays`` gives each text the same arrays whatever else is in the call,
        and its fixed cost per call was about half of the parsing of a chunk's ~40
        documents when they were parsed one call each.

        Args:
            groups: lists of texts (a document's segments each).
            lang: their language.
            batch_size: texts per parse batch.

        Returns:
            The ``code.arrays.ATTRS`` arrays of each group's texts, per group.
        """
        from pipeline.nlp import parse_arrays

        got: list[list | None] = [None] * len(groups)
        keys: list[str | None] = [None] * len(groups)
        if self.folder is not None:
            for k, texts in enumerate(groups):
                keys[k] = cache_key(texts, lang)
                got[k] = self.load_arrays(keys[k], texts, lang)
        missed = [k for k, parts in enumerate(got) if parts is None]
        self.hits += len(groups) - len(missed)
        self.misses += len(missed)
        if missed:
            parsed = parse_arrays([t for k in missed for t in groups[k]], lang,
                                  batch_size=batch_size)
            at = 0
            for k in missed:
                got[k], at = parsed[at:at + len(groups[k])], at + len(groups[k])
                if keys[k] is not None:
                    self.save_arrays(keys[k], got[k], lang)
        return got  # type: ignore[return-value]

    def _through(self, texts: Sequence[str], lang: str, load, make, save) -> list:  # noqa: ANN001
        """``load`` the entry of ``texts``, or ``make`` and ``save`` it (counting hits)."""
        if self.folder is None:
            self.misses += 1
            return make()
        key = cache_key(texts, lang)
        got = load(key, texts, lang)
        if got is not None:
            self.hits += 1
            return got
        self.misses += 1
        got = make()
        save(key, got)
        return got

