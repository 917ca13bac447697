"""A coding run killed at any moment leaves the previous outputs intact and loadable.

Real subprocesses (`python -m pipeline code ...`) are SIGKILLed part-way through; the
out folder must then load (store.load_coded verifies it against the manifest) with
either the complete old or the complete new result, never a mix; reviews.csv and the
raw inputs must be byte-identical; and a second run on the same folder while one is
running must fail with the lock message.
"""
from __future__ import annotations

import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline import columns as C
from pipeline.cli import main
from pipeline.store import LOCK_NAME, load_coded

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
WORDS = ("we mochten het zelf invullen de directie besliste alles samen leren eigenaarschap "
         "school leerlingen motivatie kunnen willen mogen team visie").split()


def _corpus(folder: Path, n: int, seed: int = 0) -> list[Path]:
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        lines = [f"{'I' if t % 2 == 0 else 'R'}: " + " ".join(rng.choice(WORDS) for _ in range(25)) + "."
                 for t in range(40)]
        path = folder / f"int{i:03d}.txt"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        paths.append(path)
    return paths


def _tree_hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _start(args: list[str], cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "pipeline", "code", *args], cwd=cwd, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _wait_for_lock(out: Path, proc: subprocess.Popen, timeout: float = 60) -> bool:
    """Wait until ``proc`` holds the folder's lock (it is mid-run); False if it ended first."""
    deadline = time.monotonic() + timeout
    lock = out / LOCK_NAME
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            if lock.read_text().strip() == f"pid {proc.pid}":
                return True
        except OSError:
            pass
        time.sleep(0.01)
    raise AssertionError("the run never took the lock")


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    base = tmp_path_factory.mktemp("crash")
    raw = base / "data" / "raw"
    files = _corpus(raw, 120)
    shutil.copy(ROOT / "codebook.yaml", base / "codebook.yaml")
    out = base / "data" / "coded"
    # Previous outputs: a complete run over the first 10 transcripts.
    proc = _start([*map(str, files[:10]), "--out", str(out), "--codebook", "codebook.yaml", "-q"], base)
    assert proc.wait(timeout=120) == 0, proc.stderr.read().decode()
    (out / C.REVIEWS_FILE).write_bytes(
        "coder,timestamp,segment_id,content_hash,code_id,decision,memo,source\n"
        "ann,2026-01-01T00:00:00+00:00,int000:1,0123456789abcdef,agency,accept,\"é, memo\",r.xlsx\n"
        .encode("utf-8"))
    return base, raw, out


def _check_outputs(out: Path, old_docs: set[str], new_docs: set[str]) -> str:
    data = load_coded(out)   # verifies every output against the manifest
    docs = set(data.segments[C.DOC_ID].astype(str))
    assert docs in (old_docs, new_docs), "a mix of two runs"
    assert set(data.codings[C.DOC_ID].astype(str)) <= docs
    assert data.manifest["counts"]["segments"] == len(data.segments)
    assert len(data.manifest["inputs"]) == len(docs)
    return "old" if docs == old_docs else "new"


def test_sigkill_midrun_keeps_previous_outputs(project, capsys):
    base, raw, out = project
    raw_before = _tree_hashes(raw)
    reviews_before = (out / C.REVIEWS_FILE).read_bytes()
    old_docs = {f"int{i:03d}" for i in range(10)}
    new_docs = {p.stem for p in raw.iterdir()}
    assert _check_outputs(out, old_docs, new_docs) == "old"
    killed_running = 0
    locked_out = False
    for delay in (0.0, 0.8, 2.0):
        proc = _start(["data/raw", "--out", str(out), "--codebook", "codebook.yaml", "-q"], base)
        if _wait_for_lock(out, proc):
            if not locked_out:
                # A second run on the same folder while this one writes: clear refusal.
                code = main(["code", str(raw), "--out", str(out), "--codebook",
                             str(base / "codebook.yaml"), "-q"])
                err = capsys.readouterr().err
                if code == 1:
                    assert "another qcode run" in err and str(out) in err
                    locked_out = True
                else:
                    # the run had released the folder (done, still exiting) before this
                    # one took it: then it finished well (polling it raced with its exit)
                    assert code == 0 and proc.wait(timeout=60) == 0, err
            time.sleep(delay)
            if proc.poll() is None:
                killed_running += 1
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        _check_outputs(out, old_docs, new_docs)
        assert (out / C.REVIEWS_FILE).read_bytes() == reviews_before
        assert _tree_hashes(raw) == raw_before
    assert killed_running >= 2, "the corpus is too small to kill the run part-way"
    assert locked_out
    # After the crashes a normal run completes and still leaves reviews.csv alone.
    proc = _start(["data/raw", "--out", str(out), "--codebook", "codebook.yaml", "-q"], base)
    assert proc.wait(timeout=120) == 0, proc.stderr.read().decode()
    assert _check_outputs(out, old_docs, new_docs) == "new"
    assert (out / C.REVIEWS_FILE).read_bytes() == reviews_before
    assert _tree_hashes(raw) == raw_before
