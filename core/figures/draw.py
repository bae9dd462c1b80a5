"""Drawing a ``data.Figure`` with matplotlib (Agg, no pyplot state): a light theme, 8-point text and a fixed size
that fits a paper's column (3.4 in) or, for two heatmaps or several collapse families, its full width (6.8 in).
Draws exactly the numbers ``data`` holds; a log axis leaves out values ≤ 0 and NaN (not computed)."""

from __future__ import annotations

import io

import numpy as np

from coupling_tui.core.errors import UserError
from coupling_tui.core.results.run import metric_values

from .data import Figure

FORMATS = ("svg", "pdf", "png")
COLUMN_IN, FULL_IN = 3.4, 6.8
"""A paper's column and full text width, in inches."""
PNG_DPI = 300
COLOURS = ("#1f5fa8", "#c8501e", "#2e8b57", "#7b3fa0", "#8c6d1f", "#d43f8d")
"""One colour per run (or per series within a collapse family): mid-dark, readable on white and in grey print."""
GREY = "#8a8a8a"
LEGEND_COLUMN = 26
"""Legend entries longer than this many characters go one per row on a column-wide figure (two fit otherwise)."""
HEATMAP = "viridis"
THEME = {
    "font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8, "xtick.labelsize": 7, "ytick.labelsize": 7,
    "legend.fontsize": 6.5, "legend.frameon": False, "axes.spines.top": False, "axes.spines.right": False,
    "axes.grid": True, "grid.color": "#e3e3e3", "grid.linewidth": 0.5, "axes.axisbelow": True,
    "figure.facecolor": "white", "axes.facecolor": "white", "savefig.facecolor": "white",
    "lines.linewidth": 1.2, "lines.markersize": 3.5, "svg.fonttype": "none", "pdf.fonttype": 42,
    "svg.hashsalt": "coupling-tui",
}
"""The light theme: white ground, light grid, text as text in SVG and embedded TrueType in PDF."""
INSTALL_HINT = "pip install 'coupling-tui[figures]'"


def matplotlib_figure_class():
    """matplotlib's Figure (the optional ``figures`` extra); a UserError naming the extra when it is missing."""
    try:
        from matplotlib.figure import Figure as MplFigure
    except ImportError:
        raise UserError("coupling-tui figures needs matplotlib, which is not installed",
                        f"install it with: {INSTALL_HINT}") from None
    return MplFigure


def render(figure: Figure, formats: tuple[str, ...]) -> dict[str, bytes]:
    """``figure`` drawn once and saved in each of ``formats`` → {format: file bytes}."""
    import matplotlib

    with matplotlib.rc_context(THEME):
        fig = _heatmap(figure) if figure.panels else _lines(figure)
        out = {}
        for fmt in formats:
            buf = io.BytesIO()
            metadata = {"svg": {"Date": None}, "pdf": {"CreationDate": None}, "png": {}}[fmt]
            fig.savefig(buf, format=fmt, dpi=PNG_DPI, metadata=metadata)
            out[fmt] = buf.getvalue()
    return out


def _heatmap(figure: Figure):
    from matplotlib.ticker import MaxNLocator

    n = len(figure.panels)
    fig = matplotlib_figure_class()(figsize=(COLUMN_IN if n == 1 else FULL_IN, 2.9), layout="constrained")
    axes = fig.subplots(1, n, squeeze=False)[0]
    lo, hi = figure.scale
    if not (np.isfinite(lo) and np.isfinite(hi)):
        lo, hi = 0.0, 1.0
    cmap = _colourmap()
    image = None
    for ax, (label, m) in zip(axes, figure.panels):
        values = metric_values(np.asarray(m, np.float64), figure.metric)
        shown = np.ma.masked_where(np.eye(values.shape[0], dtype=bool) | ~np.isfinite(values), values)
        image = ax.imshow(shown, cmap=cmap, vmin=lo, vmax=hi if hi > lo else lo + 1e-12, interpolation="nearest",
                          aspect="equal")
        ax.set_title(label)
        ax.set_xlabel(figure.xlabel)
        ax.set_ylabel(figure.ylabel)
        ax.grid(False)
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_major_locator(MaxNLocator(nbins=8, integer=True))
    bar = fig.colorbar(image, ax=list(axes), orientation="vertical", shrink=0.9)
    bar.set_label(r"$1 - m_K^2$  (1 = coupled)" if figure.metric == "1-m²" else r"$m_K$  (0 = coupled)")
    fig.suptitle(figure.title + " · diagonal (self) not shown", fontsize=8)
    return fig


def _colourmap():
    import matplotlib

    cmap = matplotlib.colormaps[HEATMAP].copy()
    cmap.set_bad("#f0f0f0")
    return cmap


def _lines(figure: Figure):
    facets = figure.facets or ("",)
    cols = min(len(facets), 2)
    rows = -(-len(facets) // cols)
    fig = matplotlib_figure_class()(figsize=(COLUMN_IN if cols == 1 else FULL_IN, 2.3 * rows + 0.5),
                                    layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes[len(facets):]:
        ax.set_visible(False)
    for f, (ax, title) in enumerate(zip(axes, facets)):
        shown = [s for s in figure.series if not figure.facets or s.group == f]
        for n, s in enumerate(shown):
            _plot(ax, figure, s, n if figure.facets else s.group)
        _axes(ax, figure, shown)
        if title:
            ax.set_title(title)
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:
        two = len(labels) > 1 and max(len(label) for label in labels) <= LEGEND_COLUMN * (2 if cols > 1 else 1)
        fig.legend(handles, labels, loc="outside lower center", ncols=2 if two else 1)
    fig.suptitle(figure.title, fontsize=8)
    return fig


def _plot(ax, figure: Figure, s, colour: int) -> None:
    x, y = np.asarray(s.x, np.float64), np.asarray(s.y, np.float64)
    keep = np.isfinite(x) & np.isfinite(y)
    if figure.ylog:
        keep &= y > 0
    if figure.xlog:
        keep &= x > 0
    x, y = x[keep], y[keep]
    c = COLOURS[colour % len(COLOURS)]
    if s.style == "band":
        ax.plot(x, y, color=GREY, linewidth=0.6, linestyle=":" if "p50" not in s.label else "-", label=s.label)
    elif s.style == "fit":
        ax.plot(x, y, color=c, linewidth=0.9, linestyle="--", label=s.label)
    elif s.style == "reference" and figure.facets:           # a precision's resolution: grey, dashed
        ax.plot(x, y, color=GREY, linewidth=0.9, linestyle="--", label=s.label)
    elif s.style == "reference":                              # the other direction of the same run: dotted
        ax.plot(x, y, color=c, linewidth=0.9, linestyle=":", marker="s", markersize=2.5, label=s.label)
    else:
        ax.plot(x, y, color=c, marker="o", label=s.label)


def _axes(ax, figure: Figure, shown) -> None:
    from matplotlib.ticker import FixedLocator, LogLocator, MaxNLocator, NullFormatter, ScalarFormatter

    ax.set_xlabel(figure.xlabel)
    ax.set_ylabel(figure.ylabel)
    if figure.ylog:
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(base=10))          # one tick per decade
        ax.yaxis.set_minor_locator(LogLocator(base=10, subs=np.arange(2, 10)))
        _at_least_one_decade(ax, shown)
    if figure.xlog:
        ax.set_xscale("log")
        xs = sorted({float(v) for s in shown for v in np.asarray(s.x) if v > 0})
        ax.xaxis.set_major_locator(FixedLocator(xs))             # a tick at every n
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
    else:
        ax.xaxis.set_major_locator(MaxNLocator(nbins=8, integer=True))
    if figure.ymin is not None and not figure.ylog:
        ax.set_ylim(bottom=figure.ymin)


def _at_least_one_decade(ax, shown) -> None:
    """Widen a log y axis to whole decades around the data, so at least two decade ticks are labelled."""
    ys = np.concatenate([np.asarray(s.y, np.float64).ravel() for s in shown]) if shown else np.zeros(0)
    ys = ys[np.isfinite(ys) & (ys > 0)]
    if ys.size:
        lo, hi = np.floor(np.log10(ys.min())), np.ceil(np.log10(ys.max()))
        ax.set_ylim(10 ** lo, 10 ** max(hi, lo + 1))
