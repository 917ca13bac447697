"""Finding person names in transcripts: speaker labels, title cues, given names.

Pure functions over strings, used by :mod:`pipeline.privacy` to decide what to
replace. Detection is deliberately conservative where a word is also an ordinary
word ("Frans", "Will", "An"), and errs towards replacing elsewhere: the output of
``qcode pseudonymise`` must be checked by hand before it is shared anyway.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from importlib import resources

__all__ = [
    "AMBIGUOUS_NAMES", "CUES", "PARTICLES", "ROLE_LABELS", "coordinated_names", "cue_names",
    "first_names", "is_role_label", "label_person", "sentence_initial", "text_names",
]

CUES = ("collega", "meneer", "mevrouw", "juf", "juffrouw", "meester", "mevr.", "mw.",
        "dhr.", "directeur", "mr.", "mrs.", "ms.", "colleague")
PARTICLES = ("van", "de", "der", "den", "het", "ter", "ten", "te", "'t", "op", "in")
# Capitalised words that follow a cue without being a name ("meneer De directeur", "juf En").
_NOT_NAMES = frozenset({"de", "het", "een", "en", "ik", "die", "dat", "dit", "maar", "ja", "nee",
                        "the", "a", "and", "i", "ook", "dus", "toen", "zei", "zegt", "is"})
_UPPER = "A-ZÀ-ÖØ-Þ"
_NAME_WORD = rf"[{_UPPER}][\w'’-]*"
_CUE_RE = re.compile(
    r"(?<!\w)(?i:" + "|".join(re.escape(c) for c in sorted(CUES, key=len, reverse=True)) + r")"
    rf"[ \t]+(?P<name>{_NAME_WORD}(?:[ \t]+(?:(?:{'|'.join(PARTICLES)})[ \t]+)*{_NAME_WORD})?)")

# Running text: a capitalised word that is a common given name (bundled list) and
# does not start a sentence is taken as a name. Some given names are also ordinary
# words that are capitalised mid-sentence (languages, months, English nouns and
# verbs) or start many sentences (Dutch "Ben je", "Wil je"); those are only taken
# from strong evidence (speaker labels, --names, metadata, a title cue, "ik heet").
AMBIGUOUS_NAMES = frozenset({
    "Ben", "Wil", "Will", "Job", "Frans", "Mark", "Frank", "Bill", "May", "June", "April",
    "August", "Rose", "Roos", "Fleur", "Hope", "Grace", "Joy", "Jack", "Victoria", "Art", "Rob",
    "Pat", "Sue", "Guy", "Jet", "Bas", "Kim", "Noor", "Lies", "Heather", "Holly", "Stan", "Ward",
    "Sean", "Jan", "Olive", "Lynn", "Isa", "Lore", "Leen", "Saar", "Trees", "Floor", "Ans", "An",
})
_COORD = r"[ \t]+(?:en|and|of|or|&)[ \t]+"
# Cues after which any capitalised word is a name ("ik heet Mark", "my name is Will").
_STRONG_CUE_RE = re.compile(
    r"(?<!\w)(?i:ik\s+heet|mijn\s+naam\s+is|my\s+name\s+is|i'm\s+called|noem\s+me)"
    r"[ \t]+(?P<name>[A-ZÀ-ÖØ-Þ][\w'’-]*)")
_CAP_PART = r"[A-ZÀ-ÖØ-Þ][^\W\d_]+"
_CAP_WORD_RE = re.compile(rf"(?<![\w'’-]){_CAP_PART}(?:-{_CAP_PART})*(?![\w'’-])")
# Particles that start a surname but not a place ("Roel in Zwolle", "Eline op Texel").
_SURNAME_PARTICLES = ("van", "de", "der", "den", "ter", "ten", "'t")
_SURNAME_RE = re.compile(
    rf"[ \t]+(?:(?i:{'|'.join(_SURNAME_PARTICLES)})[ \t]+)*(?P<last>{_CAP_PART}(?:-{_CAP_PART})*)"
    r"(?![\w'’-])")
_OPENERS = "\"'“‘„«‹([{-–—*_ \t\u00a0"
_ENDERS = ".!?:;…>]"


@lru_cache(maxsize=1)
def first_names() -> frozenset[str]:
    """The bundled list of common given names (NL, BE, UK, IE), ``pipeline/data/first_names.txt``."""
    text = resources.files("pipeline").joinpath("data/first_names.txt").read_text(encoding="utf-8")
    return frozenset(ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#"))


def sentence_initial(text: str, pos: int) -> bool:
    """Whether the word at ``pos`` starts a sentence, line or turn (capitalised anyway)."""
    i = pos - 1
    while i >= 0 and text[i] in _OPENERS:
        i -= 1
    return i < 0 or text[i] in "\n\r" or text[i] in _ENDERS


def text_names(text: str, names: Iterable[str] | None = None) -> list[str]:
    """Names in running text, beyond speaker labels and title cues.

    * after a strong cue ("ik heet X", "mijn naam is X", "my name is X"): any
      capitalised word;
    * anywhere else ("ik ben Eline", "samen met Ruud", "Mirjam, onze
      schoolleider"): a capitalised word that is in ``names`` (default: the bundled
      :func:`first_names`), does not start a sentence or line, and is not one of
      :data:`AMBIGUOUS_NAMES` (words like "Frans" = French, "Will", "Mark");
      sentence-initial only when a comma follows ("Mirjam, onze schoolleider").

    Lower-case words are never names ("de markt", "we will").
    """
    known = first_names() if names is None else frozenset(names)
    out: list[str] = []
    for m in _STRONG_CUE_RE.finditer(text):
        name = m.group("name")
        if name.lower() not in _NOT_NAMES and name not in ("Persoon", "School"):
            out.append(name)
    for m in _CAP_WORD_RE.finditer(text):
        word = m.group()
        first = word.split("-")[0]
        if (word in known or first in known) and word not in AMBIGUOUS_NAMES and (
                not sentence_initial(text, m.start()) or text.startswith(",", m.end())):
            # "Mirjam, onze schoolleider": a name addressed or described; "met Roel
            # van Dijk": the surname goes with it (and is then replaced on its own too).
            out.append(word + _surname_after(text, m.end(), known))
    return list(dict.fromkeys(out))


def _surname_after(text: str, pos: int, known: frozenset[str]) -> str:
    """The surname that follows a given name at ``pos`` (with particles), or "".

    A following capitalised word is a surname unless it is a function word
    ("Roel Maar"), itself a given name ("Jan Piet": two people, kept apart) or a
    pseudonym already.
    """
    m = _SURNAME_RE.match(text, pos)
    if not m:
        return ""
    last = m.group("last")
    if last.lower() in _NOT_NAMES or last in known or last in ("Persoon", "School"):
        return ""
    return " " + " ".join(m.group().split())


def coordinated_names(text: str, people: Iterable[str],
                      names: Iterable[str] | None = None) -> list[str]:
    """Ambiguous given names (:data:`AMBIGUOUS_NAMES`) joined to a known person by "en"/"and".

    "Sofie en An": with Sofie known, An is a name too. Such a name is only replaced
    where it does not start a sentence (see :class:`Detector` ``guarded``), so the
    article "An" of an English sentence stays.
    """
    known = first_names() if names is None else frozenset(names)
    people = sorted({p for p in people if len(p) >= 2}, key=len, reverse=True)
    if not people:
        return []
    alt = "|".join(re.escape(p) for p in people)
    out = []
    rx = re.compile(rf"(?<!\w)(?:(?:{alt}){_COORD}(?P<b>{_NAME_WORD})"
                    rf"|(?P<a>{_NAME_WORD}){_COORD}(?:{alt}))(?!\w)")
    for m in rx.finditer(text):
        word, at = (m.group("b"), m.start("b")) if m.group("b") else (m.group("a"), m.start("a"))
        if word in AMBIGUOUS_NAMES and word in known and not sentence_initial(text, at):
            out.append(word)
    return list(dict.fromkeys(out))


# Role labels are not names ("I", "R2", "Interviewer").
ROLE_LABELS = frozenset({
    "i", "r", "q", "a", "p", "m", "int", "interviewer", "interviewster", "interviewee",
    "respondent", "resp", "moderator", "onderzoeker", "deelnemer", "participant", "spreker",
    "speaker", "geïnterviewde", "vraag", "antwoord", "question", "answer", "docent", "leraar",
    "leerling", "teacher", "student",
})


_PSEUDONYM_RE = re.compile(r"(?:Persoon|School) [A-Z]+")


def is_role_label(label: str, extra: Iterable[str] = ()) -> bool:
    """Return whether a speaker label is a role ("I", "R2") rather than a name."""
    if _PSEUDONYM_RE.fullmatch(str(label).strip()):
        return True   # already pseudonymised (a second run must not re-key it)
    base = re.sub(r"[\s\d._-]+$", "", str(label)).strip().lower()
    return not base or base in ROLE_LABELS or base in {e.strip().lower() for e in extra}


def label_person(label: str, extra_roles: Iterable[str] = ()) -> tuple[str, list[str]]:
    """The person in a speaker label, and the label forms that name them.

    Teams and transcription tools write labels such as "Pieters, Anna (Onderzoeker)" or
    "Interviewer - Anna": the role part is not a name (and must survive, so the
    pseudonymised transcript keeps its interviewer), and "Last, First" is one person.

    Returns:
        ``(name, variants)``: the name as "First Last" (empty when the label is only a
        role) and the written forms to replace with the same pseudonym.
    """
    text = " ".join(str(label).split())
    core = text
    m = re.match(r"^\s*([^-|–()]+?)\s*[-|–]\s*(.+)$", core)
    if m and is_role_label(m.group(1), extra_roles):
        core = m.group(2)
    core = re.sub(r"\s*\([^)]*\)", "", core).strip()
    if not core or is_role_label(core, extra_roles):
        return "", []
    variants = [core]
    if core.count(",") == 1:
        last, first = (part.strip() for part in core.split(","))
        if last and first:
            return f"{first} {last}", variants
    return core, []


def cue_names(text: str) -> list[str]:
    """Return capitalised names that follow a cue ("juf Anja", "meneer De Vries")."""
    out = []
    for m in _CUE_RE.finditer(text):
        name = m.group("name")
        words = name.split()
        while words and words[-1].lower() in _NOT_NAMES:
            words.pop()
        # "meneer De Boer": a capitalised particle starts a surname, not a sentence.
        surname = len(words) > 1 and words[0].lower() in PARTICLES
        if words and (surname or words[0].lower() not in _NOT_NAMES):
            out.append(" ".join(words))
    return out
