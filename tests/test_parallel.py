"""--jobs and --engine dask give exactly the output of the in-process engine."""
import hashlib

import pytest

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
