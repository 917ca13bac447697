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
FINGERPRINT_SOURCES = ("nlp.py", "nlp_batch.py", "cache.py")


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

    def save(self, key: str, docs: Sequence[Doc]) -> None:
        """Store docs under ``key``; failures (disk full, read-only) are ignored."""
        if self.folder is None:
            return
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            payload = docbin(docs).to_bytes()
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            with os.fdopen(fd, "wb") as fh:
                fh.write(payload)
            os.replace(tmp, path)  # atomic: a concurrent reader sees old or new, never half
        except OSError:
            return

    def parse(self, texts: Sequence[str], lang: str, *, batch_size: int = 256) -> list[Doc]:
        """Return docs of ``texts`` from the cache, parsing (and storing) on a miss."""
        from pipeline.nlp import parse

        if self.folder is None:
            self.misses += 1
            return parse(texts, lang, batch_size=batch_size)
        key = cache_key(texts, lang)
        docs = self.load(key, texts, lang)
        if docs is not None:
            self.hits += 1
            return docs
        self.misses += 1
        docs = parse(texts, lang, batch_size=batch_size)
        self.save(key, docs)
        return docs
