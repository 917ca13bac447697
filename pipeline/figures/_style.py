"""Palette, labels and figure set-up shared by the plot functions.

Colours: the Okabe-Ito palette (safe for the common colour-vision deficiencies) for
categories, a single-hue sequential map for magnitudes (it reads by lightness, so it
survives greyscale printing too), and the codebook's own colours where it gives them.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import matplotlib.colors as mcolors
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

OKABE_ITO = ["#E69F00", "#56B4E9", "#009E73", "#0072B2", "#D55E00", "#CC79A7", "#F0E442",
             "#000000"]
NEUTRAL = "#BBBBBB"
EMPTY = "#EEEEEE"
SEQUENTIAL = "Blues"
FONT_SIZE = 9


def new_axes(ax: Axes | None, size: tuple[float, float]) -> tuple[Figure, Axes]:
    """Return ``(figure, axes)``: the given axes' figure, or a fresh pyplot-free figure.

    A bare ``Figure`` (not ``pyplot.figure``) keeps the functions free of global
    state: nothing accumulates when a notebook makes many figures.
    """
    if ax is not None:
        return ax.figure, ax
    fig = Figure(figsize=size, dpi=100, layout="constrained")
    return fig, fig.add_subplot()


def code_label(code_id: str, codebook: Any = None, lang: str = "nl") -> str:
    """Return the codebook label of a code in ``lang``, or the id when unknown."""
    if codebook is not None and code_id in getattr(codebook, "codes", {}):
        return str(codebook.label(code_id, lang))
    return str(code_id)


def code_labels(codes: Iterable[str], codebook: Any = None, lang: str = "nl") -> list[str]:
    """Labels for several codes; see ``code_label``."""
    return [code_label(c, codebook, lang) for c in codes]


def code_colors(codes: Sequence[str], codebook: Any = None) -> dict[str, str]:
    """Map codes to colours: the codebook colour, else the colour of the nearest
    ancestor that has one, else the next Okabe-Ito colour in code order."""
    known = getattr(codebook, "codes", {}) if codebook is not None else {}
    given: dict[str, str | None] = {}
    for code in codes:
        chain = [code] + [".".join(code.split(".")[:i]) for i in range(code.count("."), 0, -1)]
        color = next((getattr(known[c], "color", None) for c in chain
                      if c in known and getattr(known[c], "color", None)), None)
        given[code] = color if color and mcolors.is_color_like(color) else None
    # Spare colours skip those the codebook already uses, so two codes never share one.
    used = {mcolors.to_hex(c).lower() for c in given.values() if c}
    spare = iter([c for c in OKABE_ITO if c.lower() not in used] * 4)
    return {code: color or next(spare, NEUTRAL) for code, color in given.items()}


def group_colors(n: int) -> list[str]:
    """``n`` categorical colours (Okabe-Ito, then repeated)."""
    return [OKABE_ITO[i % len(OKABE_ITO)] for i in range(n)]


def flat_labels(index: pd.Index, sep: str = " · ") -> list[str]:
    """Join MultiIndex tuples into strings; plain values become strings."""
    if isinstance(index, pd.MultiIndex):
        return [sep.join(map(str, t)) for t in index]
    return [str(v) for v in index]


def text_color(rgba: Sequence[float]) -> str:
    """Black or white, whichever reads better on a background colour."""
    r, g, b = rgba[:3]
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.55 else "white"


def format_value(value: float, fmt: str | None) -> str:
    """Format a cell: ``fmt`` (``"{:.0%}"``), else ints plainly and floats with 2 decimals."""
    if pd.isna(value):
        return ""
    if fmt:
        return fmt.format(value)
    if float(value).is_integer():
        return f"{int(value)}"
    return f"{value:.2f}"


def wrap(text: str, width: int = 22) -> str:
    """Wrap a label onto lines of at most ``width`` characters at spaces."""
    words, lines, line = str(text).split(), [], ""
    for w in words:
        if line and len(line) + 1 + len(w) > width:
            lines.append(line)
            line = w
        else:
            line = f"{line} {w}".strip()
    lines.append(line)
    return "\n".join(lines)


def set_title(fig: Figure, ax: Axes, title: str | None, *, own: bool) -> None:
    """Title a plot. On a figure we made, a left-aligned figure title: constrained
    layout makes room for it, whereas a long axes title would run off the canvas."""
    if not title:
        return
    if own:
        fig.suptitle(title, x=0.01, ha="left", fontsize=FONT_SIZE + 2)
    else:
        ax.set_title(title, fontsize=FONT_SIZE + 2, loc="left")
