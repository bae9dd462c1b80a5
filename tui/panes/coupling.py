"""The coupling pane: the depth×depth coupling matrix of the selected token (or the token average), or the
token×token matrix at the selected layer, with the cursor cell's stored value spelled out."""

from __future__ import annotations

import math

from textual.app import ComposeResult
from textual.containers import Container
from textual.widgets import Static

from coupling_tui.core.run import COUPLING_METRICS, CouplingView, Run

from . import RUN_PANE_CLASS, WAITING, set_subtitle
from .heatmap import Heatmap
from .tokens import visible

NO_COUPLING = "no coupling in this run (computed with --top-k 0)"
NO_TOKEN_VIEW = "no token×token coupling in this run (computed with --no-token-coupling)"


def value_text(value: float) -> str:
    return f"{value:.4f}" if math.isfinite(value) else "pending"


class CouplingPane(Container):
    """Its own view state (K, metric, token/average, trained/random-init, depth/token view, column cursor) is
    changed by the app's actions; ``show`` draws the matrix the run holds for that state."""

    DEFAULT_CLASSES = RUN_PANE_CLASS
    BORDER_TITLE = "Coupling"
    can_focus = True

    HELP = """\
## Coupling

Block coupling (Aubry et al., ICLR 2025): how well the top-K singular vectors of one block's Jacobian
diagonalise another's. Entry **[row i, column j] = m_K(J_i, J_j) = ‖ |U_jᵀ J_i V_j| − S_i ‖_F / ‖s_i‖₂**:
J_i (the row) written in the top-K bases of J_j (the column). **m = 0**: perfectly coupled; **≈ 1**: unrelated
(random bases give ≈ 0.98). The matrix is not symmetric; its diagonal is 0 by construction.

- **Depth view** (default): rows and columns are layers, at the selected token — or averaged over all
  tokens (`t`). Trained models show a bright band near the diagonal: neighbouring blocks share directions.
- **Token view** (`v`): rows and columns are tokens, both at the selected layer: do tokens share directions?
- **Colour**: `1−m²` (the official notebook's plot: 1 = coupled, bright) or `m` itself (`m` key). The scale
  spans the off-diagonal values of this matrix and of its trained/random-init twin, so `r` compares fairly.
- **Cursor**: the row is the selected layer (↑/↓) — or token (←/→) in the token view; shift+←/→ (or H/L)
  moves the column. The line above shows the cursor cell's stored m and 1 − m²: "layer 12 → 17" is
  J of layer 12 written in the bases of layer 17.

Keys: `K` cycles K among those computed, `t` token/average, `r` trained/random-init (when computed with
`--random-baseline`), `v` depth/token view, `m` metric, `e` export this pane to SVG, `E` every pane.
"""

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's own keyword
        super().__init__(id=id)
        self.info = Static("", id="coupling-info", markup=False)
        self.heatmap = Heatmap(id="coupling-heatmap")
        self.k: int | None = None
        """K shown; None = the run's default K."""
        self.metric = COUPLING_METRICS[0]
        self.average = False
        """Depth view: the token average instead of the selected token."""
        self.baseline = False
        """Show the random-init baseline's matrix instead of the trained model's."""
        self.view = "depth"
        self.column = {"depth": 0, "token": 0}
        """The cursor's column in each view (a layer, or a token); the row follows the app's selection."""
        self.message = ""
        self.subtitle = ""
        self.current: CouplingView | None = None
        """What is drawn now (None when nothing can be)."""
        self.cursor_value: float = math.nan
        """The stored m_K under the cursor (NaN when not computed or nothing shown)."""

    def compose(self) -> ComposeResult:
        yield self.info
        yield self.heatmap

    # -- state changes (called by the app's actions) --
    def cycle_k(self, run: Run) -> None:
        ks = run.coupling_ks
        if ks:
            k = self._k(run)
            self.k = ks[(ks.index(k) + 1) % len(ks)] if k in ks else ks[-1]

    def toggle_metric(self) -> None:
        self.metric = COUPLING_METRICS[(COUPLING_METRICS.index(self.metric) + 1) % len(COUPLING_METRICS)]

    def set_metric(self, metric: str) -> None:
        if metric in COUPLING_METRICS:
            self.metric = metric

    def toggle_average(self) -> None:
        self.average = not self.average

    def toggle_baseline(self, run: Run) -> bool:
        """Switch trained/random-init; False (and no change) when the run has no baseline."""
        if not run.has_baseline:
            self.baseline = False
            return False
        self.baseline = not self.baseline
        return True

    def toggle_view(self) -> None:
        self.view = "token" if self.view == "depth" else "depth"

    def step_column(self, run: Run, delta: int) -> None:
        n = run.n_layers if self.view == "depth" else run.n_tokens
        self.column[self.view] = max(0, min(self.column[self.view] + delta, n - 1))

    def _k(self, run: Run) -> int | None:
        ks = run.coupling_ks
        if not ks:
            return None
        if self.k in ks:
            return self.k
        return int((run.header.get("coupling") or {}).get("k", ks[-1]))

    # -- drawing --
    def show(self, run: Run, token: int, layer: int = 0) -> None:
        view = None
        if not run.header:
            message = WAITING
        elif not run.coupling_ks:
            message = NO_COUPLING
        else:
            view = run.coupling_view(view=self.view, k=self._k(run), token=None if self.average else token,
                                     layer=layer, metric=self.metric, baseline=self.baseline)
            message = NO_TOKEN_VIEW if view is None and self.view == "token" else ""
        self.current = view
        if view is None:
            self.cursor_value = math.nan
            self.heatmap.set_matrix(self.heatmap.values[:0, :0], (math.nan, math.nan), (0, 0))
            set_subtitle(self, "")
            self._set_message(message)
            return
        row = layer if self.view == "depth" else token
        n = view.values.shape[0]
        col = self.column[self.view] = max(0, min(self.column[self.view], n - 1))
        self.cursor_value = view.cell(row, col)[0]
        what = "random-init" if self.baseline else "trained"
        k = f"K={view.k}"
        if self.view == "depth":
            where = "token average" if self.average else f"token {token} '{visible(run.token_texts[token])}'"
        else:
            where = f"layer {layer}"
        set_subtitle(self, f"{self.view} · {where} · {k} · {what} · {view.metric}")
        m, c = view.cell(row, col)
        self._set_message(f"{view.axis} {row} → {col}: m = {value_text(m)} · 1−m² = {value_text(c)}")
        self.heatmap.set_matrix(view.values, view.scale, (row, col), view.axis)

    def _set_message(self, text: str) -> None:
        if text != self.message:
            self.message = text
            self.info.update(text)
