"""The Coupling pane's two profile views of the depth matrix (the figures' ``coupling-adjacent`` and
``coupling-distance``, core.figures.data): adjacent coupling m(l, l+1) and m(l+1, l) against depth, and the mean m
against the block distance |i − j|. Drawn from the stored m_K by core.maths.run_scalar (nothing recomputed here),
the run shown and, when it has one, its trained/random-init twin on the same axes. Presentation only."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from textual.app import ComposeResult
from textual.containers import Container
from textual.widgets import Static

from coupling_tui.core.maths.run_scalar import adjacent_coupling, distance_profile
from coupling_tui.core.results.aggregate import aggregate_view, has_aggregate_baseline, is_aggregate
from coupling_tui.core.results.compare import weights
from coupling_tui.core.results.run import Run

from .logplot import LogPlot, Series, finite_points

PROFILE_VIEWS = ("adjacent", "distance")
"""The views ``v`` reaches after the matrix views: plots drawn from the depth matrix."""
PRIMARY_COLOUR = (86, 156, 214)
OTHER_COLOUR = (230, 140, 40)
LABELS = {"adjacent": ("block l", "m_K"), "distance": ("|i − j| (blocks)", "mean m_K")}
"""Each profile's (x axis, y axis) titles."""


@dataclass(frozen=True)
class Side:
    """One depth matrix drawn: its name on the legend ("trained", "random-init") and the stored m [L, L] (row =
    the Jacobian's block, column = the basis's; NaN where not computed yet)."""

    label: str
    m: np.ndarray


def _num(value: float) -> str:
    return f"{value:.4f}" if math.isfinite(value) else "pending"


def depth_sides(run: Run, *, k: int | None, token: int | None, average: bool, variant: str, baseline: bool,
                twin: bool) -> list[Side]:
    """The depth matrices a profile view draws, as stored (m at K): ``token``'s or, with ``average``, the token
    average (a prompt set's aggregate: the mean over prompts of the last token's or of the token average): the
    run's — its random-init twin's when ``baseline`` — then, with ``twin`` and when the run has both, the other."""
    has_twin = run.has_baseline or has_aggregate_baseline(run)
    baselines = [baseline, not baseline] if twin and has_twin else [baseline and has_twin]
    sides = []
    for random in baselines:
        if is_aggregate(run):
            found = aggregate_view(run, k=k, last_token=not average, metric="m", baseline=random)
            view = found.view if found is not None else None
        else:
            view = run.coupling_view(view="depth", k=k, token=None if average else token, metric="m",
                                     baseline=random, variant=variant)
        if view is not None:
            sides.append(Side("random-init" if random else "trained" if is_aggregate(run) else weights(run), view.m))
    return sides


def profile_range(ys: list[np.ndarray]) -> tuple[float, float]:
    """The y span the auto scale gives the plotted ``ys``: their finite values, padded by 5 % of their range (at
    least 0.01), within 0–1.5; (nan, nan) when nothing is finite yet."""
    values = np.concatenate([np.ravel(y) for y in ys]) if ys else np.zeros(0)
    values = values[np.isfinite(values)]
    if not values.size:
        return math.nan, math.nan
    lo, hi = float(values.min()), float(values.max())
    pad = max((hi - lo) * 0.05, 0.01)
    return max(lo - pad, 0.0), min(hi + pad, 1.5)


def _lines(side: Side, kind: str) -> tuple[np.ndarray, ...]:
    """(x, y…) of one side: adjacent → (l, m(l, l+1), m(l+1, l)); distance → (|i − j|, mean m)."""
    if kind == "adjacent":
        return adjacent_coupling(side.m)
    gaps, means, _ = distance_profile(side.m)
    return gaps, means


class CouplingProfile(Container):
    """A legend line and the plot; ``draw`` shows one profile and returns the cursor's readout."""

    DEFAULT_CSS = """
    CouplingProfile { height: 1fr; display: none; }
    CouplingProfile #profile-legend { height: auto; padding: 0 1; }
    CouplingProfile #profile-plot { height: 1fr; }
    """

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's keyword
        super().__init__(id=id)
        self.legend = Static("", id="profile-legend", markup=False)
        self.plot = LogPlot(*LABELS["adjacent"], id="profile-plot", ylog=False)
        self._legend = ""
        self.auto_range: tuple[float, float] = (math.nan, math.nan)
        """The y span of the values drawn (``profile_range``), before any sharing with another pane."""

    def compose(self) -> ComposeResult:
        yield self.legend
        yield self.plot

    def draw(self, kind: str, sides: list[Side], cursor: int, fixed: bool) -> tuple[str, float]:
        """Plot ``kind`` of ``sides`` (the first is the run shown, solid and on top; a second, its twin, in another
        colour), the y axis 0–1 when ``fixed`` else the values' span, the cursor marked: a block l (adjacent: the
        pair l → l+1) or a distance. Returns the readout of the cursor's values, every side's, and the first side's
        value there (m(l, l+1), or the mean m at that distance; NaN when not computed)."""
        value = math.nan
        self.plot.set_labels(*LABELS[kind])
        series, readout, plotted = [], [], []
        for n, side in enumerate(sides):
            colour = PRIMARY_COLOUR if n == 0 else OTHER_COLOUR
            x, *ys = _lines(side, kind)
            x = [int(v) for v in x]
            plotted += ys
            if kind == "adjacent":
                forward, backward = ys
                series += [Series(f"{side.label} m(l, l+1)", finite_points(x, forward), colour, on_top=n == 0),
                           Series(f"{side.label} m(l+1, l)", finite_points(x, backward), colour, dots=False,
                                  dotted=True, marked=False)]
                if cursor in x:
                    i = x.index(cursor)
                    value = float(forward[i]) if n == 0 else value
                    readout += [f"{side.label}: m({cursor}, {cursor + 1}) = {_num(float(forward[i]))}",
                                f"m({cursor + 1}, {cursor}) = {_num(float(backward[i]))}"]
            else:
                (means,) = ys
                series.append(Series(side.label, finite_points(x, means), colour, on_top=n == 0))
                if cursor in x:
                    value = float(means[x.index(cursor)]) if n == 0 else value
                    readout.append(f"{side.label}: mean m = {_num(float(means[x.index(cursor)]))}")
        if not sides or sides[0].m.shape[0] < 2:
            readout = ["a profile needs at least 2 layers"]
        n_layers = sides[0].m.shape[0] if sides else 2
        x_range = (0, max(n_layers - 2, 1)) if kind == "adjacent" else (1, max(n_layers - 1, 2))
        self.auto_range = profile_range(plotted)
        self.plot.set_y_range((0.0, 1.0) if fixed else self.auto_range)
        self.plot.set_series(series, x_range, cursor)
        legend = self.plot.legend()
        if legend.plain != self._legend:                  # Static.update lays the pane out again: only on a change
            self._legend = legend.plain
            self.legend.update(legend)
        where = (f"layer {cursor} → {cursor + 1}" if kind == "adjacent" else f"|i − j| = {cursor}")
        if kind == "distance" and sides and n_layers > cursor:
            readout.append(f"over the {2 * (n_layers - cursor)} pairs i → j")
        return " · ".join([where] + readout), value      # " · " parts: the readout wraps between them, never cuts

    def share_range(self, other: "CouplingProfile") -> None:
        """One y span for this plot and ``other`` (the compare layout's A and B): the union of both."""
        spans = [self.auto_range, other.auto_range]
        if not all(math.isfinite(v) for span in spans for v in span):
            return
        shared = (min(s[0] for s in spans), max(s[1] for s in spans))
        for profile in (self, other):
            profile.plot.set_y_range(shared)
