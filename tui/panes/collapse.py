"""The collapse pane: representational collapse and over-squashing (Barbero et al., NeurIPS 2024) as the run
stored them, for the selected family and length n: the pair's last-token states and their difference, the
coordinates that differ most, the difference against n in both precisions, the greedy answers, and the
sensitivity to each input position."""

from __future__ import annotations

import math

import numpy as np
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Container, Horizontal, Vertical
from textual.events import Resize
from textual.widgets import Sparkline, Static

from coupling_tui.core.maths.collapse_view import (MEASURE_FORMULAS, MEASURE_ORDER, MEASURES, DimDifference,
                                                   attention_text, next_measure, resolutions, sensitivity_shares,
                                                   share_text, top_differences)
from coupling_tui.core.results.run import Run

from . import RUN_PANE_CLASS, WAITING, set_subtitle
from .logplot import LogPlot, Series, log_points
from .readout import FitStatic, Readout
from .tokens import visible
from .vector_strips import VectorStrips
from coupling_tui.core.results import names

NO_COLLAPSE = "no collapse data in this run: compute it with `coupling-tui collapse` or `coupling-tui --collapse`"
NO_PAIR_STATES = ("a collapse run stores each sequence's last-token state only (the Collapse pane): no tokens, "
                  "trajectories or Jacobians of the pairs")
PENDING = "pending"
TOP_K = 12
"""Coordinates listed (as many as the pane has rows for are shown)."""
FLOAT32_COLOUR = (30, 120, 220)
LOW_COLOUR = (205, 92, 0)
RESOLUTION_COLOUR = (125, 125, 125)
"""The plot's series colours: mid-luminance, so each keeps a contrast of about 3:1 or more on both the dark and the
light default surfaces (#1e1e1e, #d8d8d8)."""
SHORT_DTYPE = {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32", "float64": "fp64"}
STACK_BELOW = 76
"""Below this width the coordinate table sits above the plot instead of beside it."""
COMPACT_BELOW = 26
"""Below this height the per-n table keeps only its n and bit-identical rows, and the sensitivity one line."""
TINY_BELOW = 18
"""Below this height the per-n table and the sensitivity give their rows to the plot."""
COLUMN = 8
"""The per-n table's column width (wider when a cell needs it, e.g. "0 of 576")."""
LAYER = "last layer, pre-final-norm"
"""Where the plotted differences are taken: always the stored pre-norm states."""


def fmt(value: float, digits: int = 3) -> str:
    """A stored number in ``digits`` significant digits; "…" when it is pending (NaN)."""
    return f"{value:.{digits}g}" if math.isfinite(value) else "…"


def percent(value: float) -> str:
    """A share with one decimal, "0.7 %"; "…" while pending."""
    return f"{100 * value:.1f} %" if math.isfinite(value) else "…"


def identical_text(fraction: float, d: int, dtype: str) -> str:
    """"0 of 576 bit-identical in bf16" or "0.7 % bit-identical in bf16": the pair's coordinates whose low-precision
    bits are equal."""
    return f"{share_text(fraction, d)} bit-identical in {dtype}"


class CollapsePane(Container):
    """Its view state (family, length, pre/post-norm, difference measure) is changed by the app's actions;
    ``show`` draws what the run holds for that state, pending pairs as pending."""

    DEFAULT_CLASSES = RUN_PANE_CLASS
    BORDER_TITLE = "Collapse"
    can_focus = True

    HELP = """\
## Collapse

Representational collapse and over-squashing (Barbero et al., "Transformers need glasses!", NeurIPS 2024).
Each **family** is a sweep of near-identical pairs: a sequence with **n** repeats of a symbol (`1 1 … 1`,
`11…10`, the same digits with commas, a 0/1 string) and its twin with **n + 1**. **y** is the last token's
final-layer state (the last block's output, *before* the final norm unless `n` switches to after it).

- **Strips**: y(n), y(n+1) (purple < 0 < orange, one shared scale) and **Δ = y(n+1) − y(n)** (blue < 0 < red),
  one cell per coordinate, or the largest-magnitude coordinate of a bin when the vector is wider than the pane.
  Colours saturate at the 98th percentile of |value| (written at the right).
- **Table**: the coordinates where the pair differs most: y(n), y(n+1) and Δ as stored.
- **Plot**: the pair's difference against n (log–log), **L∞** = max_k |Δ_k| first (the paper's figure; `d`
  switches to L1/d = ‖Δ‖₁/d, then the relative L2 ‖Δ‖₂/‖y(n)‖₂), at the last layer before the final norm, in float32 and in the low precision (bfloat16 by
  default), with the low precision's **resolution**: bfloat16's unit roundoff 2⁻⁸ times the typical |y_k|
  (the median, for L1/d; the largest, for L∞; 2⁻⁸ itself for the relative L2). Below that line the format
  cannot tell the two states apart at their magnitude. The red line marks the selected n. The plot always
  shows the stored pre-norm differences.
- **Per n**: the numbers plotted, the share of coordinates whose low-precision bits are identical in the
  pair (100 % = the same vector: the model must answer both alike), and the greedy next token of both
  sequences.
- **Sensitivity**: ‖∂y/∂e_i‖ of the last state to each input embedding e_i of one sequence, as a share of
  the total, against the position i (over-squashing: early tokens have more paths to the end).

A **collapse run** (`coupling-tui collapse`) stores each sequence's last-token state only: the explorer then shows
the Collapse pane alone (the tokens and trajectories in the file are a short placeholder prompt's, not the pairs').
The first line shows the family's sequences by the example pair the file keeps (at the shortest n).

Collapse shows as the difference falling with n and the identical share rising; `commas` against `digits`
shows the paper's remedy. Pending pairs (still computing) show as `…`.

Keys: `,` / `.` the previous / next n, `f` the next family, `n` pre-/post-norm states, `d` the plotted
difference (L∞ → L1/d → relative L2). docs/collapse.md defines every number.
"""

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's own keyword
        super().__init__(id=id)
        self.info = Readout(id="collapse-info")
        """The pair's lines, wrapped between their numbers (never cut)."""
        self.strips = VectorStrips(id="collapse-strips")
        self.top = Static("", id="collapse-top")
        self.legend = Readout(id="collapse-legend")
        """Which curve is which, wrapped between entries (never cut)."""
        self.plot = LogPlot("n (repeats)", MEASURES[0], id="collapse-plot", xlog=True)
        self.per_n = Static("", id="collapse-per-n")
        self.sens_info = Readout(id="collapse-sens-info")
        """The sensitivity's full line, wrapped between its parts (never cut; hidden on a short pane)."""
        self.sens_label = FitStatic(id="collapse-sens-label")
        """Its short summary, left of the sparkline: the longest wording whose numbers all fit."""
        self.sens = Sparkline([], id="collapse-sens")
        self.family = 0
        """Index into the header's ``collapse.families``."""
        self.length: int | None = None
        """Index into ``collapse.lengths``; None (until a key picks one) = the longest n computed so far, so a
        streaming run shows each pair as it arrives."""
        self.normed = False
        """Show the states after the final norm (``collapse.final_normed``) instead of before it."""
        self.measure = MEASURE_ORDER[0]
        """The plotted difference: index into MEASURES (L∞ first, the paper's figure)."""
        self.message = ""
        """The pair line as plain text (or why nothing is shown)."""
        self.subtitle = ""
        self.top_rows: list[DimDifference] = []
        """The coordinates the table lists, largest |Δ| first."""
        self.answers: tuple[int, int, int, int] = (-1, -1, -1, -1)
        """Greedy next token ids of the pair: n and n+1 in the reference precision, then in the low one."""
        self._run: Run | None = None

    def compose(self) -> ComposeResult:
        yield self.info
        yield self.strips
        with Container(id="collapse-body"):
            yield self.top
            with Vertical(id="collapse-plot-box"):
                yield self.legend
                yield self.plot
        yield self.per_n
        yield self.sens_info
        with Horizontal(id="collapse-sens-row"):
            yield self.sens_label
            yield self.sens

    # -- state changes (called by the app's actions) --
    @staticmethod
    def available(run: Run) -> bool:
        """Whether ``run`` holds collapse arrays (computed or pending)."""
        return bool(run.header.get("collapse")) and names.COLLAPSE_FINAL in run.arrays

    @staticmethod
    def collapse_only(run: Run) -> bool:
        """A ``coupling-tui collapse`` run: collapse data and no Jacobians. Its tokens and trajectories are a short
        placeholder prompt's, not the pairs'."""
        return CollapsePane.available(run) and names.JACOBIAN_SINGULAR_VALUES not in run.arrays

    def _index(self, run: Run) -> tuple[int, int]:
        families = run.header["collapse"]["families"]
        n_lengths = len(run.arrays[names.COLLAPSE_LENGTHS])
        self.family = max(0, min(self.family, len(families) - 1))
        if self.length is None:
            done = np.flatnonzero(np.isfinite(run.arrays[names.COLLAPSE_DIFF][self.family, :, 0]))
            return self.family, int(done[-1]) if done.size else n_lengths - 1
        return self.family, max(0, min(self.length, n_lengths - 1))

    def step_length(self, run: Run, delta: int) -> None:
        if self.available(run):
            j = self._index(run)[1]
            self.length = max(0, min(j + delta, len(run.arrays[names.COLLAPSE_LENGTHS]) - 1))

    def jump_to_length(self, run: Run, n: int) -> bool:
        """Select length n; False when the run has no such length."""
        if not self.available(run):
            return False
        lengths = [int(v) for v in run.arrays[names.COLLAPSE_LENGTHS]]
        if n not in lengths:
            return False
        self.length = lengths.index(n)
        return True

    def cycle_family(self, run: Run) -> None:
        if self.available(run):
            self.family = (self._index(run)[0] + 1) % len(run.header["collapse"]["families"])

    def toggle_normed(self) -> None:
        self.normed = not self.normed

    def cycle_measure(self) -> None:
        self.measure = next_measure(self.measure)

    # -- drawing --
    def on_resize(self, event: Resize) -> None:
        modes = {"-stacked": event.size.width < STACK_BELOW, "-compact": event.size.height < COMPACT_BELOW,
                 "-tiny": event.size.height < TINY_BELOW}
        if any(on != self.has_class(name) for name, on in modes.items()):
            for name, on in modes.items():
                self.set_class(on, name)
            if self._run is not None:                # after this layout pass, so the new heights take
                self.call_after_refresh(self.show, self._run)

    def show(self, run: Run, token: int = 0, layer: int = 0) -> None:
        """Draw the selected family and length of ``run``; the token and layer selections do not change it."""
        self._run = run
        if not run.header or not self.available(run):
            self._nothing(WAITING if not run.header else NO_COLLAPSE)
            return
        info, a = run.header["collapse"], run.arrays
        f, j = self._index(run)
        family, lengths = info["families"][f], [int(v) for v in a[names.COLLAPSE_LENGTHS]]
        n = lengths[j]
        low = info.get("low_dtype", "bfloat16")
        set_subtitle(self, f"{family} ({f + 1}/{len(info['families'])}) · n = {n} · "
                           f"{'post' if self.normed else 'pre'}-norm · {MEASURES[self.measure]}")
        pair = a[names.COLLAPSE_FINAL_NORMED if self.normed else names.COLLAPSE_FINAL][f, j]
        done = bool(np.isfinite(pair).all())
        self.answers = tuple(int(v) for v in (*a[names.COLLAPSE_NEXT_IDS][f, j], *a[names.COLLAPSE_NEXT_IDS_LOW][f, j]))
        self._set_info(self._info_text(run, f, j, n, low, done))
        which = "ŷ" if self.normed else "y"
        self.strips.set_pair(pair if done else None, (f"{which}(n)", f"{which}(n+1)", "Δ"),
                             "" if done else f"{PENDING} ({run.stage_text})")
        self.top_rows = top_differences(pair, TOP_K) if done else []
        self.top.update(self._top_text(which))
        self._plot(run, f, j, low)
        self.per_n.update(self._per_n_text(run, f, j, low))
        self._sensitivity(run)

    def _nothing(self, message: str) -> None:
        set_subtitle(self, "")
        self.answers, self.top_rows = (-1, -1, -1, -1), []
        self._set_info(Text(message, style="dim"))
        self.strips.set_pair(None, self.strips.labels, "")
        self.top.update("")
        self.legend.show("")
        self.plot.set_series((), (1, 1))
        self.per_n.update("")
        self.sens_info.show("")
        self.sens_label.show_variants("")
        self.sens.data = []

    def _set_info(self, text: Text) -> None:
        if text.plain != self.message:
            self.message = text.plain
            self.info.show(text)

    def _info_text(self, run: Run, f: int, j: int, n: int, low: str, done: bool) -> Text:
        a = run.arrays
        short, long = (int(v) for v in a[names.COLLAPSE_N_TOKENS][f, j])
        text = Text()
        text.append(f"n = {n} vs {n + 1} repeats", style="bold")
        text.append(f" · {short} / {long} tokens")
        example = ((run.header["collapse"].get("tokenizer") or {}).get(run.header["collapse"]["families"][f])
                   or {}).get("example")
        if example:                                    # the pair's own tokens are not stored: the family's example
            text.append(f" · like '{visible(example['short'])}' / '{visible(example['long'])}' (n = {example['n']})",
                        style="dim")
        if not self.has_class("-compact"):             # a short pane: the subtitle says pre/post-norm
            text.append(f" · last token, last block, {'after' if self.normed else 'before'} the final norm · ")
            text.append(attention_text(run.header["collapse"]), style="dim")
        text.append("\n")
        m = self.measure
        if not done:
            text.append(f"{MEASURES[m]}: {PENDING}", style="dim")
        else:
            res = resolutions(a[names.COLLAPSE_FINAL][f, j:j + 1], low, m)[0]
            low_value = float(a[names.COLLAPSE_DIFF_LOW][f, j, m])
            text.append(f"{MEASURES[m]} ({LAYER}): float32 {fmt(float(a[names.COLLAPSE_DIFF][f, j, m]))} · {low} ")
            text.append(fmt(low_value) + (" (bit-identical)" if low_value == 0 else "") + " · ")
            text.append(identical_text(float(a[names.COLLAPSE_IDENTICAL_LOW][f, j]), a[names.COLLAPSE_FINAL].shape[-1],
                                       SHORT_DTYPE.get(low, low)))
            text.append(f" · {SHORT_DTYPE.get(low, low)} resolution {fmt(res)}")
        text.append("\n")
        ref_a, ref_b, low_a, low_b = self.answers
        text.append("greedy next token: ")
        text.append(f"n {self._token(run, ref_a)}, n+1 {self._token(run, ref_b)}")
        text.append(f" · {SHORT_DTYPE.get(low, low)}: n {self._token(run, low_a)}, n+1 {self._token(run, low_b)}")
        if min(self.answers) >= 0:
            same = ref_a == ref_b and low_a == low_b
            text.append(" · same answers" if same else " · answers differ", style="bold" if not same else "")
        return text

    @staticmethod
    def _token(run: Run, token_id: int) -> str:
        """A greedy token as its text (when the run has it) or its id; "…" while pending (−1)."""
        if token_id < 0:
            return "…"
        text = (run.header["collapse"].get("next_text") or {}).get(str(token_id))
        return f"'{visible(text)}'" if text is not None else f"#{token_id}"

    def _top_text(self, which: str) -> Text:
        text = Text(no_wrap=True, overflow="crop")
        text.append(f"{'dim':>5} {which + '(n)':>9} {which + '(n+1)':>9} {'Δ':>9}", style="bold")
        if not self.top_rows:
            text.append(f"\n{PENDING:>5}", style="dim")
        for row in self.top_rows:
            text.append(f"\n{row.dim:>5} {row.short:>9.4g} {row.long:>9.4g} ")
            text.append(f"{row.delta:>+9.3g}", style="bold")
        return text

    def _plot(self, run: Run, f: int, j: int, low: str) -> None:
        a, m = run.arrays, self.measure
        lengths = [int(v) for v in a[names.COLLAPSE_LENGTHS]]
        short = SHORT_DTYPE.get(low, low)
        compact = self.has_class("-compact")           # a short pane: a one-line legend of short names
        series = (
            Series("fp32" if compact else "float32", log_points(lengths, a[names.COLLAPSE_DIFF][f, :, m]),
                   FLOAT32_COLOUR),
            Series(short if compact else low, log_points(lengths, a[names.COLLAPSE_DIFF_LOW][f, :, m]), LOW_COLOUR, dot="○",
                   on_top=True),                      # over float32 where they coincide: both stay visible
            Series(f"{short} {'resol.' if compact else 'resolution'}", log_points(lengths, resolutions(a[names.COLLAPSE_FINAL][f], low, m)),
                   RESOLUTION_COLOUR, marked=False, dots=False),
        )
        self.plot.ylabel = MEASURES[m]
        self.plot.set_series(series, (min(lengths), max(lengths)), lengths[j], lengths)
        legend = self.plot.legend()
        if not compact:
            legend.append(f" · {MEASURE_FORMULAS[m]}, last layer pre-norm", style="dim")
        self.legend.show(legend)

    def _per_n_text(self, run: Run, f: int, j: int, low: str) -> Text:
        """One column per n (the selected one highlighted): the plotted numbers, the bit-identical share and the
        greedy answers; a short pane keeps only n and the bit-identical share."""
        a, m = run.arrays, self.measure
        lengths = [int(v) for v in a[names.COLLAPSE_LENGTHS]]
        short = SHORT_DTYPE.get(low, low)
        res = resolutions(a[names.COLLAPSE_FINAL][f], low, m)
        rows: list[tuple[str, list[str]]] = [("n", [str(n) for n in lengths])]
        if not self.has_class("-compact"):
            rows += [(f"{MEASURES[m]} f32", [fmt(float(v)) for v in a[names.COLLAPSE_DIFF][f, :, m]]),
                     (f"{MEASURES[m]} {short}", [fmt(float(v)) for v in a[names.COLLAPSE_DIFF_LOW][f, :, m]]),
                     (f"{short} resol.", [fmt(float(v)) for v in res])]
        d = a[names.COLLAPSE_FINAL].shape[-1]
        rows.append((f"same {short} bits", [share_text(float(v), d) for v in a[names.COLLAPSE_IDENTICAL_LOW][f]]))
        if not self.has_class("-compact"):
            rows.append(("greedy n/n+1", [self._pair_answer(run, ids) for ids in a[names.COLLAPSE_NEXT_IDS][f]]))
        label_width = max(len(label) for label, _ in rows) + 1
        width = max([COLUMN - 1] + [len(cell) for _, cells in rows[1:] for cell in cells])
        text = Text(no_wrap=True, overflow="ellipsis")
        for r, (label, cells) in enumerate(rows):
            if r:
                text.append("\n")
            text.append(f"{label:<{label_width}}", style="bold" if r == 0 else "dim")
            for k, cell in enumerate(cells):
                style = "reverse" if k == j else ("bold" if r == 0 else "")
                text.append(f"{cell:>{width}}", style=style)
                text.append(" ")
        return text

    def _pair_answer(self, run: Run, ids) -> str:
        first, second = (self._token(run, int(i)).strip("'") for i in ids)
        return f"{first}/{second}"

    def _sensitivity(self, run: Run) -> None:
        info, values = run.header["collapse"].get("sensitivity"), run.arrays.get(names.COLLAPSE_SENSITIVITY)
        shares = sensitivity_shares(values) if info and values is not None else None
        if not info or values is None or values.size == 0:
            full, short = "no over-squashing sensitivity in this run (computed with --no-sensitivity)", [""]
        else:
            how = "exact" if info.get("method") == "exact" else f"Hutchinson {info.get('probes')} probes"
            full = (f"sensitivity ‖∂y/∂e_i‖ to each input position i, share of the total · {info['family']}, "
                    f"n = {info['n']}, {info['n_tokens']} tokens, {how}")
            if shares is None:
                full, short = f"{full} · {PENDING}", [f"sensitivity: {PENDING}"]
            else:
                full += f" · largest at i = {shares.peak}"
                first, half, last = percent(shares.first), percent(shares.first_half), percent(shares.last)
                short = [f"‖∂y/∂e_i‖ share: i=0 {first} · first half {half} · last {last} ",
                         f"share i=0 {first} · 1st half {half} · last {last} ",
                         f"i=0 {first} · ½ {half} · last {last} "]
        self.sens_info.show(full)
        self.sens_label.show_variants(*short)
        self.sens.display = shares is not None
        data = [float(v) for v in values] if shares is not None else []
        if data != self.sens.data:
            self.sens.data = data
