"""Streaming runs: chunked output equals a one-chunk run, byte for byte."""
import hashlib
import json

import pandas as pd
import pyarrow.parquet as pq
import pytest

from pipeline import columns as C
from pipeline.runner import RunOptions, code_corpus, plan_chunks
from pipeline.store import load_coded

CODEBOOK = """\
version: 1
name: mini
settings: {default_lang: nl}
codes:
  - id: agency
    label: {nl: Agency, en: Agency}
    definition: Teachers steer their own work.
    rules:
      nl:
        - {kind: phrase, phrases: ["zelf invullen"]}
        - {kind: glob, globs: ["eigenaar*"]}
        - kind: pattern
          patterns: [[{LEMMA: mogen}, {OP: "*", IS_PUNCT: false}, {LOWER: zelf}]]
  - id: ownership
    label: {nl: Eigenaarschap, en: Ownership}
    definition: Teachers own the innovation.
    rules:
      nl:
        - {kind: terms, terms: [eigenaar]}
        - {kind: exclude, phrases: ["eigenaar van het gebouw"]}
  - id: alignment
    label: {nl: Onderlinge gerichtheid, en: Alignment}
    definition: Pointing the same way.
  - id: shared_leadership
    label: {nl: Gedeeld leiderschap, en: Shared leadership}
    definition: Leadership is shared.
  - id: amo
    label: {nl: AMO, en: AMO}
    definition: Ability, motivation, opportunity.
    children:
      - id: amo.ability
        label: {nl: Kunnen, en: Ability}
        definition: Skills.
      - id: amo.motivation
        label: {nl: Willen, en: Motivation}
        definition: Willingness.
      - id: amo.opportunity
        label: {nl: Mogen en kunnen, en: Opportunity}
        definition: Time and means.
        rules:
          nl: [{kind: phrase, phrases: ["geen uren"]}]
"""

TURNS = ["We mochten het zelf invullen, echt waar.", "Daar had ik gewoon geen uren voor.",
         "De eigenaar van het gebouw deed moeilijk.", "Wij zijn eigenaar van dit project.",
         "Mogen we dat echt zelf doen?", "Niks bijzonders te melden."]
OUTPUTS = ["segments.csv", "segments.parquet", "codings.csv", "codings.parquet",
           "matches.parquet", "documents.parquet", "errors.csv"]


def make_corpus(folder, n_files=12):
    """Interviews, a survey CSV with an extra column, a broken file and metadata."""
    folder.mkdir()
    for k in range(n_files):
        lines = []
        for j in range(8):
            lines.append(f"I: Vraag {j}?" if j % 2 == 0 else f"R: {TURNS[(k + j) % len(TURNS)]}")
        (folder / f"int{k:02d}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (folder / "survey.csv").write_text(
        'id,text,sector\nS1,"Meer tijd, geen uren",PO\nS2,Zelf invullen graag,VO\n',
        encoding="utf-8")
    (folder / "broken.docx").write_bytes(b"\x00not a zip")
    meta = ["doc_id,country,language"] + [f"int{k:02d},NL,nl" for k in range(n_files)]
    (folder / "metadata.csv").write_text("\n".join(meta + ["ghost,BE,nl"]) + "\n")
    return folder


@pytest.fixture
def corpus(tmp_path):
    make_corpus(tmp_path / "raw")
    (tmp_path / "codebook.yaml").write_text(CODEBOOK)
    return tmp_path


def run(tmp, name, **options):
    out = tmp / name
    opts = RunOptions(progress=False, **options)
    result = code_corpus([tmp / "raw"], codebook=tmp / "codebook.yaml", out_dir=out, options=opts)
    return out, result


def digests(out):
    return {n: hashlib.sha256((out / n).read_bytes()).hexdigest() for n in OUTPUTS}


def test_chunked_run_equals_one_chunk(corpus):
    whole, res_whole = run(corpus, "whole", chunk_bytes=10**9, cache=False)
    small, res_small = run(corpus, "small", chunk_bytes=1, cache=False)
    assert res_whole.manifest["throughput"]["chunks"] == 1
    assert res_small.manifest["throughput"]["chunks"] > 10
    # Parquet files differ in row-group layout only; the tables are the same ...
    for name in ["segments", "codings", "matches", "documents"]:
        pd.testing.assert_frame_equal(pd.read_parquet(whole / f"{name}.parquet"),
                                      pd.read_parquet(small / f"{name}.parquet"))
    # ... and CSV / errors are byte-identical.
    for name in ["segments.csv", "codings.csv", "errors.csv"]:
        assert (whole / name).read_bytes() == (small / name).read_bytes()
    # One row group per chunk: results really were written chunk by chunk.
    assert pq.ParquetFile(small / "segments.parquet").num_row_groups == \
        res_small.manifest["throughput"]["chunks"]
    assert res_small.exit_code == 2  # broken.docx


def test_streamed_folder_is_complete_and_consistent(corpus):
    out, result = run(corpus, "out", chunk_bytes=200)
    data = load_coded(out)  # verifies every output against the manifest hashes
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["outputs"]) == set(OUTPUTS)
    assert manifest["counts"]["segments"] == len(data.segments) == 12 * 8 + 2
    assert manifest["counts"]["codings"] == len(data.codings) > 0
    assert manifest["throughput"]["segments_per_s"] > 0
    assert {"ingest", "segment", "nlp_code"} == set(manifest["stage_times_s"])
    # Survey row attribute: present for survey rows, "" for interviews.
    seg = data.segments.set_index(C.SEGMENT_ID)
    assert seg.loc["S1", "sector"] == "PO" and seg.loc["int00:1", "sector"] == ""
    assert seg.loc["int00:1", "country"] == "NL"
    errors = data.errors
    assert "broken.docx" in set(errors[C.ERROR_FILE])
    assert any("ghost" in m for m in errors[C.ERROR_MESSAGE])  # orphan metadata, once
    assert sum("ghost" in m for m in errors[C.ERROR_MESSAGE]) == 1
    # Codings keep document offsets into the document text.
    docs = data.documents.set_index(C.DOC_ID)[C.TEXT]
    for row in data.codings.itertuples():
        assert docs[row.doc_id][row.start:row.end] == row.evidence
    # The result's tables are read lazily from the folder.
    assert len(result.data.codings) == len(data.codings)
    assert not list(out.glob(".qcode-parts-*"))  # temp parts cleaned up


def test_plan_chunks_keeps_duplicate_stems_together(tmp_path):
    paths = []
    for sub in ["a", "b"]:
        (tmp_path / sub).mkdir()
        for name in ["x.txt", "y.txt"]:
            p = tmp_path / sub / name
            p.write_text("R: tekst\n" * 50)
            paths.append(p)
    tasks = plan_chunks(paths, [p.name for p in paths], chunk_bytes=1)
    stems = [{path.split("/")[-1] for _, path, _ in t.files} for t in tasks]
    assert stems == [{"x.txt"}, {"y.txt"}]
    assert [k for t in tasks for k, _, _ in t.files] == [0, 2, 1, 3]


def test_rerun_byte_identical_with_chunks(corpus):
    a, _ = run(corpus, "a", chunk_bytes=300)
    b, _ = run(corpus, "b", chunk_bytes=300)
    assert digests(a) == digests(b)


def test_stale_parts_of_a_killed_run_are_removed(corpus):
    out = corpus / "out"
    (out / ".qcode-parts-dead").mkdir(parents=True)
    (out / ".qcode-parts-dead" / "segments-0000000.parquet").write_bytes(b"half")
    run(corpus, "out", chunk_bytes=500)
    assert not list(out.glob(".qcode-parts-*"))
    load_coded(out)


@pytest.mark.parametrize("cache", [False, True])
def test_documents_parsed_and_matched_in_runs_give_the_same_files(repo_root, tmp_path,
                                                                 monkeypatch, cache):
    """Runs of a few segments (what a large survey gets) on the sample data and the
    project codebook (opening weight, negation, proximity, vetoes): the same files."""
    from pipeline import chunk_code, nlp_fast

    def coded(name):  # noqa: ANN001, ANN202
        out = tmp_path / name
        result = code_corpus([repo_root / "data" / "raw"], codebook=repo_root / "codebook.yaml",
                             out_dir=out, options=RunOptions(progress=False, cache=cache))
        assert result.manifest["counts"]["codings"] > 100
        return digests(out)

    whole = coded("whole")
    from pipeline.code import matching

    calls: list[int] = []  # segments per match_frame call

    match_frame = matching.match_frame
    monkeypatch.setattr(matching, "match_frame",
                        lambda arrays, *a, **k: calls.append(len(arrays)) or match_frame(
                            arrays, *a, **k))
    monkeypatch.setattr(chunk_code, "MATCH_RUN_TOKENS", 40)
    monkeypatch.setattr(nlp_fast, "PARSE_CHARS", 200)
    assert coded("runs") == whole
    assert len(calls) > 50 and max(calls) <= 5  # matched in runs of a few segments


def test_a_chunk_out_of_memory_is_reported_and_the_run_goes_on(corpus, monkeypatch):
    from pipeline import chunk_code

    code_chunk = chunk_code.code_chunk

    def short_of_memory(segments, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        if (segments[C.DOC_ID] == "survey").any():
            raise MemoryError  # what numpy raises when an array cannot be allocated
        return code_chunk(segments, *args, **kwargs)

    monkeypatch.setattr(chunk_code, "code_chunk", short_of_memory)
    short, result = run(corpus, "short", chunk_bytes=1, cache=False)
    assert result.exit_code == 2
    monkeypatch.undo()
    full, _ = run(corpus, "full", chunk_bytes=1, cache=False)
    errors = pd.read_csv(short / "errors.csv")
    oom = errors[errors["file"] == "survey.csv"]
    assert oom[["stage", "severity"]].values.tolist() == [["code", "error"]]
    assert oom["message"].iloc[0].startswith("not coded: out of memory (a file of 0.1 kB")
    # the other files are coded as in a full run (less the survey's row attribute column)
    for name in ("documents", "segments", "codings", "matches"):
        got, every = (pd.read_parquet(f / f"{name}.parquet") for f in (short, full))
        assert "survey" in set(every[C.DOC_ID]) and "survey" not in set(got[C.DOC_ID])
        assert set(every.columns) - set(got.columns) <= {"sector"}
        pd.testing.assert_frame_equal(
            got, every.loc[every[C.DOC_ID] != "survey", list(got.columns)]
            .reset_index(drop=True), check_dtype=False)
    # the other rows (the broken file, metadata) as in a full run; the survey's own
    # warning (no metadata row) went with its chunk
    every = pd.read_csv(full / "errors.csv")
    assert errors[errors["file"] != "survey.csv"].reset_index(drop=True).equals(
        every[every["file"] != "survey.csv"].reset_index(drop=True))


def test_out_of_memory_where_the_tables_come_from_the_cache_stops_the_run(corpus, monkeypatch):
    from pipeline import chunk_code
    from pipeline.errors import InputError

    run(corpus, "cached", chunk_bytes=1)  # fills the cache, tables included

    def short_of_memory(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise MemoryError

    monkeypatch.setattr(chunk_code, "code_chunk", short_of_memory)
    (corpus / "codebook.yaml").write_text(CODEBOOK.replace("zelf invullen", "zelf doen"))
    with pytest.raises(InputError, match=r"out of memory while coding .*the run stopped"):
        run(corpus, "cached", chunk_bytes=1)


@pytest.mark.parametrize("jobs", [1, 2])
def test_text_columns_have_no_parquet_statistics(corpus, jobs):
    """Free text keeps no min/max statistics (for a survey's document row they were two
    copies of its whole text); every other column keeps them."""
    from pipeline.chunk_cache import SUBDIR

    out = corpus / f"stats{jobs}"
    code_corpus([corpus / "raw"], codebook=corpus / "codebook.yaml", out_dir=out,
                options=RunOptions(progress=False, chunk_bytes=400, jobs=jobs))
    entry = next((out / ".cache" / SUBDIR).glob("*/*/documents.parquet"))
    for path in [out / "documents.parquet", out / "segments.parquet", entry,
                 out / "codings.parquet"]:
        meta = pq.ParquetFile(path).metadata
        for g in range(meta.num_row_groups):
            for i, name in enumerate(meta.schema.names):
                column = meta.row_group(g).column(i)
                assert column.is_stats_set == (name != C.TEXT), (path.name, name)


def test_a_renamed_chunk_between_chunks_kept_in_memory(corpus):
    # a survey read first has ids that int05's segments have: int05's chunk is renamed and
    # written by the runner, between parts kept in memory; the survey.csv chunk's "sector"
    # column then makes the segments stream give way to the merge, which must write each
    # part kept in memory from its own row groups of the staged file
    (corpus / "raw" / "a_survey.csv").write_text(
        "id,text\nint05:1,Wij zijn eigenaar\nint05:3,Mogen we zelf\n", encoding="utf-8")
    small, res = run(corpus, "small", chunk_bytes=100, cache=False)
    # two jobs: every part is a file, none kept in memory (the same renames)
    pooled, _ = run(corpus, "pooled", chunk_bytes=100, cache=False, jobs=2)
    assert res.manifest["throughput"]["chunks"] > 10
    assert "ids 'int05:1', 'int05:3' of doc_id 'int05'" in (small / "errors.csv").read_text()
    assert digests(small) == digests(pooled)
    seg = pd.read_parquet(small / "segments.parquet")
    assert seg[C.DOC_ID].value_counts().to_dict() == {
        **{f"int{k:02d}": 8 for k in range(12)}, "a_survey": 2, "survey": 2}
