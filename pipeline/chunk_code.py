"""The coding half of a chunk: parse (through the caches), match and aggregate.

``code_chunk`` turns a chunk's coded segments into match rows and codings, taking
token arrays, match rows and codings from the caches where they are still valid
(``chunk_cache``, ``match_cache``, ``coding_cache``). Rules are compiled once per
process; spaCy's pipeline is built only to parse or compile (not for a re-code).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline import cache_io
from pipeline import columns as C

# Tokens matched in one go: a larger document (a survey of 64,000 answers is one
# document) is matched in runs of segments, whose arrays stay small (chunks of the
# usual size are one run).
MATCH_RUN_TOKENS = 250_000

_COMPILED: dict[tuple[str, int, str, frozenset | None], object] = {}
_HAS_RULES: dict[tuple[str, int, str], bool] = {}


@dataclass
class ChunkCoding:
    """What ``code_chunk`` returns.

    Attributes:
        matches, codings: the chunk's tables.
        codings_csv: ``codings.csv`` lines of ``codings`` (no header).
        n_tokens: tokens of the coded segments.
        tokens: token arrays of every parsed document (for a new chunk-cache entry).
        n_stored: documents whose token arrays came from the chunk cache.
    """

    matches: pd.DataFrame
    codings: pd.DataFrame
    codings_csv: bytes
    n_tokens: int
    tokens: dict[int, list]
    n_stored: int


def compiled_rules(book, lang: str, only: frozenset | None = None):  # noqa: ANN001, ANN201
    """Compile the rules of a language (or ``only`` some) once per process, not per chunk."""
    from pipeline.code import compile_rules

    key = (book.hash, id(book), lang, only)
    if key not in _COMPILED:
        _COMPILED[key] = compile_rules(book, lang, only)
    return _COMPILED[key]


def has_rules(book, lang: str) -> bool:  # noqa: ANN001
    """Whether ``lang`` has rules (without compiling them; once per process)."""
    from pipeline.code.compiled import check_lang

    key = (book.hash, id(book), lang)
    if key not in _HAS_RULES:
        check_lang(lang)  # as compile_rules: an unsupported language is a UsageError
        _HAS_RULES[key] = bool(book.rules(lang))
    return _HAS_RULES[key]


class _Background:
    """A call run on its own thread; ``result()`` joins it (and re-raises its error).

    A thread per call, started and joined within one ``code_chunk``: nothing is left
    running, and a fork (``--jobs``) never inherits a pool whose threads are gone.
    """

    def __init__(self, fn, *args) -> None:  # noqa: ANN001
        self._value = self._error = None
        self._thread = threading.Thread(target=self._run, args=(fn, args), daemon=True)
        self._thread.start()

    def _run(self, fn, args: tuple) -> None:  # noqa: ANN001
        try:
            self._value = fn(*args)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller by result()
            self._error = exc

    def result(self):  # noqa: ANN201
        """The call's return value (after waiting for it)."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


class _Later:
    """A call made when its result is asked for (``_Background``'s interface)."""

    def __init__(self, fn, *args) -> None:  # noqa: ANN001
        self._fn, self._args = fn, args

    def result(self):  # noqa: ANN201
        """The call's return value."""
        return self._fn(*self._args)


class _LazyList:
    """A list made when first read (by ``later.result()``): indexing, slices, ``len``."""

    def __init__(self, later: _Later) -> None:
        self._later, self._values = later, None

    def _list(self) -> list:
        if self._values is None:
            self._values = self._later.result()
        return self._values

    def __getitem__(self, k):  # noqa: ANN001, ANN204
        return self._list()[k]

    def __len__(self) -> int:
        return len(self._list())

    def __iter__(self):  # noqa: ANN204
        return iter(self._list())


def _arrow_ids(segments: pd.DataFrame, coded: np.ndarray | None):  # noqa: ANN202
    """(segment ids, doc ids) of the coded rows (``coded``: a mask, None: every row) as
    Arrow large strings, when the columns are Arrow-backed and have no missing value
    (``matching.SegmentRows.arrow``); else None."""
    import pyarrow as pa

    out = []
    for name in (C.SEGMENT_ID, C.DOC_ID):
        data = segments[name].array
        if not isinstance(data, pd.arrays.ArrowExtensionArray):
            return None
        chunked = data.__arrow_array__()
        if coded is not None:
            chunked = chunked.filter(pa.array(coded))
        if chunked.null_count or chunked.type != pa.large_string():
            return None
        out.append(chunked.combine_chunks())
    return tuple(out)


def vocab_of(lang: str):  # noqa: ANN201
    """(pipeline fingerprint, vocab) of a language's pipeline, without building it.

    The vocab is ``nlp.base_vocab(lang)``, or, while spaCy is not imported, a
    ``code.lightvocab.LightVocab`` that resolves cached strings the same way and
    builds the real one only when something needs spaCy (``lightvocab.run_vocab``).
    """
    from pipeline.cache import pipeline_fingerprint
    from pipeline.code.lightvocab import run_vocab

    return pipeline_fingerprint(lang), run_vocab(lang)


def code_chunk(segments: pd.DataFrame, book, cache, batch_size: int,  # noqa: ANN001
               stored: dict[int, list] | None = None, memo=None,  # noqa: ANN001
               coding_memo=None, tables: frozenset[str] = frozenset(),  # noqa: ANN001
               parsed=None, doc_langs: dict[str, str] | None = None,  # noqa: ANN001
               doc_first: dict[str, str] | None = None) -> ChunkCoding:
    """Parse (through the caches, a cache entry per document) and rule-code the coded segments.

    Same rows as ``code.code_segments`` (per language, then segment/text order) with
    rules compiled once per process; the matcher runs once per language over the
    chunk's token arrays instead of once per document.

    Args:
        segments: the chunk's segments.
        book: the codebook.
        cache: a ``DocCache`` (parses on a miss).
        batch_size: texts per parse batch.
        stored: token arrays of a chunk-cache entry (``ChunkEntry.tokens``): documents
            found there are neither parsed nor turned into Docs.
        memo: the chunk's ``match_cache.MatchCache`` (None: match every rule).
        coding_memo: the chunk's ``coding_cache.CodingCache`` (None: aggregate all).
        tables: ids of the chunk's survey-table (CSV) documents, which have no opening
            unit for ``settings.opening_weight``.
        parsed: called with the token arrays (first row of a document -> its
            segments' arrays, in document order) once every document has them,
            before matching: the chunk entry is then written while the chunk is coded.
        doc_langs: document id -> the language of its first coded segment, for a chunk
            that holds part of a document (``chunk_parts``); else the chunk's own first.
        doc_first: document id -> the id of its first coded segment (its opening unit),
            for such a chunk; else the chunk's own first.
    """
    from pipeline.code import empty_codings
    from pipeline.code.arrays import TokenArrays, rebuild_doc, runs
    from pipeline.code.combine import concat_keyed
    from pipeline.code.matching import _empty_matches, match_frame
    from pipeline.code.sparse import SegmentRows
    from pipeline.chunk_tokens import stored_arrays
    from pipeline.coding_cache import load_entry
    from pipeline.match_cache import cached_match

    stored = stored or {}
    # the coded rows' columns, one at a time (not a filtered copy of the whole table)
    coded = segments[C.CODED].astype(bool).to_numpy()
    every = bool(coded.all())

    def column(name: str) -> pd.Series:
        values = segments[name]
        return values.reset_index(drop=True) if every else values[coded].reset_index(drop=True)

    def values(name: str) -> list:
        # ``column(name).tolist()``: the NumPy values masked (no pandas Series made)
        got = segments[name].to_numpy()
        return (got if every else got[coded]).tolist()

    n_tokens = n_stored = 0
    doc_ids = values(C.DOC_ID)
    bounds = [0] + [k for k in range(1, len(doc_ids)) if doc_ids[k] != doc_ids[k - 1]]
    bounds.append(len(doc_ids))
    if not doc_ids:
        bounds = []
    langs = values(C.LANG)
    # a document is parsed and matched in the language of its first coded segment
    first = (langs if not doc_langs else
             [doc_langs.get(doc, lang) for doc, lang in zip(doc_ids, langs)])
    # the texts (the largest column) are read by the parser and for the evidence of
    # matches of several tokens: a re-code of one-word rules need not convert them
    texts = _LazyList(_Later(values, C.TEXT))
    seg_rows = SegmentRows(values(C.SEGMENT_ID), doc_ids, [int(x) for x in values(C.START)],
                           texts, _arrow_ids(segments, None if every else coded))
    ids: list[pd.Series] = []  # the coded rows' segment ids, made when a sort needs them

    def seg_ids() -> pd.Series:
        if not ids:
            ids.append(column(C.SEGMENT_ID))
        return ids[0]
    # settings.opening_weight: each document's first coded unit, but no survey-table row
    opening = (frozenset((doc_first or {}).get(doc_ids[b], seg_rows[b][0])
                         for b in bounds[:-1] if doc_ids[b] not in tables)
               if book.settings.opening_weight != 1.0 else None)
    tokens: dict[int, list] = {}
    ranges = [(b, e) for b, e in zip(bounds, bounds[1:]) if has_rules(book, first[b])]
    to_parse: dict[str, list[int]] = {}  # lang -> documents (first rows) neither stored
    for begin, end in ranges:
        parts = stored.get(begin)
        if parts is not None and len(parts) == end - begin:
            n_stored += 1
            tokens[begin] = parts
        else:
            to_parse.setdefault(first[begin], []).append(begin)
    ends = dict(ranges)
    for lang, begins in to_parse.items():
        # the ATTRS arrays, no Doc per text (get_doc rebuilds one when asked); a
        # document's texts are its cache entry, but the chunk's are parsed in one call
        groups = [["" if not isinstance(t, str) else t for t in texts[b:ends[b]]] for b in begins]
        tokens.update(zip(begins, cache.parse_arrays_each(groups, lang, batch_size=batch_size)))
    tokens = {begin: tokens[begin] for begin, _ in ranges}  # in document order
    if parsed is not None:
        parsed(tokens)
    batches: dict[str, tuple[list, list, list]] = {}  # lang -> (arrays, Docs or None, rows)
    for begin, end in ranges:
        lang = first[begin]  # one language per document
        parts = tokens[begin]
        n_tokens += sum(map(len, parts))
        got = batches.setdefault(lang, ([], [], []))
        # match_segments skips a segment of another language than its document's
        # first one (parsed with the document's pipeline, never coded): keep that
        keep = [k for k in range(begin, end) if langs[k] == lang]
        if len(keep) == end - begin:
            got[0].extend(parts)
            got[2].extend(keep)
        else:
            got[0].extend(parts[k - begin] for k in keep)
            got[2].extend(keep)
        got[1].extend([None] * len(keep))
    # the codings entries do not depend on the matching: read them meanwhile (unless
    # the read-ahead thread read and decoded them already: then a thread per chunk
    # would cost more to start than what is left to do)
    later = _Later if cache_io.reading_ahead() else _Background
    pending = ({lang: later(load_entry, coding_memo, book, lang, vocab_of(lang)[0])
                for lang in batches}
               if coding_memo is not None and coding_memo.folder is not None else {})
    frames: list[tuple[str, pd.DataFrame]] = []
    same: dict[str, dict[str, str]] = {}  # lang -> re-matched units whose rows did not change
    for lang, (parts, docs, positions) in batches.items():
        vocab = vocab_of(lang)[1]  # the vocab of the pipeline the Docs come from

        def get_doc(k: int, parts=parts, docs=docs, vocab=vocab):  # noqa: ANN001, ANN202
            return docs[k] if docs[k] is not None else rebuild_doc(vocab, parts[k])

        def match(only: frozenset | None, rules=None, lang=lang, parts=parts,  # noqa: ANN001
                  get_doc=get_doc, positions=positions, vocab=vocab) -> pd.DataFrame:  # noqa: ANN001
            # match_frame sorts by batch position, start, end, code id, rule id: the
            # order of _sorted_matches, as a batch keeps the chunk's row order
            cache_io.note_matching()  # the next chunks' arrays are made ahead
            compiled = compiled_rules(book, lang, only) if rules is None else rules
            got = stored_arrays(stored, parts, vocab, get_doc)
            if got is not None:
                arrays, coded = got
                rows = (seg_rows if len(positions) == len(seg_rows)  # positions ascend
                        else seg_rows.take(positions))
                return match_frame(arrays, compiled, rows, opening, coded)
            # a large document (a survey) in runs of segments: the same rows, in order
            frames = []
            for a, b in runs(parts, MATCH_RUN_TOKENS):
                arrays = TokenArrays.from_parts(vocab, parts[a:b],
                                                lambda k, a=a: get_doc(a + k))
                rows = (seg_rows if b - a == len(seg_rows)  # positions ascend
                        else seg_rows.take(positions[a:b]))
                frames.append(match_frame(arrays, compiled, rows, opening, None))
            return concat_keyed([f for f in frames if len(f)] or frames[:1])

        if memo is not None and memo.folder is not None:
            frame = cached_match(memo, book, lang, vocab_of(lang)[0], match,
                                 lambda rows, keep: _sorted_matches(rows, seg_ids(), keep),
                                 same.setdefault(lang, {}),
                                 lambda p=parts: getattr(stored, "words", lambda _: None)(p))
        else:
            frame = match(None)
        if len(frame):
            frames.append((lang, frame))
    loaded = {lang: job.result() for lang, job in pending.items()}
    if not frames:
        return ChunkCoding(_empty_matches(), empty_codings(), b"", n_tokens, tokens, n_stored)
    # each language's rows are sorted already; a segment's rows are all of one language
    matches = (_sorted_matches(pd.concat([f for _, f in frames], ignore_index=True), seg_ids())
               if len(frames) > 1 else _typed(frames[0][1]))
    codings, csv = _codings(book, coding_memo, matches, frames, loaded, same)
    return ChunkCoding(matches, codings, csv, n_tokens, tokens, n_stored)


def _codings(book, coding_memo, matches: pd.DataFrame,  # noqa: ANN001
             frames: list[tuple[str, pd.DataFrame]], loaded: dict,
             same: dict[str, dict[str, str]]) -> tuple[pd.DataFrame, bytes]:
    """The chunk's codings and their CSV lines, through the codings cache when there is one."""
    from pipeline.code import aggregate_matches
    from pipeline.coding_cache import cached_codings, csv_bytes

    if coding_memo is None or coding_memo.folder is None:
        codings = aggregate_matches(matches, threshold=book.settings.threshold)
        return codings, csv_bytes(codings)
    # A language's rows (sorted alone) are in the order they have in ``matches`` (a
    # stable sort; a segment's rows are all of one language).
    parts = [(lang, vocab_of(lang)[0], matches if len(frames) == 1 else frame)
             for lang, frame in frames]
    return cached_codings(coding_memo, book, parts, loaded, same)


def _sorted_matches(out: pd.DataFrame, segment_ids: pd.Series,
                    keep: np.ndarray | None = None) -> pd.DataFrame:
    """Match rows in segment row order, then text order (as ``match_segments`` sorts).

    The order of ``sort_values`` on (segment row, start, end, code id, rule id), stable,
    computed on integer keys: ids factorised in sorted order compare as the strings do,
    and a segment's row comes from Arrow's ``index_in`` (``Index.get_indexer``'s
    positions, ten times faster on string ids). The keys go to ``stable_order``, whose
    stable argsort (timsort) merges already sorted runs in about linear time: a re-code
    hands it cached rows in this order plus the sorted rows of the edited rules. Rows
    already in order are not copied. Other columns (a cache's unit ids) come along;
    rows where ``keep`` (a mask) is False are dropped in the same take.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    from pipeline.code.combine import stable_order
    from pipeline.entry_tables import take_rows

    index = pd.Index(segment_ids)
    if index.is_unique:
        def strings(values: pd.Series) -> pa.Array:
            return pa.array(values, type=pa.large_string(), from_pandas=True)

        seg = pc.index_in(strings(out[C.SEGMENT_ID]),
                          value_set=strings(segment_ids)).fill_null(-1).to_numpy()
    else:  # never expected (ids are unique); a dict keeps the last row, as before
        seg = out[C.SEGMENT_ID].map({s: k for k, s in enumerate(segment_ids)}).to_numpy()
    code = pd.factorize(out[C.CODE_ID], sort=True)[0]
    rule = pd.factorize(out[C.RULE_ID], sort=True)[0]
    order = stable_order([seg, out[C.START].to_numpy(dtype=np.int64),
                          out[C.END].to_numpy(dtype=np.int64), code, rule])
    if keep is not None and not keep.all():
        order = order[keep[order]]
    elif len(order) and not (order[1:] < order[:-1]).any():  # already in order
        return _typed(out.reset_index(drop=True))
    return _typed(take_rows(out, order))


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    """Match rows with the output dtypes of the numeric columns."""
    types = {C.START: "int64", C.END: "int64", C.SCORE: "float64"}
    dtypes = dict(zip(frame.columns, frame.dtypes.tolist()))  # one look-up, not a Series each
    if all(dtypes.get(col) == np.dtype(kind) for col, kind in types.items()):
        return frame  # astype would copy every column's block for nothing
    return frame.astype(types)
