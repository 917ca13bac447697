"""`qcode code`, `qcode run`, `qcode validate` end to end on tmp_path."""
import hashlib
import shutil
import subprocess
import sys

import pandas as pd
import pytest

from pipeline import columns as C
from pipeline.cli import main

MINI_CODEBOOK = """\
version: 1
name: mini
settings: {default_lang: nl}
codes:
  - id: agency
    label: {nl: Agency, en: Agency}
    definition: Teachers steer their own work.
    rules:
      nl: [{kind: phrase, phrases: ["zelf invullen"]}]
      en: [{kind: terms, terms: [initiative]}]
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


@pytest.fixture
def project(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "int01.txt").write_text(
        "I: Hoe begon het?\nR: We mochten het zelf invullen, echt waar.\n"
        "I: En de tijd?\nR: Daar had ik gewoon geen uren voor.\n"
        "I: Wie is eigenaar?\nR: De eigenaar van het gebouw deed moeilijk.\n", encoding="utf-8")
    (raw / "int02.txt").write_bytes("Interviewer: Vertel.\nAnja: Wij zijn eigenaar van dit "
                                    "project, café!\n".encode("cp1252"))
    (raw / "survey.csv").write_text('id,text,sector\nS1,"Meer tijd, geen uren",PO\nS2,Niks,VO\n',
                                    encoding="utf-8")
    (raw / "broken.docx").write_bytes(b"\x00\x01not a zip at all")
    (raw / "metadata.csv").write_text("doc_id,country,language\nint01,NL,nl\nint02,BE,Vlaams\n"
                                      "ghost,NL,nl\n")
    (tmp_path / "codebook.yaml").write_text(MINI_CODEBOOK)
    return tmp_path


def _digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*"))}


def test_code_end_to_end(project):
    raw, out = project / "raw", project / "coded"
    before = _digest(raw)
    code = main(["code", str(raw), "--out", str(out), "--codebook", str(project / "codebook.yaml"),
                 "--quiet"])
    assert code == 2  # broken.docx skipped, the rest coded
    assert _digest(raw) == before
    seg = pd.read_parquet(out / "segments.parquet")
    cod = pd.read_csv(out / "codings.csv", keep_default_na=False)
    errors = pd.read_csv(out / "errors.csv")
    assert "broken.docx" in " ".join(errors[C.ERROR_FILE].astype(str))
    assert {"int01", "int02", "survey"} == set(seg[C.DOC_ID])
    assert {"S1", "S2"} <= set(seg[C.SEGMENT_ID])
    got = set(zip(cod[C.SEGMENT_ID], cod[C.CODE_ID]))
    int01 = seg[seg[C.DOC_ID] == "int01"].set_index(C.TURN)[C.SEGMENT_ID]
    assert (int01[1], "agency") in got
    assert (int01[3], "amo.opportunity") in got
    assert ("S1", "amo.opportunity") in got
    # The building's owner is vetoed; the project's owners (cp1252 file) are not.
    assert (int01[5], "ownership") not in got
    assert any(s.startswith("int02:") and c == "ownership" for s, c in got)
    # Provenance and offsets into the document text.
    docs = pd.read_parquet(out / "documents.parquet").set_index(C.DOC_ID)[C.TEXT]
    for row in cod.itertuples():
        assert row.rule.startswith("rule:")
        assert docs[row.doc_id][row.start:row.end].lower() == row.evidence.lower()
    import json
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["documents"] == 3 and manifest["counts"]["files_failed"] == 1
    assert manifest["codebook"]["hash"] == hashlib.sha256(
        (project / "codebook.yaml").read_bytes()).hexdigest()
    warnings = " ".join(errors[C.ERROR_MESSAGE].astype(str))
    assert "ghost" in warnings and "survey" in warnings  # metadata warnings both ways


def test_a_pilot_whose_one_match_gives_no_coding(tmp_path, repo_root):
    # one weak match (weight 0.35, under the threshold): a first run with the cache
    # used to end in a traceback (KeyError '_unit') while storing the empty codings
    raw, out = tmp_path / "raw", tmp_path / "coded"
    raw.mkdir()
    (raw / "pilot.txt").write_text("I: Who are you?\nR: I teach maths at a secondary school.\n"
                                   "I: How did it go?\nR: Honestly, we were quite passive "
                                   "about it.\n", encoding="utf-8")
    for _ in range(2):  # the first run stores the empty entry, the second reads it
        assert main(["code", str(raw), "--out", str(out), "--codebook",
                     str(repo_root / "codebook.yaml"), "--lang", "en", "--quiet"]) == 0
        assert len(pd.read_parquet(out / "matches.parquet")) == 1
        assert len(pd.read_parquet(out / "codings.parquet")) == 0


def test_rerun_is_identical(project):
    raw, cb = project / "raw", str(project / "codebook.yaml")
    main(["code", str(raw), "--out", str(project / "a"), "--codebook", cb, "--quiet"])
    main(["code", str(raw), "--out", str(project / "b"), "--codebook", cb, "--quiet"])
    for name in ["segments.csv", "codings.csv", "segments.parquet", "codings.parquet"]:
        assert (project / "a" / name).read_bytes() == (project / "b" / name).read_bytes()


def test_docbin_cache_option(project):
    raw, cb = project / "raw", str(project / "codebook.yaml")
    main(["code", str(raw), "--out", str(project / "a"), "--codebook", cb, "--quiet"])
    main(["code", str(raw), "--out", str(project / "b"), "--codebook", cb, "--quiet",
          "--docbin-cache"])
    assert not list((project / "a" / ".cache").rglob("*.spacy"))
    from spacy.tokens import DocBin

    entries = list((project / "b" / ".cache").rglob("*.spacy"))
    assert entries  # one per parsed document, readable by spaCy
    assert all(len(DocBin().from_bytes(e.read_bytes())) > 0 for e in entries)
    for name in ["segments.csv", "codings.csv", "matches.parquet", "codings.parquet"]:
        assert (project / "a" / name).read_bytes() == (project / "b" / name).read_bytes()


def test_docbin_cache_needs_the_cache(project, capsys):
    code = main(["code", str(project / "raw"), "--out", str(project / "c"), "--codebook",
                 str(project / "codebook.yaml"), "--quiet", "--docbin-cache", "--no-cache"])
    assert code == 1
    assert "--docbin-cache" in capsys.readouterr().err
    assert not (project / "c").exists()


def test_bad_codebook_writes_nothing(project, capsys):
    (project / "codebook.yaml").write_text("version: 1\ncodes:\n  - id: Agency!\n    bogus: 1\n")
    out = project / "coded"
    code = main(["code", str(project / "raw"), "--out", str(out), "--codebook",
                 str(project / "codebook.yaml")])
    assert code == 1
    assert not out.exists()
    err = capsys.readouterr().err
    assert err.startswith("qcode: error:") and "codebook.yaml" in err
    assert "Traceback" not in err


def test_validate(project, capsys):
    assert main(["validate", str(project / "codebook.yaml")]) == 0
    assert "OK" in capsys.readouterr().out
    assert main(["validate", str(project / "missing.yaml")]) == 1


def test_missing_input_and_bad_arguments(project, capsys):
    assert main(["code", str(project / "nope"), "--out", str(project / "o")]) == 1
    assert "input not found" in capsys.readouterr().err
    assert main(["code", "--unit", "page", str(project / "raw")]) == 1
    assert main(["code", str(project / "raw"), "--method", "ml"]) == 1


def test_the_summary_says_what_was_taken_from_the_cache(project, capsys, monkeypatch):
    import pipeline.runner as runner

    plan = runner.plan_chunks
    monkeypatch.setattr(runner, "plan_chunks",  # a chunk per file
                        lambda files, shown, **kw: plan(files, shown, **{**kw, "chunk_bytes": 10}))
    raw, cb = project / "raw", str(project / "codebook.yaml")
    args = ["code", str(raw), "--out", str(project / "coded"), "--codebook", cb]
    main(args)
    assert "taken from the cache" not in capsys.readouterr().out
    main(args)
    assert "codings as in an earlier run of these files (the edit changes none): files taken " \
           "from the cache" in capsys.readouterr().out
    (raw / "int03.txt").write_text("R: Wij zijn eigenaar.\n", encoding="utf-8")
    main(args)
    out = capsys.readouterr().out
    # int03's chunk is new, broken.docx's has no rows to copy: the other three are taken
    assert "3 of 5 chunks as in an earlier run: their rows taken from the cache, the other " \
           "chunks coded" in out and "files taken" not in out


def test_run_prints_summary(project, capsys, monkeypatch):
    monkeypatch.chdir(project)
    shutil.move(project / "raw", project / "data_raw")
    code = main(["run", "--raw", "data_raw", "--out", "coded", "--no-figures"])
    assert code == 2
    out = capsys.readouterr().out
    assert "coded 3 documents" in out and "amo.opportunity" in out


def test_module_entry_point_help():
    proc = subprocess.run([sys.executable, "-m", "pipeline", "code", "--help"],
                          capture_output=True, text=True, check=True)
    assert "--code-speakers" in proc.stdout


def test_code_says_what_it_pruned_from_the_cache(project, capsys, monkeypatch):
    import pipeline.cache_prune as cache_prune

    monkeypatch.setattr(cache_prune, "KEEP_RUNS", 2)
    monkeypatch.setattr(cache_prune, "GRACE_S", -1.0)
    monkeypatch.chdir(project)
    argv = ["code", "raw", "--out", "coded", "--codebook", "codebook.yaml"]
    path = project / "raw" / "int01.txt"
    for k, edit in enumerate(("", "Hoe begon dat?", "Hoe begon het!")):
        if edit:  # the interview changes: a new chunk key, the old ones unused
            text = path.read_text(encoding="utf-8").splitlines(keepends=True)
            path.write_text("".join([f"I: {edit}\n", *text[1:]]), encoding="utf-8")
        assert main(argv) == 2
        out = capsys.readouterr().out
        assert ("cache: deleted" in out) == (k == 2), out
    assert "that none of the last 2 runs used" in out
    assert (project / "coded" / ".cache" / cache_prune.JOURNAL).is_file()
