"""Differential fuzzing of the caches: random edits, each run with the cache against a run without.

Every step edits the codebook (words added or removed, weights, windows, thresholds, token
patterns, vocab lists, negation cues, rule and code ids, deleted rules, an earlier state
restored), the corpus (a word changed, a turn appended, files deleted, restored, copied,
renamed, touched, re-encoded as cp1252, small or unreadable files added, a survey answer
or a metadata language changed; a word changed for one as long with the file's times set back),
the cache (a file truncated, overwritten, deleted or one byte changed in place) or
the run's options (chunk and part sizes, unit, forced language, speakers, ``--jobs 2``,
``--engine dask``, the DocBin cache, the inputs as a file list). Then it codes the corpus
twice:

- with the cache, one cache folder for every step and output folders taking turns:
  mostly in this process (so the process's memos live across the edits, as in a
  notebook), sometimes through the command line;
- without the cache, in a new process, on one job (the reference); for about a third of the
  steps that code on one job, the reference runs on two instead (parts written by pool workers,
  none kept in memory), so that a fault every one-job run shares shows too.

About half the steps (at random) first date all files of the corpus and the cache 10 s back,
so that the runs remember the digests of what they read (``digest_memo``) and later steps
take them.
One step in ten also starts another run at the same time, on the same cache folder, of an
earlier state of the codebook, and checks it the same way.

Every output file but the manifest must be byte-identical, the manifests' counts equal,
and a codebook one run rejects the other must reject too. A failing step's corpus,
codebook and both outputs are kept in ``<work>/fail_<step>``.

Run by hand for as long as you like (the test suite runs a few steps):

    .venv/bin/python tests/recode_fuzz.py --seed 7 --steps 300 --work /tmp/recode-fuzz
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
LISTS = ("terms", "globs", "phrases", "a", "b")
ABSENT = ["zzqx", "plofkip", "qwertyuiop", "nergenswoord"]
# a run in a new process: without the cache, or with the cache folder given as argv[5]
REFERENCE = """
import json, sys
from pipeline.runner import RunOptions, code_corpus
cache = sys.argv[5] if len(sys.argv) > 5 else None
code_corpus(json.loads(sys.argv[2]), codebook=sys.argv[3], out_dir=sys.argv[4],
            options=RunOptions(progress=False, cache=cache is not None, cache_dir=cache,
                               **json.loads(sys.argv[1])))
"""
PEER_SHARE = 0.1   # steps with a second run at the same time, on the same cache
AGE_SHARE = 0.5    # steps that date every file back first (``RecodeFuzz.age``)
REF_JOBS_SHARE = 0.3  # one-job steps whose reference runs on two jobs
AGE_S = 10
SMALL_CHUNKS = {"chunk_bytes": 40_000}   # several chunks of the sample corpus, not one
OPTIONS: list[dict[str, Any]] = [
    {}, {"chunk_bytes": 80_000, "part_bytes": 5_000}, {"part_bytes": 3_000, "jobs": 2},
    {"unit": "paragraph"}, {"unit": "sentence"}, {"jobs": 2}, {"docbin": True},
    {"lang": "en"}, {"code_speakers": "all"}, {"chunk_bytes": 30_000, "jobs": 2},
    {"engine": "dask", "jobs": 2}]
# how the output is made, not what it is: the reference runs without them
HOW = ("jobs", "engine", "docbin")
CLI_OPTIONS = {"unit": "--unit", "jobs": "--jobs", "lang": "--lang",
               "code_speakers": "--code-speakers", "engine": "--engine"}


def _codes(codes: list[dict]):  # noqa: ANN202
    for code in codes:
        yield code
        yield from _codes(code.get("children") or [])


class RecodeFuzz:
    """A corpus, a codebook and a cache folder in ``work``, edited and coded step by step."""

    def __init__(self, seed: int, work: Path, corpus: Path | None = None) -> None:
        self.rng = random.Random(seed)
        self.work = Path(work)
        shutil.rmtree(self.work, ignore_errors=True)
        self.corpus, self.trash = self.work / "corpus", self.work / "trash"
        shutil.copytree(corpus or REPO / "data" / "raw", self.corpus)
        (self.corpus / "README.md").unlink(missing_ok=True)
        self.trash.mkdir()
        self.book_path, self.cache = self.work / "codebook.yaml", self.work / "cache"
        self.book = yaml.safe_load((REPO / "codebook.yaml").read_text(encoding="utf-8"))
        self.books: list[dict] = []
        self.options: dict[str, Any] = dict(SMALL_CHUNKS)
        counts: dict[str, int] = {}
        for path in self.corpus.iterdir():
            if path.suffix in (".txt", ".md", ".csv", ".vtt"):
                for word in re.findall(r"[a-zà-ÿ']+", path.read_text(encoding="utf-8").lower()):
                    counts[word] = counts.get(word, 0) + 1
        self.frequent = sorted(w for w, n in counts.items() if n >= 20)
        self.rare = sorted(w for w, n in counts.items() if n <= 2 and len(w) > 3)
        self.used_cache = 0   # steps whose cached run took something from the cache
        self.took_chunks = 0  # ... the coding rows of some chunks, from a stored run's files
        self.steps = 0        # steps done

    # -- edits ---------------------------------------------------------------------------

    def word(self) -> str:
        """A frequent or rare word of the corpus, one found nowhere, or two words."""
        r = self.rng.random()
        if r < 0.35:
            return self.rng.choice(self.frequent)
        if r < 0.75:
            return self.rng.choice(self.rare)
        if r < 0.85:
            return self.rng.choice(ABSENT)
        return f"{self.rng.choice(self.frequent)} {self.rng.choice(self.rare)}"

    def rules(self) -> list[tuple[dict, str, dict]]:
        return [(code, lang, rule) for code in _codes(self.book["codes"])
                for lang, rules in (code.get("rules") or {}).items() for rule in rules]

    def edit_book(self) -> str:  # noqa: C901, PLR0911, PLR0912 - one branch per kind of edit
        rng, book, rules = self.rng, self.book, self.rules()
        kind = rng.choice(["add", "add", "add", "remove", "weight", "threshold", "window",
                           "pattern", "vocab", "opening", "count", "delete", "rename_rule",
                           "rename_code", "cue", "scope", "negation_scope", "same"])
        if kind in ("add", "remove"):
            code, lang, rule, field = rng.choice([(c, la, r, f) for c, la, r in rules
                                                  for f in LISTS if isinstance(r.get(f), list)])
            if kind == "remove":
                if len(rule[field]) < 2:
                    return "nothing"
                return f"removed {rule[field].pop(rng.randrange(len(rule[field])))!r} " \
                       f"from {rule['id']}.{field}"
            word = self.word()
            if field in ("globs", "terms"):
                word = word.split()[0]
            if field == "globs":
                word = rng.choice([word, word[:max(3, len(word) - 2)] + "*", "*" + word[2:]])
            rule[field].append(word)
            return f"added {word!r} to {rule['id']}.{field}"
        if kind == "weight":
            rule = rng.choice([r for _, _, r in rules if "weight" in r])
            rule["weight"] = rng.choice([0.2, 0.35, 0.5, 0.6, 0.9])
            return f"weight of {rule['id']}: {rule['weight']}"
        if kind == "threshold":
            book["settings"]["threshold"] = rng.choice([0.3, 0.5, 0.55, 0.6, 0.9])
            return f"threshold {book['settings']['threshold']}"
        if kind == "window":
            rule = rng.choice([r for _, _, r in rules if "window" in r])
            rule["window"] = rng.choice([2, 4, 6, 10])
            return f"window of {rule['id']}: {rule['window']}"
        if kind == "pattern":
            rule = rng.choice([r for _, _, r in rules if r.get("kind") == "pattern"])
            tokens = [{"LOWER": t} for t in self.word().split()]
            if rng.random() < 0.2:  # one spaCy's Matcher rejects: both runs must reject it
                tokens[0] = rng.choice([{"LOWERR": "x"}, {"LOWER": {"IN": "x"}}, {"OP": "!!"}])
            rule["patterns"].append(tokens)
            return f"pattern added to {rule['id']}: {rule['patterns'][-1]}"
        if kind == "vocab":
            name = rng.choice(sorted(book["vocab"]))
            lang = rng.choice(sorted(book["vocab"][name]))
            book["vocab"][name][lang].append(self.word())
            return f"vocab {name}.{lang} += {book['vocab'][name][lang][-1]!r}"
        if kind == "opening":
            book["settings"]["opening_weight"] = rng.choice([0, 0.5, 1])
            return f"opening_weight {book['settings']['opening_weight']}"
        if kind == "count":
            book["settings"]["count_per_rule"] = rng.choice([1, 2, 3])
            return f"count_per_rule {book['settings']['count_per_rule']}"
        if kind == "delete":
            code, lang, rule = rng.choice([x for x in rules if len(x[0]["rules"][x[1]]) > 1])
            code["rules"][lang].remove(rule)
            return f"deleted rule {rule['id']}"
        if kind == "rename_rule":
            rule = rng.choice(rules)[2]
            new = f"{rule['id']}_{rng.randrange(10)}"
            if any(r["id"] == new for _, _, r in rules):
                return "nothing"
            rule["id"] = new
            return f"rule renamed {new}"
        if kind == "rename_code":
            code = rng.choice([c for c in _codes(book["codes"]) if not c.get("children")])
            code["id"] += "_x"
            return f"code renamed {code['id']}"
        if kind == "negation_scope":
            settings = book["settings"]
            settings["negation_scope"] = rng.choice(["window", "clause"])
            settings["negation_window"] = rng.choice([3, 5, 8])
            return f"negation {settings['negation_scope']}, window {settings['negation_window']}"
        if kind == "cue":
            cues = book["settings"]["negation_cues"][rng.choice(["nl", "en"])]
            if rng.random() < 0.5 and len(cues) > 2:
                return f"negation cue removed: {cues.pop(rng.randrange(len(cues)))!r}"
            cues.append(self.word().split()[0])
            return f"negation cue added: {cues[-1]!r}"
        if kind == "scope":
            rule = rng.choice([r for _, _, r in rules if r.get("kind") == "exclude"])
            rule["scope"] = rng.choice(["match", "sentence", "segment"])
            return f"scope of {rule['id']}: {rule['scope']}"
        return "the YAML written again"

    def edit_corpus(self) -> str:  # noqa: C901, PLR0911, PLR0912 - one branch per kind of edit
        rng, corpus = self.rng, self.corpus
        files = sorted(p for p in corpus.iterdir() if p.name != "metadata.csv")
        texts = [p for p in files if p.suffix in (".txt", ".md") and _utf8(p)]
        kind = rng.choice(["edit", "edit", "append", "delete", "restore", "copy", "survey",
                           "metadata", "rename", "touch", "cp1252", "small", "unreadable",
                           "same size"])
        if kind in ("edit", "same size") and texts:
            path = rng.choice(texts)
            text = path.read_text(encoding="utf-8")
            words = list(re.finditer(r"[a-zA-Z]{4,}", text))
            if words:
                m, new = rng.choice(words), self.word()
                if kind == "same size":  # as long, and the file's times set back after
                    new = "".join(c for c in new if c.isascii() and c.isalpha()) or "q"
                    new = (new * len(m.group()))[:len(m.group())].swapcase()
                    if new == m.group():
                        return "nothing"
                before = path.stat()
                path.write_text(text[:m.start()] + new + text[m.end():], encoding="utf-8")
                if kind == "same size":  # only the change time tells (``digest_memo``)
                    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
                    return f"{path.name}: {m.group()!r} -> {new!r}, its time kept"
                return f"{path.name}: {m.group()!r} -> {new!r}"
        if kind == "append" and texts:
            path = rng.choice(texts)
            with open(path, "a", encoding="utf-8") as fh:
                fh.write("R: " + " ".join(self.word() for _ in range(rng.randint(3, 12))) + ".\n")
            return f"a turn appended to {path.name}"
        if kind == "delete" and len(files) > 3:
            path = rng.choice(files)
            shutil.move(path, self.trash / path.name)
            return f"{path.name} deleted"
        if kind == "restore" and any(self.trash.iterdir()):
            path = rng.choice(sorted(self.trash.iterdir()))
            shutil.move(path, corpus / path.name)
            return f"{path.name} restored"
        if kind == "copy" and texts:
            path = rng.choice(texts)
            name = f"x{rng.randrange(1000)}_{path.name}"
            shutil.copy(path, corpus / name)
            return f"{path.name} copied to {name}"
        surveys = [p for p in files if p.suffix == ".csv" and _utf8(p)]
        if kind == "survey" and surveys:
            path = rng.choice(surveys)
            lines = path.read_text(encoding="utf-8").split("\n")
            k = rng.randrange(1, len(lines) - 1) if len(lines) > 2 else 0
            if k and lines[k].count('"') >= 2:
                at = lines[k].index('"') + 1
                lines[k] = f"{lines[k][:at]}{self.word()} {lines[k][at:]}"
                path.write_text("\n".join(lines), encoding="utf-8")
                return f"{path.name}: answer {k} changed"
        if kind == "metadata" and (corpus / "metadata.csv").exists():
            path = corpus / "metadata.csv"
            lines = path.read_text(encoding="utf-8").split("\n")
            column = lines[0].split(",").index("language") if "language" in lines[0] else -1
            if column < 0 or len([x for x in lines if x]) < 2:
                return "nothing"
            k = rng.randrange(1, len([x for x in lines if x]))
            cells = lines[k].split(",")
            cells[column] = {"nl": "en"}.get(cells[column], "nl")
            lines[k] = ",".join(cells)
            path.write_text("\n".join(lines), encoding="utf-8")
            return f"metadata: {cells[0]} is {cells[column]}"
        if kind == "rename" and files:
            path = rng.choice([p for p in files if p.suffix != ".csv"] or files)
            name = f"r{rng.randrange(100)}_{path.name}"
            path.rename(corpus / name)
            return f"{path.name} renamed {name}"
        if kind == "touch" and files:
            path = rng.choice(files)
            path.touch()
            return f"{path.name} touched"
        if kind == "cp1252" and texts:
            path = rng.choice(texts)
            try:
                path.write_bytes(path.read_text(encoding="utf-8").encode("cp1252"))
            except UnicodeError:
                return "nothing"
            return f"{path.name} saved as cp1252"
        if kind == "small":
            name = f"e{rng.randrange(100)}.txt"
            (corpus / name).write_text(rng.choice(["", "I: Vraag?\n", "R: Ja.\n"]), encoding="utf-8")
            return f"small file {name}"
        if kind == "unreadable":
            name = f"b{rng.randrange(100)}.txt"
            (corpus / name).write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
            return f"unreadable file {name}"
        return "nothing"

    def age(self) -> None:
        """Every file of the corpus and the cache dated ``AGE_S`` back (their order kept):
        as if the step came a while after the last one, so that the runs remember the
        digests of the files they read (``digest_memo`` skips files written in the last
        2 s) and later steps take them; the edits after it give their files new times."""
        for folder in (self.corpus, self.cache):
            for path in folder.rglob("*"):
                try:
                    st = path.stat()
                    if path.is_file():
                        os.utime(path, ns=(st.st_atime_ns - AGE_S * 10**9,
                                           st.st_mtime_ns - AGE_S * 10**9))
                except OSError:  # deleted meanwhile (a peer run's temp file)
                    continue

    def damage_cache(self) -> str:
        """A cache file truncated, overwritten with garbage or deleted (a run must rebuild
        what it cannot read, and give the same files)."""
        files = sorted(p for p in self.cache.rglob("*") if p.is_file())
        if not files:
            return "nothing"
        path = self.rng.choice(files)
        how = self.rng.choice(["truncated", "garbage", "deleted", "flipped"])
        if how == "deleted":
            path.unlink()
        elif how == "truncated":
            path.write_bytes(path.read_bytes()[:path.stat().st_size // 2])
        elif how == "flipped":  # one byte, in place: same size, same inode, a new time
            size = path.stat().st_size
            if not size:
                return "nothing"
            with open(path, "r+b") as fh:
                fh.seek(self.rng.randrange(size))
                byte = fh.read(1)
                fh.seek(-1, 1)
                fh.write(bytes([byte[0] ^ 0x20]))
        else:
            path.write_bytes(b"garbage" * self.rng.randint(0, 20))
        return f"cache file {path.relative_to(self.cache)} {how}"

    def edit(self) -> list[str]:
        """One to three edits; the codebook is then written (its states are kept)."""
        done = []
        for _ in range(self.rng.choice([1, 1, 2, 3])):
            r = self.rng.random()
            if r < 0.55:
                done.append(self.edit_book())
            elif r < 0.85:
                done.append(self.edit_corpus())
            elif r < 0.89 and self.cache.is_dir():
                done.append(self.damage_cache())
            elif r < 0.95 and self.books:
                self.book = copy.deepcopy(self.rng.choice(self.books))
                done.append("the codebook of an earlier step")
            else:
                self.options = dict(self.rng.choice(OPTIONS))
                if "chunk_bytes" not in self.options and self.rng.random() < 0.7:
                    self.options.update(SMALL_CHUNKS)
                done.append(f"options {self.options}")
        self.books.append(copy.deepcopy(self.book))
        self.book_path.write_text(yaml.safe_dump(self.book, allow_unicode=True, sort_keys=False),
                                  encoding="utf-8")
        return done

    # -- runs ----------------------------------------------------------------------------

    def step(self) -> tuple[list[str], list[str]]:
        """Edit, code with and without the cache; return (edits, problems found)."""
        from pipeline.errors import PipelineError
        from pipeline.runner import RunOptions, code_corpus

        aged = self.rng.random() < AGE_SHARE
        if aged:  # time passes: the digest memo remembers the files the runs read
            self.age()
        edits = (["files dated back"] if aged else []) + self.edit()
        out, ref = self.work / self.rng.choice(["out", "out", "out2"]), self.work / "reference"
        inputs = [str(self.corpus)]
        if self.rng.random() < 0.2:  # files named one by one (no metadata then)
            inputs = sorted(str(p) for p in self.corpus.iterdir() if p.name != "metadata.csv")
        failed = None
        peer = None
        if len(self.books) > 1 and self.rng.random() < PEER_SHARE:
            # another run at the same time, on the same cache, of an earlier codebook
            peer_book = self.work / "peer.yaml"
            peer_book.write_text(yaml.safe_dump(self.rng.choice(self.books[:-1]),
                                                allow_unicode=True, sort_keys=False),
                                 encoding="utf-8")
            shutil.rmtree(self.work / "peer", ignore_errors=True)
            peer = subprocess.Popen(
                [sys.executable, "-c", REFERENCE, json.dumps(self.options), json.dumps(inputs),
                 str(peer_book), str(self.work / "peer"), str(self.cache)],
                cwd=self.work, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            edits.append("another run at the same time")
        if self.rng.random() < 0.75 or set(self.options) - set(CLI_OPTIONS):
            try:
                code_corpus(inputs, codebook=str(self.book_path), out_dir=str(out),
                            options=RunOptions(progress=False, cache_dir=str(self.cache),
                                               **self.options))
                edits.append("in this process")
            except PipelineError as exc:
                failed = str(exc)
        else:
            argv = [sys.executable, "-m", "pipeline", "code", *inputs, "--codebook",
                    str(self.book_path), "--out", str(out), "--cache-dir", str(self.cache), "-q"]
            for name, value in self.options.items():
                argv += [CLI_OPTIONS[name], str(value)]
            done = subprocess.run(argv, cwd=self.work, capture_output=True, text=True, check=False)
            edits.append("by the command line")
            if done.returncode not in (0, 2):
                failed = done.stderr.strip()
        if failed is None:
            got = json.loads((out / "manifest.json").read_text(encoding="utf-8"))["throughput"]
            self.used_cache += bool(got.get("cache_hits") or got.get("chunks_taken")
                                    or got.get("coded_files_taken"))
            self.took_chunks += bool(got.get("chunks_taken") and not got.get("coded_files_taken"))
            if got.get("cache_entries_pruned"):
                edits.append(f"{got['cache_entries_pruned']} cache entries pruned")
        shutil.rmtree(ref, ignore_errors=True)
        plain = {k: v for k, v in self.options.items() if k not in HOW}
        if not set(self.options) & {"jobs", "engine"} and self.rng.random() < REF_JOBS_SHARE:
            # the reference on two jobs (every part a file): a fault that every one-job run
            # shares (parts kept in memory) shows as a difference
            plain["jobs"] = 2
            edits.append("the reference on 2 jobs")
        done = subprocess.run([sys.executable, "-c", REFERENCE, json.dumps(plain),
                               json.dumps(inputs), str(self.book_path), str(ref)],
                              cwd=self.work, capture_output=True, text=True, check=False)
        # the concurrent run is checked (and waited for) whatever the two runs did
        peer_problems = self._peer_problems(peer, inputs) if peer is not None else []
        self.steps += 1
        if failed is not None or done.returncode:
            if failed is not None and done.returncode:  # both reject the codebook: undo it
                edits.append("both runs rejected it")
                self.books.pop()
                self.book = copy.deepcopy(self.books[-1]) if self.books else self.book
                return edits, peer_problems
            return edits, [f"only one run failed: {failed or done.stderr.strip()[-500:]}",
                           *peer_problems]
        problems = differences(out, ref) + peer_problems
        if problems:
            keep = self.work / f"fail_{self.steps - 1}"
            shutil.copytree(self.corpus, keep / "corpus")
            shutil.copy(self.book_path, keep / "codebook.yaml")
            shutil.copytree(out, keep / "cached")
            shutil.copytree(ref, keep / "reference")
        return edits, problems

    def _peer_problems(self, peer: subprocess.Popen, inputs: list[str]) -> list[str]:
        """What differs between the concurrent run and a run of its codebook without the cache."""
        _, err = peer.communicate()
        plain = {k: v for k, v in self.options.items() if k not in HOW}
        ref = self.work / "peer-reference"
        shutil.rmtree(ref, ignore_errors=True)
        done = subprocess.run([sys.executable, "-c", REFERENCE, json.dumps(plain),
                               json.dumps(inputs), str(self.work / "peer.yaml"), str(ref)],
                              cwd=self.work, capture_output=True, text=True, check=False)
        if peer.returncode or done.returncode:
            if peer.returncode and done.returncode:
                return []
            return [f"concurrent run: only one failed: {err.strip()[-300:]} / {done.stderr[-300:]}"]
        return [f"concurrent run: {p}" for p in differences(self.work / "peer", ref)]


def _utf8(path: Path) -> bool:
    try:
        path.read_text(encoding="utf-8")
    except UnicodeError:
        return False
    return True


def differences(out: Path, ref: Path) -> list[str]:
    """What differs between two output folders: files (the manifest's counts only)."""
    def files(folder: Path) -> list[str]:
        return sorted(p.name for p in folder.iterdir()
                      if p.is_file() and not p.name.startswith(".") and p.name != "manifest.json")

    problems = []
    if files(out) != files(ref):
        problems.append(f"other files: {files(out)} / {files(ref)}")
    for name in files(ref):
        if (out / name).is_file() and (out / name).read_bytes() != (ref / name).read_bytes():
            problems.append(f"{name} differs")
    counts = [json.loads((folder / "manifest.json").read_text(encoding="utf-8")).get("counts")
              for folder in (out, ref)]
    if counts[0] != counts[1]:
        problems.append(f"counts {counts[0]} / {counts[1]}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--work", default="/tmp/recode-fuzz")
    parser.add_argument("--corpus", type=Path, default=None,
                        help="folder of transcripts to start from (default: data/raw)")
    parser.add_argument("--options", type=json.loads, default=None,
                        help='the run options to start with, as JSON (default: small chunks); '
                             'e.g. \'{"part_bytes": 3000}\' cuts every file of more than 3 kB into parts')
    parser.add_argument("--prune-now", action="store_true",
                        help="runs in this process prune the cache without its grace period "
                             "(entries of keys the last runs did not use go at once); no "
                             "concurrent runs then, as the grace period is what keeps theirs")
    args = parser.parse_args(argv)
    if args.prune_now:
        from pipeline import cache_prune

        cache_prune.GRACE_S = 0.0
        global PEER_SHARE  # noqa: PLW0603
        PEER_SHARE = 0.0
    fuzz = RecodeFuzz(args.seed, Path(args.work), args.corpus)
    if args.options is not None:
        fuzz.options = dict(args.options)
    failures = 0
    for k in range(args.steps):
        edits, problems = fuzz.step()
        failures += bool(problems)
        print(f"step {k}: {'; '.join(edits)}: {'FAILED ' + str(problems) if problems else 'same'}",
              flush=True)
    print(f"{failures} of {args.steps} steps differed; {fuzz.used_cache} took from the cache, "
          f"{fuzz.took_chunks} some chunks' coding rows from a stored run's files")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
