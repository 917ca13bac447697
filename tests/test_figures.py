"""Tests of pipeline.figures: the plots draw what the tables say, in codebook labels and colours."""
from __future__ import annotations

import hashlib

import matplotlib.colors as mcolors
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from pipeline import aggregate as A
from pipeline import figures as F
from pipeline.errors import UsageError
from pipeline.report import save_figure
from test_aggregate import FakeCodebook, _codings, _segments


@pytest.fixture()
def coded():
    return A.filter_coded(_segments(), _codings())


def _texts(fig: Figure) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def test_heatmap_annotates_every_cell_with_codebook_labels(coded):
    seg, cod = coded
    m = A.theme_matrix(seg, cod, by="country", value="share", level="top", codebook=FakeCodebook())
    fig = F.plot_heatmap(m, codebook=FakeCodebook(), lang="en", fmt="{:.0%}", title="t")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()][:2] == ["AGENCY-en", "OWNERSHIP-en"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["BE", "NL"]
    assert len(_texts(fig)) == m.size
    assert "67%" in _texts(fig)
    assert fig.get_suptitle() == "t"


def test_heatmap_joins_two_attribute_columns(coded):
    seg, cod = coded
    m = A.theme_matrix(seg, cod, by=["country", "sector"])
    fig = F.plot_heatmap(m)
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels == ["BE · secondary", "NL · primary"]
    assert fig.axes[0].get_xlabel() == "country · sector"


def test_grouped_bars_one_bar_per_code_and_group(coded):
    seg, cod = coded
    m = A.theme_matrix(seg, cod, by="country", value="share", level="top", codebook=FakeCodebook())
    fig = F.plot_grouped_bars(m, codebook=FakeCodebook(), fmt="{:.0%}")
    ax = fig.axes[0]
    assert len(ax.patches) == m.size
    widths = sorted(round(p.get_width(), 4) for p in ax.patches)
    assert widths == sorted(round(v, 4) for v in m.to_numpy().ravel())
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["BE", "NL"]


def test_code_colors_prefer_codebook_then_ancestor_then_okabe_ito():
    cb = FakeCodebook()
    cb.codes["amo"].color = "#123456"
    colors = F.code_colors(["agency", "amo", "amo.ability"], cb)
    assert colors["amo"] == colors["amo.ability"] == "#123456"
    assert colors["agency"] == F.OKABE_ITO[0]


def test_cooccurrence_heatmap_and_network(coded):
    seg, cod = coded
    pairs = A.cooccurrence(seg, cod, level="top")
    fig = F.plot_cooccurrence(A.cooccurrence_matrix(pairs, "c"), codebook=FakeCodebook())
    assert "0.67" in _texts(fig)
    xlabels = fig.axes[0].get_xticklabels()     # code x code: wrapped, not a fan of rotated labels
    assert all(t.get_rotation() == 0 for t in xlabels)
    assert [t.get_text() for t in xlabels] == [t.get_text().replace("\n", " ") for t in xlabels]
    net = F.plot_network(pairs, codebook=FakeCodebook(), lang="en")
    ax = net.axes[0]
    n_links = int((pairs["n_ab"] > 0).sum())
    assert len(ax.lines) == n_links
    assert any("OWNERSHIP-en\n(n=3)" == t.get_text() for t in ax.texts)
    with pytest.raises(UsageError, match="square"):
        F.plot_cooccurrence(pd.DataFrame([[1, 2]], index=["a"], columns=["a", "b"]))
    with pytest.raises(UsageError, match="weight column 'lift'"):
        F.plot_network(pairs, weight="lift")


def _tiles(ax):
    """The portrait's tiles: (x0, y0, x1, y1, facecolor) of each rectangle of its collection."""
    (tiles,) = ax.collections
    boxes = [path.vertices for path in tiles.get_paths()]
    faces = [tuple(c) for c in tiles.get_facecolors()]
    return [(*v.min(axis=0), *v.max(axis=0), f) for v, f in zip(boxes, faces)]


def test_document_portrait_tiles_use_code_colors(coded):
    seg, cod = coded
    cb = FakeCodebook()
    cb.codes["ownership"].color = "#E69F00"
    p = A.document_portrait(seg, cod, codebook=cb)
    fig = F.plot_document_portrait(p, codebook=cb, lang="en")
    ax = fig.axes[0]
    tiles = _tiles(ax)
    assert len(tiles) == len(p)
    orange = mcolors.to_rgba("#E69F00")
    assert sum(t[4] == orange for t in tiles) == int((p["code_id"] == "ownership").sum())
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a (3)", "b (3)"]   # segments per doc
    assert ax.get_legend().get_texts()[-1].get_text() == "not coded"


def test_document_portrait_normalises_position_per_document():
    """A 60-answer survey must not squeeze a short interview into the left corner."""
    rows = [("short", p, 4, f"s:{p}", "agency", 0, 1) for p in range(4)]
    rows += [("survey", p, 60, f"v:{p}", "", 0, 1) for p in range(60)]
    p = pd.DataFrame(rows, columns=["doc_id", "position", "n_positions", "segment_id", "code_id",
                                    "slot", "n_slots"])
    ax = F.plot_document_portrait(p, lang="nl").axes[0]
    short = [t for t in _tiles(ax) if abs(t[1] + 0.4) < 1e-9]          # first row
    assert len(short) == 4
    assert max(t[2] for t in short) > 0.9                                # spans the whole axis
    assert ax.get_xlim() == (0.0, 1.0)
    assert "positie in het document" in ax.get_xlabel()
    raw = F.plot_document_portrait(p, lang="en", normalize=False).axes[0]
    assert raw.get_xlabel() == "segment (document order)"
    assert raw.get_xlim()[1] == pytest.approx(59.5)


def test_document_portrait_of_many_documents_draws_the_first_by_name():
    rows = [(f"d{k:03d}", p, 3, f"d{k}:{p}", "agency" if k % 2 else "", 0, 1)
            for k in range(95, -1, -1) for p in range(3)]
    p = pd.DataFrame(rows, columns=["doc_id", "position", "n_positions", "segment_id", "code_id",
                                    "slot", "n_slots"])
    ax = F.plot_document_portrait(p, lang="en", max_docs=10).axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == [f"d{k:03d} (3)" for k in range(10)]
    assert len(_tiles(ax)) == 30
    assert ax.get_xlabel().endswith("the first 10 of 96 documents (by name)")
    default = F.plot_document_portrait(p, lang="nl").axes[0]
    assert len(default.get_yticklabels()) == F.MAX_PORTRAIT_DOCS
    assert "de eerste 40 van 96 documenten" in default.get_xlabel()
    everything = F.plot_document_portrait(p, max_docs=None).axes[0]
    assert len(everything.get_yticklabels()) == 96 and "first" not in everything.get_xlabel()
    with pytest.raises(UsageError, match="max_docs must be at least 1, got 0"):
        F.plot_document_portrait(p, max_docs=0)


def test_heatmap_of_many_documents_is_compact_and_keeps_every_column():
    rng = np.random.default_rng(0)
    m = pd.DataFrame(rng.random((5, 900)), index=[f"c{i}" for i in range(5)],
                     columns=pd.Index([f"doc{j:04d}" for j in range(900)], name="doc_id"))
    fig = F.plot_heatmap(m, fmt="{:.0%}")
    ax = fig.axes[0]
    assert len(ax.texts) == 0                               # no numbers in 4,500 cells
    assert ax.images[0].get_array().shape == (5, 900)       # but every document is drawn
    w, h = fig.get_size_inches()
    assert w <= F.MAX_SIZE[0] and h <= F.MAX_SIZE[1]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels[:2] == ["doc0000", "doc0018"] and len(labels) == F.MAX_LABELS
    assert ax.images[0].get_interpolation() == "nearest"
    ones = pd.DataFrame(np.tile([[0.0], [1.0], [0.5]], 5000), index=["a", "b", "c"])
    ones.iloc[2, 4999] = np.nan                         # a missing cell does not count
    crowded = F.plot_heatmap(ones, lang="en").axes[0]
    drawn = crowded.images[0].get_array()
    assert drawn.shape == (3, 1250)                     # 5,000 columns, 4 per drawn column
    assert drawn[0].max() == 0.0 and drawn[1].min() == 1.0 and drawn[2].min() == 0.5
    assert crowded.get_xlim() == (-0.5, 4999.5)
    assert crowded.get_xlabel().endswith("each column: the mean of 4 consecutive columns")
    small = F.plot_heatmap(m.iloc[:, :F.MAX_ANNOTATED_COLUMNS], fmt="{:.0%}").axes[0]
    assert len(small.texts) == 5 * F.MAX_ANNOTATED_COLUMNS


def _pairs(rows):
    cols = ["code_a", "code_b", "n_a", "n_b", "n_ab", "jaccard", "c_coefficient", "imbalanced",
            "segments_a", "segments_b"]
    return pd.DataFrame(rows, columns=cols)


def test_network_draws_only_strong_links_scaled_to_their_range():
    pairs = _pairs([
        ("agency", "ownership", 40, 30, 20, 0.4, 0.4, False, 20, 15),
        ("agency", "amo", 40, 50, 30, 0.5, 0.5, False, 20, 25),
        ("ownership", "amo", 30, 50, 4, 0.05, 0.05, False, 15, 25),   # below c >= 0.1
        ("agency", "alignment", 40, 0, 0, 0.0, 0.0, False, 20, 0),      # never together
        ("ownership", "alignment", 30, 0, 0, 0.0, 0.0, False, 15, 0),
        ("amo", "alignment", 50, 0, 0, 0.0, 0.0, False, 25, 0),
    ])
    fig = F.plot_network(pairs, codebook=FakeCodebook(), lang="nl")
    ax = fig.axes[0]
    assert len(ax.lines) == 2
    widths = sorted(line.get_linewidth() for line in ax.lines)
    assert widths[1] - widths[0] > 5                                  # range used, not 0..max
    assert all(line.get_linestyle() == "-" for line in ax.lines)
    legend = ax.get_legend()
    texts = [t.get_text() for t in legend.get_texts()]
    assert "c-coëfficiënt (ATLAS.ti) = 0.40" in texts and "c-coëfficiënt (ATLAS.ti) = 0.50" in texts
    assert not any("c_coefficient" in t or "gestreept" in t for t in texts)  # no unused dash entry
    assert "n = gecodeerde segmenten per thema" in texts
    assert legend.get_title().get_text() == "2 van 3 paren met c ≥ 0.10"
    # node n: segments coded, not co-occurrence windows
    assert "AGENCY-nl\n(n=20)" in _texts(fig)
    top = F.plot_network(pairs, codebook=FakeCodebook(), lang="en", min_weight=0.0, top=1)
    assert len(top.axes[0].lines) == 1
    assert top.axes[0].get_legend().get_title().get_text() == "the 1 strongest of 3 pairs (c ≥ 0.00)"
    with pytest.raises(UsageError, match="top must be >= 1"):
        F.plot_network(pairs, top=0)


def test_network_dashes_imbalanced_links_and_explains_them_only_then():
    pairs = _pairs([("agency", "ownership", 50, 5, 5, 0.1, 0.1, True, 50, 5),
                    ("agency", "amo", 50, 40, 30, 0.5, 0.5, False, 50, 40),
                    ("ownership", "amo", 5, 40, 0, 0.0, 0.0, True, 5, 40)])
    ax = F.plot_network(pairs, lang="en").axes[0]
    styles = sorted(str(line.get_linestyle()) for line in ax.lines)
    assert styles == ["-", "--"]
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(t.startswith("dashed: one code far more frequent") for t in texts)
    empty = F.plot_network(_pairs([("agency", "amo", 5, 5, 0, 0.0, 0.0, False, 5, 5)]), lang="en")
    assert empty.axes[0].get_legend().get_title().get_text() == "no pairs with c ≥ 0.10"
    assert len(empty.axes[0].lines) == 0


def test_agreement_chart_draws_thresholds_and_intervals():
    ag = pd.DataFrame({"code_id": ["agency", "ownership", "(macro)"],
                       "cohen_kappa": [0.9, 0.5, 0.7],
                       "cohen_kappa_ci_low": [0.8, 0.3, 0.6],
                       "cohen_kappa_ci_high": [0.95, 0.7, 0.8]})
    fig = F.plot_agreement(ag, codebook=FakeCodebook(), lang="en")
    ax = fig.axes[0]
    xs = sorted(round(line.get_xdata()[0], 3) for line in ax.lines
                if len(set(line.get_xdata())) == 1 and line.get_linestyle() in (":", "--"))
    assert xs == [0.667, 0.8]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["AGENCY-en", "OWNERSHIP-en", "(macro)"]
    assert ax.get_xlabel() == "Cohen's kappa"
    with pytest.raises(UsageError, match="no kappa/alpha column"):
        F.plot_agreement(pd.DataFrame({"code_id": ["a"], "f1": [1.0]}))


def test_plots_draw_on_a_given_axes(coded):
    seg, cod = coded
    fig = Figure()
    ax = fig.add_subplot()
    assert F.plot_heatmap(A.code_by_document(seg, cod), ax=ax) is fig


@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_saved_figures_are_byte_identical(tmp_path, coded, suffix):
    seg, cod = coded
    digests = []
    for i in range(2):
        m = A.theme_matrix(seg, cod, by="country", level="top", codebook=FakeCodebook())
        path = save_figure(F.plot_heatmap(m, codebook=FakeCodebook()), tmp_path / f"f{i}{suffix}")
        digests.append(hashlib.sha256(path.read_bytes()).hexdigest())
    assert digests[0] == digests[1]
    data = (tmp_path / f"f0{suffix}").read_bytes()
    assert b"Matplotlib" not in data and b"<dc:date>" not in data
