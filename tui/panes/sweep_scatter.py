"""The Sweep pane's scatter: one point per model of a sweep (core.results.sweep_table). With scores, the score
against the coupling scalar with the fitted OLS line, R² and p in the title (Aubry et al. 2025, Figure 1a); without,
the coupling scalar against log10 of the parameter count (no fit: nothing to predict). The selected model is the
red ◆. Draws only what ``sweep.json`` holds."""

from __future__ import annotations

import math
from dataclasses import dataclass

from rich.text import Text
from textual_plotext import PlotextPlot

from .logplot import MARK_COLOR, plotext_text

POINT_COLOUR = (86, 156, 214)
FIT_COLOUR = (230, 140, 40)
POOLINGS = {"coupling_scalar_last_token": "last token (the papers')", "coupling_scalar": "all-token mean"}
"""The coupling scalar's columns (``t`` switches), and how each is named."""


@dataclass(frozen=True)
class Axes:
    """What the scatter plots: the columns on x and y, their titles, and the fit's name in sweep.json (or None)."""

    x: str
    y: str
    x_title: str
    y_title: str
    fit: str | None


def axes_for(table: dict, pooling: str) -> Axes:
    """The paper's figure when the sweep has scores (score on y, the coupling scalar on x), else the coupling scalar
    against log10 n_params."""
    k = next((r.get("k") for r in table["rows"] if r.get("k") is not None), None)
    scalar = f"m_{k} off-diagonal, {POOLINGS[pooling]}" if k is not None else "coupling scalar"
    if any(_finite(r.get("score")) for r in table["rows"]):
        return Axes(pooling, "score", f"{scalar} (0 = coupled)", "score", pooling)
    return Axes("n_params", pooling, "log10 parameters", scalar, None)


def _hex(colour: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*colour)


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def points(table: dict, axes: Axes) -> list[tuple[int, float, float]]:
    """(row index, x, y) of every model that has both values (failed ones have none)."""
    out = []
    for i, row in enumerate(table["rows"]):
        x, y = row.get(axes.x), row.get(axes.y)
        if axes.x == "n_params" and _finite(x) and x > 0:
            x = math.log10(x)
        if row.get("status") == "ok" and _finite(x) and _finite(y):
            out.append((i, float(x), float(y)))
    return out


def fit_title(table: dict, axes: Axes) -> str:
    """"fit: R² 0.81 · p 0.002 · ρ 0.90 (n = 12)", or why there is none."""
    if axes.fit is None:
        return "no scores (--scores): no fit"
    fit = (table.get("fits") or {}).get(axes.fit) or {}
    if "r2" not in fit:
        return f"no fit: {fit.get('note', 'none in this table')}"
    p = "–" if fit.get("p") is None else f"{fit['p']:.2g}"
    rho = "–" if fit.get("spearman_rho") is None else f"{fit['spearman_rho']:.2f}"
    return f"fit: R² {fit['r2']:.3f} · p {p} · ρ {rho} (n = {fit['n']})"


class SweepScatter(PlotextPlot):
    """The scatter of a sweep's models (module docstring)."""

    BORDER_TITLE = "Sweep"
    can_focus = True
    HELP = """\
## Sweep

One point per model of the sweep. With a scores file (`--scores`): the **score** against the **coupling scalar**
(the mean over i ≠ j of the depth coupling m_K; 0 = coupled, ≈1 = unrelated), the orange line the OLS fit of
the score on it, its R², p-value and Spearman ρ in the title (the first paper's Figure 1a). Without scores: the
coupling scalar against log10 of the parameter count.

`t` switches the coupling scalar between the **last token** (the papers' quantity) and the **all-token mean**.
The selected model of the table is the red ◆; Enter opens its run in the usual panes, Esc comes back.
"""

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's keyword
        super().__init__(id=id)
        self.table: dict = {"rows": []}
        self.axes = Axes("", "", "", "", None)
        self.selected: int | None = None

    def show(self, table: dict, pooling: str, selected: int | None) -> None:
        self.table, self.axes, self.selected = table, axes_for(table, pooling), selected
        self.border_title = f"Sweep · {fit_title(table, self.axes)}"
        rows = table["rows"]
        name = rows[selected]["model"] if selected is not None and 0 <= selected < len(rows) else None
        legend = Text()
        legend.append("● ", style=_hex(POINT_COLOUR)).append("models")
        if self.axes.fit is not None:
            legend.append("  ─ ", style=_hex(FIT_COLOUR)).append("OLS fit")
        if name is not None:
            legend.append("  ◆ ", style=MARK_COLOR).append(name if len(name) <= 40 else "…" + name[-39:])
        self.border_subtitle = legend
        self.refresh()

    def render(self):
        plt = self.plt
        plt.clear_data()
        plt.title(None)
        pts = points(self.table, self.axes)
        plt.xlabel(self.axes.x_title)
        plt.ylabel(self.axes.y_title)
        if pts:
            xs, ys = [p[1] for p in pts], [p[2] for p in pts]
            fit = (self.table.get("fits") or {}).get(self.axes.fit or "") or {}
            if "slope" in fit and fit["slope"] is not None and len(set(xs)) > 1:
                lo, hi = min(xs), max(xs)
                line = [lo + (hi - lo) * i / 20 for i in range(21)]
                plt.plot(line, [fit["intercept"] + fit["slope"] * x for x in line], marker="braille",
                         color=FIT_COLOUR)
            plt.scatter(xs, ys, marker="●", color=POINT_COLOUR)
            chosen = [p for p in pts if p[0] == self.selected]
            if chosen:
                plt.scatter([chosen[0][1]], [chosen[0][2]], marker="◆", color=MARK_COLOR)
        return plotext_text(self)
