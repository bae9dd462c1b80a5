"""The trajectory pane: the hidden-state norm of the selected token against depth, as computed so far."""

from __future__ import annotations

import math

from rich.text import Text
from textual.app import RenderResult
from textual_plotext import PlotextPlot

from coupling_tui.core.run import Run

from . import RUN_PANE_CLASS
from .tokens import visible

NORMS = "trajectory.norms"
_TICK_STEPS = (1, 2, 5, 10, 20, 25, 50, 100, 200, 500)


def depth_ticks(n_layers: int, max_ticks: int) -> list[int]:
    """Integer depth ticks 0, s, 2s, … (s a round step) with at most ``max_ticks`` of them."""
    step = next((s for s in _TICK_STEPS if n_layers // s + 1 <= max(max_ticks, 2)), _TICK_STEPS[-1])
    return list(range(0, n_layers + 1, step))


class TrajectoryPane(PlotextPlot):
    """Plots ‖x_t^l‖ for l = 0..L on a log axis for one token; it grows as layers arrive."""

    DEFAULT_CLASSES = RUN_PANE_CLASS
    BORDER_TITLE = "Trajectory"
    can_focus = True

    HELP = """\
## Trajectory

The norm **‖x_t^l‖** of the residual stream (hidden state) of the selected token *t* after each block *l*,
on a log scale. Depth 0 is the embedding output; depth *L* is the last block's output (before the final norm).

While the model computes, the curve grows one point per finished block. A steady slope on this log axis
means the norm grows by a constant factor per block.
"""

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's own keyword
        super().__init__(id=id)
        self.plotted: tuple[list[int], list[float]] = ([], [])
        """The depths and norms currently drawn (finite, positive points only: the y axis is logarithmic)."""
        self.n_layers = 0
        """The x axis spans depths 0..n_layers."""
        self.subtitle = ""
        """The border subtitle as plain text: the token index and its text."""

    def show(self, run: Run, token: int) -> None:
        """Show ``run``'s norms for ``token``; the plot is redrawn only when its points or depth range change."""
        subtitle, points = "", ([], [])
        if NORMS in run.arrays and run.n_tokens > 0:
            subtitle = f"token {token} · {visible(run.token_texts[token])}"
            finite = [(depth, float(v)) for depth, v in enumerate(run.norms(token)) if math.isfinite(v) and v > 0]
            points = ([d for d, _ in finite], [v for _, v in finite])
        if subtitle != self.subtitle:  # setting the border subtitle, even unchanged, repaints the widget
            self.subtitle = subtitle
            self.border_subtitle = Text(subtitle)  # Text: a token like "[INST]" is not markup
        if points != self.plotted or run.n_layers != self.n_layers:
            self.plotted, self.n_layers = points, run.n_layers
            self.refresh()

    def render(self) -> RenderResult:
        # plotext's log scale rewrites its stored data in place on every build, so a second build of the same
        # data would take the log twice: hand it fresh data on each render (a handful of points, cheap).
        plt = self.plt
        depths, values = self.plotted
        plt.clear_data()
        plt.yscale("log" if depths else "linear")  # plotext fails on an empty log axis
        plt.xlim(0, max(self.n_layers, 1))
        plt.xticks(depth_ticks(self.n_layers, self.size.width // 8))
        plt.xlabel("depth (0 = embeddings)")
        plt.ylabel("‖x‖")
        if depths:
            plt.plot(depths, values, marker="braille")
            plt.scatter(depths, values, marker="●")
        return super().render()
