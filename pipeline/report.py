"""Report figures: run the report notebook, write the figures and their manifest, check them.

This is wiring, and the one place besides the CLI that writes figure files:

* ``save_figure`` writes a PNG or SVG byte-identically for identical inputs (no
  timestamps or software strings, a fixed SVG id salt, glyphs as paths);
* ``execute_notebook`` (from :mod:`pipeline.notebook_run`) runs a notebook headless
  with nbclient after injecting parameters below its ``parameters`` cell;
* ``build_figures`` runs ``notebooks/2.0-report-figures.ipynb`` on a coded folder and
  writes ``reports/figures/*.png|svg`` plus ``MANIFEST.json`` (sha256 of each figure,
  codebook hash, input hashes, versions);
* ``check_figures`` re-codes the raw data, rebuilds the figures in a temporary folder
  and names every figure that differs from the committed ones.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib
from matplotlib.figure import Figure

from pipeline.errors import InputError, ReportError  # noqa: F401  (ReportError: public here too)
from pipeline.notebook_run import execute_notebook, inject_parameters  # noqa: F401
from pipeline.store import atomic_write, atomic_write_text

ROOT = Path(__file__).resolve().parent.parent
REPORT_NOTEBOOK = ROOT / "notebooks" / "2.0-report-figures.ipynb"
EXPLORE_NOTEBOOK = ROOT / "notebooks" / "1.0-explore-themes.ipynb"
MANIFEST_NAME = "MANIFEST.json"
FIGURE_SUFFIXES = (".png", ".svg")
DPI = 150
# Fixed so that SVG element ids (derived from a hash salted with this) never change.
_SAVE_RC = {"svg.hashsalt": "qcode-report", "svg.fonttype": "path", "savefig.bbox": None,
            "savefig.facecolor": "white", "savefig.edgecolor": "white", "path.simplify": True}
_METADATA = {".png": {"Software": None},
             ".svg": {"Date": None, "Creator": None, "Format": None, "Type": None}}
_VERSIONED = ("matplotlib", "numpy", "pandas", "pyarrow", "spacy", "nbclient", "ipykernel",
              "Pillow")




def save_figure(fig: Figure, path: str | Path) -> Path:
    """Save a figure as PNG or SVG (by suffix), byte-identical for identical inputs.

    Args:
        fig: the figure.
        path: target file, ``.png`` or ``.svg``; written atomically.

    Raises:
        ReportError: unsupported suffix.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _METADATA:
        raise ReportError(f"{path}: figures are saved as {' or '.join(FIGURE_SUFFIXES)}")

    def write(tmp: Path) -> None:
        with matplotlib.rc_context(_SAVE_RC):
            fig.savefig(tmp, format=suffix[1:], dpi=DPI, metadata=_METADATA[suffix])

    atomic_write(path, write)
    path.chmod(0o644)  # mkstemp makes 0600; figures are meant to be shared
    return path


def save_figures(fig: Figure, figures_dir: str | Path, name: str) -> list[Path]:
    """Save one figure as ``<name>.png`` and ``<name>.svg`` in ``figures_dir``."""
    return [save_figure(fig, Path(figures_dir) / f"{name}{s}") for s in FIGURE_SUFFIXES]


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def versions() -> dict[str, str]:
    """Versions of Python, qcode and the libraries that shape the figure bytes."""
    from pipeline.runner import versions as package_versions

    return package_versions(_VERSIONED)


def _figure_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in FIGURE_SUFFIXES
                  and p.is_file()) if folder.is_dir() else []


def _coded_manifest(coded_dir: Path) -> dict[str, Any]:
    mpath = coded_dir / "manifest.json"
    try:
        return json.loads(mpath.read_text(encoding="utf-8")) if mpath.exists() else {}
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(mpath, f"not valid JSON ({exc})") from exc


def build_figures(coded_dir: str | Path, codebook_path: str | Path, figures_dir: str | Path, *,
                  lang: str = "nl", notebook: str | Path | None = None,
                  agreement: str | Path | None = None, timeout: int = 600) -> dict[str, Any]:
    """Regenerate every report figure from a coded folder by running the report notebook.

    The notebook renders into a scratch folder first; only when it succeeded are the
    figures moved into ``figures_dir`` (stale figures removed) and ``MANIFEST.json``
    written, so a failure leaves the previous report intact.

    Args:
        coded_dir: coded folder (``data/coded``).
        codebook_path: codebook YAML the codings were made with.
        figures_dir: output folder (``reports/figures``).
        lang: label language, ``nl`` or ``en``.
        notebook: report notebook (default ``notebooks/2.0-report-figures.ipynb``).
        agreement: agreement table CSV (``qcode agreement --out``) for the agreement
            figure; default ``<coded_dir>/agreement.csv`` when it exists, else none.
        timeout: seconds allowed per notebook cell.

    Returns:
        The manifest: ``figures`` (file name -> sha256), ``codebook``, ``inputs``,
        ``coded_outputs``, ``notebook``, ``parameters``, ``versions``.

    Raises:
        InputError: coded folder, codebook or notebook missing.
        ReportError: the notebook failed.
    """
    from pipeline.codebook import load_codebook

    coded, out = Path(coded_dir).resolve(), Path(figures_dir).resolve()
    nb_path = Path(notebook) if notebook else REPORT_NOTEBOOK
    if not coded.is_dir():
        raise InputError(coded, "coded folder not found; run 'qcode run' first")
    book = load_codebook(codebook_path)
    if agreement is None and (coded / "agreement.csv").is_file():
        agreement = coded / "agreement.csv"
    if agreement is not None and not Path(agreement).is_file():
        raise InputError(agreement, "agreement table not found")
    out.mkdir(parents=True, exist_ok=True)
    params = {"coded_dir": str(coded), "codebook_path": str(Path(codebook_path).resolve()),
              "figures_dir": "", "lang": lang,
              "agreement_table": str(Path(agreement).resolve()) if agreement else None}
    with tempfile.TemporaryDirectory(prefix=".figures-", dir=out.parent) as scratch:
        params["figures_dir"] = scratch
        execute_notebook(nb_path, params, cwd=nb_path.parent, timeout=timeout)
        made = _figure_files(Path(scratch))
        if not made:
            raise ReportError(f"{nb_path}: the notebook wrote no figures")
        names = {p.name for p in made}
        for old in _figure_files(out):
            if old.name not in names:
                old.unlink()
        for p in made:
            data = p.read_bytes()
            atomic_write(out / p.name, lambda tmp, d=data: tmp.write_bytes(d)).chmod(0o644)
    coded_manifest = _coded_manifest(coded)
    manifest = {
        "figures": {p.name: sha256_file(out / p.name) for p in sorted(made)},
        "codebook": {"path": _rel(codebook_path), "hash": book.hash},
        "inputs": coded_manifest.get("inputs", []),
        "coded_outputs": coded_manifest.get("outputs", {}),
        "notebook": {"path": _rel(nb_path), "sha256": sha256_file(nb_path)},
        "parameters": {"lang": lang,
                       "agreement": sha256_file(agreement) if agreement else None},
        "versions": versions(),
    }
    text = json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    atomic_write_text(out / MANIFEST_NAME, text).chmod(0o644)
    return manifest


AGREEMENT_NAME = "agreement.csv"


def gold_texts(gold: str | Path) -> Path | None:
    """The texts a gold standard was coded on, by the layout ``<set>/gold/*.csv`` + ``<set>/raw/``.

    Returns None when there is no such folder (the gold indexes the coded folder's own
    segments, as ``data/coded/gold/`` does).
    """
    folder = Path(gold).resolve().parent
    raw = folder.parent / "raw"
    return raw if folder.name == "gold" and raw.is_dir() else None


def gold_agreement(coded_dir: str | Path, gold: str | Path, *, raw: str | Path | None = None,
                   codebook: str | Path | None = None, n_boot: int = 1000,
                   seed: int = 0) -> Path:
    """Score the rule coder against a gold standard for the report's agreement figure.

    Writes ``<coded_dir>/agreement.csv`` (per-code precision, recall, F1, kappa with
    bootstrap intervals, seeded so the figure is reproducible, and a ``gold`` column
    with the gold's path relative to the project, named in the figure), which
    ``build_figures`` picks up for the agreement chart.

    Args:
        coded_dir: coded folder; its codings are scored unless ``raw`` is given.
        gold: wide gold table (segment_id + one 0/1 column per code).
        raw: the texts the gold was coded on, when they are not the coded folder's
            (a held-out set): they are coded with ``codebook`` into a scratch folder
            and those codings are scored.
        codebook: codebook for coding ``raw``.
        n_boot: bootstrap resamples.
        seed: bootstrap seed.

    Returns:
        The path written.
    """
    import io

    from pipeline import agreement as ag
    from pipeline.cli.agreement import evaluate_rules, read_coder, read_table

    gold_df = read_table(gold)
    gold_m = ag.to_matrix(gold_df, name="gold", source=str(gold))
    with tempfile.TemporaryDirectory(prefix="qcode-gold-") as tmp:
        source = Path(coded_dir)
        if raw is not None:
            from pipeline.runner import RunOptions, code_corpus

            if codebook is None:
                raise ReportError("gold_agreement: coding the gold's texts needs codebook=")
            source = Path(tmp) / "coded"
            code_corpus([raw], codebook=codebook, out_dir=source,
                        options=RunOptions(progress=False))
        rules = read_coder(source, "rules")
        res = evaluate_rules(gold_m, rules, n_boot=n_boot, seed=seed)
    buf = io.StringIO()
    # The gold's path goes into the table so the figure can say which set it was scored on.
    res.table.assign(gold=_rel(gold)).to_csv(buf, index=False, lineterminator="\n")
    return atomic_write_text(Path(coded_dir) / AGREEMENT_NAME, buf.getvalue())


def _rel(path: str | Path) -> str:
    # Relative to the project so the committed manifest does not leak a home folder.
    p = Path(path).resolve()
    try:
        return p.relative_to(ROOT).as_posix()
    except ValueError:
        return p.name


@dataclass
class CheckResult:
    """Outcome of ``check_figures``: ``ok`` and one line per problem or note."""

    ok: bool
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)


def load_manifest(figures_dir: str | Path) -> dict[str, Any]:
    """Read ``MANIFEST.json`` of a figures folder.

    Raises:
        InputError: missing or not JSON.
    """
    path = Path(figures_dir) / MANIFEST_NAME
    if not path.is_file():
        raise InputError(path, "no figure manifest; run 'qcode figures' first")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(path, f"not valid JSON ({exc})") from exc


def compare_figures(committed_dir: str | Path, committed: dict[str, Any],
                    fresh: dict[str, Any]) -> list[str]:
    """Name every committed figure that is missing, edited or does not reproduce."""
    problems: list[str] = []
    want, got = committed.get("figures", {}), fresh.get("figures", {})
    for name in sorted(set(want) | set(got)):
        on_disk = Path(committed_dir) / name
        if name not in got:
            problems.append(f"{name}: in the manifest but no longer produced")
        elif name not in want:
            problems.append(f"{name}: produced but not committed (run 'qcode figures')")
        elif not on_disk.is_file():
            problems.append(f"{name}: committed file is missing")
        elif sha256_file(on_disk) != want[name]:
            problems.append(f"{name}: committed file does not match MANIFEST.json (edited?)")
        elif got[name] != want[name]:
            problems.append(f"{name}: regenerated figure differs (sha256 {got[name][:12]} "
                            f"!= committed {want[name][:12]})")
    return problems


def check_figures(figures_dir: str | Path, *, codebook_path: str | Path,
                  raw: str | Path | None = None, coded_dir: str | Path | None = None,
                  lang: str | None = None, notebook: str | Path | None = None,
                  keep: str | Path | None = None, gold: str | Path | None = None,
                  gold_raw: str | Path | None = None,
                  timeout: int = 600) -> CheckResult:
    """Regenerate the report figures from scratch and compare them with the committed ones.

    With ``raw``, the raw transcripts are re-coded into a temporary coded folder
    with the same run options as ``coded_dir``'s manifest (when there is one), so the
    check proves the whole chain raw data + codebook -> figures. Without ``raw`` the
    figures are rebuilt from ``coded_dir``.

    Args:
        figures_dir: committed figures with their ``MANIFEST.json``.
        codebook_path: the codebook.
        raw: raw transcripts folder (``data/raw``).
        coded_dir: coded folder whose options are reused (and the input when no ``raw``).
        lang: label language (default: the one recorded in the manifest).
        notebook: report notebook.
        keep: copy the regenerated figures here for inspection.
        gold: gold standard scored for the agreement figure after re-coding ``raw``
            (as ``qcode run`` does).
        gold_raw: the texts of ``gold`` when they are a held-out set outside ``raw``.
        timeout: seconds allowed per notebook cell.

    Returns:
        A ``CheckResult``; ``ok`` is false when any figure differs.
    """
    committed = load_manifest(figures_dir)
    lang = lang or committed.get("parameters", {}).get("lang", "nl")
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="qcode-check-") as tmp:
        source = Path(coded_dir) if coded_dir else None
        if raw is not None:
            source = _recode(Path(raw), codebook_path, source, Path(tmp) / "coded")
            if gold is not None:
                gold_agreement(source, gold, raw=gold_raw or gold_texts(gold),
                               codebook=codebook_path)
        if source is None:
            raise ReportError("check_figures needs raw= or coded_dir=")
        fresh = build_figures(source, codebook_path, Path(tmp) / "figures", lang=lang,
                              notebook=notebook, timeout=timeout)
        problems = compare_figures(figures_dir, committed, fresh)
        if keep:
            shutil.copytree(Path(tmp) / "figures", keep, dirs_exist_ok=True)
    if fresh["codebook"]["hash"] != committed.get("codebook", {}).get("hash"):
        notes.append("the codebook changed since the committed figures were made")
    old_v, new_v = committed.get("versions", {}), fresh["versions"]
    changed = [f"{k} {old_v.get(k)} -> {v}" for k, v in sorted(new_v.items())
               if k != "qcode" and old_v.get(k) != v]
    if changed and problems:
        notes.append("library versions differ from the committed run: " + ", ".join(changed))
    return CheckResult(ok=not problems, problems=problems, notes=notes, manifest=fresh)


def _recode(raw: Path, codebook_path: str | Path, like: Path | None, out: Path) -> Path:
    """Code ``raw`` into ``out`` with the run options recorded in ``like``'s manifest."""
    from dataclasses import fields

    from pipeline.runner import RunOptions, code_corpus

    if not raw.is_dir():
        raise InputError(raw, "raw data folder not found")
    recorded = _coded_manifest(like).get("options", {}) if like and like.is_dir() else {}
    names = {f.name for f in fields(RunOptions)}
    opts = RunOptions(**{k: v for k, v in recorded.items() if k in names})
    opts.progress = False
    code_corpus([raw], codebook=codebook_path, out_dir=out, options=opts)
    return out
