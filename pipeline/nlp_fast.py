"""The tokens spaCy's tokenizer gives a batch of texts, without a ``Doc`` per text.

Why the tokens of a text are those of its ' '-separated pieces, concatenated
(spaCy 3.8, ``spacy/tokenizer.pyx``):

- ``Tokenizer._tokenize_affixes`` walks the text as runs of whitespace and of other
  characters (``str.isspace``). A run that is exactly one ' ' after a word makes no
  token: it sets ``spacy`` on the token before it. Every other run is a span handed
  to ``_try_specials_and_cache`` / ``_tokenize``, which see that span only: special
  cases looked up by string, prefixes, suffixes, infixes, ``token_match`` and
  ``url_match`` all work inside it, and the per-span cache holds what ``_tokenize``
  computes from the span alone. So in a text of pieces joined by single spaces (no
  other whitespace, none at either end: ``eligible``), each piece gives the tokens
  it gives alone, and the last token of every piece but the last has ``spacy`` set.
- ``_apply_special_cases`` then runs the ``PhraseMatcher`` of the special cases that
  contain an affix, an infix or a space over the token sequence of the whole text,
  keeps the longest non-overlapping matches and replaces those whose text is a
  special case by its tokens. A match inside one piece is found, kept or dropped and
  replaced just as when the piece is tokenized alone, unless a match spanning two
  pieces overlaps it. A spanning match needs two adjacent tokens of one matcher
  pattern on either side of a space: the (last token, first token) pair of two
  neighbouring pieces, as the matcher sees them (before replacement: the piece's own
  last token, or, when the piece ends with a special case's string, the last token of
  that string's pattern). A text with such a pair anywhere is tokenized by spaCy.

Anything else (other whitespace, empty pieces, texts longer than ``nlp.max_length``,
a piece giving no token or a ``spacy`` flag inside it) goes to spaCy's tokenizer too.
Each distinct piece is tokenized once, by spaCy's tokenizer, and kept in a memo with
the lemma and sentencizer flags of its tokens; ``parse_arrays`` (``nlp.parse_arrays``)
gathers a batch's ``code.arrays.ATTRS`` arrays from it with NumPy.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from itertools import repeat

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from spacy.attrs import LEMMA, NORM, ORTH, SENT_START, SPACY
from spacy.language import Language

from pipeline.code.arrays import ATTRS, runs
from pipeline.nlp_specials import _patterns, _state

_UNSAFE, _ENDS, _STARTS = 1, 2, 4   # piece flags: tokenize its texts with spaCy; may end /
                                    # start a pattern pair across a space
# Texts per ``token_rows`` call, in characters: a large document (a survey of 64,000
# answers is one) is parsed in runs of about a chunk's size, three times faster than
# in one call, whose arrays outgrow the CPU caches and the memo's bound.
PARSE_CHARS = 1_000_000
_MAX_PIECES = 200_000               # memo size at which it starts afresh (bounded memory:
                                    # some 30 MB; a corpus's pieces are mostly a few thousand)
_ARROW_MIN, _ARROW_RATIO = 256, 1   # Arrow looks pieces up from this many in a call, while
                                    # the memo has at most _ARROW_RATIO pieces per piece
# Columns of a token row: ``code.arrays.ATTRS``, what ``parse_arrays`` returns. In the memo
# the SENT_START column holds the sentencizer flags and the SPACY column is 0.
_O, _L, _S, _P, _N = (ATTRS.index(a) for a in (ORTH, LEMMA, SENT_START, SPACY, NORM))


def supported(nlp: Language) -> bool:
    """Whether ``nlp``'s tokenizer is spaCy's own ``Tokenizer`` (what the above is about)
    or a ``LazyTokenizer`` (the same tokens)."""
    from spacy.tokenizer import Tokenizer

    from pipeline.nlp_specials import LazyTokenizer

    return type(nlp.tokenizer) in (Tokenizer, LazyTokenizer)


def eligible(text: str, max_length: int) -> bool:
    """Whether ``text`` is pieces joined by single spaces (no other whitespace).

    ``str.isprintable`` is False for every ``str.isspace`` character but ' ' (and for
    some others, which only send the text to spaCy's tokenizer).
    """
    return (text.isprintable() and text[0] != " " and text[-1] != " " and "  " not in text
            and len(text) <= max_length)


def all_eligible(texts: list[str], joined: str, max_length: int) -> bool:
    """Whether every text of ``texts`` is ``eligible``; ``joined``: their ' '-join.

    One test of the join instead of five per text: an empty text, or one with a space
    at an end, puts two spaces in the join or a space at one of its ends.
    """
    return (bool(joined) and joined[0] != " " and joined[-1] != " " and "  " not in joined
            and printable(joined) and max(map(len, texts)) <= max_length)


# the Latin-1 characters that are not printable (str.isprintable is all of its
# characters' isprintable): controls, no-break space, soft hyphen
_NOT_PRINTABLE_LATIN1 = bytes(c for c in range(256) if not chr(c).isprintable())


def printable(text: str) -> bool:
    """``text.isprintable()``, a few times faster for Latin-1 text (a Latin-1 string
    encodes as a copy, and ``bytes.translate`` drops the non-printable bytes in C)."""
    try:
        data = text.encode("latin-1")
    except UnicodeEncodeError:
        return text.isprintable()
    return len(data.translate(None, _NOT_PRINTABLE_LATIN1)) == len(data)


class PieceTokenizer:
    """ORTH, NORM and SPACY of the tokens of texts, as ``nlp.make_doc`` gives them, and
    per-form values of them (lemma and sentencizer flags), memoised with the tokens.

    Args:
        nlp: the pipeline whose tokenizer (a ``spacy.tokenizer.Tokenizer``) is used.
        values: ORTH hashes of tokens -> (LEMMA hashes, sentencizer flags) of them
            (``nlp_batch.FusedLemmas.values``): a function of the form alone.
    """

    def __init__(self, nlp: Language, values: Callable) -> None:
        self.nlp, self.values = nlp, values
        self.lock = threading.Lock()  # the memo is shared by the threads of a process
        self._setup()

    def _setup(self) -> None:
        """Read the tokenizer's special-case patterns; start with an empty memo."""
        self.tokenizer = self.nlp.tokenizer
        self.state = _state(self.tokenizer)
        self.pairs, self.key_first, self.key_last, self.longest = _patterns(self.tokenizer)
        self.lefts = {a for a, _ in self.pairs}
        self.rights = {b for _, b in self.pairs}
        self._reset()

    def _reset(self) -> None:
        self.index: dict[str, int] = {}
        self._arrow: pa.Array | None = None  # the memo's pieces in id order (_arrow_ids)
        self.start = np.zeros(1024, dtype=np.int64)
        self.count = np.zeros(1024, dtype=np.int64)
        self.flags = np.zeros(1024, dtype=np.uint8)
        # the tokens of the pieces, one row each (``_O`` ... ``_N``): a text's rows are
        # gathered with one ``take``, already in the layout ``parse_arrays`` returns
        self.rows = np.zeros((4096, len(ATTRS)), dtype=np.uint64)
        self.n_tokens = self.filled = 0   # filled: tokens whose lemma and bits are set
        self.alts: dict[int, tuple[set[int], set[int]]] = {}  # flagged piece -> (lasts, firsts)

    def tokens(self, texts: list[str]) -> tuple[np.ndarray, ...]:
        """(orth, norm, spacy, lemma, bits, bounds) of the tokens of ``texts``.

        Text ``k`` holds tokens ``bounds[k]:bounds[k + 1]``; lemma and bits are what
        ``values`` gives for the tokens' ORTH.

        Args:
            texts: the texts (str).
        """
        rows, bounds = self.token_rows(texts)
        return (rows[:, _O], rows[:, _N], rows[:, _P].astype(bool), rows[:, _L],
                rows[:, _S].astype(np.uint8), bounds)

    def token_rows(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(rows, bounds): ``tokens`` as one ``(n, len(ATTRS))`` uint64 array.

        Its columns are ``ATTRS``': ORTH, LEMMA, NORM, SPACY (0 or 1) and, in the
        SENT_START column, the sentencizer flags (``bits``).

        Args:
            texts: the texts (str).
        """
        with self.lock:
            return self._tokens(texts)

    def _tokens(self, texts: list[str]) -> tuple[np.ndarray, ...]:
        if _state(self.nlp.tokenizer) != self.state:  # another tokenizer, rules, affixes
            self._setup()
        if len(self.index) > _MAX_PIECES:
            self._reset()
        limit = self.nlp.max_length
        joined = " ".join(texts)
        if all_eligible(texts, joined, limit):
            got = self._fast(texts, joined)
            if got[-1] is None:
                return got[:-1]
            fast = list(range(len(texts)))
        else:
            # eligible(text, limit), inlined (a call per text costs as much as the tests)
            fast = [k for k, t in enumerate(texts)
                    if t and t.isprintable() and t[0] != " " and t[-1] != " "
                    and "  " not in t and len(t) <= limit]
            chosen = [texts[k] for k in fast]
            got = self._fast(chosen, " ".join(chosen)) if fast else None
        if got is not None and len(fast) == len(texts) and got[-1] is None:
            return got[:-1]
        # some texts by spaCy: one block per text, in order
        blocks: list[np.ndarray] = [None] * len(texts)  # type: ignore[list-item]
        if got is not None:
            rows, bounds, bad = got
            for j, k in enumerate(fast):
                if bad is None or not bad[j]:
                    blocks[k] = rows[bounds[j]:bounds[j + 1]]
        for k, text in enumerate(texts):
            if blocks[k] is None:
                array = self.nlp.make_doc(text).to_array([ORTH, NORM, SPACY]).reshape(-1, 3)
                block = np.zeros((len(array), len(ATTRS)), dtype=np.uint64)
                block[:, _O], block[:, _N], block[:, _P] = array[:, 0], array[:, 1], array[:, 2]
                block[:, _L], block[:, _S] = self.values(np.ascontiguousarray(array[:, 0]))
                blocks[k] = block
        bounds = np.zeros(len(texts) + 1, dtype=np.int64)
        np.cumsum([len(b) for b in blocks], out=bounds[1:])
        rows = (np.concatenate(blocks) if blocks
                else np.zeros((0, len(ATTRS)), dtype=np.uint64))
        return rows, bounds

    def _fast(self, texts: list[str], joined: str | None = None):  # noqa: ANN202
        """Tokens of eligible texts from the memo; bad: texts that need spaCy (or None).

        ``joined``: ``" ".join(texts)`` (None: joined here). Texts marked bad keep a block of zero tokens in
        the returned arrays.
        """
        n_pieces = np.fromiter(map(str.count, texts, repeat(" ")), dtype=np.int64,
                               count=len(texts)) + 1
        joined = " ".join(texts) if joined is None else joined
        ids = self._arrow_ids(joined, int(n_pieces.sum()))
        if ids is None:
            flat = joined.split(" ")
            ids = np.fromiter(map(self.index.get, flat, repeat(-1)), dtype=np.int64,
                              count=len(flat))
            missing = np.flatnonzero(ids < 0)
            if len(missing):
                for piece in dict.fromkeys(flat[i] for i in missing.tolist()):
                    self._add(piece)
                self._fill()
                ids[missing] = [self.index[flat[i]] for i in missing.tolist()]
        ends = np.cumsum(n_pieces)
        ends -= 1                                   # last piece of each text
        flags = self.flags[ids]
        bad = text_of = None
        if flags.any():
            unsafe = (flags & _UNSAFE) != 0
            # a pattern pair may cross the space after piece j (not the last of its text)
            cross = (flags[:-1] & (flags[1:] >> 1) & _ENDS) != 0  # _STARTS >> 1 == _ENDS
            cross[ends[:-1]] = False
            if unsafe.any() or cross.any():
                text_of = np.repeat(np.arange(len(texts)), n_pieces)
                bad = np.zeros(len(texts), dtype=bool)
                bad[text_of[unsafe]] = True
                for j in np.flatnonzero(cross).tolist():
                    lasts, firsts = self.alts[int(ids[j])][0], self.alts[int(ids[j + 1])][1]
                    if any((a, b) in self.pairs for a in lasts for b in firsts):
                        bad[text_of[j]] = True
                if not bad.any():
                    bad = None
        counts = self.count[ids]
        if bad is not None:
            counts = np.where(bad[text_of], 0, counts)
        piece_end = np.cumsum(counts)
        total = int(piece_end[-1]) if len(piece_end) else 0
        positions = np.arange(total, dtype=np.int64) - np.repeat(
            piece_end - counts - self.start[ids], counts)
        rows = np.take(self.rows, positions, axis=0)
        follow = counts > 0
        follow[ends] = False                        # the last piece of a text: no space
        rows[piece_end[follow] - 1, _P] = 1
        bounds = np.zeros(len(texts) + 1, dtype=np.int64)
        bounds[1:] = piece_end[ends]
        return rows, bounds, bad

    def _arrow_ids(self, joined: str, n: int) -> np.ndarray | None:
        """Memo ids of the ``n`` ' '-separated pieces of ``joined`` (new ones added), split
        and looked up by Arrow kernels as ``str.split(" ")`` and the dict would; None: not
        worth it. ``index_in`` hashes the whole memo each call: that pays (0.1 us a piece
        against 0.3) while the memo has no more pieces than ``joined`` (few distinct words)."""
        if n < _ARROW_MIN or len(self.index) > n * _ARROW_RATIO:
            return None
        if self._arrow is None or len(self._arrow) != len(self.index):
            self._arrow = pa.array(list(self.index), type=pa.large_string())  # ids in order
        try:
            flat = pc.split_pattern(pa.array([joined], type=pa.large_string()), " ").values
        except (pa.ArrowException, UnicodeError):  # not UTF-8 (a lone surrogate): Python
            return None
        found = pc.index_in(flat, value_set=self._arrow)
        ids = pc.fill_null(found, -1).to_numpy().astype(np.int64)
        if found.null_count:
            missing = np.flatnonzero(ids < 0)
            pieces = flat.take(pa.array(missing)).to_pylist()
            for piece in dict.fromkeys(pieces):
                self._add(piece)
            self._fill()
            ids[missing] = list(map(self.index.__getitem__, pieces))
        return ids

    def _fill(self) -> None:
        """Set lemma and bits of the tokens added since the last call."""
        lemma, bits = self.values(np.ascontiguousarray(self.rows[self.filled:self.n_tokens, _O]))
        self.rows[self.filled:self.n_tokens, _L] = lemma
        self.rows[self.filled:self.n_tokens, _S] = bits
        self.filled = self.n_tokens

    def _add(self, piece: str) -> None:
        """Tokenize a new piece with spaCy and store its tokens and flags."""
        array = self.tokenizer(piece).to_array([ORTH, NORM, SPACY]).reshape(-1, 3)
        i = len(self.index)
        self.index[piece] = i
        if i >= len(self.start):
            size = 2 * len(self.start)
            self.start, self.count, self.flags = (np.resize(a, size) for a in
                                                  (self.start, self.count, self.flags))
        n = len(array)
        if self.n_tokens + n > len(self.rows):
            rows = np.zeros((max(2 * len(self.rows), self.n_tokens + n), len(ATTRS)),
                            dtype=np.uint64)
            rows[:self.n_tokens] = self.rows[:self.n_tokens]
            self.rows = rows
        self.start[i], self.count[i] = self.n_tokens, n
        self.rows[self.n_tokens:self.n_tokens + n, _O] = array[:, 0]
        self.rows[self.n_tokens:self.n_tokens + n, _N] = array[:, 1]
        self.n_tokens += n
        if n == 0 or array[:, 2].any():
            self.flags[i] = _UNSAFE
            return
        # the tokens the special-case matcher may see at either edge of the piece
        lasts, firsts = {int(array[-1, 0])}, {int(array[0, 0])}
        for size in range(1, min(len(piece), self.longest) + 1):
            last, first = self.key_last.get(piece[-size:]), self.key_first.get(piece[:size])
            if last is not None:
                lasts.add(last)
            if first is not None:
                firsts.add(first)
        flags = (_ENDS if lasts & self.lefts else 0) | (_STARTS if firsts & self.rights else 0)
        self.flags[i] = flags
        if flags:
            self.alts[i] = (lasts, firsts)


_TOKENIZERS: dict[int, PieceTokenizer] = {}


def piece_tokenizer(nlp: Language, values: Callable, owner: tuple) -> PieceTokenizer:
    """The (cached) ``PieceTokenizer`` of a pipeline whose ``values`` use the objects
    ``owner`` (a new one when one of them is not the same object)."""
    got = _TOKENIZERS.get(id(nlp))
    if (got is None or got.nlp is not nlp or len(got.owner) != len(owner)
            or any(a is not b for a, b in zip(got.owner, owner))):
        got = _TOKENIZERS[id(nlp)] = PieceTokenizer(nlp, values)
        got.owner = owner
    return got


def parse_arrays(texts: Iterable[str], lang: str, *, batch_size: int = 256) -> list:
    """The token arrays of ``parse(texts, lang)``'s docs, without making the docs.

    Same values as ``[doc.to_array(code.arrays.ATTRS) for doc in parse(texts, lang)]``:
    the tokens come from a ``PieceTokenizer`` (spaCy's tokenizer, once per distinct
    ' '-separated piece), lemmas and sentence starts from ``FusedLemmas.values`` and
    ``nlp_batch.sentence_starts``.

    Args:
        texts: the texts; None / NaN count as empty text.
        lang: language code.
        batch_size: texts per ``nlp.pipe`` batch (used only by another pipeline).

    Returns:
        One ``(n_tokens, 5)`` uint64 array of the ``ATTRS`` columns per text, in order.

    Raises:
        UsageError: the language is not supported.
    """
    from pipeline.nlp import _check_lang, _fused_lemmas, make_nlp, parse
    from pipeline.nlp_batch import sentence_starts

    nlp = make_nlp(_check_lang(lang))
    texts = texts if isinstance(texts, list) else list(texts)
    clean = (texts if set(map(type, texts)) <= {str}  # all str (the types gathered in C)
             else ["" if t is None or (isinstance(t, float) and t != t) else str(t) for t in texts])
    lemmas = _fused_lemmas(nlp, lang)
    if lemmas is None or not supported(nlp):
        return [doc.to_array(ATTRS) for doc in parse(clean, lang, batch_size=batch_size)]
    sentencizer = nlp.get_pipe("sentencizer")
    pieces = piece_tokenizer(nlp, lambda orth: lemmas.values(orth, sentencizer),
                             (lemmas, sentencizer))
    out: list[np.ndarray] = []
    for begin, end in runs(clean, PARSE_CHARS):
        batch = clean if end - begin == len(clean) else clean[begin:end]
        # the token rows are the ATTRS columns already; the SENT_START column holds the
        # sentencizer flags until it is given the sentence starts they make
        table, bounds = pieces.token_rows(batch)
        starts = sentence_starts(table[:, _S], bounds)
        table[:, _S] = np.where(starts, np.uint64(1), np.uint64(2**64 - 1))  # 1 or -1 as uint64
        ends = bounds.tolist()
        out.extend(table[a:b] for a, b in zip(ends, ends[1:]))
    return out
