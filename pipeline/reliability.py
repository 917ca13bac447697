"""Reliability statistics from cell counts, and their verdicts (pure numpy).

Every statistic is a function of per-code sums over units (2 coders: the 2x2 table;
more coders: how many coders applied the code), so ``pipeline.agreement`` gets its
bootstrap as a matrix product. Checked in the tests against scikit-learn, NLTK's
``agreement`` module and the ``krippendorff`` package.
"""
from __future__ import annotations

import numpy as np

__all__ = ["cell_stats", "fleiss_stats", "landis_koch", "krippendorff_verdict", "div"]

# Below this many units a kappa or alpha has a confidence interval too wide for a
# verdict to mean much (with 20 units the 95% interval of a kappa of 0.6 spans about
# +-0.35); the verdicts are then flagged as indicative.
SMALL_SAMPLE = 30


def div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """Elementwise ``num / den``, NaN where ``den`` is 0 (an undefined statistic)."""
    num, den = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den != 0, num / np.where(den == 0, 1, den), np.nan)


def cell_stats(n11, n10, n01, n00) -> dict[str, np.ndarray]:
    """Two-coder statistics from the 2x2 table (arrays broadcast; any shape).

    ``n10`` counts units coder 1 (the reference, for precision/recall) coded and
    coder 2 did not. Undefined values (0/0) are NaN, as in scikit-learn with
    ``zero_division=nan`` / ``replace_undefined_by=nan``.
    """
    n11, n10, n01, n00 = (np.asarray(x, dtype=float) for x in (n11, n10, n01, n00))
    n = n11 + n10 + n01 + n00
    po = div(n11 + n00, n)
    pe = div((n11 + n10) * (n11 + n01) + (n01 + n00) * (n10 + n00), n * n)
    kappa = div(po - pe, 1 - pe)
    # Krippendorff's alpha, nominal, 2 coders, no missing values: coincidence
    # matrix o11 = 2*n11, o00 = 2*n00, o01 = o10 = n10 + n01, N = 2n pairable values.
    v1 = 2 * n11 + n10 + n01
    v0 = 2 * n00 + n10 + n01
    alpha = 1 - div((2 * n - 1) * (n10 + n01), v1 * v0)
    precision = div(n11, n11 + n01)   # coder 2's positives that coder 1 confirms
    recall = div(n11, n11 + n10)
    f1 = div(2 * n11, 2 * n11 + n10 + n01)
    return {"agreement": po, "kappa": kappa, "alpha": alpha,
            "precision": precision, "recall": recall, "f1": f1}


def fleiss_stats(sum_k, sum_kk, n_units, m) -> dict[str, np.ndarray]:
    """Statistics for ``m >= 2`` coders from per-unit counts of positive votes.

    Args:
        sum_k: sum over units of k (coders who applied the code).
        sum_kk: sum over units of k*k.
        n_units: number of units.
        m: number of coders (every coder coded every unit).
    """
    sum_k, sum_kk, n = (np.asarray(x, dtype=float) for x in (sum_k, sum_kk, n_units))
    # Per unit, agreeing ordered pairs: k(k-1) + (m-k)(m-k-1)
    #   = 2k^2 - 2mk + m(m-1)
    agree_pairs = 2 * sum_kk - 2 * m * sum_k + n * m * (m - 1)
    p_bar = div(agree_pairs, n * m * (m - 1))
    p1 = div(sum_k, n * m)
    pe = p1 ** 2 + (1 - p1) ** 2
    fleiss = div(p_bar - pe, 1 - pe)
    # Krippendorff: disagreeing ordered pairs per unit 2k(m-k), weighted 1/(m-1).
    o01 = div(m * sum_k - sum_kk, m - 1)
    n_vals = n * m
    v1, v0 = sum_k, n_vals - sum_k
    alpha = 1 - div((n_vals - 1) * o01, v1 * v0)
    return {"kappa": fleiss, "alpha": alpha}


def landis_koch(kappa: float) -> str:
    """Landis & Koch (1977) label of a kappa value ("" when undefined)."""
    if kappa is None or not np.isfinite(kappa):
        return ""
    if kappa < 0:
        return "poor"
    for bound, label in ((0.20, "slight"), (0.40, "fair"), (0.60, "moderate"), (0.80, "substantial")):
        if kappa <= bound:
            return label
    return "almost perfect"


def krippendorff_verdict(alpha: float) -> str:
    """Krippendorff (2004): >= .800 reliable, >= .667 tentative, below: unreliable."""
    if alpha is None or not np.isfinite(alpha):
        return ""
    if alpha >= 0.800:
        return "reliable"
    if alpha >= 0.667:
        return "tentative"
    return "unreliable"
