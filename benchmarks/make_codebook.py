"""Generate benchmark codebooks of N patterns from the sample data's vocabulary.

Patterns are spread over the required codes like a real codebook: 60% terms, 20%
two-word phrases, 15% globs (prefix and suffix, Dutch-compound style) and 5% token
patterns, plus one exclude and one proximity rule. Terms and phrases come from the
words and bigrams of ``data/raw`` so they really match; the longer codebooks add
rarer words, so the number of *hits* grows much less than the number of patterns.

Usage:
    python benchmarks/make_codebook.py 50 500 5000
"""
from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "corpora"
CODES = ["agency", "ownership", "alignment", "shared_leadership", "amo.ability",
         "amo.motivation", "amo.opportunity"]


def _vocabulary() -> tuple[list[str], list[str]]:
    words: Counter[str] = Counter()
    bigrams: Counter[str] = Counter()
    for path in sorted((ROOT / "data" / "raw").glob("*.txt")):
        tokens = re.findall(r"[a-zà-ÿ]{3,}", path.read_text(encoding="utf-8").lower())
        words.update(tokens)
        bigrams.update(f"{a} {b}" for a, b in zip(tokens, tokens[1:]))
    return [w for w, _ in words.most_common()], [b for b, _ in bigrams.most_common()]


def make_codebook(n_patterns: int, out: Path | None = None, *, real: int | None = None) -> Path:
    """Write ``codebook_<N>.yaml`` with ``n_patterns`` patterns and return its path.

    ``real``: use only the first ``real`` patterns' worth of sample words and fill the
    rest with words that never occur, so the number of hits stays that of a
    ``real``-pattern codebook (isolates the cost of the number of patterns).
    """
    target = out or OUT / (f"codebook_{n_patterns}.yaml" if real is None
                           else f"codebook_{n_patterns}_real{real}.yaml")
    words, bigrams = _vocabulary()
    if real is not None:
        keep = max(1, real)
        words, bigrams = words[:40 + int(keep * 0.6)], bigrams[:20 + int(keep * 0.2)]
    n_terms, n_phrases = int(n_patterns * 0.6), int(n_patterns * 0.2)
    n_globs = int(n_patterns * 0.15)
    n_pat = n_patterns - n_terms - n_phrases - n_globs
    # Skip the 40 most frequent (function) words; pad with synthetic rare words when
    # the sample's vocabulary runs out (they never match, like most real patterns).
    pool = words[40:] + [f"zzterm{k}" for k in range(n_patterns)]
    terms = pool[:n_terms]
    phrases = (bigrams[20:] + [f"zz{k} frase" for k in range(n_patterns)])[:n_phrases]
    stems = [w for w in words[40:] if len(w) >= 6] + [f"zzglob{k}" for k in range(n_patterns)]
    globs = [f"{w[:5]}*" if k % 2 else f"*{w[-5:]}" for k, w in enumerate(stems[:n_globs])]
    globs = list(dict.fromkeys(globs))
    patterns = [[{"LEMMA": w}, {"OP": "?", "IS_PUNCT": False}, {"LOWER": {"IN": ["zelf", "samen"]}}]
                for w in (words[40:] + [f"zzpat{k}" for k in range(n_pat)])[:n_pat]]
    codes: dict[str, dict] = {c: {"id": c, "label": {"nl": c, "en": c}, "definition": f"Code {c}."}
                              for c in CODES}
    rules: dict[str, list] = {c: [] for c in CODES}

    def spread(kind: str, key: str, items: list) -> None:
        for k, code in enumerate(CODES):
            part = items[k::len(CODES)]
            if part:
                rules[code].append({"kind": kind, key: part})

    spread("terms", "terms", terms)
    spread("phrase", "phrases", phrases)
    spread("glob", "globs", globs)
    spread("pattern", "patterns", patterns)
    rules["ownership"].append({"kind": "exclude", "phrases": ["eigenaar van het gebouw"]})
    rules["agency"].append({"kind": "proximity", "a": ["we", "wij", "ik"],
                            "b": ["kiezen", "bepalen", "beslis*"], "window": 6})
    for code in CODES:
        if rules[code]:
            codes[code]["rules"] = {"nl": rules[code]}
    amo = {"id": "amo", "label": {"nl": "AMO", "en": "AMO"}, "definition": "AMO.",
           "children": [codes.pop(c) for c in CODES if c.startswith("amo.")]}
    book = {"version": 1, "name": f"benchmark {n_patterns}",
            "settings": {"default_lang": "nl", "threshold": 0.5},
            "codes": [*codes.values(), amo]}
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(book, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="+", type=int)
    for n in parser.parse_args().sizes:
        print(make_codebook(n))


if __name__ == "__main__":
    main()
