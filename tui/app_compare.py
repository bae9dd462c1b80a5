"""The explorer's compare layout (docs/compare.md): two runs of one prompt side by side — both coupling heatmaps and
the Compare pane (table and trajectories) in place of the side column. The pair is two models (``--compare
MODEL2`` streamed, or ``coupling-tui view A B``) or a run and its random-init baseline (``--compare random-init``,
any run computed with ``--random-baseline``). ``c`` toggles the layout, ``x`` swaps A and B."""

from __future__ import annotations

from pathlib import Path

from coupling_tui.core.results.aggregate import is_aggregate
from coupling_tui.core.results.compare import (map_layer, map_token, model_name, pair_names, random_init_run,
                                               side_label, weights)
from coupling_tui.core.results.comparison import Comparison, save_a_alone
from coupling_tui.core.results.run import Run

from .messages import one_line
from .notices import NO_PAIR
from .panes.compare import ComparePane
from .panes.coupling import CouplingPane

__all__ = ["CompareMixin", "NO_PAIR"]


class CompareMixin:
    """Mixed into CouplingApp: ``comparison`` (two models), ``compare_shown`` (the layout is on), ``swapped``."""

    comparison: Comparison | None
    compare_shown: bool
    swapped: bool
    entry: int
    results: Run
    _save_path: Path | None

    def pair(self) -> tuple[Run, Run, tuple[str, str]] | None:
        """(A, B, their labels) as the compare layout shows them; None when this run has nothing to compare with."""
        if self.comparison is not None:
            a, b = self.comparison.runs
            labels = tuple(self.comparison.labels)
        elif is_aggregate(self.results) or (base := random_init_run(self.results)) is None:
            return None
        else:
            a, b = self.results, base
            labels = (side_label(a), side_label(b))
        if self.swapped:
            return b, a, (labels[1], labels[0])
        return a, b, labels  # type: ignore[return-value]

    def comparing(self) -> bool:
        """Whether the compare layout is on screen."""
        return self.compare_shown and self.pair() is not None

    def shown_run(self) -> Run:
        """The run the one-run layout's panes show: the run, or its random-init twin (the same tokens, the
        baseline's arrays) while ``r`` shows it — the Coupling pane draws the baseline from the run itself, on one
        colour scale with the trained matrix. Built once per change of the run."""
        run = self.results
        if not self.coupling.baseline or is_aggregate(run):
            return run
        key = (id(run), run.steps_done, run.finished)
        if getattr(self, "_twin_key", None) != key:
            self._twin_key, self._twin = key, random_init_run(run)
        return self._twin or run

    @property
    def coupling_b(self) -> CouplingPane:
        return self.query_one("#coupling-b", CouplingPane)

    # -- keys --
    def action_toggle_compare(self) -> None:
        if self.refused("compare"):
            return
        self.compare_shown = not self.compare_shown
        self.arrange()
        self.refresh_bindings()
        self.coupling.focus()
        self.show_run()

    def action_swap_sides(self) -> None:
        if self.refused("compare"):
            return
        self.swapped = not self.swapped
        if self.comparison is not None:
            self.entry = int(self.swapped)                 # the side on the left is the run shown
            self.selected_token = self.opening_token()
        self.arrange()
        self.show_run()

    def action_scroll_compare(self, pages: int) -> None:
        if self.refused("compare"):
            return
        if not self.comparing():
            self.notify("the Compare table is in the compare layout: c shows it", severity="warning", markup=False)
            return
        self.query_one(ComparePane).scroll_table(pages)

    def keep_a(self) -> str:
        """After a failed compute: when it was a comparison whose model A had finished, save A alone (at the save
        path) and say so (" · A saved to …"); "" otherwise."""
        if self.comparison is None or self._save_path is None:
            return ""
        try:
            path = save_a_alone(self.comparison, self._save_path)
        except Exception as exc:  # noqa: BLE001 - shown, never a traceback
            return f" · A not saved: {one_line(exc)}"
        return f" · A saved to {path}" if path is not None else ""

    # -- drawing --
    def draw_pair(self, token: int, layer: int) -> None:
        """Both heatmaps and the Compare pane: B's pane follows A's view state at B's stand-in token and layer."""
        a, b, labels = self.pair()  # type: ignore[misc]
        lead, other = self.coupling, self.coupling_b
        lead.baseline = False                              # each pane shows the run its title names, never a twin
        other.with_twin = False
        name_a, name_b = pair_names(a, b, labels)
        lead.border_title, other.border_title = f"Coupling · A {name_a}", f"Coupling · B {name_b}"
        lead.show(a, token, layer)
        if b.header:
            other.follow(lead, a, b)
            other.show(b, map_token(token, a, b), map_layer(layer, a.n_layers, b.n_layers))
            lead.share_scale(other)
        else:
            other.show(b, 0, 0)
        self.query_one(ComparePane).show_pair(a, b, labels, token, layer,
                                              lead.current.k if lead.current is not None else None)

    def pair_info(self) -> tuple[list[str], str]:
        """The status line in the compare layout: its versions, preferred first (the status line shows the first
        that fits), and the part kept whole when none fits — what tells A from B ("A trained · B random-init", or
        B's name) is never cut."""
        a, b, labels = self.pair()  # type: ignore[misc]
        if not a.header:
            return ["coupling-tui"], ""
        depth = f"{a.n_layers} layers" if a.n_layers == b.n_layers else f"{a.n_layers} / {b.n_layers} layers"
        conv = a.convention if a.convention == b.convention else f"{a.convention} / {b.convention}"
        names = pair_names(a, b, labels)
        rests = [f"{a.header.get('device', '?')} · {a.n_tokens} tokens · {depth} · {conv} convention",
                 f"{a.n_tokens} tokens · {depth}", ""]
        heads = [f"A {names[0]} · B {names[1]}"]
        if b.header and model_name(a) == model_name(b):            # one model's two weights: say them first
            heads += [f"A {weights(a)} · B {weights(b)} · {model_name(a)}", f"A {weights(a)} · B {weights(b)}"]
            tail = f" · B {weights(b)}"
        else:
            tail = f" · B {names[1]}"
        order = ((0, 0), (1, 0), (0, 1), (1, 1), (0, 2), (1, 2), (2, 1), (2, 2))   # the model's name before the rest
        return [f"{heads[h]} · {rests[r]}" if rests[r] else heads[h] for h, r in order if h < len(heads)], tail
