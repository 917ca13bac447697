"""chunk_parts: a large survey CSV coded in parts gives the rows of one whole chunk."""
import filecmp
import shutil

import pandas as pd
import pytest

from pipeline import chunk_parts
from pipeline import columns as C
from pipeline.runner import RunOptions, code_corpus, plan_chunks

TABLES = ["documents", "segments", "matches", "codings"]
CSVS = ["segments.csv", "codings.csv", "errors.csv"]
FILES = [f"{t}.parquet" for t in TABLES] + CSVS

CODEBOOK = """\
version: 1
name: parts
settings: {default_lang: nl, languages: [nl, en], required_codes: [], detect_lang: csv}
codes:
  - id: time
    label: {nl: Tijd, en: Time}
    definition: Time to work on the change.
    rules:
      nl: [{kind: terms, terms: [tijd, uren]}]
      en: [{kind: terms, terms: [time, hours]}]
  - id: ownership
    label: {nl: Eigenaarschap, en: Ownership}
    definition: Owning the change.
    rules:
      nl: [{kind: phrase, phrases: ["zelf bepalen"]}, {kind: glob, globs: ["eigenaar*"]}]
      en: [{kind: phrase, phrases: ["decide ourselves"]}]
"""
NL = ["We hebben geen tijd en geen uren voor dit werk.",
      "Wij willen zelf bepalen hoe we het doen, als eigenaar van het plan.",
      "De directie geeft ons weinig tijd om samen te werken."]
EN = ["We never have the time or the hours for this work in our school.",
      "We would like to decide ourselves how we do this, as a team of teachers.",
      "The board gives us little time to work together with the other teachers."]


def _survey(path, n: int = 120) -> None:
    """A survey whose first answer is Dutch, then runs of English and Dutch answers: a
    part may start with an English answer of a document parsed as Dutch."""
    rows = ["id,text,school"]
    for k in range(n):
        texts = NL if (k // 7) % 2 == 0 else EN
        rows.append(f'r{k:04d},"{texts[k % 3]} ({k})",s{k % 5}')
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")


@pytest.fixture
def corpus(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    _survey(raw / "answers.csv")
    (raw / "small.csv").write_text('id,text,school\nr0001,"Geen tijd, geen uren.",s1\n',
                                   encoding="utf-8")  # an id the large file has too
    (raw / "int01.txt").write_text("I: Hoe gaat het?\nR: We hebben geen tijd.\n", encoding="utf-8")
    book = tmp_path / "codebook.yaml"
    book.write_text(CODEBOOK, encoding="utf-8")
    return raw, book


def _run(raw, book, out, keep=False, **options):  # noqa: ANN001, ANN202
    if not keep:
        shutil.rmtree(out, ignore_errors=True)
    result = code_corpus([raw], codebook=book, out_dir=out,
                         options=RunOptions(progress=False, **options))
    assert result.exit_code == 0
    return result


def _same_rows(a, b) -> None:  # noqa: ANN001
    for table in TABLES:
        left = pd.read_parquet(a / f"{table}.parquet")
        right = pd.read_parquet(b / f"{table}.parquet")
        pd.testing.assert_frame_equal(left, right, check_exact=True)
    for name in CSVS:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def _same_files(a, b) -> None:  # noqa: ANN001
    assert [f for f in FILES if not filecmp.cmp(a / f, b / f, shallow=False)] == []


def test_plan_splits_a_large_file_alone_into_parts(tmp_path):
    names = {"a.txt": 300, "big.csv": 2_500, "c.txt": 300, "d.csv": 900, "e.csv": 2_500,
             "e.txt": 10, "long.txt": 1_500}
    paths = []
    for name, size in names.items():
        (tmp_path / name).write_bytes(b"x" * size)
        paths.append(tmp_path / name)
    tasks = plan_chunks(paths, [p.name for p in paths], chunk_bytes=10_000, part_bytes=1_000)
    shape = [([shown for _, _, shown in t.files], t.part) for t in tasks]
    assert shape == [(["a.txt"], None),
                     (["big.csv"], (0, 3)), (["big.csv"], (1, 3)), (["big.csv"], (2, 3)),
                     (["c.txt", "d.csv", "e.csv", "e.txt"], None),  # a shared stem: together
                     (["long.txt"], (0, 2)), (["long.txt"], (1, 2))]  # a transcript too
    assert [t.index for t in tasks] == list(range(len(tasks)))
    unsplit = plan_chunks(paths, [p.name for p in paths], chunk_bytes=10_000)
    assert all(t.part is None for t in unsplit)
    assert [[shown for _, _, shown in t.files] for t in unsplit] == [
        ["a.txt", "big.csv", "c.txt", "d.csv", "e.csv", "e.txt"], ["long.txt"]]


def test_slice_part_shares_out_the_segments_in_order():
    segments = pd.DataFrame({C.DOC_ID: ["s"] * 10, C.UNIT_INDEX: range(10),
                             C.CODED: [False, True] * 5, C.LANG: ["en"] * 3 + ["nl"] * 7})
    documents = pd.DataFrame({C.DOC_ID: ["s"], C.PATH: ["s.csv"]})
    whole = (documents, segments, [{"e": 1}], ["s"], [])
    parts = [chunk_parts.slice_part(whole, k, 3) for k in range(3)]
    assert [len(p[1]) for p in parts] == [3, 3, 4]
    assert pd.concat([p[1] for p in parts], ignore_index=True).equals(segments)
    assert [len(p[0]) for p in parts] == [1, 0, 0]
    assert parts[0][2:] == ([{"e": 1}], ["s"], []) and parts[1][2:] == ([], [], [])
    assert list(parts[2][0].columns) == [C.DOC_ID, C.PATH]
    assert chunk_parts.first_languages(segments) == {"s": "en"}  # row 1: the first coded
    segments[C.SEGMENT_ID] = [f"s:{k}" for k in range(10)]
    assert chunk_parts.first_units(segments) == {"s": "s:1"}


def test_parts_give_the_rows_of_one_chunk(corpus, tmp_path):
    raw, book = corpus
    whole = tmp_path / "whole"  # a chunk per file, as the parts run has (same warnings)
    _run(raw, book, whole, cache=False, part_bytes=None, chunk_bytes=1)
    parts = tmp_path / "parts"
    result = _run(raw, book, parts, cache=False, part_bytes=1_500)
    assert result.manifest["counts"]["documents"] == 3
    assert result.manifest["throughput"]["chunks"] >= 6  # the large file in parts
    _same_rows(whole, parts)
    segments = pd.read_parquet(parts / "segments.parquet")
    survey = segments[segments[C.DOC_ID] == "answers"]
    assert set(survey[C.LANG]) == {"nl", "en"}
    # only the id small.csv has too is prefixed
    assert survey[C.SEGMENT_ID].iloc[:3].tolist() == ["r0000", "answers:r0001", "r0002"]
    codings = pd.read_parquet(parts / "codings.parquet")
    assert len(codings[codings[C.DOC_ID] == "answers"]) > 60
    errors = pd.read_csv(parts / "errors.csv")
    mine = errors.loc[errors[C.ERROR_FILE] == "answers.csv", C.ERROR_MESSAGE].tolist()
    assert len(mine) == 2  # each once, though the file is read by every part
    assert mine[0].startswith("ids 'r0001' of doc_id 'answers'")
    assert mine[1] == "language of answers detected as en (no metadata)"


def test_parts_with_the_cache_jobs_and_after_an_edit(corpus, tmp_path):
    raw, book = corpus
    plain = tmp_path / "plain"
    _run(raw, book, plain, cache=False, part_bytes=1_500)
    cached = tmp_path / "cached"
    _run(raw, book, cached, part_bytes=1_500)
    _same_files(plain, cached)
    again = _run(raw, book, cached, keep=True, part_bytes=1_500)
    assert again.manifest["throughput"]["coded_files_taken"]
    _same_files(plain, cached)
    # an edit that changes codings: the parts' entries are matched again
    edited = tmp_path / "edited.yaml"
    edited.write_text(CODEBOOK.replace("[tijd, uren]", "[tijd, uren, werk]")
                      .replace("[time, hours]", "[time, hours, work]"), encoding="utf-8")
    recoded = _run(raw, edited, cached, keep=True, part_bytes=1_500)
    assert recoded.manifest["throughput"]["cache_hits"] > 0  # parsed tokens of the entries
    assert recoded.manifest["stage_times_s"]["segment"] < 0.5
    fresh = tmp_path / "fresh"
    _run(raw, edited, fresh, cache=False, part_bytes=1_500)
    _same_files(fresh, cached)
    assert not filecmp.cmp(fresh / "codings.csv", plain / "codings.csv", shallow=False)
    two = tmp_path / "two"
    _run(raw, book, two, cache=False, part_bytes=1_500, jobs=2)
    _same_files(plain, two)


def _partial(raw, book, out):  # noqa: ANN001, ANN202
    """A run in parts that skips something: its result and errors.csv."""
    result = code_corpus([raw], codebook=book, out_dir=out,
                         options=RunOptions(progress=False, cache=False, part_bytes=1_500))
    assert result.exit_code == 2
    return result, pd.read_csv(out / "errors.csv")


def _failing_at(monkeypatch, segment_id: str, error: BaseException) -> None:  # noqa: ANN001
    """Coding a chunk that holds ``segment_id`` raises ``error``."""
    from pipeline import chunk_code

    code_chunk = chunk_code.code_chunk

    def failing(segments, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        if (segments[C.SEGMENT_ID] == segment_id).any():
            raise error
        return code_chunk(segments, *args, **kwargs)

    monkeypatch.setattr(chunk_code, "code_chunk", failing)


def test_a_large_csv_that_cannot_be_read_is_reported_once(corpus, tmp_path):
    raw, book = corpus
    text = (raw / "answers.csv").read_text(encoding="utf-8").split("\n")
    text[50] += ",one,too many"
    (raw / "answers.csv").write_text("\n".join(text), encoding="utf-8")
    out = tmp_path / "out"
    result, errors = _partial(raw, book, out)
    bad = errors[errors[C.ERROR_FILE] == "answers.csv"]
    assert list(bad[C.ERROR_SEVERITY]) == ["error"]
    assert "line 51" in bad[C.ERROR_MESSAGE].iloc[0]
    assert "answers" not in set(pd.read_parquet(out / "segments.parquet")[C.DOC_ID])
    assert result.manifest["counts"]["documents"] == 2


def test_a_part_out_of_memory_leaves_the_others_coded(corpus, tmp_path, monkeypatch):
    raw, book = corpus
    _failing_at(monkeypatch, "r0060", MemoryError())
    out = tmp_path / "out"
    _, errors = _partial(raw, book, out)
    oom = errors[errors[C.ERROR_STAGE] == "code"]
    assert oom[C.ERROR_FILE].tolist() == ["answers.csv"]
    assert oom[C.ERROR_MESSAGE].iloc[0].startswith(
        "not coded: out of memory (part 4 of 7 of the segments of a file of 9.5 kB")
    segments = pd.read_parquet(out / "segments.parquet")
    survey = segments.loc[segments[C.DOC_ID] == "answers", C.SEGMENT_ID].tolist()
    # part 4 of 7 of 120 segments: rows 51 to 67
    assert "r0050" in survey and "r0051" not in survey and "r0067" not in survey
    assert "r0068" in survey and len(survey) == 120 - 17
    assert "answers" in set(pd.read_parquet(out / "documents.parquet")[C.DOC_ID])


def test_parts_on_a_dask_cluster(corpus, tmp_path):
    from distributed import LocalCluster

    raw, book = corpus
    _transcript(raw / "long.txt")  # a transcript in parts too
    local = tmp_path / "local"
    _run(raw, book, local, cache=False, part_bytes=1_500)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster:
        dask = tmp_path / "dask"
        _run(raw, book, dask, cache=False, part_bytes=1_500, engine="dask",
             scheduler=cluster.scheduler_address)
    _same_files(local, dask)


def test_a_run_that_stops_between_parts_keeps_no_tables(corpus, tmp_path, monkeypatch):
    raw, book = corpus
    _failing_at(monkeypatch, "r0060", RuntimeError("stopped"))
    with pytest.raises(RuntimeError, match="stopped"):
        code_corpus([raw], codebook=book, out_dir=tmp_path / "out",
                    options=RunOptions(progress=False, cache=False, part_bytes=1_500))
    assert chunk_parts._WHOLE == []  # the survey's tables, kept for its next part, let go


def test_the_progress_bar_counts_a_file_in_parts_a_share_at_a_time(corpus, tmp_path,
                                                                    monkeypatch):
    from pipeline import run_stream

    raw, book = corpus
    seen: list[float] = []

    class Recorder(run_stream._NoBar):
        def update(self, n=1):  # noqa: ANN001, ANN202
            seen.append(n)

    monkeypatch.setattr(run_stream, "_bar", lambda n_files, progress: Recorder())
    _run(raw, book, tmp_path / "out", cache=False, part_bytes=1_500)
    assert len(seen) == 8 and seen[7] == 2  # 7 parts of answers.csv, then int01 and small
    assert all(0 < n < 1 for n in seen[:7]) and sum(seen[:7]) == 1.0  # the last: the rest


def test_the_progress_bar_shows_a_share_with_one_decimal():
    import io

    from pipeline import run_stream

    out = io.StringIO()
    bar = run_stream._bar(12, True, out)

    def shown() -> str:
        bar.refresh()
        return out.getvalue().rsplit("\r", 1)[-1]

    bar.update(3)
    assert "| 3/12 [" in shown()
    for _ in range(7):
        bar.update(1 / 7)
    assert "| 4/12 [" in shown()  # the float sum of the shares, shown whole
    bar.update(0.4)
    assert "| 4.4/12 [" in shown() and shown().startswith("coding:  37%|")
    bar.close()


def test_ids_taken_by_an_earlier_file_give_one_warning_in_parts_too(tmp_path):
    """Survey ids written like another document's segment ids ("int01:3"): renamed in
    every part, with the one warning the file gives coded whole."""
    raw = tmp_path / "raw"
    raw.mkdir()
    turns = [f"R: We hebben geen tijd voor punt {k}." for k in range(40)]
    (raw / "int01.txt").write_text("\n".join(turns) + "\n", encoding="utf-8")
    rows = ["id,text"] + [f'int01:{k},"{NL[k % 3]} ({k})"' for k in range(0, 120, 3)]
    (raw / "zz.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    book = tmp_path / "codebook.yaml"
    book.write_text(CODEBOOK, encoding="utf-8")
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    _run(raw, book, whole, cache=False, part_bytes=None, chunk_bytes=1)
    result = _run(raw, book, parts, cache=False, part_bytes=600, chunk_bytes=1)
    assert result.manifest["throughput"]["chunks"] >= 4  # the survey in 3 parts or more
    _same_rows(whole, parts)
    errors = pd.read_csv(parts / "errors.csv")
    clash = errors[errors[C.ERROR_MESSAGE].str.contains("read earlier in the run")]
    assert len(clash) == 1 and clash[C.ERROR_FILE].tolist() == ["zz.csv"]
    assert clash[C.ERROR_MESSAGE].iloc[0].startswith(
        "ids 'int01:0', 'int01:3', 'int01:6', 'int01:9', 'int01:12', ... of doc_id 'zz'")
    ids = pd.read_parquet(parts / "segments.parquet")
    assert ids.loc[ids[C.DOC_ID] == "zz", C.SEGMENT_ID].iloc[-1] == "zz:int01:117"
    _run(raw, book, parts, cache=False, part_bytes=600, chunk_bytes=1, jobs=2)
    _same_rows(whole, parts)


def _transcript(path) -> None:  # noqa: ANN001
    """An interview whose first third is the interviewer's (not coded): its opening unit,
    the first respondent turn, lies in a later part."""
    lines = [f"I: Welkom bij dit gesprek, ik stel mij eerst even voor ({k})." for k in range(24)]
    for k in range(28):
        lines.append(f"I: Vraag {k}: hoe gaat het met het project?")
        lines.append(f"R: We hebben geen tijd en geen uren, en ik ben geen eigenaar ({k}).")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_a_transcript_in_parts_gives_the_rows_of_one_chunk(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    _transcript(raw / "long.txt")
    (raw / "int01.txt").write_text("I: Hoe gaat het?\nR: We hebben geen tijd.\n", encoding="utf-8")
    book = tmp_path / "codebook.yaml"
    book.write_text(CODEBOOK.replace("detect_lang: csv}", "opening_weight: 0}"), encoding="utf-8")
    whole = tmp_path / "whole"
    _run(raw, book, whole, cache=False, part_bytes=None)
    parts = tmp_path / "parts"
    result = _run(raw, book, parts, cache=False, part_bytes=1_000)
    assert result.manifest["throughput"]["chunks"] >= 4  # long.txt in parts
    _same_rows(whole, parts)
    segments = pd.read_parquet(parts / "segments.parquet")
    mine = segments[segments[C.DOC_ID] == "long"]
    assert mine[C.SEGMENT_ID].tolist() == [f"long:{k}" for k in range(len(mine))]  # none prefixed
    assert pd.read_csv(parts / "errors.csv").empty
    # the opening unit (the first respondent turn, in the second part) counts for nothing
    opening = mine.loc[mine[C.CODED].astype(bool), C.SEGMENT_ID].iloc[0]
    n = -(-(raw / "long.txt").stat().st_size // 1_000)
    assert opening not in set(chunk_parts.slice_part(
        (None, mine.reset_index(drop=True), [], [], []), 0, n)[1][C.SEGMENT_ID])
    codings = pd.read_parquet(parts / "codings.parquet")
    coded = set(codings.loc[codings[C.DOC_ID] == "long", C.SEGMENT_ID])
    assert opening not in coded and len(coded) == 27
    # with the cache, again, after an edit, and on two processes: the same files
    cached = tmp_path / "cached"
    _run(raw, book, cached, part_bytes=1_000)
    _same_files(parts, cached)
    edited = tmp_path / "edited.yaml"
    edited.write_text(book.read_text(encoding="utf-8").replace("[tijd, uren]", "[tijd, uren, project]"),
                      encoding="utf-8")
    recoded = _run(raw, edited, cached, keep=True, part_bytes=1_000)
    assert recoded.manifest["throughput"]["cache_hits"] > 0
    fresh = tmp_path / "fresh"
    _run(raw, edited, fresh, cache=False, part_bytes=1_000)
    _same_files(fresh, cached)
    two = tmp_path / "two"
    _run(raw, book, two, cache=False, part_bytes=1_000, jobs=2)
    _same_files(parts, two)
