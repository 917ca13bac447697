"""Tests of pipeline.figures: the plots draw what the tables say, in codebook labels and colours."""
from __future__ import annotations

import hashlib

import matplotlib.colors as mcolors
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
    net = F.plot_network(pairs, codebook=FakeCodebook(), lang="en")
    ax = net.axes[0]
    n_links = int((pairs["n_ab"] > 0).sum())
    assert len(ax.lines) == n_links
    assert any("OWNERSHIP-en\n(n=3)" == t.get_text() for t in ax.texts)
    with pytest.raises(UsageError, match="square"):
        F.plot_cooccurrence(pd.DataFrame([[1, 2]], index=["a"], columns=["a", "b"]))
    with pytest.raises(UsageError, match="weight column 'lift'"):
        F.plot_network(pairs, weight="lift")


def test_document_portrait_tiles_use_code_colors(coded):
    seg, cod = coded
    cb = FakeCodebook()
    cb.codes["ownership"].color = "#E69F00"
    p = A.document_portrait(seg, cod, codebook=cb)
    fig = F.plot_document_portrait(p, codebook=cb, lang="en")
    ax = fig.axes[0]
    rects = [r for r in ax.patches]
    assert len(rects) == len(p)
    orange = mcolors.to_rgba("#E69F00")
    assert sum(r.get_facecolor() == orange for r in rects) == int((p["code_id"] == "ownership").sum())
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b"]
    assert ax.get_legend().get_texts()[-1].get_text() == "not coded"


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
