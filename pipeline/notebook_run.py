"""Running a notebook headless (nbclient), with papermill-style injected parameters.

Used by :mod:`pipeline.report` to execute the report notebook and by the tests to
execute every notebook; the notebook files themselves are never modified.
"""
from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pipeline.errors import InputError, ReportError

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def execute_notebook(notebook: str | Path, parameters: dict[str, Any] | None = None, *,
                     cwd: str | Path | None = None, timeout: int = 600) -> Any:
    """Execute a notebook headless and return the executed notebook node.

    Parameters are injected as a new cell tagged ``injected-parameters`` right after
    the cell tagged ``parameters`` (papermill's convention), so the notebook file
    itself stays untouched.

    Raises:
        InputError: the notebook is missing or not a notebook.
        ReportError: a cell failed; the message names the cell and the error.
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    path = Path(notebook)
    if not path.is_file():
        raise InputError(path, "notebook not found")
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as exc:  # nbformat raises json and validation errors alike
        raise InputError(path, f"not a readable notebook ({type(exc).__name__})") from exc
    if parameters:
        inject_parameters(nb, parameters)
    try:
        with _kernel_config() as config:
            client = NotebookClient(nb, timeout=timeout, kernel_name="python3", config=config,
                                    resources={"metadata": {"path": str(cwd or path.parent)}})
            client.execute()
    except CellExecutionError as exc:
        failed = next((i for i, c in enumerate(nb.cells) if c.cell_type == "code" and any(
            o.get("output_type") == "error" for o in c.get("outputs", []))), None)
        plain = _ANSI.sub("", str(exc)).strip()   # tracebacks come coloured
        last = plain.splitlines()[-1] if plain else type(exc).__name__
        raise ReportError(f"{path}: cell {failed} failed: {last}") from None
    return nb


@contextmanager
def _kernel_config() -> Iterator[Any]:
    """Kernel manager configuration: talk to the kernel over IPC sockets where possible.

    Over TCP, ipykernel warns on every start that traffic is unencrypted
    ("Kernel is running over TCP without encryption"); Unix domain sockets in a
    private temporary folder are local-only, so the warning goes away for the
    right reason while everything the kernel really reports on stderr still
    shows. Windows has no IPC transport and keeps TCP.
    """
    from traitlets.config import Config

    config = Config()
    if os.name == "nt":
        yield config
        return
    with tempfile.TemporaryDirectory(prefix="qcode-kernel-") as sockets:
        config.KernelManager.transport = "ipc"
        config.KernelManager.ip = str(Path(sockets) / "kernel")   # absolute: the kernel's cwd differs
        yield config


def inject_parameters(nb: Any, parameters: dict[str, Any]) -> None:
    """Insert an ``injected-parameters`` cell after the ``parameters`` cell (in place)."""
    import nbformat

    source = "# Parameters injected by pipeline.report\n" + "".join(
        f"{k} = {v!r}\n" for k, v in parameters.items())
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]})
    at = next((i + 1 for i, c in enumerate(nb.cells)
               if "parameters" in c.get("metadata", {}).get("tags", [])), 0)
    nb.cells.insert(at, cell)
