"""The trajectory pane: the hidden-state norm of the selected token against depth, as computed so far."""

from __future__ import annotations

from coupling_tui.core.run import Run

from . import RUN_PANE_CLASS, set_subtitle
from .logplot import LogPlot, log_points
from .tokens import visible

NORMS = "trajectory.norms"


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
means the norm grows by a constant factor per block.
"""

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's own keyword
        super().__init__("depth (0 = embeddings)", "‖x‖", id=id)
        self.subtitle = ""
        """The border subtitle as plain text: the token index and its text."""

    @property
    def n_layers(self) -> int:
        """The x axis spans depths 0..n_layers."""
        return self.x_range[1]

    def show(self, run: Run, token: int, layer: int = 0) -> None:
        """Show ``run``'s norms for ``token`` with block ``layer``'s output (depth layer + 1) marked."""
        subtitle, points = "", ([], [])
        if NORMS in run.arrays and run.n_tokens > 0:
            subtitle = f"token {token} · {visible(run.token_texts[token])}"
            norms = run.norms(token)
            points = log_points(range(len(norms)), norms)
        set_subtitle(self, subtitle)
        self.set_points(points, (0, run.n_layers), layer + 1 if run.n_layers > 0 else None)
