"""The coupling pane: the depth×depth coupling matrix of the selected token (or the token average), or the
token×token matrix at the selected layer, with the cursor cell's stored value spelled out."""

from __future__ import annotations

import math

from textual.app import ComposeResult
from textual.containers import Container
from textual.widgets import Static

from coupling_tui.core.results.aggregate import aggregate_view, has_aggregate_baseline, is_aggregate
from coupling_tui.core.results.compare import weights
from coupling_tui.core.results.headline import aggregate_headline_text, headline_text, run_headline
from coupling_tui.core.results.run import CONTEXT_VIEWS, COUPLING_METRICS, CouplingView, Run, default_k

from . import RUN_PANE_CLASS, WAITING, fit_subtitle, set_subtitle
from .coupling_text import HELP, NO_COUPLING, NO_PROFILE_COLUMN, NO_TOKEN_VIEW, VIEW_NAMES, pair_missing, value_text
from .heatmap import Heatmap
from .profile import PROFILE_VIEWS, CouplingProfile, depth_sides
from .readout import Readout
from .tokens import quoted
from coupling_tui.core.results import names

SCALES = ("auto", "fixed")
"""The colour scales (``s``, ``--scale``): ``auto`` spans the off-diagonal values of the matrix shown (core's
``CouplingView.scale``), ``fixed`` is 0–1 for every matrix."""
FIXED_SCALE = (0.0, 1.0)


def nearest(layers: list[int], layer: int) -> int:
    """The layer of ``layers`` closest to ``layer`` (the lower one on a tie)."""
    return min(layers, key=lambda x: (abs(x - layer), x))


class CouplingPane(Container):
    """Its own view state (K, metric, token/average, trained/random-init, depth/token view, column cursor) is
    changed by the app's actions; ``show`` draws the matrix the run holds for that state."""

    DEFAULT_CLASSES = f"{RUN_PANE_CLASS} coupling-pane"
    BORDER_TITLE = "Coupling"
    can_focus = True

    HELP = HELP

    def __init__(self, *, id: str | None = None, scale: str = SCALES[0]) -> None:  # noqa: A002 - Textual's
        super().__init__(id=id)
        self.scale = scale if scale in SCALES else SCALES[0]
        """The colour scale: "auto" (the view's off-diagonal range) or "fixed" (0–1)."""
        self.headline = Static("", id="coupling-headline", markup=False)
        self.headline.display = False
        self.headline_text = ""
        """The headline shown (core.results.headline): the last token's run scalar, then the all-token mean."""
        self._headline_key: tuple | None = None
        self.info = Readout(id="coupling-info")
        """The cursor cell's numbers, wrapped between them (never cut) on a narrow pane."""
        self.heatmap = Heatmap(id="coupling-heatmap")
        self.profile = CouplingProfile(id="coupling-profile")
        """The adjacent and distance views' plot (tui/panes/profile.py), shown in place of the heatmap."""
        self.with_twin = True
        """The profile views draw the run's trained/random-init twin too; off in the compare layout, where each
        pane shows the run its title names and the other pane the other run."""
        self.k: int | None = None
        """K shown; None = the run's default K."""
        self.metric = COUPLING_METRICS[0]
        self.average = False
        """Depth view: the token average instead of the selected token."""
        self.baseline = False
        """Show the random-init baseline's matrix instead of the trained model's."""
        self.view = "depth"
        self.variant = "ujv"
        self.pair_offset = 0
        """Token and context views: the column layer is the row layer + this (set from the depth cursor)."""
        self.column = {"depth": 0, "token": 0, "context-out": 0, "context-in": 0, "distance": 1}
        """The cursor's column in each view (a layer, or a token; the distance view's is the distance |i − j|); the
        row follows the app's selection."""
        self.message = ""
        self.subtitle = ""
        self.current: CouplingView | None = None
        """What is drawn now (None when nothing can be)."""
        self.cursor_value: float = math.nan
        """The stored m_K under the cursor (NaN when not computed or nothing shown); for a prompt set's aggregate,
        the mean over prompts."""
        self.cursor_std: float = math.nan
        """A prompt set's aggregate: the std over prompts of m_K under the cursor (NaN otherwise)."""

    def on_resize(self) -> None:
        fit_subtitle(self)                                 # the wording of the subtitle that fits the new width

    def compose(self) -> ComposeResult:
        yield self.headline
        yield self.info
        yield self.heatmap
        yield self.profile

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
        if not (run.has_baseline or has_aggregate_baseline(run)):
            self.baseline = False
            return False
        self.baseline = not self.baseline
        return True

    @staticmethod
    def views(run: Run | None) -> list[str]:
        """The views ``v`` cycles through for ``run``: its matrix views (depth → token → context ones), then the
        profiles of the depth matrix (adjacent, distance) when it has depth coupling."""
        if run is None:
            return ["depth", "token"]
        views = ["depth"] if is_aggregate(run) else list(run.coupling_views)
        return views + list(PROFILE_VIEWS) if run.coupling_ks else views

    def toggle_view(self, run: Run | None = None, layer: int = 0) -> bool:
        """Cycle the views the run has (``views``); leaving the depth view keeps the cursor's column as the layer
        offset of the pair (and its distance |i − j| for the distance view), coming back puts the column at the
        pair's column layer. False (and no change) when the run has the depth view only."""
        views = self.views(run)
        if len(views) < 2 and self.view == "depth":
            return False
        if self.view == "depth":
            self.pair_offset = self.column["depth"] - layer
            self.column["distance"] = max(1, abs(self.pair_offset))
        following = views[(views.index(self.view) + 1) % len(views)] if self.view in views else "depth"
        if following == "depth" and run is not None and run.n_layers:
            self.column["depth"] = max(0, min(layer + self.pair_offset, run.n_layers - 1))
        self.view = following
        return True

    def set_view(self, run: Run, view: str, layer: int = 0) -> bool:
        """Go to ``view`` (cycling as ``v`` does, so the cursor's columns follow); False when the run has no such
        view."""
        views = self.views(run)
        if view not in views:
            return False
        for _ in views:
            if self.view == view:
                break
            self.toggle_view(run, layer)
        return self.view == view

    def toggle_variant(self, run: Run) -> bool:
        """Switch ujv/vju depth coupling; False (and no change) when the run has only ujv."""
        variants = run.coupling_variants
        if len(variants) < 2:
            self.variant = "ujv"
            return False
        self.variant = variants[(variants.index(self.variant) + 1) % len(variants)]
        return True

    def follow(self, lead: "CouplingPane", a: Run, b: Run) -> None:
        """Take ``lead``'s view state (it shows run ``a``) for run ``b``: K (one both runs have, when there is one),
        metric, token/average, trained/random-init, view, variant and layer offset; the cursor's columns moved to
        B's stand-ins (core.results.compare: the same relative depth, the same token or counted from the end)."""
        from coupling_tui.core.results.compare import common_k, map_layer, map_token

        self.k = common_k(a, b, lead._k(a))
        self.metric, self.average, self.view, self.variant = lead.metric, lead.average, lead.view, lead.variant
        self.scale = lead.scale
        self.baseline = lead.baseline and b.has_baseline
        self.pair_offset = lead.pair_offset
        self.column = {view: (map_layer(col, a.n_layers, b.n_layers) if view == "depth" else map_token(col, a, b))
                       for view, col in lead.column.items()}

    def share_scale(self, other: "CouplingPane") -> None:
        """One colour scale for this pane and ``other`` (the compare layout's two heatmaps): the union of both
        matrices' ranges, so equal colours mean equal values. Nothing when either shows no matrix."""
        if self.view in PROFILE_VIEWS and other.view in PROFILE_VIEWS:
            if self.scale != "fixed":
                self.profile.share_range(other.profile)
            return
        if self.current is None or other.current is None or self.scale == "fixed":
            return
        (lo_a, hi_a), (lo_b, hi_b) = self.heatmap.scale, other.heatmap.scale
        if not all(math.isfinite(x) for x in (lo_a, hi_a, lo_b, hi_b)):
            return
        shared = (float(min(lo_a, lo_b)), float(max(hi_a, hi_b)))
        for pane in (self, other):
            heatmap = pane.heatmap
            heatmap.set_matrix(heatmap.values, shared, heatmap.cursor, heatmap.axis_label, "auto, shared by A and B")

    def step_column(self, run: Run, delta: int) -> str:
        """Move the cursor's column (the distance view: the distance); a reason when this view has no column."""
        if self.view == "adjacent":
            return NO_PROFILE_COLUMN
        if self.view == "distance":
            self.column["distance"] = max(1, min(self.column["distance"] + delta, max(run.n_layers - 1, 1)))
            return ""
        n = run.n_layers if self.view == "depth" else run.n_tokens
        self.column[self.view] = max(0, min(self.column[self.view] + delta, n - 1))
        return ""

    def _layers(self, run: Run, layer: int) -> tuple[int, int]:
        """(row layer, column layer) of the token and context views."""
        n = max(run.n_layers, 1)
        col = max(0, min(layer + self.pair_offset, n - 1))
        if self.view in CONTEXT_VIEWS and run.context_layers:
            return nearest(run.context_layers, layer), nearest(run.context_layers, col)
        return layer, col

    def _k(self, run: Run) -> int | None:
        ks = run.coupling_ks
        if not ks:
            return None
        if self.k in ks:
            return self.k
        return default_k(run.header.get("coupling"), ks)

    # -- drawing --
    def show(self, run: Run, token: int, layer: int = 0) -> None:
        self._show_headline(run)
        if is_aggregate(run):
            self._show_aggregate(run, layer)
            return
        view = None
        if not run.header:
            message = WAITING
        elif not run.coupling_ks:
            message = NO_COUPLING
        else:
            if self.view not in self.views(run):
                self.view = "depth"
            if self.view in PROFILE_VIEWS:
                self._show_profile(run, token, layer)
                return
            row_layer, col_layer = self._layers(run, layer)
            view = run.coupling_view(view=self.view, k=self._k(run) if self.view == "depth" or self.view == "token"
                                     else None, token=None if self.average else token, layer=row_layer,
                                     column_layer=col_layer, metric=self.metric,
                                     baseline=self.baseline and self.view in ("depth", "token"),
                                     variant=self.variant if self.view == "depth" else "ujv")
            message = ""
            if view is None and self.view == "token":
                message = (pair_missing(row_layer, col_layer) if row_layer != col_layer
                           and names.COUPLING_TOKEN_K in run.arrays else NO_TOKEN_VIEW)
            elif view is None and self.view in CONTEXT_VIEWS:
                message = (f"context coupling between layers {row_layer} → {col_layer} was not computed (the run "
                           f"has layers {', '.join(map(str, run.context_layers))}"
                           f"{'' if (run.header.get('context') or {}).get('cross_layers') else ', same-layer only'})")
        self.current = view
        self.cursor_std = math.nan
        self._show_plot(False)
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
        what = "random-init" if self.baseline and self.view in ("depth", "token") else weights(run)
        k = f"K={view.k}"
        if self.view == "depth":
            where = "token average" if self.average else quoted(run, token)
            short = "avg" if self.average else f"t{token}"
            where, short = ((where + " · vju", short + " · vju") if self.variant == "vju" else (where, short))
        else:
            row_layer, col_layer = self._layers(run, layer)
            where = f"layer {row_layer}" if row_layer == col_layer else f"layers {row_layer} → {col_layer}"
            if self.view in CONTEXT_VIEWS:
                info = run.header.get("context") or {}
                where += (f" · t_out={info.get('out_token')}" if self.view == "context-out"
                          else f" · t_in={info.get('in_token')}")
            short = where
        name = VIEW_NAMES[self.view]
        set_subtitle(self, f"{what} · {name} · {where} · {k} · {view.metric}",   # the weights first: never cut
                     f"{what} · {name} · {short} · {k} · {view.metric}", f"{what} · {name} · {short} · {k}",
                     f"{what} · {short} · {k}", what)
        m, c = view.cell(row, col)
        message = f"{view.axis} {row} → {col}: m = {value_text(m)} · 1−m² = {value_text(c)}"
        if self.view == "depth" and not self.baseline:
            null = run.haar_null(view.k, row, None if self.average else token)   # J_row in random bases
            if math.isfinite(null):
                message += f" · Haar null m ≈ {null:.3f}"
        self._set_message(message)
        self._draw(view, (row, col))

    def _show_aggregate(self, run: Run, layer: int) -> None:
        """A prompt set's aggregate (core.results.aggregate): the mean depth coupling over prompts, token-averaged or the
        last token's (``t``), with the cursor cell's mean ± std."""
        info = run.header["aggregate"]
        n, total = int(info.get("n_prompts", 0)), int(info.get("n_total", 0))
        if self.view not in self.views(run):
            self.view = "depth"
        if self.view in PROFILE_VIEWS and n:
            self._show_profile(run, None, layer)
            return
        self._show_plot(False)
        view = aggregate_view(run, k=self._k(run), last_token=not self.average, metric=self.metric,
                              baseline=self.baseline) if n else None
        if view is None:
            self.current, self.cursor_value, self.cursor_std = None, math.nan, math.nan
            self.heatmap.set_matrix(self.heatmap.values[:0, :0], (math.nan, math.nan), (0, 0))
            set_subtitle(self, "")
            self._set_message(f"the aggregate fills in as prompts finish (0 of {total} so far)" if not n
                              else NO_COUPLING)
            return
        self.current = view.view
        col = self.column["depth"] = max(0, min(self.column["depth"], view.view.values.shape[0] - 1))
        m, std, c = view.cell(layer, col)
        self.cursor_value, self.cursor_std = m, std
        what = "random-init" if self.baseline else "trained"
        where = "last token" if not self.average else "token average"
        so_far = f"{n} prompts" if n == total else f"{n} of {total} prompts so far"
        set_subtitle(self, f"{what} · aggregate · mean over {so_far} · {where} · K={view.view.k} · "
                           f"{view.view.metric}", f"{what} · aggregate of {n} · {where} · K={view.view.k}",
                     f"{what} · aggregate · K={view.view.k}", what)
        self._set_message(f"layer {layer} → {col}: m = {value_text(m)} ± {value_text(std)} (mean ± std over "
                          f"{n}) · 1−m² = {value_text(c)}")
        self._draw(view.view, (layer, col))

    def _show_profile(self, run: Run, token: int | None, layer: int) -> None:
        """The adjacent or distance view: the profile of the depth matrix shown (this token's or the token average,
        at K; a prompt set's aggregate: the mean over prompts) — the run's, or its random-init twin's with ``r`` —
        and, when the run has both, the other one on the same axes."""
        k = self._k(run)
        sides = depth_sides(run, k=k, token=token, average=self.average, variant=self.variant,
                            baseline=self.baseline, twin=self.with_twin)
        self.current, self.cursor_std = None, math.nan
        if not sides:
            self.cursor_value = math.nan
            self._show_plot(False)
            set_subtitle(self, "")
            self._set_message(NO_COUPLING)
            return
        n_layers = sides[0].m.shape[0]
        if self.view == "adjacent":
            cursor = max(0, min(layer, n_layers - 2))
        else:
            cursor = self.column["distance"] = max(1, min(self.column["distance"], max(n_layers - 1, 1)))
        self._show_plot(True)
        readout, self.cursor_value = self.profile.draw(self.view, sides, cursor, self.scale == "fixed")
        where = ("aggregate · last token" if is_aggregate(run) and not self.average else "aggregate · token average"
                 if is_aggregate(run) else "token average" if self.average else quoted(run, token or 0))
        where += " · vju" if self.variant == "vju" and not is_aggregate(run) else ""
        shown = " + ".join(side.label for side in sides)
        short = "avg" if self.average else f"t{token}" if token is not None else where
        set_subtitle(self, f"{shown} · {VIEW_NAMES[self.view]} · {where} · K={k} · m",          # weights: never cut
                     f"{shown} · {self.view} · {short} · K={k}", f"{shown} · {self.view}", shown)
        self._set_message(readout)

    def _show_plot(self, plot: bool) -> None:
        """The profile plot in place of the heatmap, or the heatmap back."""
        if self.profile.display != plot:
            self.profile.display = plot
            self.heatmap.display = not plot

    def _draw(self, view: CouplingView, cursor: tuple[int, int]) -> None:
        """The matrix on the scale chosen (``s``): the view's off-diagonal range, or 0–1."""
        fixed = self.scale == "fixed"
        self.heatmap.set_matrix(view.values, FIXED_SCALE if fixed else view.scale, cursor, view.axis,
                                "fixed" if fixed else "auto")

    def _show_headline(self, run: Run) -> None:
        """The top line: the run's (or its baseline's) headline at the K shown, recomputed only when the run, K or
        trained/random-init changed."""
        k = self._k(run)
        baseline = self.baseline and (run.has_baseline or has_aggregate_baseline(run))
        key = (id(run), k, baseline, run.steps_done, run.finished)
        if key == self._headline_key:
            return
        self._headline_key = key
        text = ""
        if is_aggregate(run):
            text = aggregate_headline_text(run.header["aggregate"], baseline) or ""
        elif k is not None:
            head = run_headline(run, k, baseline)
            text = headline_text(head) if head is not None else ""
        if text and baseline:
            text = f"random-init · {text}"
        if text != self.headline_text:
            self.headline_text = text
            self.headline.update(text)
            self.headline.display = bool(text)

    def _set_message(self, text: str) -> None:
        if text != self.message:
            self.message = text
            self.info.show(text)
