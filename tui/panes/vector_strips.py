"""Colour strips of a pair of vectors and of their difference, one text row each: every cell is one coordinate,
or (when the vector is wider than the row) the coordinate of largest magnitude of a contiguous bin of them.
Presentation only: the bins and the colour limits come from core.maths.collapse_view."""

from __future__ import annotations

import math

import numpy as np
from rich.style import Style
from rich.text import Text
from textual.widget import Widget

from coupling_tui.core.maths.collapse_view import pair_delta, strip_bins, strip_limit

from .heatmap import MISSING

PU_OR = ("#542788", "#8073ac", "#b2abd2", "#d8daeb", "#f7f7f7", "#fee0b6", "#fdb863", "#e08214", "#b35806")
"""ColorBrewer PuOr, purple (negative) → near-white (0) → orange (positive): the two states."""
RD_BU = ("#2166ac", "#4393c3", "#92c5de", "#d1e5f0", "#f7f7f7", "#fddbc7", "#f4a582", "#d6604d", "#b2182b")
"""ColorBrewer RdBu reversed, blue (negative) → near-white (0) → red (positive): their difference."""
LABEL_WIDTH = 7
SCALE_WIDTH = 9


def _rgb(hex_colour: str) -> np.ndarray:
    return np.array([int(hex_colour[k:k + 2], 16) for k in (1, 3, 5)], dtype=np.float64)


def diverging(value: float, limit: float, palette: tuple[str, ...]) -> str:
    """The colour of ``value`` on a symmetric scale −limit..+limit (clipped), the palette's middle at 0; MISSING
    when the value or the limit is not finite."""
    if not (math.isfinite(value) and math.isfinite(limit)):
        return MISSING
    x = 0.5 if limit <= 0 else min(1.0, max(0.0, 0.5 + 0.5 * value / limit))
    pos = x * (len(palette) - 1)
    i = min(int(pos), len(palette) - 2)
    lo, hi = _rgb(palette[i]), _rgb(palette[i + 1])
    r, g, b = lo + (pos - i) * (hi - lo)
    return f"#{round(r):02x}{round(g):02x}{round(b):02x}"


class VectorStrips(Widget):
    """Rows "y(n)", "y(n+1)" and "Δ" of ``set_pair``'s vectors across the widget's width, each with its scale;
    one line of message while there is no pair."""

    DEFAULT_CSS = "VectorStrips { height: auto; text-wrap: nowrap; text-overflow: clip; }"

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's own keyword
        super().__init__(id=id)
        self.pair: np.ndarray | None = None
        """[2, d] as stored, or None (nothing to show)."""
        self.labels = ("y(n)", "y(n+1)", "Δ")
        self.message = ""
        """Shown instead of the strips when there is no pair (e.g. "pending")."""
        self.cells: list[np.ndarray] = []
        """The coordinate index of every cell drawn, per row (the last render)."""

    def set_pair(self, pair: np.ndarray | None, labels: tuple[str, str, str], message: str = "") -> None:
        same = (self.pair is None and pair is None) or (self.pair is not None and pair is not None
                                                        and np.array_equal(self.pair, pair, equal_nan=True))
        if same and labels == self.labels and message == self.message:
            return
        self.pair, self.labels, self.message = pair, labels, message
        self.refresh(layout=True)                  # one line of message or three of strips

    def render(self) -> Text:
        return self.render_at(self.size.width)

    def render_at(self, width: int) -> Text:
        if self.pair is None:
            self.cells = []
            return Text(self.message, style="dim")
        delta = pair_delta(self.pair)
        rows = [(self.labels[0], self.pair[0], PU_OR), (self.labels[1], self.pair[1], PU_OR),
                (self.labels[2], delta, RD_BU)]
        limits = [strip_limit(self.pair[0], self.pair[1])] * 2 + [strip_limit(delta)]
        cells_width = max(1, width - LABEL_WIDTH - SCALE_WIDTH)
        out = Text(no_wrap=True, overflow="crop")
        self.cells = []
        for n, ((label, values, palette), limit) in enumerate(zip(rows, limits)):
            if n:
                out.append("\n")
            picked, dims = strip_bins(values, cells_width)
            self.cells.append(dims)
            out.append(f"{label:<{LABEL_WIDTH - 1}} ", style="bold" if n == 2 else "")
            for v in picked:
                out.append("█", style=Style(color=diverging(float(v), limit, palette)))
            out.append(f" ±{limit:.3g}" if math.isfinite(limit) else " ?", style="dim")
        return out
