"""A plotext plot with a log y axis, redrawn from its own stored points on every render (plotext's log bug)."""

from __future__ import annotations

import math
from typing import Iterable

from textual.app import RenderResult
from textual_plotext import PlotextPlot

_TICK_STEPS = (1, 2, 5, 10, 20, 25, 50, 100, 200, 500)
MARK_COLOR = "red"
"""Colour of the selection marker (vertical line and highlighted point)."""

Points = tuple[list[int], list[float]]


def integer_ticks(lo: int, hi: int, max_ticks: int) -> list[int]:
    """``lo`` and the multiples of a round step s in [lo, hi], with about ``max_ticks`` of them."""
    span = max(hi, lo)
    step = next((s for s in _TICK_STEPS if span // s + 1 <= max(max_ticks, 2)), _TICK_STEPS[-1])
    return sorted({lo} | {m for m in range(0, span + 1, step) if m >= lo})


def log_points(xs: Iterable[int], ys: Iterable[float]) -> Points:
    """The (x, y) pairs a log axis can draw: finite, positive y only."""
    kept = [(int(x), float(y)) for x, y in zip(xs, ys) if math.isfinite(y) and y > 0]
    return [x for x, _ in kept], [y for _, y in kept]


class LogPlot(PlotextPlot):
    """One series as line and dots on a log y axis over integer x, plus an optional marked x (vertical line)."""

    def __init__(self, xlabel: str, ylabel: str, *, id: str | None = None) -> None:  # noqa: A002 - Textual's
        super().__init__(id=id)
        self.xlabel, self.ylabel = xlabel, ylabel
        self.plotted: Points = ([], [])
        """The points currently drawn (finite, positive y only: the y axis is logarithmic)."""
        self.x_range = (0, 1)
        """The x axis spans x_range[0]..x_range[1]."""
        self.marker: int | None = None
        """The marked x (a vertical line; its point, if drawn, is highlighted), or None."""

    def set_points(self, points: Points, x_range: tuple[int, int], marker: int | None = None) -> bool:
        """Draw ``points`` (already filtered by ``log_points``); repaint only when something drawn changed."""
        state = (points, x_range, marker)
        if state == (self.plotted, self.x_range, self.marker):
            return False
        self.plotted, self.x_range, self.marker = state
        self.refresh()
        return True

    def render(self) -> RenderResult:
        # plotext's log scale rewrites its stored data in place on every build, so a second build of the same
        # data would take the log twice: hand it fresh data on each render (a handful of points, cheap).
        plt = self.plt
        xs, ys = self.plotted
        lo, hi = self.x_range
        plt.clear_data()
        plt.yscale("log" if xs else "linear")  # plotext fails on an empty log axis
        plt.xlim(lo, max(hi, lo + 1))
        plt.xticks(integer_ticks(lo, hi, self.size.width // 8))
        plt.xlabel(self.xlabel)
        plt.ylabel(self.ylabel)
        if xs:
            plt.plot(xs, ys, marker="braille")
            plt.scatter(xs, ys, marker="●")
        if self.marker is not None:
            plt.vline(self.marker, MARK_COLOR)
            if self.marker in xs:
                plt.scatter([self.marker], [ys[xs.index(self.marker)]], marker="◆", color=MARK_COLOR)
        return super().render()
