"""Parse once, code many times: a folder of spaCy ``DocBin`` files.

Re-coding after a codebook edit does not change a single token, so the parsed
segments of a document are stored under a key made of everything that shapes the
parse: the segment texts, the language, the spaCy and spacy-lookups-data versions
and the code that builds and runs the pipeline (``pipeline_fingerprint``, computed
without building it). A changed text, unit or pipeline gives a new key; nothing is
ever invalidated in place. One file per document keeps the file count low (a
million segments in ten thousand documents is ten thousand files).

A run writes and reads these entries only with ``--docbin-cache`` (``RunOptions.docbin``):
each chunk's parsed segments are kept by the chunk cache (``chunk_cache``) anyway, and
reading a document back from its DocBin took longer than parsing it again
(benchmarks/RESULTS.md, session 14).

The folder only holds derived data and can be deleted at any time. Entries are
written atomically (temp file + rename), and an unreadable, truncated or mismatched
entry is treated as a miss: parsed again and overwritten, never an error.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Sequence
from functools import lru_cache
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline import cache_io
# the entries' DocBin codec (re-exported)
from pipeline.docbin_codec import (_ATTRS, docbin, docbin_arrays,  # noqa: F401
                                   docbin_bytes, docbin_payloads)

if TYPE_CHECKING:  # spaCy is imported where used: the runner process never needs it
    from spacy.tokens import Doc

CACHE_DIRNAME = ".cache"      # inside the output folder; gitignored (.gitignore: .cache/)
SUBDIR = "docbin-v1"          # bump when the entry format changes


def default_cache_dir(out_dir: str | Path) -> Path:
    """Return the default cache folder of an output folder (``<out>/.cache``)."""
    return Path(out_dir) / CACHE_DIRNAME


# Modules and data whose code builds and runs the pipeline (``nlp.make_nlp``, ``nlp.parse``).
FINGERPRINT_SOURCES = ("nlp.py", "nlp_lookups.py", "nlp_batch.py", "nlp_fast.py", "nlp_specials.py",
                       "cache.py", "docbin_codec.py", "languages.py")


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


def _used(path: Path) -> None:
    """Mark an entry as read now (its time): ``cache_prune`` deletes those no recent run used."""
    with contextlib.suppress(OSError):
        os.utime(path)


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
        _used(path)
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
        _used(self._path(key))
        return parts

    def save(self, key: str, docs: Sequence[Doc]) -> None:
        """Store docs under ``key``; failures (disk full, read-only) are ignored."""
        self._store(key, lambda: docbin(docs).to_bytes())

    def save_arrays(self, key: str, parts: Sequence, lang: str) -> None:
        """Store the docs of ``code.arrays.ATTRS`` arrays (``nlp.parse_arrays``) under ``key``."""
        self.save_arrays_each([key], [parts], lang)

    def save_arrays_each(self, keys: Sequence[str], groups: Sequence[Sequence], lang: str) -> None:
        """``save_arrays(key, parts, lang)`` of each key and its group of arrays, behind.

        The payloads are made and written on the run's cache-writing thread
        (``cache_io.behind``; none: now) from a copy of the arrays, so the caller may
        keep (and change) its own. Failures (disk full, read-only) are ignored.

        Args:
            keys: ``cache_key`` of each group's texts.
            groups: per key, the ATTRS arrays of its texts.
            lang: their language (its vocab resolves the hashes).
        """
        if self.folder is None or not keys:
            return
        import numpy as np

        from pipeline.code.arrays import ATTRS
        from pipeline.nlp import base_vocab

        width = len(ATTRS)
        # the copy that goes behind: one table, sliced there per document and text
        table = np.concatenate([*(p.reshape(-1, width) for parts in groups for p in parts),
                                np.zeros((0, width), dtype=np.uint64)])
        sizes = [[len(p) for p in parts] for parts in groups]
        cache_io.behind(_store_payloads, [self._path(key) for key in keys], table, sizes,
                        base_vocab(lang))

    def _store(self, key: str, payload_of) -> None:  # noqa: ANN001
        if self.folder is None:
            return
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            _write(path, payload_of())
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
            saved = [k for k in missed if keys[k] is not None]
            self.save_arrays_each([keys[k] for k in saved], [got[k] for k in saved], lang)
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


def _write(path: Path, payload: bytes) -> None:
    """Write ``path`` atomically: a concurrent reader sees the old file or the new, never half."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _store_payloads(paths: Sequence[Path], table, sizes: Sequence[Sequence[int]],  # noqa: ANN001
                    vocab) -> None:  # noqa: ANN001
    """Write the DocBin of each document of ``table`` (``docbin_payloads``) to its path.

    Runs behind the coding (``DocCache.save_arrays_each``): a failure only leaves
    entries out (a later run parses those documents again), never fails the run.
    """
    try:
        payloads = docbin_payloads(table, sizes, vocab)
    except Exception:  # noqa: BLE001 - an unknown hash, a broken vocab: no entries
        return
    for path, payload in zip(paths, payloads, strict=True):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            _write(path, payload)
        except OSError:
            continue
