"""Report figures: pure functions ``plot_*(df, *, ax=None, ...) -> Figure``.

They take the tables of :mod:`pipeline.aggregate` and never save anything; saving
(with the fixed metadata that makes files byte-identical) is
``pipeline.report.save_figure``. Labels come from the codebook in ``lang`` (nl or en).
"""
from __future__ import annotations

from pipeline.figures._style import OKABE_ITO, code_colors, code_label, code_labels
from pipeline.figures.matrices import (
    MAX_ANNOTATED_COLUMNS,
    MAX_ANNOTATED_ROWS,
    MAX_LABELS,
    MAX_SIZE,
    plot_grouped_bars,
    plot_heatmap,
)
from pipeline.figures.relations import (
    KRIPPENDORFF_LINES,
    MAX_PORTRAIT_DOCS,
    plot_agreement,
    plot_cooccurrence,
    plot_document_portrait,
    plot_network,
)

__all__ = [
    "KRIPPENDORFF_LINES", "MAX_ANNOTATED_COLUMNS", "MAX_ANNOTATED_ROWS", "MAX_LABELS",
    "MAX_PORTRAIT_DOCS", "MAX_SIZE", "OKABE_ITO", "code_colors", "code_label", "code_labels",
    "plot_agreement", "plot_cooccurrence", "plot_document_portrait", "plot_grouped_bars",
    "plot_heatmap", "plot_network",
]
