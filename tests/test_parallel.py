"""--jobs and --engine dask give exactly the output of the in-process engine."""
import hashlib

import pytest

from pipeline import segment_ids
from pipeline.cli import main
from pipeline.runner import RunOptions, code_corpus
from test_streaming import CODEBOOK, OUTPUTS, make_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("par")
    make_corpus(tmp / "raw", n_files=16)
    (tmp / "codebook.yaml").write_text(CODEBOOK)
    return tmp


def run(corpus, name, **kw):
    out = corpus / name
    res = code_corpus([corpus / "raw"], codebook=corpus / "codebook.yaml", out_dir=out,
                      options=RunOptions(progress=False, chunk_bytes=300, cache=False, **kw))
    return {n: hashlib.sha256((out / n).read_bytes()).hexdigest() for n in OUTPUTS}, res


def test_jobs_two_is_byte_identical(corpus):
    one, res1 = run(corpus, "j1")
    two, res2 = run(corpus, "j2", jobs=2)
    assert res1.manifest["throughput"]["chunks"] >= 4
    assert one == two
    assert res1.manifest["counts"] == res2.manifest["counts"]


def test_dask_local_cluster_is_byte_identical(corpus):
    distributed = pytest.importorskip("distributed")
    local, _ = run(corpus, "local")
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                  dashboard_address=None) as cluster:
        dask, res = run(corpus, "dask", engine="dask", scheduler=cluster.scheduler_address)
        assert len(cluster.workers) == 2
    assert dask == local
    assert res.manifest["options"]["engine"] == "dask"


def test_dask_parts_are_made_on_the_workers(corpus, monkeypatch):
    """Dask workers encode their chunk's part files and ship the bytes; the runner only
    writes them into its parts folder (``engine._landed``), then splices them in."""
    pytest.importorskip("distributed")
    from pipeline import engine

    landed = []
    real = engine._landed
    monkeypatch.setattr(engine, "_landed",
                        lambda result, folder: landed.append(result.stats["parts"]) or
                        real(result, folder))
    local, _ = run(corpus, "local2")
    with engine.local_cluster(2) as cluster:
        dask, res = run(corpus, "dask2", engine="dask", scheduler=cluster.scheduler_address)
    assert dask == local
    assert len(landed) == res.manifest["throughput"]["chunks"] >= 4
    assert all(part.path.endswith(".parquet") for parts in landed for part in parts.values())
    assert {"segments", "codings", "matches", "documents"} <= set(landed[0])


def test_dask_workers_started_elsewhere_find_relative_inputs(corpus, monkeypatch, tmp_path):
    """Inputs named relative to the runner's directory are found by workers whose own
    directory is another (a cluster started by hand), and shown as given."""
    pytest.importorskip("distributed")
    from pipeline.engine import local_cluster

    def code(name, **kw):
        res = code_corpus(["raw"], codebook="codebook.yaml", out_dir=tmp_path / name,
                          options=RunOptions(progress=False, chunk_bytes=300, cache=False, **kw))
        return {n: (tmp_path / name / n).read_bytes() for n in OUTPUTS}, res

    monkeypatch.chdir(tmp_path)   # the workers' directory
    with local_cluster(1) as cluster:
        monkeypatch.chdir(corpus)
        dask, res = code("rel_dask", engine="dask", scheduler=cluster.scheduler_address)
    one, _ = code("rel_one")
    assert dask == one
    assert res.manifest["counts"]["documents"] >= 10
    assert b"cannot read file" not in dask["errors.csv"]


def test_cluster_failures_become_one_line_engine_errors():
    from pipeline.engine import outcome
    from pipeline.errors import EngineError, InputError

    class Failed:
        def __init__(self, exc):
            self.exc = exc

        def result(self):
            raise self.exc

    with pytest.raises(EngineError, match=r"^the dask cluster at tcp://h:1 could not run a "
                                          r"chunk: RuntimeError: Error during deserial.*same "
                                          r"package versions"):
        outcome(Failed(RuntimeError("Error during deserialization\nof the graph")), "tcp://h:1")
    with pytest.raises(InputError, match="bad.txt"):   # our own errors pass as they are
        outcome(Failed(InputError("bad.txt", "cannot read")), None)


def test_local_cluster_workers_keep_glibcs_malloc_thresholds(monkeypatch):
    pytest.importorskip("distributed")
    import os

    # a nanny copies its worker environment into this process's (distributed's design):
    # a cluster started earlier in the test session left the setting here
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    from distributed import Client

    from pipeline.engine import local_cluster

    with local_cluster(1) as cluster, Client(cluster) as client:
        [trim] = client.run(os.environ.get, "MALLOC_TRIM_THRESHOLD_").values()
        [omp] = client.run(os.environ.get, "OMP_NUM_THREADS").values()
    assert trim is None and omp == "1"   # dask's other settings stay


def test_dask_run_is_quiet(corpus):
    """distributed logs its start and shut-down at INFO; ``qcode`` shows none of it (in a
    process of its own: the CLI's log handler is made once per process)."""
    pytest.importorskip("distributed")
    import subprocess
    import sys

    raw, book = str(corpus / "raw"), str(corpus / "codebook.yaml")
    done = subprocess.run([sys.executable, "-m", "pipeline", "code", raw, "--out",
                           str(corpus / "dq"), "--codebook", book, "--quiet", "--engine", "dask",
                           "--jobs", "1", "--no-cache"], capture_output=True, text=True)
    assert done.returncode == 2, done.stderr   # the corpus has a bad file
    assert done.stderr == ""


def test_cli_options(corpus, capsys):
    raw, book = str(corpus / "raw"), str(corpus / "codebook.yaml")
    assert main(["code", raw, "--out", str(corpus / "cli"), "--codebook", book, "--quiet",
                 "--jobs", "2", "--no-cache"]) == 2
    assert not (corpus / "cli" / ".cache").exists()
    assert main(["code", raw, "--out", str(corpus / "cli2"), "--jobs", "0", "--quiet"]) == 1
    assert "--jobs" in capsys.readouterr().err
    assert main(["code", raw, "--out", str(corpus / "cli3"), "--scheduler", "tcp://x:1",
                 "--quiet"]) == 1
    assert "--engine dask" in capsys.readouterr().err


def test_jobs_two_renames_ids_across_chunks_like_one_job(tmp_path, monkeypatch):
    """A pool worker hands the runner slim results; a chunk whose segment ids an earlier
    chunk used is read back from its parts and renamed exactly as in-process."""
    raw = tmp_path / "raw"
    raw.mkdir()
    # "c.csv" (first chunk) uses the id "t:1", which "t.txt" (a later chunk) also makes.
    (raw / "c.csv").write_text("id,text\nt:1,We mochten het zelf invullen.\n", encoding="utf-8")
    for k in range(3):
        (raw / f"b{k}.txt").write_text("I: Hoe?\nR: Daar had ik gewoon geen uren voor.\n")
    (raw / "t.txt").write_text("I: Hoe begon het?\nR: We mochten het zelf invullen, echt.\n"
                               "I: En toen?\nR: Wij zijn eigenaar van dit project.\n")
    (tmp_path / "codebook.yaml").write_text(CODEBOOK)
    found, counts = {}, {}
    looked: list[int] = []  # the lengths of the tables whose ids were looked at one by one
    original = segment_ids._Columns.of
    monkeypatch.setattr(segment_ids._Columns, "of",
                        staticmethod(lambda df: looked.append(len(df)) or original(df)))
    # and with the cache: a stored chunk's entry keeps the summary of its ids, which a
    # later run checks instead of the ids (then reads them, here, to rename them)
    for jobs, cache, name in ((1, False, 1), (2, False, 2), (2, True, "c2"), (2, True, "c2+"),
                              (1, True, "c1"), (1, True, "c1+")):
        out = tmp_path / f"j{str(name).rstrip('+')}"
        looked.clear()
        res = code_corpus([raw], codebook=tmp_path / "codebook.yaml", out_dir=out,
                          options=RunOptions(progress=False, chunk_bytes=1, cache=cache,
                                             jobs=jobs))
        found[name] = {n: (out / n).read_bytes() for n in OUTPUTS}
        assert res.manifest["throughput"]["chunks"] >= 4
        counts[name] = res.manifest["counts"]
        assert not str(name).endswith("+") or res.manifest["throughput"]["cache_hits"]
        if name == "c1+":  # only t.txt (4 segments), whose id "t:1" c.csv used
            assert looked and set(looked) == {4}
    for name in found:
        assert found[name] == found[1] and counts[name] == counts[1], name
    assert counts[2]["codings_per_code"]["agency"] == 3
    codings = found[2]["codings.csv"].decode()
    assert "t:t:1" in codings and "\nt:1," in codings  # renamed in t.txt, kept in c.csv
    assert b"prefixed with 't:'" in found[2]["errors.csv"]


def test_jobs_two_finds_shared_csv_ids_while_chunks_run(tmp_path, monkeypatch):
    """Without a cache a pool run finds the CSV ids several files use only when it hands
    out the first chunk with a CSV file (``csv_keys.SharedKeys``): those ids are still
    prefixed in every file, as in one job, and chunks without a CSV get no keys."""
    from pipeline import csv_keys

    raw = tmp_path / "raw"
    raw.mkdir()
    for k in range(3):  # "a*" chunks first: no CSV, handed out before the ids are found
        (raw / f"a{k}.txt").write_text("I: Hoe?\nR: We mochten het zelf invullen.\n")
    (raw / "s1.csv").write_text("id,text\n1,Wij zijn eigenaar.\n2,Geen uren.\n", encoding="utf-8")
    (raw / "s2.csv").write_text("id,text\n1,We mochten het zelf invullen.\n3,Echt.\n",
                                encoding="utf-8")
    (tmp_path / "codebook.yaml").write_text(CODEBOOK)
    calls = []
    real = csv_keys.shared_keys
    monkeypatch.setattr(csv_keys, "shared_keys", lambda *a: calls.append(a) or real(*a))
    prepared = []
    real_call = csv_keys.SharedKeys.__call__

    def spy(self, task):
        real_call(self, task)
        prepared.append((task.index, task.shared_keys))

    monkeypatch.setattr(csv_keys.SharedKeys, "__call__", spy)
    found = {}
    for jobs in (1, 2):
        out = tmp_path / f"j{jobs}"
        code_corpus([raw], codebook=tmp_path / "codebook.yaml", out_dir=out,
                    options=RunOptions(progress=False, chunk_bytes=1, cache=False, jobs=jobs))
        found[jobs] = {n: (out / n).read_bytes() for n in OUTPUTS}
    assert found[1] == found[2]
    assert len(calls) == 1  # the pool run's, on the thread (one job: runner.shared_keys)
    assert prepared == [(0, None), (1, None), (2, None),
                        (3, frozenset({"1"})), (4, frozenset({"1"}))]
    segments = found[2]["segments.csv"].decode()
    assert "\ns1:1," in segments and "\ns2:1," in segments and "\ns2:3," not in segments
