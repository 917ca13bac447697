"""Heatmaps and grouped bars of theme matrices (code x document / attribute / speaker)."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from pipeline.figures._style import (
    EMPTY,
    FONT_SIZE,
    SEQUENTIAL,
    code_labels,
    flat_labels,
    format_value,
    group_colors,
    new_axes,
    set_title,
    text_color,
    wrap,
)

# Beyond these a heatmap is drawn compact (see ``plot_heatmap``): a code x document
# matrix of 900 documents took 2.6 s to draw and 24 s to save as a 116,000-pixel PNG.
MAX_ANNOTATED_COLUMNS = 30
MAX_ANNOTATED_ROWS = 60
MAX_SIZE = (16.0, 12.0)      # inches
MAX_LABELS = 50              # tick labels per axis
_CELLS_PER_INCH = 100        # the figure's dpi: above it, a cell is narrower than a pixel
_BINNED = {"nl": "elke kolom: het gemiddelde van {k} opeenvolgende kolommen",
           "en": "each column: the mean of {k} consecutive columns"}


def plot_heatmap(df: pd.DataFrame, *, ax: Axes | None = None, codebook: Any = None,
                 lang: str = "nl", fmt: str | None = None, title: str | None = None,
                 xlabel: str | None = None, colorbar_label: str | None = None,
                 cmap: str = SEQUENTIAL, mask_diagonal: bool = False) -> Figure:
    """Draw an annotated heatmap of a theme matrix.

    Args:
        df: matrix with codes as index (labels come from the codebook) and groups as
            columns (MultiIndex columns are joined with " · ").
        ax: axes to draw on; a new figure sized to the matrix otherwise.
        codebook: optional ``Codebook`` for row labels.
        lang: label language (``nl`` or ``en``).
        fmt: cell format such as ``"{:.0%}"``; default ints plainly, floats ``.2f``.
        title: figure title.
        xlabel: x-axis label (default: the columns' name).
        colorbar_label: label of the colour bar.
        cmap: sequential matplotlib colormap name.
        mask_diagonal: grey out the diagonal (square co-occurrence matrices).

    Returns:
        The matplotlib ``Figure``.

    A matrix wider than ``MAX_ANNOTATED_COLUMNS`` (or taller than ``MAX_ANNOTATED_ROWS``),
    such as a code x document matrix of a large project, is drawn compact: no numbers
    in the cells, a figure of at most ``MAX_SIZE`` inches, every k-th label only and,
    with more columns than pixels, each drawn column the mean of k consecutive ones
    (the axis label says so). Its cost then stays flat however many documents there are.
    """
    values = df.to_numpy(dtype=float) if df.size else np.zeros((0, 0))
    n_rows, n_cols = values.shape
    own = ax is None
    # A code x code matrix: long code labels on both axes. Wrapped, unrotated column
    # labels over wider, taller cells read better than a fan of 40-degree labels.
    square = codebook is not None and n_rows > 0 and list(df.columns) == list(df.index)
    size = ((max(4.5, 3.2 + 1.3 * n_cols), max(2.2, 1.6 + 0.55 * n_rows)) if square
            else (max(4.5, 2.6 + 0.85 * n_cols), max(2.2, 1.1 + 0.42 * n_rows)))
    compact = n_cols > MAX_ANNOTATED_COLUMNS or n_rows > MAX_ANNOTATED_ROWS
    if compact:
        size = (min(size[0], MAX_SIZE[0]), min(size[1], MAX_SIZE[1]))
    fig, ax = new_axes(ax, size)
    shown = np.ma.masked_invalid(values.copy())
    if mask_diagonal and n_rows == n_cols:
        shown[np.eye(n_rows, dtype=bool)] = np.ma.masked
    vmax = float(shown.max()) if shown.count() else 1.0
    norm = Normalize(vmin=0.0, vmax=vmax if vmax > 0 else 1.0)
    cm = colormaps[cmap].with_extremes(bad=EMPTY)
    # More columns than pixels: drawn as they are, each pixel would show an arbitrary
    # one of its columns; each drawn column is the mean of k neighbours instead.
    per = -(-n_cols // int(_CELLS_PER_INCH * size[0]))
    if per > 1:
        padded = np.ma.masked_all((n_rows, -(-n_cols // per) * per))
        padded[:, :n_cols] = shown
        drawn = padded.reshape(n_rows, -1, per).mean(axis=2)
        image = ax.imshow(drawn, cmap=cm, norm=norm, aspect="auto", interpolation="nearest",
                          extent=(-0.5, padded.shape[1] - 0.5, n_rows - 0.5, -0.5))
        ax.set_xlim(-0.5, n_cols - 0.5)
    else:
        image = ax.imshow(shown, cmap=cm, norm=norm, aspect="auto", interpolation="nearest")
    for i in range(0 if compact else n_rows):
        for j in range(n_cols):
            if np.ma.is_masked(shown[i, j]):
                label, color = format_value(values[i, j], fmt), "#555555"
            else:
                label, color = format_value(values[i, j], fmt), text_color(cm(norm(values[i, j])))
            if label:
                ax.text(j, i, label, ha="center", va="center", color=color, fontsize=FONT_SIZE - 1)
    rows = code_labels([str(i) for i in df.index], codebook, lang) if codebook is not None \
        else flat_labels(df.index)
    cols = flat_labels(df.columns)
    if square:
        cols = rows   # a code x code matrix: label both axes with code labels
    at_rows = _every_kth(n_rows)
    ax.set_yticks(at_rows, [rows[i] for i in at_rows], fontsize=FONT_SIZE)
    if len(at_rows) == n_rows:
        _bold_parents(ax, [str(i) for i in df.index])
    long_cols = not square and max((len(c) for c in cols), default=0) > 6
    if square:
        cols = [wrap(c, 14) for c in cols]
    # Rotated labels stay on one line: wrapped lines of rotated text collide.
    cols = cols if long_cols or square else [wrap(c, 18) for c in cols]
    at_cols = _every_kth(n_cols)
    ax.set_xticks(at_cols, [cols[j] for j in at_cols], fontsize=FONT_SIZE,
                  rotation=40 if long_cols else 0, ha="right" if long_cols else "center",
                  rotation_mode="anchor")
    ax.tick_params(length=0)
    if not compact:   # white lines between cells; in a compact matrix they would hide them
        ax.set_xticks(np.arange(-0.5, n_cols, 1), minor=True)
        ax.set_yticks(np.arange(-0.5, n_rows, 1), minor=True)
        ax.grid(which="minor", color="white", linewidth=1.5)
        ax.tick_params(which="minor", length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    name = xlabel if xlabel is not None else " · ".join(
        str(n) for n in (df.columns.names or []) if n)
    if per > 1:
        name = f"{name}\n{_BINNED.get(lang, _BINNED['en']).format(k=per)}".strip()
    ax.set_xlabel(name, fontsize=FONT_SIZE)
    set_title(fig, ax, title, own=own)
    bar = fig.colorbar(image, ax=ax, shrink=0.8, pad=0.02)
    bar.ax.tick_params(labelsize=FONT_SIZE - 1)
    if fmt and "%" in fmt:
        bar.ax.yaxis.set_major_formatter(lambda v, _pos: f"{v:.0%}")
    elif values.size and np.all(np.isnan(values) | (values == np.round(values))):
        bar.ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    if colorbar_label:
        bar.set_label(colorbar_label, fontsize=FONT_SIZE)
    return fig


def _every_kth(n: int) -> list[int]:
    """Positions to label on an axis of ``n`` cells: all, or every k-th up to ``MAX_LABELS``."""
    return list(range(0, n, -(-n // MAX_LABELS) if n > MAX_LABELS else 1))


def _bold_parents(ax: Axes, codes: list[str]) -> None:
    """When a matrix mixes levels, set parent codes in bold so sub-codes read as theirs."""
    depths = [c.count(".") for c in codes]
    if len(set(depths)) < 2:
        return
    for label, code in zip(ax.get_yticklabels(), codes):
        if any(other.startswith(code + ".") for other in codes):
            label.set_fontweight("bold")


def plot_grouped_bars(df: pd.DataFrame, *, ax: Axes | None = None, codebook: Any = None,
                      lang: str = "nl", fmt: str | None = None, title: str | None = None,
                      xlabel: str | None = None) -> Figure:
    """Compare groups (e.g. Netherlands vs Flanders) code by code with horizontal bars.

    Args:
        df: matrix with codes as index and one column per group.
        ax: axes to draw on; a new figure otherwise.
        codebook: optional ``Codebook`` for the code labels.
        lang: label language.
        fmt: value format for the bar-end labels and axis (``"{:.0%}"`` for shares).
        title: figure title.
        xlabel: value-axis label.

    Returns:
        The matplotlib ``Figure``.
    """
    groups = flat_labels(df.columns)
    n_codes, n_groups = df.shape
    own = ax is None
    fig, ax = new_axes(ax, (7.0, max(2.5, 0.9 + n_codes * (0.22 * n_groups + 0.25))))
    height = 0.8 / max(n_groups, 1)
    colors = group_colors(n_groups)
    y = np.arange(n_codes)
    for k, (group, color) in enumerate(zip(groups, colors)):
        vals = df.iloc[:, k].to_numpy(dtype=float)
        pos = y - 0.4 + height * (k + 0.5)
        ax.barh(pos, vals, height=height * 0.92, color=color, label=group)
        for p, v in zip(pos, vals):
            ax.text(v, p, " " + format_value(v, fmt), va="center", fontsize=FONT_SIZE - 2)
    labels = code_labels([str(i) for i in df.index], codebook, lang)
    ax.set_yticks(y, labels, fontsize=FONT_SIZE)
    _bold_parents(ax, [str(i) for i in df.index])
    ax.set_ylim(n_codes - 0.5, -0.5)   # first code on top, as in the codebook
    top = float(np.nanmax(df.to_numpy(dtype=float))) if df.size else 1.0
    ax.set_xlim(0, (top if top > 0 else 1.0) * 1.15)
    if fmt and "%" in fmt:
        ax.xaxis.set_major_formatter(lambda v, _pos: f"{v:.0%}")
    ax.tick_params(labelsize=FONT_SIZE)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.grid(axis="x", color="#DDDDDD", linewidth=0.6)
    ax.set_axisbelow(True)
    if xlabel:
        ax.set_xlabel(xlabel, fontsize=FONT_SIZE)
    legend_title = " · ".join(str(n) for n in (df.columns.names or []) if n) or None
    ax.legend(title=legend_title, fontsize=FONT_SIZE - 1, title_fontsize=FONT_SIZE - 1,
              frameon=False, loc="lower right")
    set_title(fig, ax, title, own=own)
    return fig
