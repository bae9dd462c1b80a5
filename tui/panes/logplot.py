"""A plotext plot with a log y axis (and optionally a log x axis; or a linear y axis on a given range) of one or more
named series, redrawn from its own stored points on every render (plotext's log bug)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

from rich.text import Text
from rich.segment import Segment
from textual.app import RenderResult
from textual.strip import Strip
from textual_plotext import PlotextPlot

from .plotext_cells import matrix_segments, matrix_text

_TICK_STEPS = (1, 2, 5, 10, 20, 25, 50, 100, 200, 500)
MARK_COLOR = "red"
"""Colour of the selection marker (vertical line and highlighted point)."""

Points = tuple[list[float], list[float]]
Colour = str | tuple[int, int, int] | None
"""A plotext colour: a name, an (r, g, b) triple, or None for plotext's own choice."""


@dataclass(frozen=True)
class Series:
    """One named line on the plot. ``points`` are already filtered by ``log_points``."""

    label: str
    points: Points
    colour: Colour = None
    marked: bool = True
    """Whether its point at the marked x is highlighted (a reference line may not want that)."""
    dots: bool = True
    """Draw a dot at every point, not only the line through them; the line is then drawn at the dots' resolution
    (one character a cell), so it runs through them (a braille line sits up to a cell off)."""
    dot: str = "●"
    """The dots' character (another than a series it may coincide with)."""
    dotted: bool = False
    """A dotted line (no dots): a reference such as a percentile, told apart from a solid one."""
    end_label: str = ""
    """Written at the series' last point, e.g. "p90" (several series of one colour are then told apart)."""
    on_top: bool = False
    """Drawn over the series listed before it (a curve that may coincide with another stays visible)."""

    @property
    def glyph(self) -> str:
        """How the legend draws it: ● dots, ┄ dotted, ─ a line."""
        return self.dot if self.dots else "┄" if self.dotted else "─"


def integer_ticks(lo: int, hi: int, max_ticks: int) -> list[int]:
    """``lo`` and the multiples of a round step s in [lo, hi], with about ``max_ticks`` of them."""
    span = max(hi, lo)
    step = next((s for s in _TICK_STEPS if span // s + 1 <= max(max_ticks, 2)), _TICK_STEPS[-1])
    return sorted({lo} | {m for m in range(0, span + 1, step) if m >= lo})


def value_ticks(values: Sequence[int], max_ticks: int) -> list[int]:
    """Ticks at the given x values (e.g. the lengths of a geometric sweep on a log axis): all of them when they
    fit ``max_ticks``, else every k-th, always the first and the last."""
    values = sorted(set(values))
    if len(values) <= max(max_ticks, 2):
        return values
    k = math.ceil((len(values) - 1) / max(max_ticks - 1, 1))
    picked = values[::k]
    if picked[-1] != values[-1]:
        picked[-1] = values[-1]
    return picked


def linear_ticks(lo: float, hi: float, max_ticks: int) -> list[float]:
    """Ticks of a linear axis spanning lo..hi: the multiples of a 1-2-5 step inside it, at most ``max_ticks`` (at
    least 2) of them; the two ends when the span is empty or not finite."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo] if math.isfinite(lo) else []
    room = max(max_ticks, 2)
    for exponent in range(math.floor(math.log10(hi - lo)) - 2, math.floor(math.log10(hi - lo)) + 2):
        for m in (1, 2, 5):
            step = m * 10.0 ** exponent
            first, last = math.ceil(lo / step - 1e-9), math.floor(hi / step + 1e-9)
            if 2 <= last - first + 1 <= room:
                return [round(n * step, 12) for n in range(first, last + 1)]
    return [lo, hi]


def finite_points(xs: Iterable[float], ys: Iterable[float]) -> Points:
    """The (x, y) pairs a linear y axis can draw: finite y only."""
    kept = [(x, float(y)) for x, y in zip(xs, ys) if math.isfinite(y)]
    return [x for x, _ in kept], [y for _, y in kept]


def _tick_label(value: float) -> str:
    return f"{value:g}" if 1e-3 <= value < 1e5 else f"{value:.0e}".replace("e+0", "e").replace("e-0", "e-")


def log_ticks(lo: float, hi: float) -> tuple[list[float], list[str]]:
    """Ticks of a log axis spanning lo..hi (> 0): the decades 1, 10, 100, … inside it; with fewer than two, the
    1-2-5 steps too; with still fewer, the two ends (3 significant digits). Labels as written ("1000", "1e5")."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo <= 0 or hi < lo:
        return [], []
    first, last = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    for steps in ((1,), (1, 2, 5)):
        ticks = [m * 10.0 ** e for e in range(first, last + 1) for m in steps if lo <= m * 10.0 ** e <= hi * (1 + 1e-9)]
        if len(ticks) >= 2:
            return ticks, [_tick_label(t) for t in ticks]
    ticks = sorted({float(f"{lo:.3g}"), float(f"{hi:.3g}")})
    return ticks, [f"{t:.3g}" for t in ticks]


def log_points(xs: Iterable[float], ys: Iterable[float]) -> Points:
    """The (x, y) pairs a log y axis can draw: finite, positive y only."""
    kept = [(x, float(y)) for x, y in zip(xs, ys) if math.isfinite(y) and y > 0]
    return [x for x, _ in kept], [y for _, y in kept]


def end_label_groups(series: Sequence[Series], rows: int, y_range: tuple[float, float]) -> list[tuple[str, Series]]:
    """The end labels to write, as (text, series to write it at): labels ending at one x whose rows on a log y axis
    of ``rows`` rows spanning ``y_range`` are equal or adjacent merge into one ("p10,p50", at the middle one's
    point), so no label hides another."""
    lo, hi = (math.log10(v) for v in y_range)
    span = hi - lo

    def row(s: Series) -> int:
        return round((math.log10(s.points[1][-1]) - lo) / span * (rows - 1)) if span > 0 else 0

    labelled = sorted((s for s in series if s.end_label and s.points[0]), key=lambda s: (s.points[0][-1], s.points[1][-1]))
    groups: list[list[Series]] = []
    for s in labelled:
        last = groups[-1][-1] if groups else None
        if last is not None and last.points[0][-1] == s.points[0][-1] and row(s) - row(last) <= 1:
            groups[-1].append(s)
        else:
            groups.append([s])
    return [(",".join(s.end_label for s in group), group[len(group) // 2]) for group in groups]


def _build(plot: PlotextPlot, height: int | None = None):
    """What ``PlotextPlot.render`` builds (at ``height`` rows, default the widget's): plotext's matrix of cells,
    without the ANSI canvas plotext would write from it (read directly by ``matrix_text``/``matrix_segments``:
    writing and decoding the escapes was three quarters of a plot's repaint)."""
    height = plot.size.height if height is None else height
    plt = plot.plt
    plt.plotsize(plot.size.width, height)
    plt._set_size(plot.size.width, height)         # noqa: SLF001 - as PlotextPlot.render does (textual-plotext #5)
    plt.theme(plot._get_plotext_theme_name(plot.app.theme))   # noqa: SLF001
    plt._set_sizes()                               # noqa: SLF001 - plotext's build() up to its canvas string
    plt._build_matrix()                            # noqa: SLF001
    return plt.monitor.matrix


def plotext_text(plot: PlotextPlot, height: int | None = None) -> Text:
    """What ``PlotextPlot.render`` draws, as rich Text (``matrix_text``)."""
    return matrix_text(_build(plot, height))


def plotext_segments(plot: PlotextPlot, height: int | None = None) -> list[list[Segment]]:
    """What ``PlotextPlot.render`` draws, as one list of segments per row (``matrix_segments``)."""
    return matrix_segments(_build(plot, height))


def _rich_colour(colour: Colour) -> str:
    if isinstance(colour, tuple):
        return "#{:02x}{:02x}{:02x}".format(*colour)
    return colour or "default"


class LogPlot(PlotextPlot):
    """Named series as lines and dots on a log y axis, plus an optional marked x (vertical line). With ``xlog`` the
    x axis is logarithmic too and its ticks sit at the x values of the points; else x is integer with round
    ticks. With ``ylog=False`` the y axis is linear and spans ``y_range`` (series then filtered by
    ``finite_points``)."""

    def __init__(self, xlabel: str, ylabel: str, *, id: str | None = None,  # noqa: A002 - Textual's keyword
                 xlog: bool = False, ylog: bool = True) -> None:
        super().__init__(id=id)
        self.xlabel, self.ylabel, self.xlog, self.ylog = xlabel, ylabel, xlog, ylog
        self.y_range = (math.nan, math.nan)
        """A linear y axis's span (``set_y_range``); not finite: plotext's own."""
        self.series: tuple[Series, ...] = ()
        """What is drawn now; the first on top (drawn last)."""
        self.x_range = (0, 1)
        """The x axis spans x_range[0]..x_range[1]."""
        self.marker: int | None = None
        """The marked x (a vertical line; its point on each marked series is highlighted), or None."""
        self.x_values: tuple[int, ...] = ()
        """Where a log x axis puts its ticks (thinned to fit); empty = at the points drawn."""
        self.axis_labels = True
        """Whether the axis labels are drawn (a short plot may give their row to the data)."""
        self.caption = ""
        """A line of text drawn above the plot (empty: none)."""
        self.short_caption = ""
        self._strips: list[Strip] = []
        self._strips_key: tuple | None = None
        """What is drawn instead of ``caption`` when the plot is too narrow for it."""
        self.legend_row = False
        """Draw ``legend()`` on a line of its own above the plot (when the pane's border has no room for it)."""

    @property
    def plotted(self) -> Points:
        """The first series' points (finite, positive y only: the y axis is logarithmic)."""
        return self.series[0].points if self.series else ([], [])

    def set_points(self, points: Points, x_range: tuple[int, int], marker: int | None = None) -> bool:
        """Draw one unnamed series (already filtered by ``log_points``); see ``set_series``."""
        return self.set_series((Series("", points),), x_range, marker)

    def set_series(self, series: Sequence[Series], x_range: tuple[int, int], marker: int | None = None,
                   x_values: Sequence[int] = ()) -> bool:
        """Draw ``series`` (``x_values``: where a log x axis ticks, e.g. every x a series will have once
        complete); repaint only when something drawn changed."""
        state = (tuple(series), x_range, marker, tuple(x_values))
        if state == (self.series, self.x_range, self.marker, self.x_values):
            return False
        self.series, self.x_range, self.marker, self.x_values = state
        self.refresh()
        return True

    def set_y_range(self, y_range: tuple[float, float]) -> None:
        """The span of a linear y axis; repaint only when it changed."""
        y_range = (float(y_range[0]), float(y_range[1]))
        if y_range != self.y_range and not (all(map(math.isnan, y_range)) and all(map(math.isnan, self.y_range))):
            self.y_range = y_range
            self.refresh()

    def set_labels(self, xlabel: str, ylabel: str) -> None:
        if (xlabel, ylabel) != (self.xlabel, self.ylabel):
            self.xlabel, self.ylabel = xlabel, ylabel
            self.refresh()

    def show_axis_labels(self, shown: bool) -> None:
        if shown != self.axis_labels:
            self.axis_labels = shown
            self.refresh()

    def show_legend_row(self, shown: bool) -> None:
        if shown != self.legend_row:
            self.legend_row = shown
            self.refresh()

    def legend(self, width: int | None = None) -> Text:
        """The named series as coloured "● label" entries joined by " · ", for a line beside the plot; with a
        ``width``, the first of that, " "-joined entries and "●label" entries that fits it (else the last)."""
        for separator, space in ((" · ", " "), (" ", " "), (" ", "")):
            text = Text()
            for s in self.series:
                if s.label:
                    text.append((separator if text else "") + s.glyph + space, style=_rich_colour(s.colour))
                    text.append(s.label)
            if width is None or len(text) <= width:
                break
        return text

    def render(self) -> RenderResult:
        legend = self._draw()
        if legend is None:
            return plotext_text(self)
        return Text("\n").join([legend, plotext_text(self, max(self.size.height - 1, 1))])   # the legend's row

    def render_line(self, y: int) -> Strip:
        """Row ``y`` of what ``render`` draws, as strips built straight from plotext's matrix (``matrix_segments``)
        once per drawn state, size and theme: Textual's own path from a Text of thousands of spans was most of a
        plot's repaint (benchmarks/key_latency.py)."""
        key = (self.series, self.x_range, self.marker, self.x_values, self.y_range, self.xlabel, self.ylabel,
               self.caption, self.short_caption, self.axis_labels, self.legend_row, self.xlog, self.ylog, self.size,
               self.app.theme)
        if key != self._strips_key:
            self._strips_key = key
            self._strips = self._render_strips()
        if 0 <= y < len(self._strips):
            return self._strips[y]
        return Strip.blank(self.size.width, self.rich_style)

    def _render_strips(self) -> list[Strip]:
        width, base, console = self.size.width, self.rich_style, self.app.console
        if width <= 0 or self.size.height <= 0:
            return []
        legend = self._draw()
        rows = []
        if legend is not None:
            legend.no_wrap, legend.overflow = True, "crop"
            rows.append(list(legend.render(console)))
        rows += plotext_segments(self, max(self.size.height - (legend is not None), 1))
        return [Strip(Segment.apply_style(row, base)).adjust_cell_length(width, base)
                for row in rows[: self.size.height]]

    def _draw(self) -> Text | None:
        """Hand plotext the figure (series, axes, ticks, labels, marker); the legend line when it has a row of its
        own (``legend_row``), else None."""
        # plotext's log scale rewrites its stored data in place on every build, so a second build of the same
        # data would take the log twice: hand it fresh data on each render (a handful of points, cheap).
        plt = self.plt
        plt.theme(self._get_plotext_theme_name(self.app.theme))   # first: a series of no colour takes the theme's
        lo, hi = self.x_range
        drawn = [s for s in self.series if s.points[0]]
        plt.clear_data()
        plt.yscale("log" if drawn and self.ylog else "linear")  # plotext fails on an empty log axis
        xs = sorted({x for s in drawn for x in s.points[0]})
        if self.xlog and lo > 0:
            plt.xscale("log")
            # plotext takes a log axis's limits in log10 units (its ticks and data it converts itself)
            plt.xlim(math.log10(lo) - 0.05, math.log10(max(hi, lo)) + 0.05)
            ticks = value_ticks(self.x_values or xs or [lo, hi], self.size.width // 6)
            plt.xticks(ticks, [str(t) for t in ticks])
        else:
            plt.xscale("linear")
            plt.xlim(lo, max(hi, lo + 1))
            plt.xticks(integer_ticks(lo, hi, self.size.width // 8))
        room = self.size.width - 8                 # plotext drops a title wider than its canvas less the axes
        caption = self.caption if len(self.caption) <= room else self.short_caption
        plt.title(caption[: max(room, 0)] or None)
        plt.xlabel(self.xlabel if self.axis_labels else None)
        plt.ylabel(self.ylabel if self.axis_labels else None)
        ys = [y for s in drawn for y in s.points[1]]
        y_lo, y_hi = self.y_range
        if not self.ylog and math.isfinite(y_lo) and math.isfinite(y_hi) and y_hi > y_lo:
            plt.ylim(y_lo, y_hi)
            ticks = linear_ticks(y_lo, y_hi, max(self.size.height // 3, 2))
            plt.yticks(ticks, [f"{t:g}" for t in ticks])
        elif not self.ylog:
            plt.ylim(None, None)
        elif ys:                                   # decades (1, 10, 100), not plotext's own powers of e
            plt.yticks(*log_ticks(min(ys), max(ys)))
        order = [s for s in reversed(drawn) if not s.on_top] + [s for s in drawn if s.on_top]
        for s in order:                            # the first series is drawn last: on top of the others
            plt.plot(*s.points, marker="•" if s.dots else "·" if s.dotted else "braille", color=s.colour)
            if s.dots:
                plt.scatter(*s.points, marker=s.dot, color=s.colour)
        if ys:
            for label, s in end_label_groups(drawn, self._data_rows(), (min(ys), max(ys))):
                plt.text(label, s.points[0][-1], s.points[1][-1], color=s.colour, alignment="right")
        if self.marker is not None:
            plt.vline(self.marker, MARK_COLOR)
            for s in drawn:
                if s.marked and self.marker in s.points[0]:
                    xs_, ys_ = s.points
                    plt.scatter([self.marker], [ys_[xs_.index(self.marker)]], marker="◆", color=MARK_COLOR)
        return self.legend(self.size.width) if self.legend_row else None

    def _data_rows(self) -> int:
        """The rows plotext's canvas gives the data: less the caption, the frame's two lines, the x tick labels,
        the axis labels and the legend row."""
        caption = bool(self.caption or self.short_caption)
        return max(self.size.height - caption - 3 - self.axis_labels - self.legend_row, 1)
