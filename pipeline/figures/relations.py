"""Code relations: co-occurrence heatmap and network, document portrait, agreement chart."""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from pipeline import columns as C
from pipeline.errors import UsageError
from pipeline.figures._style import (
    EMPTY,
    FONT_SIZE,
    OKABE_ITO,
    code_colors,
    code_label,
    new_axes,
    set_title,
    wrap,
)
from pipeline.figures.matrices import plot_heatmap

KRIPPENDORFF_LINES = (0.667, 0.800)
_UNCODED = {"nl": "niet gecodeerd", "en": "not coded"}
_NETWORK_LEGEND = {"nl": ("lijndikte", "de ene code komt veel vaker voor"),
                   "en": ("line width", "one code far more frequent")}


def plot_cooccurrence(df: pd.DataFrame, *, ax: Axes | None = None, codebook: Any = None,
                      lang: str = "nl", fmt: str | None = None,
                      title: str | None = None) -> Figure:
    """Heatmap of a square code x code matrix (``aggregate.cooccurrence_matrix``).

    The diagonal (a code with itself) is greyed out so it does not dominate the scale.
    """
    if list(df.index) != list(df.columns):
        raise UsageError("co-occurrence heatmap needs a square code x code matrix")
    return plot_heatmap(df, ax=ax, codebook=codebook, lang=lang, fmt=fmt, title=title,
                        xlabel="", mask_diagonal=True)


def plot_network(df: pd.DataFrame, *, ax: Axes | None = None, codebook: Any = None,
                 lang: str = "nl", weight: str = "c_coefficient", min_weight: float = 0.0,
                 title: str | None = None) -> Figure:
    """Draw codes on a circle, linked by their co-occurrence.

    Args:
        df: pair table from ``aggregate.cooccurrence`` (``code_a``, ``code_b``, ``n_a``,
            ``n_b``, ``n_ab``, the weight column, ``imbalanced``).
        ax: axes to draw on; a new figure otherwise.
        codebook: optional ``Codebook`` for labels and colours.
        lang: label language.
        weight: column that sets line width (``n_ab``, ``jaccard``, ``c_coefficient``).
        min_weight: hide links at or below this weight (pairs that never co-occur are
            always hidden).
        title: figure title.

    Node area follows code frequency; dashed links flag pairs where one code is far
    more frequent than the other. A fixed circular layout in code order (instead of
    a force layout) keeps the picture identical from run to run.
    """
    if weight not in df.columns:
        raise UsageError(f"network weight column {weight!r} not in the pair table")
    codes = list(dict.fromkeys([*df["code_a"], *df["code_b"]]))
    freq = dict(zip(df["code_a"], df["n_a"])) | dict(zip(df["code_b"], df["n_b"]))
    own = ax is None
    fig, ax = new_axes(ax, (6.5, 6.0))
    angle = {c: math.pi / 2 - 2 * math.pi * i / max(len(codes), 1) for i, c in enumerate(codes)}
    xy = {c: (math.cos(a), math.sin(a)) for c, a in angle.items()}
    links = df[(df["n_ab"] > 0) & (df[weight] > min_weight)]
    wmax = float(links[weight].max()) if len(links) else 1.0
    for row in links.sort_values(weight, kind="mergesort").itertuples(index=False):
        (x0, y0), (x1, y1) = xy[row.code_a], xy[row.code_b]
        w = getattr(row, weight) / wmax if wmax else 0.0
        ax.plot([x0, x1], [y0, y1], color="#555555", alpha=0.35 + 0.55 * w,
                linewidth=0.8 + 6.0 * w, linestyle="--" if row.imbalanced else "-",
                solid_capstyle="round", zorder=1)
    colors = code_colors(codes, codebook)
    nmax = max(freq.values(), default=1) or 1
    for c in codes:
        x, y = xy[c]
        ax.scatter([x], [y], s=120 + 1400 * freq.get(c, 0) / nmax, color=colors[c],
                   edgecolor="white", linewidth=1.5, zorder=2)
        ha = "left" if x > 0.15 else "right" if x < -0.15 else "center"
        va = "bottom" if y > 0.15 else "top" if y < -0.15 else "center"
        ax.annotate(f"{wrap(code_label(c, codebook, lang), 18)}\n(n={freq.get(c, 0)})",
                    (x, y), xytext=(1.22 * x, 1.22 * y), textcoords="data", ha=ha, va=va,
                    fontsize=FONT_SIZE, zorder=3)
    ax.set_xlim(-1.8, 1.8)
    ax.set_ylim(-1.65, 1.65)
    ax.set_aspect("equal")
    ax.axis("off")
    words = _NETWORK_LEGEND.get(lang, _NETWORK_LEGEND["en"])
    handles = [Line2D([], [], color="#555555", linewidth=3, label=f"{weight}: {words[0]}"),
               Line2D([], [], color="#555555", linewidth=2, linestyle="--", label=words[1])]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=2,
              fontsize=FONT_SIZE - 1, frameon=False)
    set_title(fig, ax, title, own=own)
    return fig


def plot_document_portrait(df: pd.DataFrame, *, ax: Axes | None = None, codebook: Any = None,
                           lang: str = "nl", title: str | None = None) -> Figure:
    """Show the codes along each transcript as a row of coloured tiles.

    Args:
        df: table from ``aggregate.document_portrait`` (``doc_id``, ``position``,
            ``code_id``, ``slot``, ``n_slots``).
        ax: axes to draw on; a new figure otherwise.
        codebook: optional ``Codebook`` for labels and colours.
        lang: label language.
        title: figure title.

    A segment with several codes is split into horizontal stripes; uncoded segments
    are light grey, so the rhythm of the interview stays visible.
    """
    docs = sorted(df[C.DOC_ID].astype(str).unique()) if len(df) else []
    codes = list(dict.fromkeys(c for c in df[C.CODE_ID] if c)) if len(df) else []
    if codebook is not None:   # legend in codebook order, not order of first appearance
        rank = {c: i for i, c in enumerate(getattr(codebook, "codes", {}))}
        codes.sort(key=lambda c: (rank.get(c, len(rank)), c))
    colors = code_colors(codes, codebook)
    longest = int(df["position"].max()) + 1 if len(df) else 1
    own = ax is None
    fig, ax = new_axes(ax, (min(14.0, 3.0 + 0.14 * longest), 1.6 + 0.5 * len(docs)))
    row = {d: i for i, d in enumerate(docs)}
    for r in df.itertuples(index=False):
        i = row[str(getattr(r, C.DOC_ID))]
        h = 0.8 / r.n_slots
        code = getattr(r, C.CODE_ID)
        ax.add_patch(Rectangle((r.position, i - 0.4 + r.slot * h), 0.92, h,
                               facecolor=colors.get(code, EMPTY) if code else EMPTY,
                               edgecolor="none"))
    ax.set_xlim(-0.5, longest + 0.5)
    ax.set_ylim(len(docs) - 0.5, -0.5)
    ax.set_yticks(range(len(docs)), docs, fontsize=FONT_SIZE)
    ax.set_xlabel("segment (document order)", fontsize=FONT_SIZE)
    ax.tick_params(labelsize=FONT_SIZE)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    handles = [Patch(color=colors[c], label=code_label(c, codebook, lang)) for c in codes]
    handles.append(Patch(color=EMPTY, label=_UNCODED.get(lang, _UNCODED["en"])))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0),
              fontsize=FONT_SIZE - 1, frameon=False)
    set_title(fig, ax, title, own=own)
    return fig


def plot_agreement(df: pd.DataFrame, *, ax: Axes | None = None, codebook: Any = None,
                   lang: str = "nl", metric: str | None = None,
                   title: str | None = None) -> Figure:
    """Agreement per code with confidence intervals and Krippendorff's 0.667/0.800 lines.

    Args:
        df: table from ``pipeline.agreement`` (``code_id``, the metric column and
            optional ``<metric>_ci_low`` / ``<metric>_ci_high``); summary rows such as
            ``(macro)`` are drawn last, below a rule.
        ax: axes to draw on; a new figure otherwise.
        codebook: optional ``Codebook`` for labels.
        lang: label language.
        metric: column to draw; default the first of cohen_kappa, fleiss_kappa,
            kappa, alpha present.
        title: figure title.
    """
    if metric is None:
        metric = next((m for m in ("cohen_kappa", "fleiss_kappa", "kappa", "alpha")
                       if m in df.columns), None)
    if metric is None or metric not in df.columns:
        raise UsageError(f"agreement table has no {metric or 'kappa/alpha'} column")
    own = ax is None
    own = ax is None
    fig, ax = new_axes(ax, (6.5, 1.2 + 0.38 * len(df)))
    codes = [str(c) for c in df[C.CODE_ID]]
    est = df[metric].to_numpy(dtype=float)
    lo = df.get(f"{metric}_ci_low", pd.Series(est)).to_numpy(dtype=float)
    hi = df.get(f"{metric}_ci_high", pd.Series(est)).to_numpy(dtype=float)
    y = np.arange(len(df))
    summary = np.array([c.startswith("(") for c in codes])
    for lim, style in zip(KRIPPENDORFF_LINES, (":", "--")):
        ax.axvline(lim, color="#444444", linestyle=style, linewidth=1.1, zorder=1)
        ax.text(lim, -0.9, f"{lim:.3f}", ha="center", va="bottom", fontsize=FONT_SIZE - 2,
                color="#444444", bbox={"facecolor": "white", "edgecolor": "none", "pad": 1})
    colors = np.where(est >= KRIPPENDORFF_LINES[1], OKABE_ITO[2],
                      np.where(est >= KRIPPENDORFF_LINES[0], OKABE_ITO[0], OKABE_ITO[4]))
    xerr = np.vstack([np.clip(est - lo, 0, None), np.clip(hi - est, 0, None)])
    ok = ~np.isnan(est)
    ax.errorbar(est[ok], y[ok], xerr=np.nan_to_num(xerr[:, ok]), fmt="none", ecolor="#333333",
                elinewidth=1.2, capsize=3, zorder=1)
    ax.scatter(est[ok], y[ok], c=list(colors[ok]), s=[70 if s else 45 for s in summary[ok]],
               marker="o", edgecolor="black", linewidth=0.6, zorder=2)
    for yy in y[~ok]:
        ax.text(0.0, yy, "undefined", va="center", fontsize=FONT_SIZE - 2, color="#666666")
    if summary.any() and not summary.all():
        ax.axhline(np.argmax(summary) - 0.5, color="#999999", linewidth=0.8)
    labels = [c if c.startswith("(") else code_label(c, codebook, lang) for c in codes]
    ax.set_yticks(y, labels, fontsize=FONT_SIZE)
    ax.set_ylim(len(df) - 0.5, -1.2)
    finite = np.concatenate([lo[~np.isnan(lo)], est[ok], [0.0]])
    ax.set_xlim(min(-0.05, float(finite.min()) - 0.05), 1.02)
    ax.set_xlabel(metric.replace("_", " "), fontsize=FONT_SIZE)
    ax.tick_params(labelsize=FONT_SIZE)
    ax.grid(axis="x", color="#EEEEEE")
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    set_title(fig, ax, title, own=own)
    return fig
