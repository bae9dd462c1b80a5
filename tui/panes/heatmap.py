"""A square-cell heatmap of an n×n matrix drawn with half blocks (two cells per text row), with row/column axis
labels, a cursor cell and a colour-scale legend. Presentation only: it maps the values it is given to colours."""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.strip import Strip
from textual.widget import Widget

VIRIDIS = ("#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779", "#6ece58", "#b5de2b",
           "#fde725")
"""Matplotlib's viridis at ten stops: perceptually uniform, readable on dark and light backgrounds."""
MISSING = "#6b6b6b"
"""Cells not computed yet (NaN)."""
CURSOR = "#ff2d6f"
"""The cursor cell: a colour outside the scale."""
LABEL_WIDTH = 4
LEGEND_WIDTH = 20
MIN_LEGEND_WIDTH = 4
SCALE_NAMES = {"auto": ("auto scale: off-diagonal range", "auto (off-diag.)", "auto"),
               "fixed": ("fixed scale 0–1", "fixed 0–1", "fixed"),
               "auto, shared by A and B": ("auto scale: off-diagonal range of A and B", "auto (A and B)", "auto")}
"""What the legend calls each colour scale, longest first: the longest that fits is written."""


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    return int(hex_colour[1:3], 16), int(hex_colour[3:5], 16), int(hex_colour[5:7], 16)


_STOPS = np.array([_rgb(c) for c in VIRIDIS], dtype=np.float64)


def colour(value: float, lo: float, hi: float) -> str:
    """The viridis colour of ``value`` on the scale lo..hi (clipped), MISSING when it is not finite."""
    if not math.isfinite(value) or not math.isfinite(lo) or not math.isfinite(hi):
        return MISSING
    x = 0.5 if hi <= lo else min(1.0, max(0.0, (value - lo) / (hi - lo)))
    pos = x * (len(_STOPS) - 1)
    i = min(int(pos), len(_STOPS) - 2)
    r, g, b = _STOPS[i] + (pos - i) * (_STOPS[i + 1] - _STOPS[i])
    return f"#{round(r):02x}{round(g):02x}{round(b):02x}"


def colour_grid(values: np.ndarray, lo: float, hi: float) -> list[list[str]]:
    """``colour`` of every entry of ``values`` [rows, columns], computed with numpy (the same arithmetic, so the
    same colours: tests/test_heatmap_lines.py checks it)."""
    values = np.asarray(values, dtype=np.float64)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [[MISSING] * values.shape[1] for _ in range(values.shape[0])]
    with np.errstate(invalid="ignore"):
        x = np.full(values.shape, 0.5) if hi <= lo else np.clip((values - lo) / (hi - lo), 0.0, 1.0)
    pos = np.nan_to_num(x) * (len(_STOPS) - 1)
    i = np.minimum(pos.astype(np.int64), len(_STOPS) - 2)
    rgb = np.round(_STOPS[i] + (pos - i)[..., None] * (_STOPS[i + 1] - _STOPS[i])).astype(np.int64)
    codes = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    finite = np.isfinite(values)
    return [[f"#{code:06x}" if ok else MISSING for code, ok in zip(row, ok_row)]
            for row, ok_row in zip(codes.tolist(), finite.tolist())]


@lru_cache(maxsize=4096)
def half_block_style(top: str, bottom: str | None) -> Style:
    """The style of "▀" showing ``top`` over ``bottom`` (one object per pair: the renderer caches by style)."""
    return Style(color=top, bgcolor=bottom)


def window(n: int, size: int, centre: int) -> tuple[int, int]:
    """The first index and count of a window of at most ``size`` of n indices that contains ``centre``."""
    size = max(1, min(n, size))
    start = max(0, min(centre - size // 2, n - size))
    return start, size


class Heatmap(Widget):
    """Call ``set_matrix``; it repaints only when what it shows changed. Cells are square (one column wide, half
    a row tall) and grow to fill the widget; a matrix larger than the widget is windowed around the cursor."""

    DEFAULT_CSS = """
    Heatmap { height: 1fr; width: 1fr; text-wrap: nowrap; text-overflow: clip; }
    """

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's own keyword
        super().__init__(id=id)
        self.values: np.ndarray = np.zeros((0, 0))
        self.scale: tuple[float, float] = (math.nan, math.nan)
        self.cursor: tuple[int, int] = (0, 0)
        self.axis_label = ""
        self.scale_name = "auto"
        """Which colour scale ``scale`` is (a key of SCALE_NAMES): the legend says it."""
        self.shown: tuple[int, int, int, int] = (0, 0, 0, 0)
        """The rows and columns the last render drew: (first row, rows, first column, columns)."""
        self._key: tuple | None = None
        self._label_w = LABEL_WIDTH
        self._strips: list[Strip] = []
        self._strips_key: tuple | None = None

    def set_matrix(self, values: np.ndarray, scale: tuple[float, float], cursor: tuple[int, int],
                   axis_label: str = "", scale_name: str = "auto") -> None:
        key = (values.tobytes(), values.shape, scale, cursor, axis_label, scale_name)
        if key == self._key:
            return
        self._key = key
        self.values, self.scale, self.cursor, self.axis_label = values, scale, cursor, axis_label
        self.scale_name = scale_name
        self.refresh()

    def render(self) -> Text:
        return self.render_at(self.size.width, self.size.height)

    def render_line(self, y: int) -> Strip:
        """Row ``y`` of ``render_at``'s text, rendered by rich once per matrix, cursor and size (Textual's own
        path from a Text converts each of its thousands of spans on every repaint: 3–4× slower, issue 20 item 11)."""
        key = (self._key, self.size.width, self.size.height)
        if key != self._strips_key:
            self._strips_key = key
            self._strips = self._render_strips(self.size.width, self.size.height)
        if 0 <= y < len(self._strips):
            return self._strips[y]
        return Strip.blank(self.size.width, self.rich_style)

    def _render_strips(self, width: int, height: int) -> list[Strip]:
        """``render_at``'s rows as strips: the matrix rows straight from their segments (no rich Text to render
        and split: the costly part of a repaint), the axis and legend lines through rich."""
        base, console = self.rich_style, self.app.console
        rows, tail = self._rows(width, height)
        strips = []
        for label, label_style, runs in rows:
            segments = [Segment(label, console.get_style(label_style))]
            segments += [Segment(cells, style) for cells, style in runs]
            strips.append(Strip(Segment.apply_style(segments, base)).adjust_cell_length(width, base))
        if tail is not None:
            lines = Segment.split_and_crop_lines(tail.render(console), width, pad=True, style=base,
                                                 include_new_lines=False)
            strips += [Strip(Segment.apply_style(line, base), width) for line in lines]
        return strips

    def render_at(self, width: int, height: int) -> Text:
        """The heatmap, its axis line and its legend in ``width`` × ``height`` cells."""
        rows, tail = self._rows(width, height)
        if tail is None:
            return Text("")
        out = Text(no_wrap=True, overflow="crop")
        for label, label_style, runs in rows:
            out.append(label, style=label_style)
            for cells, style in runs:
                out.append(cells, style=style)
            out.append("\n")
        out.append_text(tail)
        return out

    def _rows(self, width: int, height: int) -> tuple[list[tuple[str, str, list[tuple[str, Style]]]], Text | None]:
        """The matrix's text rows — (label, its style, runs of equal cells as (characters, style)) — and the axis
        and legend lines below them; ([], None) when nothing fits."""
        n = self.values.shape[0] if self.values.ndim == 2 else 0
        self._label_w = max(LABEL_WIDTH, len(str(max(n - 1, 0))) + 2)
        width, height = width - self._label_w, height - 2
        if n == 0 or width < 2 or height < 1:
            return [], None
        scale_px = max(1, min(width // n, (2 * height) // n))
        r0, nr = window(n, (2 * height) // scale_px, self.cursor[0])
        c0, nc = window(n, width // scale_px, self.cursor[1])
        self.shown = (r0, nr, c0, nc)
        lo, hi = self.scale
        colours = colour_grid(self.values[r0:r0 + nr, c0:c0 + nc], lo, hi)
        row, col = self.cursor[0] - r0, self.cursor[1] - c0
        if 0 <= row < nr and 0 <= col < nc:
            colours[row][col] = CURSOR
        step = 5 if n > 12 else 1
        rows = []
        pixel_rows = nr * scale_px
        for y in range(0, pixel_rows, 2):
            top, bottom = y // scale_px, (y + 1) // scale_px if y + 1 < pixel_rows else None
            label = self._row_label(r0, y, scale_px, pixel_rows, step)
            if not label.startswith("▶"):              # more rows above or below: the matrix scrolls
                if y == 0 and r0 > 0:
                    label = "↑" + label[1:]
                elif y + 2 >= pixel_rows and r0 + nr < n:
                    label = "↓" + label[1:]
            pairs = [(colours[top][c], colours[bottom][c] if bottom is not None else None) for c in range(nc)]
            runs, c = [], 0
            while c < nc:                        # one span per run of equal cells: rendering costs per span
                run = c + 1
                while run < nc and pairs[run] == pairs[c]:
                    run += 1
                runs.append(("▀" * ((run - c) * scale_px), half_block_style(*pairs[c])))
                c = run
            rows.append((label, "bold" if label.startswith("▶") else "dim", runs))
        tail = Text(no_wrap=True, overflow="crop")
        tail.append(self._column_axis(c0, nc, scale_px, step))
        tail.append("\n")
        tail.append_text(self._legend(width + self._label_w))
        return rows, tail

    def window_note(self) -> str:
        """Which rows and columns are drawn when the matrix is larger than the widget ("" when all are)."""
        r0, nr, c0, nc = self.shown
        n = self.values.shape[0] if self.values.ndim == 2 else 0
        parts = []
        if nr < n:
            parts.append(f"rows {r0}–{r0 + nr - 1} of {n} ↕")
        if nc < n:
            parts.append(f"cols {c0}–{c0 + nc - 1} of {n} ↔")
        return ", ".join(parts)

    def _row_label(self, r0: int, y: int, scale_px: int, pixel_rows: int, step: int) -> str:
        """The label of text row ``y`` (pixel rows y and y+1): the index of a row whose cell starts on it, when
        it is the cursor row (marked ▶) or a multiple of ``step``."""
        starting = [(r0 + p // scale_px) for p in (y, y + 1) if p < pixel_rows and p % scale_px == 0]
        for row in sorted(starting, key=lambda r: r != self.cursor[0]):
            if row == self.cursor[0] or row % step == 0:
                mark = "▶" if row == self.cursor[0] else " "
                return f"{mark}{row:>{self._label_w - 2}} "
        return " " * self._label_w

    def _column_axis(self, c0: int, nc: int, scale_px: int, step: int) -> Text:
        """Column indices under the cells: every ``step``, the cursor column marked with ▲ when it has room."""
        line = [" "] * (self._label_w + nc * scale_px + 4)
        for c in range(nc):
            col = c0 + c
            if col % step == 0 or col == self.cursor[1]:
                text = str(col)
                at = self._label_w + c * scale_px
                if all(ch == " " for ch in line[at:at + len(text) + 1]):
                    line[at:at + len(text)] = text
        at = self._label_w + (self.cursor[1] - c0) * scale_px
        if c0 > 0:
            line[0] = "←"
        n = self.values.shape[0]
        more = "→" if c0 + nc < n else ""
        note = self.window_note()
        axis = Text("".join(line).rstrip() + f"{more}  {self.axis_label}" + (f" · {note}" if note else ""),
                    style="dim")
        if 0 <= at < len(axis) and axis.plain[at] == " ":
            axis = Text(axis.plain[:at] + "▲" + axis.plain[at + 1:], style="dim")
        return axis

    def _legend(self, width: int) -> Text:
        """The colour bar between its end values, which scale it is (the longest name that fits) and the pending
        colour (only while a cell is pending: NaN), in ``width`` cells: the values and the scale's name first, the
        bar shrinking to make room."""
        lo, hi = self.scale
        if not (math.isfinite(lo) and math.isfinite(hi)):
            return Text(" " * self._label_w + "no values yet", style="dim")
        ends = (f"{lo:.3g} ", f" {hi:.3g}")
        fixed = self._label_w + sum(map(len, ends)) + 1
        names = SCALE_NAMES.get(self.scale_name, (self.scale_name,))
        name = next((x for x in names if fixed + len(x) + MIN_LEGEND_WIDTH <= width), names[-1])
        pending = "  ■ pending" if np.isnan(self.values).any() else ""
        room = width - fixed - len(name)
        bars = max(MIN_LEGEND_WIDTH, min(LEGEND_WIDTH, room - len(pending) if room - len(pending) >= 10 else room))
        bar = Text(" " * self._label_w + ends[0])
        for i in range(bars):
            bar.append("█", style=Style(color=colour(lo + (hi - lo) * i / (bars - 1), lo, hi)))
        bar.append(ends[1])
        bar.append(f" {name}", style="bold")
        if pending and fixed + len(name) + bars + len(pending) <= width:
            bar.append("  ■", style=Style(color=MISSING))
            bar.append(" pending", style="dim")
        return bar
