"""Code relations: co-occurrence heatmap and network, document portrait, agreement chart."""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.collections import PolyCollection
from matplotlib.patches import Patch

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
_MEASURE_NAMES = {
    "c_coefficient": {"nl": "c-coëfficiënt (ATLAS.ti)", "en": "c-coefficient (ATLAS.ti)"},
    "jaccard": {"nl": "Jaccard-index", "en": "Jaccard index"},
    "n_ab": {"nl": "aantal keer samen", "en": "times together"},
}
_NETWORK_WORDS = {
    "nl": {"nodes": "n = gecodeerde segmenten per thema", "shown": "{k} van {m} paren met {rule}",
           "top": "de {k} sterkste van {m} paren ({rule})",
           "none": "geen paren met {rule}",
           "imbalanced": "gestreept: de ene code komt veel vaker voor (maat onderschat het verband)"},
    "en": {"nodes": "n = segments coded per theme", "shown": "{k} of {m} pairs with {rule}",
           "top": "the {k} strongest of {m} pairs ({rule})",
           "none": "no pairs with {rule}",
           "imbalanced": "dashed: one code far more frequent (the measure understates the link)"},
}
_DEFAULT_MIN = {"c_coefficient": 0.1, "jaccard": 0.1, "n_ab": 1}


def measure_name(column: str, lang: str = "nl") -> str:
    """Readable name of a co-occurrence measure column (``c_coefficient`` -> c-coëfficiënt)."""
    names = _MEASURE_NAMES.get(column)
    return names.get(lang, names["en"]) if names else column.replace("_", " ")


def _fmt_weight(value: float, column: str) -> str:
    return f"{value:.0f}" if column == "n_ab" else f"{value:.2f}"


def plot_cooccurrence(df: pd.DataFrame, *, ax: Axes | None = None, codebook: Any = None,
                      lang: str = "nl", fmt: str | None = None,
                      title: str | None = None, colorbar_label: str | None = None) -> Figure:
    """Heatmap of a square code x code matrix (``aggregate.cooccurrence_matrix``).

    The diagonal (a code with itself) is greyed out so it does not dominate the scale.
    """
    if list(df.index) != list(df.columns):
        raise UsageError("co-occurrence heatmap needs a square code x code matrix")
    return plot_heatmap(df, ax=ax, codebook=codebook, lang=lang, fmt=fmt, title=title,
                        xlabel="", mask_diagonal=True, colorbar_label=colorbar_label)


def plot_network(df: pd.DataFrame, *, ax: Axes | None = None, codebook: Any = None,
                 lang: str = "nl", weight: str = "c_coefficient", min_weight: float | None = None,
                 top: int | None = None, title: str | None = None) -> Figure:
    """Draw codes on a circle, linked by their strongest co-occurrences.

    Args:
        df: pair table from ``aggregate.cooccurrence`` (``code_a``, ``code_b``, ``n_a``,
            ``n_b``, ``n_ab``, the weight column, ``imbalanced``; ``segments_a`` /
            ``segments_b`` when present set the node sizes).
        ax: axes to draw on; a new figure otherwise.
        codebook: optional ``Codebook`` for labels and colours.
        lang: label language.
        weight: column that sets line width (``n_ab``, ``jaccard``, ``c_coefficient``).
        min_weight: draw only links with at least this weight (default 0.1 for
            ``c_coefficient`` and ``jaccard``, 1 for ``n_ab``); pairs that never co-occur
            are never drawn.
        top: additionally keep only the ``top`` strongest links.
        title: figure title.

    Line width and darkness run linearly from the weakest to the strongest link
    shown, and a note under the plot states the rule (``12 of 21 pairs with c >=
    0.10``). Dashed links flag pairs where one code is far more frequent than the
    other (the measure then understates the link); the legend explains the dash only
    when one is drawn. Node area and ``n`` are the segments coded with each code (not
    the co-occurrence windows). A fixed circular layout in code order keeps the
    picture identical from run to run.
    """
    if weight not in df.columns:
        raise UsageError(f"network weight column {weight!r} not in the pair table")
    if top is not None and top < 1:
        raise UsageError(f"network top must be >= 1, got {top}")
    words = _NETWORK_WORDS.get(lang, _NETWORK_WORDS["en"])
    codes = list(dict.fromkeys([*df["code_a"], *df["code_b"]]))
    size_a, size_b = (("segments_a", "segments_b") if {"segments_a", "segments_b"} <= set(df.columns)
                      else ("n_a", "n_b"))
    freq = {**dict(zip(df["code_a"], df[size_a])), **dict(zip(df["code_b"], df[size_b]))}
    own = ax is None
    fig, ax = new_axes(ax, (6.5, 6.4))
    angle = {c: math.pi / 2 - 2 * math.pi * i / max(len(codes), 1) for i, c in enumerate(codes)}
    xy = {c: (math.cos(a), math.sin(a)) for c, a in angle.items()}
    threshold = _DEFAULT_MIN.get(weight, 0.0) if min_weight is None else min_weight
    links = df[(df["n_ab"] > 0) & (df[weight] >= threshold)]
    links = links.sort_values([weight, "n_ab"], ascending=False, kind="mergesort")
    if top is not None:
        links = links.head(top)
    lo = float(links[weight].min()) if len(links) else 0.0
    hi = float(links[weight].max()) if len(links) else 1.0
    span = hi - lo

    def width(v: float) -> float:
        return 1.5 + 6.5 * ((v - lo) / span if span > 0 else 1.0)

    def alpha(v: float) -> float:
        return 0.45 + 0.45 * ((v - lo) / span if span > 0 else 1.0)

    for row in links.iloc[::-1].itertuples(index=False):   # strongest drawn last, on top
        (x0, y0), (x1, y1) = xy[row.code_a], xy[row.code_b]
        v = float(getattr(row, weight))
        ax.plot([x0, x1], [y0, y1], color="#444444", alpha=alpha(v), linewidth=width(v),
                linestyle=(0, (3, 1.5)) if row.imbalanced else "-",
                solid_capstyle="round", dash_capstyle="butt", zorder=1)
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
    name = measure_name(weight, lang)
    short = "c" if weight == "c_coefficient" else name
    rule = f"{short} ≥ {_fmt_weight(threshold, weight)}"
    n_pairs = int((df["n_ab"] > 0).sum()) if len(df) else 0
    key = "top" if top is not None and len(links) == top < n_pairs else "shown"
    note = (words[key].format(k=len(links), m=n_pairs, rule=rule) if len(links)
            else words["none"].format(rule=rule))
    handles = []
    if len(links):
        values = [hi] if span <= 0 else [lo, hi]
        handles = [Line2D([], [], color="#444444", alpha=alpha(v), linewidth=width(v),
                          label=f"{name} = {_fmt_weight(v, weight)}") for v in values]
    if len(links) and links["imbalanced"].astype(bool).any():
        handles.append(Line2D([], [], color="#444444", linewidth=2,
                              linestyle=(0, (3, 1.5)), label=words["imbalanced"]))
    handles.append(Line2D([], [], linestyle="none", label=words["nodes"]))
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=1,
              fontsize=FONT_SIZE - 1, frameon=False, title=note, title_fontsize=FONT_SIZE - 1,
              handlelength=3.0)
    set_title(fig, ax, title, own=own)
    return fig


_PORTRAIT_AXIS = {
    "nl": ("positie in het document (aandeel van de segmenten)", "segment (volgorde in het document)"),
    "en": ("position in the document (share of its segments)", "segment (document order)"),
}
_PORTRAIT_SHOWN = {"nl": "de eerste {k} van {n} documenten (op naam)",
                   "en": "the first {k} of {n} documents (by name)"}
# A row per document: 900 documents made a 68,000-pixel-high PNG that took 3 minutes.
MAX_PORTRAIT_DOCS = 40


def plot_document_portrait(df: pd.DataFrame, *, ax: Axes | None = None, codebook: Any = None,
                           lang: str = "nl", title: str | None = None,
                           normalize: bool = True,
                           max_docs: int | None = MAX_PORTRAIT_DOCS) -> Figure:
    """Show the codes along each transcript as a row of coloured tiles.

    Args:
        df: table from ``aggregate.document_portrait`` (``doc_id``, ``position``,
            ``n_positions``, ``code_id``, ``slot``, ``n_slots``).
        ax: axes to draw on; a new figure otherwise.
        codebook: optional ``Codebook`` for labels and colours.
        lang: label language.
        title: figure title.
        normalize: place segments by their relative position in the document (0-100%),
            so a long document (a 60-answer survey) does not squeeze the interviews
            into a corner; ``False`` puts segment k at x = k.
        max_docs: draw at most this many documents, the first by name (the axis label
            says so); ``None`` draws all. To portray other documents, select their rows
            of ``df`` first.

    A segment with several codes is split into horizontal stripes; uncoded segments
    are light grey, so the rhythm of the interview stays visible. Document labels
    carry the number of segments.
    """
    if max_docs is not None and max_docs < 1:
        raise UsageError(f"max_docs must be at least 1, got {max_docs}")
    docs = sorted(df[C.DOC_ID].astype(str).unique()) if len(df) else []
    n_docs = len(docs)
    if max_docs is not None and n_docs > max_docs:
        docs = docs[:max_docs]
        df = df[df[C.DOC_ID].astype(str).isin(docs)]
    codes = list(dict.fromkeys(c for c in df[C.CODE_ID] if c)) if len(df) else []
    if codebook is not None:   # legend in codebook order, not order of first appearance
        rank = {c: i for i, c in enumerate(getattr(codebook, "codes", {}))}
        codes.sort(key=lambda c: (rank.get(c, len(rank)), c))
    colors = code_colors(codes, codebook)
    longest = int(df["position"].max()) + 1 if len(df) else 1
    n_pos = (df.groupby(df[C.DOC_ID].astype(str))["n_positions"].max().to_dict()
             if len(df) and "n_positions" in df.columns else {})
    own = ax is None
    width = 9.5 if normalize else min(14.0, 3.0 + 0.14 * longest)
    fig, ax = new_axes(ax, (width, 1.6 + 0.5 * len(docs)))
    ax.add_collection(_tiles(df, docs, colors, n_pos, longest, normalize))
    if normalize:
        ax.set_xlim(0.0, 1.0)
        ax.xaxis.set_major_formatter(lambda v, _pos: f"{v:.0%}")
    else:
        ax.set_xlim(-0.5, longest - 0.5)
    ax.set_ylim(len(docs) - 0.5, -0.5)
    labels = [f"{d} ({n_pos[d]})" if d in n_pos else d for d in docs]
    ax.set_yticks(range(len(docs)), labels, fontsize=FONT_SIZE)
    axis = _PORTRAIT_AXIS.get(lang, _PORTRAIT_AXIS["en"])
    xlabel = axis[0] if normalize else axis[1]
    if len(docs) < n_docs:
        shown = _PORTRAIT_SHOWN.get(lang, _PORTRAIT_SHOWN["en"])
        xlabel += "\n" + shown.format(k=len(docs), n=n_docs)
    ax.set_xlabel(xlabel, fontsize=FONT_SIZE)
    ax.tick_params(labelsize=FONT_SIZE)
    ax.tick_params(axis="y", length=0)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    handles = [Patch(color=colors[c], label=code_label(c, codebook, lang)) for c in codes]
    handles.append(Patch(color=EMPTY, label=_UNCODED.get(lang, _UNCODED["en"])))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0),
              fontsize=FONT_SIZE - 1, frameon=False)
    set_title(fig, ax, title, own=own)
    return fig


def _tiles(df: pd.DataFrame, docs: list[str], colors: dict[str, str], n_pos: dict[str, int],
           longest: int, normalize: bool) -> PolyCollection:
    """One rectangle per portrait row, as a single collection: thousands of separate
    patches took seconds to draw and to save."""
    doc = df[C.DOC_ID].astype(str)
    i = doc.map({d: k for k, d in enumerate(docs)}).to_numpy(dtype=float)
    h = 0.8 / df["n_slots"].to_numpy(dtype=float)
    pos = df["position"].to_numpy(dtype=float)
    if normalize:
        n = np.maximum(doc.map(lambda d: n_pos.get(d, longest)).to_numpy(dtype=float), 1.0)
        x, w = pos / n, 0.92 / n
    else:
        x, w = pos - 0.46, np.full(len(df), 0.92)
    y = i - 0.4 + df["slot"].to_numpy(dtype=float) * h
    corners = np.stack([np.column_stack(c) for c in
                        ((x, y), (x + w, y), (x + w, y + h), (x, y + h))], axis=1)
    faces = [colors.get(c, EMPTY) if c else EMPTY for c in df[C.CODE_ID]]
    return PolyCollection(corners, facecolors=faces, edgecolors="none", linewidths=0)


_METRIC_NAMES = {"cohen_kappa": "Cohen's kappa", "fleiss_kappa": "Fleiss' kappa",
                 "kappa": "kappa", "alpha": "Krippendorff's alpha"}


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
    ax.set_xlabel(_METRIC_NAMES.get(metric, metric.replace("_", " ")), fontsize=FONT_SIZE)
    ax.tick_params(labelsize=FONT_SIZE)
    ax.grid(axis="x", color="#EEEEEE")
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    set_title(fig, ax, title, own=own)
    return fig
