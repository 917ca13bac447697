"""spaCy Matcher token patterns run on token arrays, for all docs of a batch at once.

The spaCy ``Matcher`` walks every doc in Python-facing Cython, creating a ``Token`` per
position; with patterns anchored on common words ("dat", "ik") most docs need it, and
it was the largest matching cost of a hand-written codebook. ``TokenPatterns`` runs
the same automaton as ``spacy.matcher.matcher.find_matches`` (the ``get_action``
table: ONE / ZERO ("!") / ZERO_ONE ("?") / ZERO_PLUS ("*"), ``{n,m}`` expanded as
spaCy expands it) on NumPy arrays of live states (pattern element, start, position);
states never interact, so advancing all of them one token per step gives the
Matcher's spans (``automaton``). States only start where a match is possible: a
fixed distance before a word of the pattern's rarest required literal, or where the
first token can be consumed at all; so the work grows with the candidate positions,
not with text x patterns.

Covered token specs: ``LOWER`` / ``ORTH`` / ``TEXT`` / ``LEMMA`` equal to a string or
``{IN: [strings]}``, lexeme flags (``IS_PUNCT``, ``LIKE_NUM``, ...) and
``IS_SENT_START`` as booleans, ``{}``; every operator. A pattern with anything else,
or that could start at any token (no required literal at a bounded offset, and a first
token without a literal or sentence-start condition), stays with the spaCy Matcher
(``compiled.CompiledRules.matcher_for``).
"""
from __future__ import annotations

import re
from functools import lru_cache

import numpy as np

from pipeline.code.arrays import TokenArrays
from pipeline.code.automaton import run_states, start_states
from pipeline.code.lightvocab import spacy_vocab

ONE, ZERO, OPT, STAR = 0, 1, 2, 3          # the Matcher's ONE, ZERO ("!"), ZERO_ONE, ZERO_PLUS
_OPS = {"!": (ZERO,), "?": (OPT,), "*": (STAR,), "+": (ONE, STAR)}
_NO_OP = object()
_RANGE = re.compile(r"^\{(\d*)(,?)(\d*)\}$")
_LITERAL = {"LOWER": "lower", "ORTH": "orth", "TEXT": "orth", "LEMMA": "lemma"}


@lru_cache(maxsize=1)
def _lexeme_flags() -> tuple[str, ...]:
    """The lexeme flag attributes (``IS_*``, ``LIKE_*``); spaCy is imported only when a
    token pattern is compiled (a re-code of other rules never needs it)."""
    from spacy.attrs import IDS

    return tuple(name for name in IDS if (name.startswith("IS_") or name.startswith("LIKE_"))
                 and not name.endswith("DEPRECATED"))


def __getattr__(name: str):  # noqa: ANN202 - ``FLAGS``, made on first use
    if name == "FLAGS":
        return _lexeme_flags()
    raise AttributeError(name)


def _operators(op: object) -> tuple[int, ...] | None:
    """Quantifiers of one spec's ``OP``, as ``matcher._get_operators`` expands them."""
    if op is _NO_OP:
        return (ONE,)
    if isinstance(op, str) and op in _OPS:
        return _OPS[op]
    found = _RANGE.match(op) if isinstance(op, str) else None
    if found is None:
        return None
    low, comma, high = found.groups()
    if not comma:
        high = low
    if (not low and not high) or (low and high and int(low) > int(high)):
        return None
    head = (ONE,) * int(low or 0)
    return head + ((OPT,) * (int(high) - int(low or 0)) if high else (STAR,))


def _predicate(spec: dict) -> tuple | None:
    """(literal atoms, flag atoms, sentence-start value or None) of one spec; None: not covered.

    A literal atom is (attribute, frozenset of string hashes): the token's attribute
    must be one of them (spaCy compares hashes of the strings as written).
    """
    from spacy.strings import get_string_id

    literals: list[tuple[str, frozenset[int]]] = []
    flags: list[tuple[str, bool]] = []
    sent = None
    for key, value in spec.items():
        if not isinstance(key, str):
            return None
        name = key.upper()
        if name == "OP":
            continue
        if name in _LITERAL:
            if isinstance(value, str):
                literals.append((_LITERAL[name], frozenset([get_string_id(value)])))
            elif (isinstance(value, dict) and len(value) == 1
                  and str(next(iter(value))).upper() == "IN"
                  and isinstance(items := next(iter(value.values())), list)
                  and all(isinstance(v, str) for v in items)):
                literals.append((_LITERAL[name], frozenset(get_string_id(v) for v in items)))
            else:
                return None
        elif name in _lexeme_flags() and isinstance(value, bool):
            flags.append((name.lower(), value))
        elif name == "IS_SENT_START" and isinstance(value, bool):
            if sent is not None and sent != value:
                return None
            sent = value
        else:
            return None
    return tuple(literals), tuple(flags), sent


def _anchor_options(elems: list[tuple[int, tuple]]) -> list[tuple[int, int, int]]:
    """(element, lo, hi) of the elements that can anchor a pattern's starts.

    An element with quantifier ONE and literals consumes exactly one token in every
    match, ``lo`` to ``hi`` tokens after the start (bounded while no ``*`` comes before
    it): a start is only worth trying that far before such a token.
    """
    out, lo, hi = [], 0, 0
    for k, (q, pred) in enumerate(elems):
        if q == ONE and pred[0]:
            out.append((k, lo, hi))
        if q == STAR:
            break
        lo += q in (ONE, ZERO)
        hi += 1
    return out


def _entry(elems: list[tuple[int, tuple]]) -> tuple[list[int] | None, bool]:
    """Elements that can consume a state's first token: (with literals, any sentence start).

    The Matcher reaches them on the first token without consuming it (optional
    elements are skipped on the same token). None when one of them has neither a
    literal nor a sentence-start condition (it could consume any token).
    """
    entry: list[int] = []
    sent = False
    for k, (q, (literals, _, need_sent)) in enumerate(elems):
        if q == ZERO or not (literals or need_sent):
            return None, False
        if literals:
            entry.append(k)
        else:
            sent = True
        if q == ONE:
            break
    return entry, sent


class TokenPatterns:
    """Covered token patterns of one language, compiled to element tables."""

    def __init__(self) -> None:
        self.preds: list[tuple] = []               # distinct predicates
        self._pred_ids: dict[tuple, int] = {}
        self.quant: list[int] = []                 # per element (all patterns, in order)
        self.pred: list[int] = []
        self.last: list[bool] = []
        self.channel: list[int] = []               # per element: its pattern's channel
        self.entry_preds: list[set[int]] = []      # per pattern
        self.anchor_options: list[list[tuple[int, int, int]]] = []   # (pred, lo, hi)
        self.entry_sent: list[bool] = []
        self.first_elem: list[int] = []
        self._by_value: dict[tuple[str, int], list[int]] = {}   # (attr, hash) -> preds

    def __len__(self) -> int:
        return len(self.first_elem)

    def add(self, pattern: list, channel: int) -> bool:
        """Compile ``pattern`` (reporting ``channel``); False when it is not covered."""
        elems: list[tuple[int, tuple]] = []
        for spec in pattern:
            if not isinstance(spec, dict):
                return False
            if not spec:  # spaCy: an empty spec is exactly one token, whatever OP says
                ops: tuple[int, ...] | None = (ONE,)
            else:
                ops = _operators({str(k).upper(): v for k, v in spec.items()}.get("OP", _NO_OP))
            pred = _predicate(spec)
            if ops is None or pred is None:
                return False
            elems += [(q, pred) for q in ops]
        if not elems:
            return False
        anchors = _anchor_options(elems)
        entry, sent = _entry(elems)
        if not anchors and entry is None:
            return False  # it could start anywhere: the Matcher's prefilter does better
        ids = [self._pred_id(pred) for _, pred in elems]
        self.first_elem.append(len(self.quant))
        for k, ((q, _), p) in enumerate(zip(elems, ids)):
            self.quant.append(q)
            self.pred.append(p)
            self.last.append(k == len(elems) - 1)
            self.channel.append(channel)
        self.anchor_options.append([(ids[k], lo, hi) for k, lo, hi in anchors])
        self.entry_preds.append({ids[k] for k in entry or ()})
        self.entry_sent.append(sent)
        return True

    def _pred_id(self, pred: tuple) -> int:
        if pred not in self._pred_ids:
            self._pred_ids[pred] = len(self.preds)
            self.preds.append(pred)
        return self._pred_ids[pred]

    def freeze(self) -> None:
        """Build the lookup tables once every pattern is added."""
        self._quant = np.asarray(self.quant, dtype=np.int8)
        self._pred = np.asarray(self.pred, dtype=np.int64)
        self._last = np.asarray(self.last, dtype=bool)
        self._chan = np.asarray(self.channel, dtype=np.int64)
        n = len(self.quant)
        # at a doc's end a state matches when every element left is optional
        finish = np.zeros(n, dtype=bool)
        for e in range(n - 1, -1, -1):
            optional = self.quant[e] in (OPT, STAR)
            finish[e] = optional and (self.last[e] or finish[e + 1])
        self._finish = finish
        self._has_lit = np.asarray([bool(p[0]) for p in self.preds], dtype=bool)
        flag_names = sorted({name for p in self.preds for name, _ in p[1]})
        self._flag_names = flag_names
        bit = {name: 1 << k for k, name in enumerate(flag_names)}
        self._flag_mask = np.asarray([sum(bit[n] for n, _ in p[1]) for p in self.preds],
                                     dtype=np.int64)
        self._flag_val = np.asarray([sum(bit[n] for n, v in p[1] if v) for p in self.preds],
                                    dtype=np.int64)
        self._sent = np.asarray([-1 if p[2] is None else int(p[2]) for p in self.preds],
                                dtype=np.int8)
        for p, (literals, _, _) in enumerate(self.preds):
            for attr, hashes in literals:
                for h in hashes:
                    self._by_value.setdefault((attr, h), []).append(p)
        self._sent_entry = np.asarray(self.entry_sent, dtype=bool)
        self._first = np.asarray(self.first_elem, dtype=np.int64)
        self._owner = None
        self._reset()

    def _reset(self) -> None:
        """Forget the per-type facts (they follow one ``TypeTable``'s ids)."""
        self._flags = np.zeros(0, dtype=np.int64)       # per type: lexeme flag bits
        self._pred_ptr = np.zeros(1, dtype=np.int64)    # per type: CSR of the predicates
        self._pred_flat = np.zeros(0, dtype=np.int64)   # whose literals the type satisfies
        self._pairs = np.zeros(0, dtype=np.int64)       # sorted type * P + predicate keys
        # the same as a table: types with some predicate get a row of P booleans
        self._row = np.zeros(0, dtype=np.int64)         # per type: its row, -1: none
        self._table = np.zeros((0, len(self.preds)), dtype=bool)

    def describe(self, vocab, pairs: list[tuple[int, int]]) -> None:  # noqa: ANN001
        """Per-type facts of the types not seen yet; ``pairs``: (orth, lemma) per type id."""
        t0 = len(self._flags)
        new = pairs[t0:]
        if not new:
            return
        vocab = spacy_vocab(vocab)  # lexeme flags: spaCy's lexemes
        flags = np.zeros(len(new), dtype=np.int64)
        lists: list[list[int]] = []
        for i, (orth, lemma) in enumerate(new):
            lex = vocab[orth]
            value = {"orth": orth, "lower": lex.lower, "lemma": lemma}
            candidates: set[int] = set()
            for attr, h in value.items():
                candidates.update(self._by_value.get((attr, h), ()))
            lists.append(sorted(p for p in candidates
                                if all(value[attr] in hashes
                                       for attr, hashes in self.preds[p][0])))
            flags[i] = sum(1 << k for k, name in enumerate(self._flag_names)
                           if getattr(lex, name))
        self._flags = np.concatenate([self._flags, flags])
        sizes = np.fromiter((len(x) for x in lists), dtype=np.int64, count=len(lists))
        self._pred_ptr = np.concatenate([self._pred_ptr, self._pred_ptr[-1] + np.cumsum(sizes)])
        flat = np.fromiter((p for x in lists for p in x), dtype=np.int64, count=int(sizes.sum()))
        self._pred_flat = np.concatenate([self._pred_flat, flat])
        rows = np.full(len(new), -1, dtype=np.int64)
        if len(flat):
            types = np.repeat(np.arange(t0, t0 + len(new), dtype=np.int64), sizes)
            self._pairs = np.union1d(self._pairs, types * len(self.preds) + flat)
            some = np.flatnonzero(sizes)
            rows[some] = len(self._table) + np.arange(len(some))
            table = np.zeros((len(some), len(self.preds)), dtype=bool)
            table[np.repeat(np.arange(len(some)), sizes[some]), flat] = True
            self._table = np.concatenate([self._table, table])
        self._row = np.concatenate([self._row, rows])

    def find(self, arrays: TokenArrays, tid: np.ndarray,
             types) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # noqa: ANN001
        """(channel, start, end) of every match in the batch (may repeat; end > start).

        Args:
            arrays: the batch.
            tid: type ids of its tokens.
            types: the ``TypeTable`` that gave ``tid``; the per-type facts kept here
                follow its ids (another table starts them afresh).
        """
        if self._owner is not types:
            self._owner = types
            self._reset()
        self.describe(arrays.vocab, types.pairs)
        elem, pos = start_states(self, arrays, tid)
        return run_states(self, elem, pos, arrays, tid)

    def matches(self, elem: np.ndarray, pos: np.ndarray, tid: np.ndarray,
                sent: np.ndarray) -> np.ndarray:
        """Whether the token at each ``pos`` satisfies the predicate of element ``elem``."""
        pred = self._pred[elem]
        t = tid[pos]
        ok = (self._flags[t] & self._flag_mask[pred]) == self._flag_val[pred]
        need = self._sent[pred]
        ok &= (need < 0) | ((sent[pos] == 1) == (need == 1))
        lit = np.flatnonzero(self._has_lit[pred])
        if len(lit):
            row = self._row[t[lit]]
            has = row >= 0
            found = np.zeros(len(lit), dtype=bool)
            found[has] = self._table[row[has], pred[lit][has]]
            ok[lit] &= found
        return ok
