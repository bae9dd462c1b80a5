"""The spectrum pane: the top-K singular values of the selected block's Jacobian at the selected token."""

from __future__ import annotations

import math

from textual.app import ComposeResult
from textual.containers import Container

from coupling_tui.core.results.compare import weights
from coupling_tui.core.results.run import Run

from . import RUN_PANE_CLASS, WAITING, set_subtitle
from .logplot import LogPlot, log_points
from .readout import Readout
from .tokens import quoted
from coupling_tui.core.results import names

SINGULAR_VALUES = names.JACOBIAN_SINGULAR_VALUES
FROBENIUS = names.JACOBIAN_FROBENIUS
NO_JACOBIANS = "no Jacobians in this run (computed with --top-k 0)"
_SUBSCRIPTS = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")


def sigma(i: int) -> str:
    """The label σ_i with a subscript index, e.g. ``σ₁₂``."""
    return "σ" + str(i).translate(_SUBSCRIPTS)


def number(value: float) -> str:
    """A stored number in 4 significant digits; ``?`` when it is not finite."""
    return f"{value:.4g}" if math.isfinite(value) else "?"


class SpectrumPane(Container):
    """A line of stored numbers, then σ_i against i and σ_1 against depth, both on log axes."""

    DEFAULT_CLASSES = RUN_PANE_CLASS
    BORDER_TITLE = "Spectrum"
    can_focus = True

    HELP = """\
## Spectrum

**J = ∂f^l(X)_t/∂x_t** is the Jacobian of the selected layer's residual branch (block *l* minus the identity)
at the selected token *t*, every other token held fixed. Its singular values σ₁ ≥ σ₂ ≥ … say how strongly
the block stretches small changes of x_t, direction by direction.

- **Top plot** (left at narrow widths): σ_i against i for the top K the run kept (`--top-k`), log scale.
- **Bottom plot** (right at narrow widths): σ₁ of the selected token against the layer, for every layer
  computed so far, log scale; the red line marks the selected layer.
- **The line above** shows the stored σ₁, σ_K and the Frobenius norm ‖J‖_F (the whole spectrum's energy:
  compare ‖J‖_F² with the top K's σ_i² to see how much of J the top K hold).

↑/↓ (or k/j) select the layer, ←/→ (or h/l) the token.
"""

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's own keyword
        super().__init__(id=id)
        self.info = Readout(id="spectrum-info")
        self.by_index = LogPlot("i", "σ_i", id="sigma-by-index")
        """σ_i of J at the selected (layer, token) against i = 1..K."""
        self.by_depth = LogPlot("layer", "σ₁", id="sigma1-by-depth")
        """σ_1 of the selected token against the layer, for the layers computed so far."""
        self.plots = Container(self.by_index, self.by_depth, id="spectrum-plots")
        self.message = ""
        """The text line as plain text: stored numbers, or why there is nothing to plot."""
        self.subtitle = ""
        """The border subtitle as plain text: the layer, the token index and its text."""

    def compose(self) -> ComposeResult:
        yield self.info
        yield self.plots

    def show(self, run: Run, token: int, layer: int = 0) -> None:
        """Show the spectrum of block ``layer`` at ``token``; the plots repaint only when their points change."""
        has_jacobians = SINGULAR_VALUES in run.arrays
        subtitle = ""
        if run.n_tokens > 0:
            subtitle = f"layer {layer} · {quoted(run, token)} · {weights(run)}"
        set_subtitle(self, subtitle)
        if not run.header:
            message = WAITING
        elif not has_jacobians or run.n_tokens == 0:
            message = NO_JACOBIANS
        elif layer >= run.layers_done:
            message = f"layer {layer} not computed yet"
        else:
            message = self._numbers(run, token, layer)
        if message != self.message:
            self.message = message
            self.info.show(message)
        plotting = has_jacobians and run.n_tokens > 0
        if plotting != self.plots.display:
            self.plots.display = plotting
            self.set_class(not plotting, "-message-only")  # the message may then wrap over several lines
        if not plotting:
            self.by_index.set_points(([], []), (1, 1))
            self.by_depth.set_points(([], []), (0, 0))
            return
        values = run.arrays[SINGULAR_VALUES]
        k = values.shape[2]
        spectrum = ([], []) if layer >= run.layers_done else log_points(range(1, k + 1), values[layer, token])
        self.by_index.set_points(spectrum, (1, k))
        done = min(run.layers_done, values.shape[0])
        self.by_depth.set_points(log_points(range(done), values[:done, token, 0]), (0, max(run.n_layers - 1, 0)),
                                 layer)

    @staticmethod
    def _numbers(run: Run, token: int, layer: int) -> str:
        """The stored σ_1, σ_K and ‖J‖_F of block ``layer`` at ``token``, and how they were computed."""
        values = run.arrays[SINGULAR_VALUES][layer, token]
        k = len(values)
        fro = float(run.arrays[FROBENIUS][layer, token]) if FROBENIUS in run.arrays else math.nan
        text = f"{sigma(1)} {number(float(values[0]))}"
        if k > 1:
            text += f" · {sigma(k)} {number(float(values[-1]))}"
        text += f" · ‖J‖_F {number(fro)} · top {k}"
        jacobian = run.header.get("jacobian") or {}
        if jacobian.get("method"):
            text += f" · {jacobian['method']}"
        return text
