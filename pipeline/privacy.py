"""Pseudonymisation of transcripts: pure functions over texts and offset maps.

What is replaced: person names (speaker labels, names from a list or metadata,
capitalised names after cues such as "collega", "meneer", "mevrouw", "juf",
"meester", "ik heet", and capitalised words in running text that are common given
names, with the surname that follows them -- see :mod:`pipeline.privacy_names`), e-mail addresses, phone numbers and school names
from a list. A name found anywhere is replaced everywhere, in every document. The
same original always gets the same pseudonym, across documents and (through the
key) across runs. Detection is automatic and incomplete: the output must be checked
by hand before it is shared.

Every replacement is recorded in an :class:`OffsetMap`, so offsets computed on the
original text (segments, matches, codings) can be moved to the pseudonymised text;
a boundary that falls inside a replaced name snaps to the edge of its pseudonym.
The CLI checks that re-reading a written file gives exactly the mapped text and
refuses to remap codings otherwise: never silently wrong offsets.
"""
from __future__ import annotations

import bisect
import re
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import pandas as pd

from pipeline import columns as C
from pipeline.segment import content_hash
from pipeline.privacy_names import (  # noqa: F401  (re-exported: the public API of privacy)
    AMBIGUOUS_NAMES, CUES, PARTICLES, ROLE_LABELS, coordinated_names, cue_names, first_names,
    is_role_label, label_person, sentence_initial, text_names,
)

PERSON, EMAIL, PHONE, SCHOOL = "person", "email", "phone", "school"
KINDS = (EMAIL, PHONE, SCHOOL, PERSON)   # priority when spans overlap
KEY_COLUMNS = ["kind", "original", "pseudonym"]
EMAIL_RE = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
PHONE_RE = re.compile(r"(?<![\w+])(?:\+|00)?\d(?:[ \t.\-/()]{0,2}\d){8,14}(?!\w)")
_MIN_PHONE_DIGITS = 9

def count_kinds(spans: Iterable[Span]) -> dict[str, int]:
    """Number of replacements per kind (every kind listed, zero when none)."""
    counts = dict.fromkeys(KINDS, 0)
    for sp in spans:
        counts[sp.kind] += 1
    return counts


def _letters(n: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA: pseudonym suffixes that read as names, not numbers."""
    out = ""
    n += 1
    while n:
        n, r = divmod(n - 1, 26)
        out = string.ascii_uppercase[r] + out
    return out


@dataclass
class PseudonymKey:
    """Original -> pseudonym per kind; grows as new originals are met (deterministic)."""

    persons: dict[str, str] = field(default_factory=dict)   # name variant -> person id
    table: dict[tuple[str, str], str] = field(default_factory=dict)  # (kind, id) -> pseudonym
    counts: dict[str, int] = field(default_factory=dict)
    seen: dict[tuple[str, str], str] = field(default_factory=dict)  # (kind, id) -> as first written

    def pseudonym(self, kind: str, original: str) -> str:
        """Return (creating if needed) the pseudonym of an original value."""
        ident = self.persons.get(original, original) if kind == PERSON else _canon(kind, original)
        got = self.table.get((kind, ident))
        if got is None:
            n = self.counts.get(kind, 0)
            self.counts[kind] = n + 1
            got = {PERSON: f"Persoon {_letters(n)}", SCHOOL: f"School {_letters(n)}",
                   EMAIL: f"email{n + 1}@example.org", PHONE: f"[telefoon {n + 1}]"}[kind]
            self.table[(kind, ident)] = got
            self.seen[(kind, ident)] = original
        return got

    def add_person(self, name: str) -> None:
        """Register a person name and its variants (given name, surname) as one person."""
        name = " ".join(str(name).split())
        if len(name) < 2 or name in self.persons:
            return
        self.persons[name] = name
        words = name.split()
        if len(words) > 1:
            variants = [words[0]]
            rest = words[1:]
            variants.append(" ".join(rest))
            if rest[0].lower() in PARTICLES:
                variants.append(" ".join([rest[0].capitalize(), *rest[1:]]))
                variants.append(" ".join([rest[0].lower(), *rest[1:]]))
            for v in variants:
                # A shared first name stays with the first person listed: consistent, documented.
                if len(v) >= 2 and v.lower() not in PARTICLES and (
                        v[0].isupper() or v.split()[0] in PARTICLES):
                    self.persons.setdefault(v, name)

    def rows(self) -> pd.DataFrame:
        """The key as a table: kind, original, pseudonym (every person variant listed)."""
        out = [(k, self.seen.get((k, o), o), p) for (k, o), p in self.table.items() if k != PERSON]
        for variant, ident in self.persons.items():
            if (PERSON, ident) in self.table:
                out.append((PERSON, variant, self.table[(PERSON, ident)]))
        return pd.DataFrame(sorted(out), columns=KEY_COLUMNS)

    @classmethod
    def from_rows(cls, df: pd.DataFrame) -> PseudonymKey:
        """Rebuild a key written by :meth:`rows` so a later run reuses its pseudonyms."""
        key = cls()
        by_pseudonym: dict[str, str] = {}
        for kind, orig, pseud in zip(df["kind"].astype(str), df["original"].astype(str),
                                     df["pseudonym"].astype(str)):
            if kind == PERSON:
                ident = by_pseudonym.setdefault(pseud, orig)
                key.persons[orig] = ident
                key.table[(PERSON, ident)] = pseud
            else:
                key.table[(kind, _canon(kind, orig))] = pseud
                key.seen[(kind, _canon(kind, orig))] = orig
        for kind, _ in key.table:
            key.counts[kind] = key.counts.get(kind, 0) + 1
        key.counts[PERSON] = len({p for (k, _), p in key.table.items() if k == PERSON})
        return key


def _canon(kind: str, original: str) -> str:
    """The identity of an e-mail, phone or school (case and spacing do not matter)."""
    if kind == PHONE:
        digits = re.sub(r"\D", "", original.replace("+", "00"))
        # +31 6 ... and 06-... are the same Dutch number.
        return "0" + digits[4:] if digits.startswith("0031") else digits
    return " ".join(original.lower().split())


@dataclass(frozen=True)
class Span:
    """A piece of text to replace."""

    start: int
    end: int
    kind: str
    original: str


@dataclass
class Detector:
    """Finds the spans to replace, given the known names and schools."""

    names: Iterable[str]
    schools: Iterable[str] = ()
    guarded: Iterable[str] = ()   # names replaced only where they do not start a sentence

    def __post_init__(self) -> None:
        self._guarded = frozenset(self.guarded)
        names = sorted({" ".join(n.split()) for n in self.names if len(n.strip()) >= 2},
                       key=lambda s: (-len(s), s))
        schools = sorted({" ".join(s.split()) for s in self.schools if s.strip()},
                         key=lambda s: (-len(s), s))
        # Names are matched case-sensitively ("Roos" the name, not "roos" the flower);
        # schools case-insensitively; both as whole words, any whitespace inside.
        self._names = self._alternation(names, 0)
        self._schools = self._alternation(schools, re.IGNORECASE)

    @staticmethod
    def _alternation(items: list[str], flags: int) -> re.Pattern | None:
        if not items:
            return None
        body = "|".join(r"\s+".join(map(re.escape, it.split())) for it in items)
        return re.compile(rf"(?<!\w)(?:{body})(?!\w)", flags)

    def spans(self, text: str) -> list[Span]:
        """Return the non-overlapping spans of ``text`` to replace, in text order."""
        found: list[Span] = [Span(m.start(), m.end(), EMAIL, m.group()) for m in EMAIL_RE.finditer(text)]
        for m in PHONE_RE.finditer(text):
            if sum(ch.isdigit() for ch in m.group()) >= _MIN_PHONE_DIGITS:
                found.append(Span(m.start(), m.end(), PHONE, m.group()))
        for kind, rx in ((SCHOOL, self._schools), (PERSON, self._names)):
            if rx is not None:
                found += [Span(m.start(), m.end(), kind, " ".join(m.group().split()))
                          for m in rx.finditer(text)
                          if not (kind == PERSON and m.group() in self._guarded
                                  and sentence_initial(text, m.start()))]
        found.sort(key=lambda s: (s.start, -(s.end - s.start), KINDS.index(s.kind)))
        out: list[Span] = []
        for sp in found:
            if not out or sp.start >= out[-1].end:
                out.append(sp)
        return out


@dataclass
class OffsetMap:
    """Replacements made in a text: old (start, end) -> new (start, end), in order."""

    old_starts: list[int] = field(default_factory=list)
    old_ends: list[int] = field(default_factory=list)
    new_starts: list[int] = field(default_factory=list)
    new_ends: list[int] = field(default_factory=list)

    def position(self, pos: int, side: str = "start") -> int:
        """Map an offset; inside a replaced span, snap to its start or end (``side``)."""
        i = bisect.bisect_right(self.old_starts, pos) - 1
        if i < 0:
            return pos
        if pos >= self.old_ends[i]:
            return pos + self.new_ends[i] - self.old_ends[i]
        if pos == self.old_starts[i]:
            return self.new_starts[i]
        return self.new_starts[i] if side == "start" else self.new_ends[i]

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Map a (start, end) pair, widening it to whole pseudonyms."""
        return self.position(int(start), "start"), self.position(int(end), "end")


def apply(text: str, spans: Iterable[Span], key: PseudonymKey) -> tuple[str, OffsetMap]:
    """Replace the spans by their pseudonyms; return the new text and the offset map."""
    out, omap, pos, shift = [], OffsetMap(), 0, 0
    for sp in spans:
        new = key.pseudonym(sp.kind, sp.original)
        out += [text[pos:sp.start], new]
        omap.old_starts.append(sp.start)
        omap.old_ends.append(sp.end)
        omap.new_starts.append(sp.start + shift)
        omap.new_ends.append(sp.start + shift + len(new))
        shift += len(new) - (sp.end - sp.start)
        pos = sp.end
    out.append(text[pos:])
    return "".join(out), omap


def pseudonymise_text(text: str, detector: Detector, key: PseudonymKey) -> tuple[str, OffsetMap]:
    """Detect and replace everything in one text."""
    return apply(text, detector.spans(text), key)


def replace_all(text: str, detector: Detector, key: PseudonymKey) -> str:
    """Pseudonymise a short string (evidence, memo, attribute) without offsets."""
    return pseudonymise_text(str(text), detector, key)[0]


# --- remapping coded outputs ---------------------------------------------------------

def remap_coded(tables: Mapping[str, pd.DataFrame], maps: Mapping[str, OffsetMap],
                texts: Mapping[str, str], detector: Detector, key: PseudonymKey
                ) -> dict[str, pd.DataFrame]:
    """Move the offsets of a coded folder's tables to the pseudonymised texts.

    Args:
        tables: "documents", "segments", "codings", "matches" (and optionally
            "reviews") of the original run.
        maps: doc id -> offset map from original to pseudonymised document text.
        texts: doc id -> pseudonymised document text.
        detector, key: used for strings without offsets (evidence, memos, attributes).

    Returns:
        The same tables, with offsets, texts, hashes and attributes pseudonymised.
        Reviews get the new content hash when their hash was current (a stale
        decision stays stale).
    """
    out: dict[str, pd.DataFrame] = {}

    def strings(df: pd.DataFrame, skip: set[str]) -> pd.DataFrame:
        for col in df.columns:
            if col not in skip and df[col].dtype in (object, "string", "str"):
                df[col] = [replace_all(v, detector, key) if isinstance(v, str) else v for v in df[col]]
        return df

    def offsets(df: pd.DataFrame) -> pd.DataFrame:
        df = df.copy()
        if len(df):
            pairs = [maps[d].span(s, e) for d, s, e in zip(df[C.DOC_ID], df[C.START], df[C.END])]
            df[C.START] = [p[0] for p in pairs]
            df[C.END] = [p[1] for p in pairs]
        return df

    ids = {C.SEGMENT_ID, C.DOC_ID, C.CODE_ID, C.CONTENT_HASH, C.RULE_ID, C.PATH, C.SHA256}
    docs = tables["documents"].copy()
    if len(docs):
        docs[C.TEXT] = [texts[d] for d in docs[C.DOC_ID]]
        docs[C.N_CHARS] = [len(texts[d]) for d in docs[C.DOC_ID]]
    out["documents"] = strings(docs, ids | {C.TEXT})
    segs = offsets(tables["segments"])
    old_hash = dict(zip(segs[C.SEGMENT_ID].astype(str), segs[C.CONTENT_HASH].astype(str)))
    if len(segs):
        segs[C.TEXT] = [texts[d][s:e] for d, s, e in zip(segs[C.DOC_ID], segs[C.START], segs[C.END])]
        segs[C.CONTENT_HASH] = [content_hash(t) for t in segs[C.TEXT]]
    out["segments"] = strings(segs, ids | {C.TEXT})
    matches = offsets(tables["matches"])
    if len(matches):
        matches[C.EVIDENCE] = [texts[d][s:e] for d, s, e in
                               zip(matches[C.DOC_ID], matches[C.START], matches[C.END])]
    out["matches"] = matches
    out["codings"] = strings(offsets(tables["codings"]), ids | {C.METHOD, C.RULE, C.RULES})
    if "reviews" in tables:
        rev = tables["reviews"].copy()
        new_hash = dict(zip(segs[C.SEGMENT_ID].astype(str), segs[C.CONTENT_HASH].astype(str)))
        rev[C.CONTENT_HASH] = [new_hash[s] if old_hash.get(s) == h else h
                               for s, h in zip(rev[C.SEGMENT_ID].astype(str),
                                               rev[C.CONTENT_HASH].astype(str))]
        rev["memo"] = [replace_all(m, detector, key) for m in rev["memo"].astype(str)]
        out["reviews"] = rev
    return out
