"""Inter-coder agreement and evaluation against a reference coding.

Input tables are coding tables in either of two shapes:

* **long**: ``segment_id``, ``code_id`` (one row per applied code; extra columns such
  as ``score`` or ``method`` are ignored; a row with an empty ``code_id`` marks a
  segment that was seen but got no code);
* **wide**: ``segment_id`` (or ``id``) plus one 0/1 column per code.

Everything here is pure: DataFrames in, DataFrames out. Per code we compute the
statistics from the cell counts of each unit (2 coders: the 2x2 table; more coders:
how many coders applied the code), which makes the unit-resampling bootstrap a
matrix product instead of a Python loop. The tests check every statistic against
scikit-learn, NLTK's ``agreement`` module and the ``krippendorff`` package.
"""
from __future__ import annotations

import contextlib
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pipeline import columns as C
from pipeline.errors import InputError, UsageError
from pipeline.reliability import (
    SMALL_SAMPLE, cell_stats, fleiss_stats, krippendorff_verdict, landis_koch,
)
from pipeline.reliability import div as _div

__all__ = [
    "CodingMatrix", "AgreementResult", "to_matrix", "rollup_matrix", "align",
    "agreement", "landis_koch", "krippendorff_verdict", "cell_stats", "fleiss_stats",
    "MACRO", "MICRO",
]

MACRO, MICRO = "(macro)", "(micro)"
_CODE_ID_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")
# Columns of a wide table that describe the segment rather than a code.
# The last three are the helper columns of a ``qcode suggest`` sheet (ml.active).
_NON_CODE_COLUMNS = set(C.SEGMENT_COLUMNS) | {"id", C.CODER, "notes", "comment", "comments",
                                              "uncertainty", "uncertain_code", "model_probability"}


@dataclass
class CodingMatrix:
    """One coder's codings as a boolean segment x code matrix.

    Attributes:
        name: the coder's name (file stem by default).
        matrix: boolean DataFrame, index ``segment_id``, one column per code.
        complete: True when the table lists every segment the coder saw (wide
            tables); a long table only lists coded segments, so which uncoded
            segments it covered is unknown unless a segments table says so.
    """

    name: str
    matrix: pd.DataFrame
    complete: bool


def _is_long(df: pd.DataFrame) -> bool:
    return C.CODE_ID in df.columns


def to_matrix(df: pd.DataFrame, *, name: str, source: str = "<table>",
              segments: Iterable[str] | None = None) -> CodingMatrix:
    """Turn a long or wide coding table into a :class:`CodingMatrix`.

    Args:
        df: the coding table as read from disk.
        name: the coder's name.
        source: file name used in error messages.
        segments: for a long table, the segment ids the coder saw (all of them,
            coded or not). Without it, the long table's coverage is unknown.

    Raises:
        InputError: no segment id column, or a code column of a wide table holds
            something other than 0/1 (the message names the column and row).
    """
    id_col = C.SEGMENT_ID if C.SEGMENT_ID in df.columns else ("id" if "id" in df.columns else None)
    if id_col is None:
        raise InputError(source, f"no '{C.SEGMENT_ID}' column (columns: {', '.join(map(str, df.columns))})")
    ids = df[id_col].astype("string")
    if ids.isna().any():
        row = int(np.flatnonzero(ids.isna().to_numpy())[0]) + 2  # +2: header line, 1-based
        raise InputError(source, f"empty {id_col}", row=row)
    if _is_long(df):
        codes = df[C.CODE_ID].astype("string").str.strip()
        seen = pd.Index(ids.unique(), name=C.SEGMENT_ID)
        if segments is not None:
            seen = seen.union(pd.Index([str(s) for s in segments])).rename(C.SEGMENT_ID)
        mask = codes.notna() & (codes != "")
        pairs = pd.DataFrame({C.SEGMENT_ID: ids[mask].to_numpy(), C.CODE_ID: codes[mask].to_numpy()})
        code_ids = sorted(pairs[C.CODE_ID].unique())
        for code in code_ids:
            if not _CODE_ID_RE.match(code):
                bad = int(np.flatnonzero((codes == code).to_numpy())[0]) + 2
                raise InputError(source, f"column {C.CODE_ID}: {code!r} is not a code id", row=bad)
        mat = pd.DataFrame(False, index=seen, columns=pd.Index(code_ids, dtype=object))
        for code, grp in pairs.groupby(C.CODE_ID, sort=False):
            mat.loc[grp[C.SEGMENT_ID].unique(), code] = True
        return CodingMatrix(name, mat, complete=segments is not None)
    if ids.duplicated().any():
        row = int(np.flatnonzero(ids.duplicated().to_numpy())[0]) + 2
        raise InputError(source, f"duplicate {id_col} {ids[ids.duplicated()].iloc[0]!r}", row=row)
    code_cols = [c for c in df.columns if c != id_col and str(c) not in _NON_CODE_COLUMNS]
    data = {}
    for col in code_cols:
        values = pd.to_numeric(df[col].replace({True: 1, False: 0, "true": 1, "false": 0,
                                                "True": 1, "False": 0}), errors="coerce")
        bad = ~values.isin([0, 1])
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise InputError(source, f"column {col!r}: expected 0 or 1, got {df[col].iloc[i]!r}",
                             row=i + 2)
        data[str(col)] = values.to_numpy() == 1
    mat = pd.DataFrame(data, index=pd.Index(ids.to_numpy(), name=C.SEGMENT_ID))
    return CodingMatrix(name, mat, complete=True)


def _ancestors(code_id: str) -> list[str]:
    """Dotted prefixes of a code id (the codebook contract: a child is "<parent>.<name>")."""
    parts = code_id.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def rollup_matrix(matrix: pd.DataFrame, level: str = "all",
                  codes: Sequence[str] | None = None) -> pd.DataFrame:
    """Roll codings of sub-codes up to their ancestors.

    Args:
        matrix: boolean segment x code matrix.
        level: ``"all"`` keeps every code and adds each ancestor (a segment coded
            ``amo.ability`` is also coded ``amo``); ``"top"`` keeps only top-level
            codes; ``"none"`` leaves the matrix as it is.
        codes: codes that must appear as columns even if nobody used them (the
            codebook's ids); they are rolled up the same way.

    Raises:
        UsageError: unknown level.
    """
    if level not in ("all", "top", "none"):
        raise UsageError(f"--level must be 'top', 'all' or 'none', not {level!r}")
    wanted = list(dict.fromkeys([*matrix.columns, *(codes or [])]))
    if level == "none":
        targets = {c: [c] for c in wanted}
    elif level == "top":
        targets = {c: [c.split(".")[0]] for c in wanted}
    else:
        targets = {c: [c, *_ancestors(c)] for c in wanted}
    out_cols = sorted({t for ts in targets.values() for t in ts})
    out = pd.DataFrame(False, index=matrix.index, columns=pd.Index(out_cols, dtype=object))
    for col in matrix.columns:
        for t in targets[col]:
            out[t] = out[t].to_numpy() | matrix[col].to_numpy(dtype=bool)
    return out


def align(coders: Sequence[CodingMatrix], codes: Sequence[str] | None = None,
          ) -> tuple[list[pd.DataFrame], pd.DataFrame]:
    """Put the coders' matrices on the same units and the same codes.

    The units are the segments every coder is known to have seen: the
    intersection of the complete tables' segments (or, when no table is complete,
    the union of all listed segments, a long table's missing segment meaning "not
    coded"). A segment some coder lacks is never silently dropped: it is returned in
    the coverage table.

    Returns:
        (matrices, unmatched): one boolean matrix per coder with identical index
        and columns; and a table ``segment_id``, ``present_in``, ``missing_from``
        (``;``-joined coder names) of the segments left out.
    """
    complete = [c for c in coders if c.complete]
    if complete:
        units = complete[0].matrix.index
        for c in complete[1:]:
            units = units.intersection(c.matrix.index, sort=False)
    else:
        units = coders[0].matrix.index
        for c in coders[1:]:
            units = units.union(c.matrix.index, sort=False)
    all_ids = coders[0].matrix.index
    for c in coders[1:]:
        all_ids = all_ids.union(c.matrix.index, sort=False)
    left_out = all_ids.difference(units, sort=False)
    rows = []
    for sid in left_out:
        present = [c.name for c in coders if sid in c.matrix.index]
        missing = [c.name for c in coders if c.complete and sid not in c.matrix.index]
        rows.append({C.SEGMENT_ID: sid, "present_in": ";".join(present),
                     "missing_from": ";".join(missing)})
    unmatched = pd.DataFrame(rows, columns=[C.SEGMENT_ID, "present_in", "missing_from"])
    code_list = list(dict.fromkeys([*(codes or []), *(col for c in coders for col in c.matrix.columns)]))
    code_list = sorted(code_list) if codes is None else code_list
    units = pd.Index(sorted(units), name=C.SEGMENT_ID)
    mats = [c.matrix.reindex(index=units, columns=code_list, fill_value=False).astype(bool)
            for c in coders]
    return mats, unmatched


@dataclass
class AgreementResult:
    """Per-code table (with macro and micro rows) plus the coverage report."""

    table: pd.DataFrame
    unmatched: pd.DataFrame
    coders: list[str]
    reference: str | None
    n_units: int
    notes: list[str] = field(default_factory=list)


def _percentile_ci(samples: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    lo_q, hi_q = (1 - level) / 2 * 100, (1 + level) / 2 * 100
    with np.errstate(invalid="ignore"), _quiet_nan():
        lo = np.nanpercentile(samples, lo_q, axis=0)
        hi = np.nanpercentile(samples, hi_q, axis=0)
    return lo, hi


@contextlib.contextmanager
def _quiet_nan():
    """Silence numpy's "All-NaN slice" warning: an undefined statistic stays NaN."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def agreement(matrices: Mapping[str, pd.DataFrame], *, reference: str | None = None,
              n_boot: int = 1000, ci: float = 0.95, seed: int = 0,
              unmatched: pd.DataFrame | None = None) -> AgreementResult:
    """Per-code agreement between two or more aligned coders.

    Args:
        matrices: coder name -> boolean matrix; all with the same index and columns
            (see :func:`align`).
        reference: name of the coder taken as the reference (gold); adds precision,
            recall and F1 of the other coder. Two coders only.
        n_boot: bootstrap resamples of units for the confidence intervals (0: none).
        ci: confidence level of the percentile intervals.
        seed: random seed of the bootstrap.
        unmatched: coverage table from :func:`align`, passed through.

    Returns:
        An :class:`AgreementResult`; its table has one row per code, then a
        ``(macro)`` row (mean over codes, undefined values skipped) and a
        ``(micro)`` row (statistics of all unit x code decisions pooled).

    Raises:
        UsageError: fewer than two coders, mismatched matrices, or a reference that
            is not one of the coders / used with more than two coders.
    """
    names = list(matrices)
    if len(names) < 2:
        raise UsageError("agreement needs at least two coding tables")
    first = matrices[names[0]]
    for name in names[1:]:
        mat = matrices[name]
        if not (mat.index.equals(first.index) and list(mat.columns) == list(first.columns)):
            raise UsageError(f"coder {name!r} is not aligned with {names[0]!r}; use align() first")
    if reference is not None:
        if reference not in names:
            raise UsageError(f"reference {reference!r} is not one of the coders: {', '.join(names)}")
        if len(names) != 2:
            raise UsageError("a reference (precision/recall/F1) needs exactly two coders")
        names = [reference] + [n for n in names if n != reference]
    codes = list(first.columns)
    n = len(first.index)
    arrays = [matrices[nm].to_numpy(dtype=bool) for nm in names]
    m = len(arrays)

    rng = np.random.default_rng(seed)
    # Unit-resampling bootstrap: weights[b, i] = how often unit i is drawn in
    # resample b. Every statistic is a function of per-code sums over units, so a
    # resample's sums are weights @ (per-unit indicator).
    weights = (rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(float)
               if n_boot and n else np.zeros((0, n)))
    ones = np.ones((1, n))

    def sums(per_unit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        per_unit = per_unit.astype(float)
        return (ones @ per_unit)[0], weights @ per_unit

    if m == 2:
        a, b = arrays
        cells = [a & b, a & ~b, ~a & b, ~a & ~b]
        point_cells = [sums(x) for x in cells]
        point = cell_stats(*(pc[0] for pc in point_cells))
        boot = cell_stats(*(pc[1] for pc in point_cells))
        micro_point = cell_stats(*(pc[0].sum() for pc in point_cells))
        micro_boot = cell_stats(*(pc[1].sum(axis=1) for pc in point_cells))
        metrics = ["agreement", "kappa", "alpha"] + (["precision", "recall", "f1"] if reference else [])
    else:
        k = np.sum(arrays, axis=0)  # units x codes: coders who applied the code
        (sk, bsk), (skk, bskk) = sums(k), sums(k * k)
        all_agree = (k == 0) | (k == m)
        (sa, bsa) = sums(all_agree)
        point = {**fleiss_stats(sk, skk, n, m), "agreement": _div(sa, n)}
        boot = {**fleiss_stats(bsk, bskk, weights.sum(axis=1, keepdims=True), m),
                "agreement": _div(bsa, n)}
        micro_point = {**fleiss_stats(sk.sum(), skk.sum(), n * len(codes), m),
                       "agreement": _div(sa.sum(), n * len(codes))}
        micro_boot = {**fleiss_stats(bsk.sum(axis=1), bskk.sum(axis=1), n * len(codes), m),
                      "agreement": _div(bsa.sum(axis=1), n * len(codes))}
        metrics = ["agreement", "kappa", "alpha"]

    kappa_name = "cohen_kappa" if m == 2 else "fleiss_kappa"
    rename = {"kappa": kappa_name}
    table = pd.DataFrame({C.CODE_ID: codes, "n_units": n})
    for nm, arr in zip(names, arrays):
        table[f"prevalence_{nm}"] = arr.mean(axis=0) if n else np.nan
    macro = {C.CODE_ID: MACRO, "n_units": n}
    micro = {C.CODE_ID: MICRO, "n_units": n}
    for nm, arr in zip(names, arrays):
        macro[f"prevalence_{nm}"] = float(np.mean(arr.mean(axis=0))) if n and codes else np.nan
        micro[f"prevalence_{nm}"] = macro[f"prevalence_{nm}"]
    for metric in metrics:
        col = rename.get(metric, metric)
        table[col] = point[metric]
        with _quiet_nan():
            macro[col] = float(np.nanmean(point[metric])) if codes else np.nan
        micro[col] = float(micro_point[metric])
        if len(weights):
            lo, hi = _percentile_ci(boot[metric], ci)
            table[f"{col}_ci_low"], table[f"{col}_ci_high"] = lo, hi
            with _quiet_nan():
                macro_boot = np.nanmean(boot[metric], axis=1)
            lo, hi = _percentile_ci(macro_boot[:, None], ci)
            macro[f"{col}_ci_low"], macro[f"{col}_ci_high"] = float(lo[0]), float(hi[0])
            lo, hi = _percentile_ci(np.asarray(micro_boot[metric])[:, None], ci)
            micro[f"{col}_ci_low"], micro[f"{col}_ci_high"] = float(lo[0]), float(hi[0])
    table = pd.concat([table, pd.DataFrame([macro, micro])], ignore_index=True)
    table["landis_koch"] = table[kappa_name].map(landis_koch)
    table["krippendorff"] = table["alpha"].map(krippendorff_verdict)
    notes = []
    if unmatched is not None and len(unmatched):
        notes.append(f"{len(unmatched)} segment(s) not coded by every coder were left out "
                     f"(see the unmatched table)")
    if 0 < n < SMALL_SAMPLE:
        notes.append(f"only {n} unit(s): at this size kappa and alpha have wide confidence "
                     f"intervals, so the verdicts are indicative only (aim for {SMALL_SAMPLE} or more)")
    undefined = [code for code, k in zip(codes, np.atleast_1d(point["kappa"]))
                 if not np.isfinite(k)]
    if n and undefined:
        notes.append(f"kappa is undefined for {len(undefined)} code(s) ({', '.join(undefined)}): "
                     "the coders used it for every unit or for none; report percent agreement there")
    return AgreementResult(table=table,
                           unmatched=unmatched if unmatched is not None else pd.DataFrame(),
                           coders=names, reference=reference, n_units=n, notes=notes)
