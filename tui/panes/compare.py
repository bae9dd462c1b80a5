"""The Compare pane: two runs' numbers side by side (core.results.compare: the run scalar at a common K with the Haar null it
reads against, the trajectory fits, the greedy token) beside both models' hidden-state norms against depth."""

from __future__ import annotations

import math
import re

from rich.console import Group
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Container, VerticalScroll
from textual.events import Resize
from textual.widgets import Static

from coupling_tui.core.results.compare import map_token, rows, sides, verdict
from coupling_tui.core.results.run import Run

from . import RUN_PANE_CLASS, WAITING, set_subtitle
from .logplot import LogPlot, Series, log_points
from .tokens import quoted, visible
from coupling_tui.core.results import names

COLOURS = ((86, 156, 214), (230, 140, 40))
"""Run A's and run B's colour: the table's column heads and the plot's lines."""
NORMS = names.TRAJECTORY_NORMS


def _hex(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


class ComparePane(Container):
    """``show_pair(a, b, token, layer)`` draws the table and the plot for A's selected token and layer (B's stand-ins
    are core.results.compare.map_token / map_layer)."""

    DEFAULT_CLASSES = RUN_PANE_CLASS
    BORDER_TITLE = "Compare"
    can_focus = True

    HELP = """\
## Compare

Two runs of the same prompt side by side: **A** (left heatmap, blue) and **B** (right heatmap, orange) — two
models (`--compare MODEL2`, or `coupling-tui view A.safetensors B.safetensors`) or a model and its random-init
twin (`--compare random-init`, or any run computed with `--random-baseline`). The paper's comparison: the more
coupled model (smaller m off the diagonal) is the better one; a trained model is far more coupled than the same
architecture with random weights.

- **Table**, at a K both runs have: mean of m_K over i ≠ j of the **last** token's depth-coupling matrix (the
  papers' quantity; B's own last token), of **all** tokens' (token 0 included) with its adjacent (|i−j| = 1) and
  far (|i−j| ≥ 10) parts, and of the selected **token**'s; the **Haar null** (what
  m_K of random bases gives for this d and K: the "unrelated" level to read the others against); the selected
  token's growth factor per block (R²), line-shape score, linearisation fidelity; the greedy next token. The caption
  ranks the runs by the all-token mean.
- **Plot**: ‖x^l‖ of the selected token against depth for both runs (log axis); when the models differ in depth
  the x axis is the relative depth in % (block l of L at 100·l/L).
- **Stand-ins**: B's token is the same index when both runs have the same tokens, else counted from the end
  (last ↔ last); B's layer is the one at the same relative depth. Both heatmaps follow every coupling key and share
  one colour scale (equal colours, equal values).

Keys: `c` back to the one-run layout, `x` swaps A and B, PgUp/PgDn scroll the table when it is taller than the
pane (the bottom border then says how many lines are above and below).
"""

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's own keyword
        super().__init__(id=id)
        self.table = Static("", id="compare-table")
        self.plot = LogPlot("depth", "‖x‖", id="compare-plot")
        self.subtitle = ""
        self.lines: list[tuple[str, str, str]] = []
        """The table's rows as text (what, A, B), for tests and the export."""
        self.verdict = ""
        self.hidden_lines = 0
        """The table's lines below its box (the border subtitle then says so)."""
        self.lines_above = 0
        """The table's lines scrolled above its box (PgUp brings them back)."""
        self.scroller = VerticalScroll(id="compare-scroll")
        """The table's box: it scrolls (PgUp/PgDn, the mouse wheel) when the table is taller."""
        self.scroller.can_focus = False
        self._tokens = ""

    def compose(self) -> ComposeResult:
        with self.scroller:
            yield self.table
        yield self.plot

    def scroll_table(self, pages: int) -> None:
        """Scroll the table by ``pages`` of its box's height (negative: up); the subtitle follows."""
        step = max(self.scroller.scrollable_content_region.height - 1, 1)
        self.scroller.scroll_to(y=self.scroller.scroll_y + pages * step, animate=False, immediate=True)
        self._mark_overflow()

    def show(self, run: Run, token: int, layer: int = 0) -> None:
        """A run pane's usual call: the app draws this pane with ``show_pair`` instead."""

    def show_pair(self, a: Run, b: Run, labels: tuple[str, str], token: int, layer: int,
                  k: int | None = None) -> None:
        """The table at ``k`` (the K the heatmaps show) when both runs have it, else the largest common K."""
        if not a.header:
            self.table.update(WAITING)
            self.plot.set_series((), (0, 1))
            return
        token_b = map_token(token, a, b) if b.header else 0
        if b.header:
            sa, sb = sides(a, b, token, k)
            self.lines, self.verdict = rows(sa, sb), verdict(sa, sb)
            k = sa.k
        else:
            self.lines, self.verdict, k = [], "B starts when A finishes", None
        table = self._table(labels)
        self.table.update(table)
        self._fit_width(table)
        tokens = f"A {quoted(a, token)}" + (f" · B {quoted(b, token_b)}" if b.n_tokens else "") if a.n_tokens else ""
        self._tokens = tokens + (f" · K={k}" if k is not None else "")
        self._plot(a, b, token, token_b, layer)
        self._mark_overflow()                              # the tokens now; how much is hidden once laid out
        self.call_after_refresh(self._mark_overflow)

    def _fit_width(self, table: Table | Group) -> None:
        """The scrolling box as wide as the table wants (a scroll container does not size to its content), plus
        its padding and scrollbar; the CSS's max-width still caps it."""
        console = self.app.console
        wanted = Measurement.get(console, console.options, table).maximum + 2
        if self.scroller.styles.width is None or self.scroller.styles.width.value != wanted:
            self.scroller.styles.width = wanted

    def on_resize(self, event: Resize) -> None:
        self.call_after_refresh(self._mark_overflow)

    def _mark_overflow(self) -> None:
        """The subtitle starts with "↑ N · ↓ M more lines · PgUp/PgDn" when the table is taller than its box (like
        the heatmap's ↓)."""
        box = self.scroller
        above = round(box.scroll_y) if self.lines else 0
        below = max(round(box.max_scroll_y - box.scroll_y), 0) if self.lines else 0
        self.hidden_lines, self.lines_above = below, above
        marks = [f"↑ {above}" if above else "", f"↓ {below}" if below else ""]
        mark = " · ".join(m for m in marks if m)
        if mark:
            mark += f" more line{'s' if max(above, below) > 1 else ''} · PgUp/PgDn · "
        set_subtitle(self, mark + self._tokens)

    def _table(self, labels: tuple[str, str]) -> Table | Group:
        table = Table(box=None, padding=(0, 1), show_edge=False, expand=False, header_style="bold")
        table.add_column("", overflow="ellipsis")             # what each row is: wraps rather than crop a head
        model, heads = column_heads(labels)
        if model:
            table.title, table.title_justify, table.title_style = model, "left", "bold"
        for side, head in enumerate(heads):                # what tells A from B wraps, never cut
            table.add_column(Text(f"{'AB'[side]} {head}", style=f"bold {_hex(COLOURS[side])}"), overflow="fold",
                             min_width=2 + max(len(word) for word in head.split()))
        for name, va, vb in self.lines:
            table.add_row(name, va, vb)
        if not self.verdict:
            return table
        return Group(Text(self.verdict, style="bold"), table)   # the verdict first: in view on a short pane

    def _plot(self, a: Run, b: Run, token: int, token_b: int, layer: int) -> None:
        same_depth = a.n_layers == b.n_layers or not b.header
        series = []
        for side, (run, t) in enumerate(((a, token), (b, token_b))):
            if NORMS not in run.arrays or not run.n_tokens:
                continue
            norms = run.norms(t)
            xs = range(len(norms)) if same_depth else [_percent(l, run.n_layers) for l in range(len(norms))]
            series.append(Series(f"{'AB'[side]} '{visible(run.token_texts[t])}'", log_points(xs, norms),
                                 COLOURS[side]))
        marker = layer + 1 if same_depth else _percent(layer + 1, a.n_layers)
        self.plot.xlabel = "depth (0 = embeddings)" if same_depth else "relative depth, % of the model's blocks"
        self.plot.set_series(series, (0, a.n_layers if same_depth else 100), marker if a.n_layers else None)
        title = Text(self.BORDER_TITLE + " ").append_text(self.plot.legend()) if series else Text(self.BORDER_TITLE)
        if title.plain != str(self.border_title or ""):
            self.border_title = title


def column_heads(labels: tuple[str, str]) -> tuple[str, tuple[str, str]]:
    """(the model both runs share or "", the two column heads): two runs of one model are headed by what tells them
    apart ("trained", "random-init"), the model named once above; two models by their labels in full."""
    split = [re.fullmatch(r"(.*?)(?: \(([^()]*)\))?", label) for label in labels]
    (name_a, weights_a), (name_b, weights_b) = ((m.group(1), m.group(2) or "trained") for m in split)
    if name_a == name_b and weights_a != weights_b:
        return name_a, (weights_a, weights_b)
    return "", (labels[0], labels[1])


def _percent(depth: int, n_layers: int) -> float:
    return 100.0 * depth / n_layers if n_layers else math.nan
