"""The spaCy Matcher's automaton, stepped for many states at once with NumPy.

``spacy.matcher.matcher.transition_states`` moves each state (pattern element, start,
length) over one token: ``get_action`` decides from the element's quantifier, whether
the token satisfies it and whether it is the last element; RETRY actions move to the
next element on the same token (and may branch); a match may or may not include the
current token. ``finish_states`` ends the states left at the end of the doc. States
never read each other, so here every live state of a batch advances one token per
round, each on its own doc, with the same action table; identical states are merged
(they would emit the same spans). The matches are the Matcher's, before its
de-duplication.
"""
from __future__ import annotations

import numpy as np

from pipeline.code.arrays import TokenArrays, ranges

ONE, ZERO, OPT, STAR = 0, 1, 2, 3


def start_states(tp, arrays: TokenArrays, tid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN001
    """The start states worth running: (first element of the pattern, position).

    The Matcher starts every pattern at every token; a start can only lead to a match
    where each element that consumes exactly one token (ONE, with literals) finds its
    word ``lo``..``hi`` tokens further. Per batch, each pattern is anchored on the
    element whose word is rarest in the batch (counted over the types, not the
    tokens); patterns without such an element start where their entry elements can
    consume the first token (``TokenPatterns.entry_preds`` / ``entry_sent``).
    """
    n, n_preds = len(tid), len(tp.preds)
    pair_t, pair_p = np.divmod(tp._pairs, n_preds)
    freq = np.bincount(tid, minlength=len(tp._flags))
    seen = np.bincount(pair_p, weights=freq[pair_t], minlength=n_preds)
    anchored: dict[int, list[tuple[int, int, int]]] = {}   # predicate -> (pattern, lo, hi)
    entry: dict[int, list[int]] = {}                      # predicate -> patterns
    sent_patterns = []
    for k, options in enumerate(tp.anchor_options):
        if options:
            p, lo, hi = min(options, key=lambda o: seen[o[0]] * (o[2] - o[1] + 1))
            if seen[p]:  # a word the batch does not have: the pattern cannot match
                anchored.setdefault(p, []).append((k, lo, hi))
            continue
        for p in tp.entry_preds[k]:
            entry.setdefault(p, []).append(k)
        if tp.entry_sent[k]:
            sent_patterns.append(k)
    wanted = np.zeros(n_preds, dtype=bool)
    wanted[list(anchored) + list(entry)] = True
    type_wanted = np.zeros(len(tp._flags), dtype=bool)
    type_wanted[pair_t[wanted[pair_p]]] = True
    at = np.flatnonzero(type_wanted[tid])
    # (position, predicate) for the predicates wanted at those positions
    t = tid[at]
    counts = tp._pred_ptr[t + 1] - tp._pred_ptr[t]
    at = np.repeat(at, counts)
    pred = tp._pred_flat[ranges(tp._pred_ptr[t], counts)]
    keep = wanted[pred]
    at, pred = at[keep], pred[keep]
    # per predicate: the (pattern, lo, hi) it anchors and the patterns it enters
    rows = [(p, k, lo, hi) for p, got in anchored.items() for k, lo, hi in got]
    rows += [(p, k, 0, 0) for p, got in entry.items() for k in got]
    table = np.asarray(rows, dtype=np.int64).reshape(-1, 4)
    table = table[np.argsort(table[:, 0], kind="stable")]
    per = np.bincount(table[:, 0], minlength=n_preds)
    ptr = np.concatenate([[0], np.cumsum(per)])
    counts = per[pred]
    hits = table[ranges(ptr[pred], counts)]
    q = np.repeat(at, counts)
    width = hits[:, 3] - hits[:, 2] + 1
    pattern = np.repeat(hits[:, 1], width)
    q = np.repeat(q, width)
    pos = q - np.repeat(hits[:, 2], width) - ranges(np.zeros(len(width), np.int64), width)
    doc_first = arrays.doc_starts()
    ok = pos >= 0
    ok[ok] = pos[ok] >= doc_first[q[ok]]      # a start in the anchor's own doc
    pattern, pos = pattern[ok], pos[ok]
    if sent_patterns:
        sents = np.flatnonzero(arrays.sent == 1)
        pattern = np.concatenate([pattern, np.tile(sent_patterns, len(sents))])
        pos = np.concatenate([pos, np.repeat(sents, len(sent_patterns))])
    key = np.sort(pattern * max(n, 1) + pos)  # one state per (pattern, start)
    if len(key) > 1:
        key = key[np.concatenate(([True], key[1:] != key[:-1]))]
    pattern, pos = np.divmod(key, max(n, 1))
    return tp._first[pattern], pos


def run_states(tp, elem: np.ndarray, pos: np.ndarray, arrays: TokenArrays,  # noqa: ANN001
               tid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run start states to the end; (channel, start, end) of the matches (end > start).

    Args:
        tp: the ``tokpat.TokenPatterns`` (frozen).
        elem: first element of each start state's pattern.
        pos: position of each start state (token positions in ``arrays``).
        arrays: the batch.
        tid: type ids of its tokens.
    """
    sent = arrays.sent
    limit = arrays.bounds[arrays.doc_index(pos) + 1]
    start = pos.copy()
    found_e: list[np.ndarray] = []
    found_s: list[np.ndarray] = []
    found_t: list[np.ndarray] = []

    def emit(mask: np.ndarray, e: np.ndarray, s: np.ndarray, t: np.ndarray) -> None:
        if mask.any():
            found_e.append(e[mask])
            found_s.append(s[mask])
            found_t.append(t[mask])

    while len(elem):
        done = pos >= limit
        if done.any():  # finish_states: the doc ended; a match if only optional elements remain
            emit(done & tp._finish[elem], elem, start, pos)
            live = ~done
            elem, start, pos, limit = elem[live], start[live], pos[live], limit[live]
        nxt: list[tuple[np.ndarray, ...]] = []
        e, s, p, lim = elem, start, pos, limit
        while len(e):  # one token; RETRY actions re-test the next element on it
            q = tp._quant[e]
            m = tp.matches(e, p, tid, sent)
            zero = q == ZERO
            m ^= zero                      # "!": ONE with the test negated
            q = np.where(zero, ONE, q)
            fin = tp._last[e]
            one, opt, star = q == ONE, q == OPT, q == STAR
            hit, miss = m & fin, ~m & fin
            emit(one & hit, e, s, p + 1)                        # MATCH
            nxt.append(_take(one & m & ~fin, e + 1, s, p + 1, lim))    # ADVANCE
            emit(star & hit, e, s, p)                           # MATCH_EXTEND ...
            nxt.append(_take(star & hit, e, s, p + 1, lim))     # ... and extend
            nxt.append(_take(star & m & ~fin, e, s, p + 1, lim))       # RETRY_EXTEND branch
            emit((opt | star) & miss, e, s, p)                  # MATCH_REJECT
            emit(opt & hit, e, s, p)                            # MATCH_DOUBLE, without the
            emit(opt & hit, e, s, p + 1)                        # token (if any) and with it
            nxt.append(_take(opt & m & ~fin, e + 1, s, p + 1, lim))    # RETRY_ADVANCE branch
            retry = (opt | star) & ~fin    # RETRY, RETRY_EXTEND, RETRY_ADVANCE: next element
            e, s, p, lim = e[retry] + 1, s[retry], p[retry], lim[retry]
        elem, start, pos, limit = _merge(nxt)
    if not found_e:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    e, s, t = np.concatenate(found_e), np.concatenate(found_s), np.concatenate(found_t)
    keep = t > s  # the Matcher drops zero-length matches
    return tp._chan[e[keep]], s[keep], t[keep]


def _take(mask: np.ndarray, e: np.ndarray, s: np.ndarray, p: np.ndarray,
          lim: np.ndarray) -> tuple[np.ndarray, ...]:
    return e[mask], s[mask], p[mask], lim[mask]


def _merge(parts: list[tuple[np.ndarray, ...]]) -> tuple[np.ndarray, ...]:
    """The next round's states, each distinct (element, start, position) once."""
    parts = [part for part in parts if len(part[0])]
    if not parts:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty, empty
    e, s, p, lim = (np.concatenate(cols) for cols in zip(*parts))
    if len(e) > 1:
        span = int(p.max()) + 1
        if (int(e.max()) + 1) * span * span < 1 << 62:
            _, first = np.unique((e * span + s) * span + p, return_index=True)
        else:  # too wide to pack into one int64
            _, first = np.unique(np.stack([e, s, p], axis=1), axis=0, return_index=True)
        if len(first) < len(e):
            e, s, p, lim = e[first], s[first], p[first], lim[first]
    return e, s, p, lim
