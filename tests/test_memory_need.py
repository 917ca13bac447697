"""memory_need: the estimate of a run's memory and the warning before it starts."""
import logging
import zipfile

import pytest

from pipeline import memory_need
from pipeline.cli import main
from pipeline.memory_need import (ADDRESS_OVERHEAD, BASE_BYTES, FACTOR_CACHE, FACTOR_NO_CACHE,
                                  READ_FACTOR_CACHE)


def test_estimate_grows_with_the_largest_files_only():
    sizes = [1_000, 20_000_000, 5_000_000, 3_000]
    assert memory_need.estimate(sizes) == BASE_BYTES + FACTOR_CACHE * 20_000_000
    assert memory_need.estimate(sizes, cache=False) == BASE_BYTES + FACTOR_NO_CACHE * 20_000_000
    # two workers: the two largest files at once, each worker with its own start-up
    assert memory_need.estimate(sizes, jobs=2) == 2 * BASE_BYTES + FACTOR_CACHE * 25_000_000
    assert memory_need.estimate([]) == BASE_BYTES
    # a survey coded in parts of 2 MB: read whole, coded a part at a time
    parted = memory_need.estimate(sizes, parts=[False, True, False, False], part_bytes=2_000_000)
    assert parted == BASE_BYTES + max(READ_FACTOR_CACHE * 20_000_000 + FACTOR_CACHE * 2_000_000,
                                      FACTOR_CACHE * 5_000_000)
    assert parted < memory_need.estimate(sizes)


def test_text_bytes_of_a_docx_is_its_document_xml(tmp_path):
    import docx

    doc = docx.Document()
    for _ in range(200):
        doc.add_paragraph("R: We mochten het zelf invullen, echt waar. " * 5)
    path = tmp_path / "int.docx"
    doc.save(path)
    with zipfile.ZipFile(path) as archive:
        xml = archive.getinfo("word/document.xml").file_size
    assert memory_need.text_bytes(path) == xml
    assert xml > path.stat().st_size  # compressed on disk: the size would say too little
    plain = tmp_path / "int.txt"
    plain.write_text("abc\n")
    assert memory_need.text_bytes(plain) == 4
    (tmp_path / "fake.docx").write_text("not a zip")
    assert memory_need.text_bytes(tmp_path / "fake.docx") == 0
    assert memory_need.text_bytes(tmp_path / "missing.txt") == 0


def test_available_memory_takes_the_least_limit(tmp_path, monkeypatch):
    import resource

    import psutil

    free = memory_need.available_memory()
    assert free == pytest.approx(psutil.virtual_memory().available, rel=0.2)
    monkeypatch.setattr(memory_need, "_CGROUP", tmp_path)
    (tmp_path / "memory.max").write_text("max\n")
    (tmp_path / "memory.current").write_text("100\n")
    assert memory_need.available_memory() == pytest.approx(free, rel=0.5)  # no limit: ignored
    (tmp_path / "memory.max").write_text("5000000\n")
    (tmp_path / "memory.current").write_text("1000000\n")
    assert memory_need.available_memory() == 4_000_000  # what the container has left
    (tmp_path / "memory.max").write_text("max\n")
    monkeypatch.setattr(resource, "getrlimit",
                        lambda which: (3_000_000 + ADDRESS_OVERHEAD, resource.RLIM_INFINITY))
    assert memory_need.available_memory() == 3_000_000  # ulimit -v, less what is not resident
    # without /proc/meminfo (not Linux): psutil's figure
    monkeypatch.setattr(memory_need, "_meminfo_available", lambda: None)
    monkeypatch.setattr(psutil, "virtual_memory", lambda: type("M", (), {"available": 2_000_000}))
    assert memory_need.available_memory() == 2_000_000


def test_check_names_the_largest_files_when_short(tmp_path):
    sizes = {"a.csv": 30_000, "b.txt": 10_000, "c.txt": 20_000}
    paths = []
    for name, size in sizes.items():
        (tmp_path / name).write_bytes(b"x" * size)
        paths.append(tmp_path / name)
    shown = list(sizes)
    need = BASE_BYTES + FACTOR_CACHE * 30_000
    assert memory_need.check(paths, shown, available=need) is None  # fits exactly
    short = memory_need.check(paths, shown, available=need - 1)
    assert short is not None and short.need == need and short.files == (("a.csv", 30_000),)
    message = short.message()
    assert message.startswith("a.csv (30.0 kB): coding may need about 301.8 MB of memory and "
                              "301.8 MB is available")
    assert "split the file" in message and "--jobs" not in message
    two = memory_need.check(paths, shown, jobs=2, cache=False, available=1)
    assert two.files == (("a.csv", 30_000), ("c.txt", 20_000))
    assert "split the files" in two.message() and "fewer --jobs" in two.message()
    # a.csv in parts of 1 kB (6 x 30 kB + 50 x 1 kB) needs less than b.txt and c.txt whole
    parted = memory_need.check(paths, shown, jobs=2, cache=False, available=1,
                               parts=[paths[0]], part_bytes=1_000)
    assert parted.files == (("c.txt", 20_000), ("b.txt", 10_000))
    assert parted.need == 2 * BASE_BYTES + FACTOR_NO_CACHE * 30_000


@pytest.fixture
def corpus(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "answers.csv").write_text("id,text\nr1,Ik ben eigenaar van dit project.\n"
                                     "r2,Geen uren gekregen.\n", encoding="utf-8")
    (raw / "int01.txt").write_text("I: Hoe begon het?\nR: Ik was eigenaar.\n", encoding="utf-8")
    book = tmp_path / "codebook.yaml"
    book.write_text("version: 1\nname: mini\nsettings: {default_lang: nl, required_codes: [], "
                    "languages: [nl]}\ncodes:\n"
                    "  - id: ownership\n    label: {nl: Eigenaarschap}\n"
                    "    definition: Teachers own the innovation.\n"
                    "    rules:\n      nl: [{kind: terms, terms: [eigenaar]}]\n",
                    encoding="utf-8")
    return raw, book


def test_cli_warns_before_a_run_that_may_not_fit_and_codes_anyway(corpus, tmp_path, monkeypatch,
                                                                 caplog, capsys):
    raw, book = corpus
    monkeypatch.setattr(memory_need, "available_memory", lambda: 200_000_000)
    out = tmp_path / "coded"
    with caplog.at_level(logging.WARNING):
        code = main(["code", str(raw), "--out", str(out), "--codebook", str(book), "--quiet"])
    assert code == 0 and (out / "codings.parquet").exists()
    warned = [r.getMessage() for r in caplog.records if r.name == "pipeline.memory_need"]
    assert len(warned) == 1
    assert warned[0].startswith("answers.csv (")
    assert "and 200.0 MB is available" in warned[0]


def test_no_warning_when_the_run_fits(corpus, tmp_path, monkeypatch, caplog):
    raw, book = corpus
    monkeypatch.setattr(memory_need, "available_memory", lambda: 10**12)
    with caplog.at_level(logging.WARNING):
        assert main(["code", str(raw), "--out", str(tmp_path / "coded"), "--codebook", str(book),
                     "--quiet", "--no-cache"]) == 0
    assert not [r for r in caplog.records if r.name == "pipeline.memory_need"]
