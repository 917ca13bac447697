"""The notebooks: stored clean and thin, and both execute headless on a coded folder."""
from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import pytest
from test_aggregate import write_coded_fixture

from pipeline import report

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = [report.EXPLORE_NOTEBOOK, report.REPORT_NOTEBOOK]
CODEBOOK = ROOT / "codebook.yaml"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_stored_without_outputs_and_defines_no_logic(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code[0].metadata.get("tags") == ["parameters"]
    for cell in code:
        assert cell.outputs == [] and cell.execution_count is None
        # IPython magics (%matplotlib inline) are not Python; drop them before parsing.
        tree = ast.parse("\n".join(line for line in cell.source.splitlines()
                                   if not line.startswith("%")))
        defined = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef,
                                                                  ast.Lambda))]
        assert not defined, f"{path.name}: logic belongs in pipeline/, not in the notebook"
        imports = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        assert all(n.module.split(".")[0] in {"pipeline"} for n in imports)


def _outputs_text(nb) -> str:
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", ""))
            parts.append(str(out.get("data", {}).get("text/plain", "")))
    return "\n".join(parts)


def test_explore_notebook_runs_headless(tmp_path):
    coded = write_coded_fixture(tmp_path / "coded")
    nb = report.execute_notebook(report.EXPLORE_NOTEBOOK, {
        "coded_dir": str(coded), "codebook_path": str(CODEBOOK), "where": {"country": "BE"},
        "attribute": "sector", "term": "eigenaar*", "lang": "en"})
    text = _outputs_text(nb)
    assert "3 segments, 5 codings" in text                # BE filter: doc b only
    assert "eigenaarschap" in text.lower()                # KWIC found the term
    images = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) == 2                               # the two quick plots were drawn


def test_report_notebook_runs_headless_and_writes_figures(tmp_path):
    coded = write_coded_fixture(tmp_path / "coded")
    out = tmp_path / "figures"
    out.mkdir()
    report.execute_notebook(report.REPORT_NOTEBOOK, {
        "coded_dir": str(coded), "codebook_path": str(CODEBOOK), "figures_dir": str(out),
        "lang": "nl"})
    names = sorted(p.name for p in out.iterdir())
    assert len(names) == 12 and "fig04-cooccurrence.svg" in names
    assert all((out / n).stat().st_size > 1000 for n in names)
