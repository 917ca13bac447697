"""Tests of pipeline.report and ``qcode figures``: notebook execution, manifest, reproduction check."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pytest
from matplotlib.figure import Figure
from test_aggregate import write_coded_fixture

from pipeline import report
from pipeline.cli import main
from pipeline.errors import InputError

ROOT = Path(__file__).resolve().parent.parent
CODEBOOK = ROOT / "codebook.yaml"
FIGURES = {f"fig0{i}-{n}{s}" for i, n in [(1, "themes-by-document"), (2, "themes-by-country-sector"),
                                          (3, "themes-by-country"), (4, "cooccurrence"),
                                          (5, "cooccurrence-network"), (6, "document-portrait")]
           for s in (".png", ".svg")}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """One notebook run on the hand-made corpus, shared by the tests below."""
    base = tmp_path_factory.mktemp("report")
    coded = write_coded_fixture(base / "coded")
    manifest = report.build_figures(coded, CODEBOOK, base / "figures", lang="en")
    return base, coded, manifest


def test_build_writes_every_figure_and_a_manifest_of_their_hashes(built):
    base, _, manifest = built
    figures = base / "figures"
    assert set(manifest["figures"]) == FIGURES
    on_disk = json.loads((figures / report.MANIFEST_NAME).read_text())
    assert on_disk == manifest
    for name, digest in manifest["figures"].items():
        assert report.sha256_file(figures / name) == digest
    assert manifest["codebook"] == {"path": "codebook.yaml",
                                    "hash": __import__("hashlib").sha256(CODEBOOK.read_bytes()).hexdigest()}
    assert manifest["inputs"][0]["doc_id"] == "a"
    assert manifest["parameters"]["lang"] == "en"
    assert {"python", "matplotlib", "pandas"} <= set(manifest["versions"])
    assert manifest["notebook"]["path"] == "notebooks/2.0-report-figures.ipynb"


def test_rebuild_is_byte_identical_and_check_passes(built, capsys):
    base, coded, manifest = built
    result = report.check_figures(base / "figures", codebook_path=CODEBOOK, coded_dir=coded)
    assert result.ok, result.problems
    assert result.manifest["figures"] == manifest["figures"]


def test_compare_names_every_differing_or_missing_figure(built, tmp_path):
    base, _, manifest = built
    committed = tmp_path / "committed"
    shutil.copytree(base / "figures", committed)
    (committed / "fig04-cooccurrence.png").write_bytes(b"edited")
    (committed / "fig06-document-portrait.svg").unlink()
    fresh = json.loads(json.dumps(manifest))
    fresh["figures"]["fig01-themes-by-document.png"] = "0" * 64
    fresh["figures"]["fig09-new.png"] = "1" * 64
    del fresh["figures"]["fig02-themes-by-country-sector.svg"]
    problems = report.compare_figures(committed, manifest, fresh)
    text = "\n".join(problems)
    assert len(problems) == 5
    assert "fig04-cooccurrence.png: committed file does not match MANIFEST.json" in text
    assert "fig06-document-portrait.svg: committed file is missing" in text
    assert "fig01-themes-by-document.png: regenerated figure differs" in text
    assert "fig09-new.png: produced but not committed" in text
    assert "fig02-themes-by-country-sector.svg: in the manifest but no longer produced" in text


def test_cli_check_fails_naming_the_figure(built, tmp_path, capsys):
    base, coded, _ = built
    committed = tmp_path / "committed"
    shutil.copytree(base / "figures", committed)
    manifest = json.loads((committed / report.MANIFEST_NAME).read_text())
    manifest["figures"]["fig03-themes-by-country.png"] = "f" * 64   # as if committed from other data
    (committed / report.MANIFEST_NAME).write_text(json.dumps(manifest))
    (committed / "fig03-themes-by-country.png").write_bytes(b"x")
    manifest["figures"]["fig03-themes-by-country.png"] = report.sha256_file(
        committed / "fig03-themes-by-country.png")
    (committed / report.MANIFEST_NAME).write_text(json.dumps(manifest))
    rc = main(["figures", "--check", "--from-coded", "--coded", str(coded), "--out", str(committed),
               "--codebook", str(CODEBOOK)])
    err = capsys.readouterr().err
    assert rc == 1
    assert "figure differs: fig03-themes-by-country.png: regenerated figure differs" in err
    assert "1 figure(s)" in err


def test_build_replaces_stale_figures_and_keeps_report_on_failure(built, tmp_path):
    base, coded, _ = built
    out = tmp_path / "figs"
    out.mkdir()
    (out / "old-figure.png").write_bytes(b"stale")
    bad = tmp_path / "bad.ipynb"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("raise ValueError('boom')")])
    nbformat.write(nb, bad)
    with pytest.raises(report.ReportError, match=r"bad.ipynb: cell 1 failed: .*boom"):
        report.build_figures(coded, CODEBOOK, out, notebook=bad)
    assert (out / "old-figure.png").exists()          # failure leaves the folder alone
    shutil.copytree(base / "figures", out, dirs_exist_ok=True)
    report.build_figures(coded, CODEBOOK, out, lang="en")
    assert not (out / "old-figure.png").exists()


def test_user_errors(tmp_path):
    with pytest.raises(InputError, match="coded folder not found"):
        report.build_figures(tmp_path / "none", CODEBOOK, tmp_path / "f")
    with pytest.raises(InputError, match="no figure manifest"):
        report.check_figures(tmp_path, codebook_path=CODEBOOK, coded_dir=tmp_path)
    with pytest.raises(report.ReportError, match="saved as .png or .svg"):
        report.save_figure(Figure(), tmp_path / "x.pdf")
    with pytest.raises(InputError, match="notebook not found"):
        report.execute_notebook(tmp_path / "missing.ipynb")


def test_kernel_runs_without_the_tcp_warning_but_its_stderr_still_shows(tmp_path, capfd):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import os\nos.write(2, b'real kernel stderr\\n')\nx = 1")])
    path = tmp_path / "t.ipynb"
    nbformat.write(nb, path)
    report.execute_notebook(path)
    err = capfd.readouterr().err
    assert "without encryption" not in err
    assert "real kernel stderr" in err
    assert not list(tmp_path.glob("kernel-ipc*")) and not list(Path.cwd().glob("kernel-ipc*"))
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 / 0")]), path)
    with pytest.raises(report.ReportError, match="cell 0 failed: ZeroDivisionError"):
        report.execute_notebook(path)


def test_inject_parameters_goes_right_after_the_parameters_cell():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# t"),
        nbformat.v4.new_code_cell("a = 1", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("print(a)")])
    report.inject_parameters(nb, {"a": 2, "path": "x/y"})
    assert nb.cells[2].metadata["tags"] == ["injected-parameters"]
    assert "a = 2\npath = 'x/y'\n" in nb.cells[2].source


@pytest.mark.slow
def test_sample_data_figures_reproduce_from_raw(tmp_path):
    """The whole chain on the bundled sample: raw + codebook -> coded -> figures, twice."""
    coded, figures = tmp_path / "coded", tmp_path / "figures"
    assert main(["code", str(ROOT / "data" / "raw"), "--out", str(coded), "--codebook",
                 str(CODEBOOK), "-q"]) in (0, 2)
    manifest = report.build_figures(coded, CODEBOOK, figures)
    assert set(manifest["figures"]) == FIGURES
    result = report.check_figures(figures, codebook_path=CODEBOOK, raw=ROOT / "data" / "raw",
                                  coded_dir=coded)
    assert result.ok, result.problems


@pytest.mark.slow
def test_committed_report_figures_reproduce(capsys):
    """``qcode figures --check`` on the committed reports/figures (the reviewer's check)."""
    if not (ROOT / "reports" / "figures" / report.MANIFEST_NAME).exists():
        pytest.skip("no committed figures yet")
    rc = main(["figures", "--check", "--raw", str(ROOT / "data" / "raw"),
               "--coded", str(ROOT / "data" / "coded"), "--codebook", str(CODEBOOK),
               "--out", str(ROOT / "reports" / "figures")])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "reproduce byte for byte" in captured.out


@pytest.mark.slow
def test_gold_agreement_names_its_gold_set_and_feeds_the_figure(built, tmp_path):
    """The agreement table says which gold it was scored on; the notebook draws it into fig07."""
    _, coded, _ = built
    gold = ROOT / "data" / "heldout6" / "gold" / "gold.csv"
    scratch = tmp_path / "coded"
    shutil.copytree(coded, scratch)
    path = report.gold_agreement(scratch, gold, raw=report.gold_texts(gold), codebook=CODEBOOK,
                                 n_boot=20)
    table = __import__("pandas").read_csv(path)
    assert set(table["gold"]) == {"data/heldout6/gold/gold.csv"}
    assert (table.loc[table["code_id"] == "agency", "n_units"] == 64).all()
    manifest = report.build_figures(scratch, CODEBOOK, tmp_path / "figures", lang="en")
    assert {"fig07-agreement.png", "fig07-agreement.svg"} <= set(manifest["figures"])
    assert manifest["parameters"]["agreement"] == report.sha256_file(path)
