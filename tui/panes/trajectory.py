"""The trajectory pane: the hidden-state norm of the selected token against depth, as computed so far."""

from __future__ import annotations

import math

from rich.text import Text
from textual.events import Resize

from coupling_tui.core.results.compare import weights
from coupling_tui.core.results.run import Run

from . import RUN_PANE_CLASS, set_subtitle
from .logplot import LogPlot, Series, log_points
from .tokens import quoted
from coupling_tui.core.results import names

NORMS = names.TRAJECTORY_NORMS
TOKEN_COLOUR = (86, 156, 214)
FIT_COLOUR = (230, 140, 40)
BAND_COLOUR = (128, 128, 128)
BAND_LABELS = ("p10", "p50", "p90")
"""Every token's norm at each depth: the 10th, 50th and 90th percentiles."""
BORDER_CELLS = 6
"""What a border title does not get of the pane's width: the corners and "─ " … " ─"."""


def _num(value: float, fmt: str) -> str:
    return format(value, fmt) if math.isfinite(value) else "–"


def short_values_title(values: dict[str, float]) -> str:
    """``values_title`` for a narrow pane."""
    return (f"×{_num(values['growth'], '.3f')} R²{_num(values['growth_r2'], '.2f')} "
            f"LSS{_num(values['lss'], '.1f')} fid{_num(values['fidelity'], '.2f')}")


def values_title(values: dict[str, float]) -> str:
    """The plot's title line: growth factor and R², LSS, linearisation fidelity of the selected token."""
    return (f"growth ×{_num(values['growth'], '.3f')}/block (R² {_num(values['growth_r2'], '.3f')}) · "
            f"LSS {_num(values['lss'], '.2f')} · fidelity {_num(values['fidelity'], '.3f')}")


class TrajectoryPane(LogPlot):
    """Plots ‖x_t^l‖ for l = 0..L on a log axis for one token, the selected block's output marked."""

    DEFAULT_CLASSES = RUN_PANE_CLASS
    BORDER_TITLE = "Trajectory"
    can_focus = True

    HELP = """\
## Trajectory

The norm **‖x_t^l‖** of the residual stream (hidden state) of the selected token *t* after each block *l*,
on a log scale. Depth 0 is the embedding output; depth *L* is the last block's output (before the final norm).

The red vertical line (and the red ◆ on the curve) marks depth *l* + 1: the **output of the selected layer**
(block *l*), the block whose Jacobian the Spectrum pane shows. ↑/↓ (or k/j) move it.

While the model computes, the curve grows one point per finished block. A steady slope on this log axis
means the norm grows by a constant factor per block. The border title is the legend (on a narrow pane, the plot's
first line):

- **token** (blue ●): the selected token's norms.
- **fit** (orange line): the exponential-growth fit exp(a + b·l) of log‖x^l‖ on depths 1..L (the embedding
  is on another scale); its factor e^b per block and R² are in the title line, with the line-shape score
  **LSS** (1 = a straight trajectory; larger = more bent) and the **linearisation fidelity** (cosine between
  Π(I + J^l) x⁰ and the true state at the last depth computed).
- **p10 · p50 · p90** (grey, each named at its right end; ends on one row or adjacent ones share one name,
  "p10,p50"): the spread of every token's norm at each depth, the
  median solid, the 10th and 90th percentiles dotted (percentiles rather than min/max: an attention-sink token
  can sit 100× above the rest).
"""

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's own keyword
        super().__init__("depth (0 = embeddings)", "‖x‖", id=id)
        self.subtitle = ""
        """The border subtitle as plain text: the token index and its text."""
        self.title_text = self.BORDER_TITLE
        """The border title (the pane's name and the legend) as plain text."""

    @property
    def n_layers(self) -> int:
        """The x axis spans depths 0..n_layers."""
        return self.x_range[1]

    def show(self, run: Run, token: int, layer: int = 0) -> None:
        """Show ``run``'s norms for ``token`` (with its growth fit, the values in the title, and every token's
        p10/median/p90 band) with block ``layer``'s output (depth layer + 1) marked."""
        subtitle, series, title = "", [], ""
        if NORMS in run.arrays and run.n_tokens > 0:
            subtitle = f"{quoted(run, token)} · {weights(run)}"
            norms = run.norms(token)
            series.append(Series("token", log_points(range(len(norms)), norms), TOKEN_COLOUR))
            line = run.growth_line(token)
            if line is not None:
                series.append(Series("fit", log_points(*line), FIT_COLOUR, marked=False, dots=False))
            if run.n_tokens > 1:
                low, mid, high = run.norm_band()
                for label, ys in zip(BAND_LABELS, (low, mid, high)):   # p50 solid, p10 and p90 dotted, each named
                    series.append(Series(label, log_points(range(len(ys)), ys), BAND_COLOUR, marked=False,
                                         dots=False, dotted=label != "p50", end_label=label))
            values = run.trajectory_values(token)
            title, self.short_caption = values_title(values), short_values_title(values)
        set_subtitle(self, subtitle)
        if title != self.caption:
            self.caption = title
            self.refresh()
        self.set_series(series, (0, run.n_layers), layer + 1 if run.n_layers > 0 else None)
        self._place_legend()

    def on_resize(self, event: Resize) -> None:
        self._place_legend()

    def _place_legend(self) -> None:
        """The legend in the border title when it fits there whole, else on the plot's first line (never cut)."""
        title = Text(self.BORDER_TITLE + " ").append_text(self.legend()) if self.series else Text(self.BORDER_TITLE)
        fits = len(title) <= self.outer_size.width - BORDER_CELLS
        self.show_legend_row(not fits)
        title = title if fits else Text(self.BORDER_TITLE)
        if title.plain != self.title_text:
            self.title_text = title.plain
            self.border_title = title
