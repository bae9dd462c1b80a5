"""The explorer's layout: which panes a run has room for (Collapse only with collapse data; a collapse run without
Jacobians gives the Coupling pane's place to the side column), which side pane a short screen shows, pane focus,
and the Collapse pane's keys."""

from __future__ import annotations

from typing import Callable

from coupling_tui.core.results.aggregate import is_aggregate

from .notices import NO_PAIR
from .panes.collapse import NO_COLLAPSE, NO_PAIR_STATES, CollapsePane
from .panes.coupling import CouplingPane
from .panes.coupling_text import NO_COUPLING
from coupling_tui.core.results import names


class LayoutMixin:
    """Mixed into CouplingApp (``SIDE_PANES``, ``results``, ``show_run``)."""

    _layout: tuple[bool, bool] | None

    def action_focus_pane(self, pane_id: str) -> None:
        panes = self.query(f"#{pane_id}")
        if not panes:
            self.notify(f"no {pane_id} pane in this version", severity="warning", markup=False)
            return
        if pane_id == "coupling" and self.collapse_zoomed():
            self.show_side(self.SIDE_PANES[0])             # Coupling back beside the first side pane
        if not self.has_place(panes.first()):
            message = {"collapse": NO_COLLAPSE, "compare": NO_PAIR}.get(pane_id, NO_COUPLING)
            if self.explorer_screen.has_class("-collapse-run") and pane_id in ("trajectory", "spectrum", "tokens"):
                message = NO_PAIR_STATES
            if self.explorer_screen.has_class("-compare") and pane_id in self.SIDE_PANES:
                message = f"the compare layout has no {pane_id} pane: c goes back to the one-run layout"
            self.notify(message, severity="warning", markup=False)
            return
        if pane_id in self.SIDE_PANES:
            self.show_side(pane_id)
        panes.first().focus()

    def has_place(self, pane) -> bool:
        """Whether ``pane`` has a place in this run's layout: Collapse needs collapse data; a collapse run without
        Jacobians gives the Coupling pane's place to the side column."""
        if pane.id != "coupling" and self.explorer_screen.has_class("-aggregate"):
            return False
        if pane.id in ("coupling-b", "compare"):
            return self.explorer_screen.has_class("-compare")
        if self.explorer_screen.has_class("-compare") and pane.id not in ("coupling", "tokens"):
            return False                                   # the side column makes way for the Compare pane
        if pane.id == "collapse":
            return not pane.has_class("-absent")
        if pane.id in ("trajectory", "spectrum", "tokens") and self.explorer_screen.has_class("-collapse-run"):
            return False                                   # the pairs' per-token states are not stored
        if pane.id == "coupling":
            return not self.query_one("#main").has_class("-collapse-run")
        return True

    def arrange(self) -> None:
        """Lay the panes out for the run: the Collapse pane only with collapse data; when the run has collapse data
        but no Jacobians (``coupling-tui collapse``), Collapse takes the whole screen and has the focus: the Tokens,
        Trajectory and Spectrum panes would show the run's placeholder prompt, not the pair (whose per-token states
        are not stored)."""
        has = CollapsePane.available(self.results)
        collapse_run = CollapsePane.collapse_only(self.results)
        self.explorer_screen.set_class(collapse_run, "-collapse-run")
        self.explorer_screen.set_class(is_aggregate(self.results), "-aggregate")   # the Coupling pane alone (app.tcss)
        self.explorer_screen.set_class(self.comparing(), "-compare")              # two heatmaps and the Compare pane
        if (has, collapse_run) == self._layout:
            return
        self._layout = (has, collapse_run)
        main, pane = self.query_one("#main"), self.collapse
        pane.set_class(not has, "-absent")
        main.set_class(collapse_run, "-collapse-run")
        self.refresh_bindings()
        if collapse_run:
            self.show_side("collapse")
            pane.focus()
        elif not has and pane.has_class("-shown"):
            self.show_side(self.SIDE_PANES[0])

    def collapse_zoomed(self) -> bool:
        """Whether the Collapse pane has the whole width: a short and narrow screen (app.tcss) that shows it."""
        return (self.explorer_screen.has_class("-short") and self.explorer_screen.has_class("-narrow")
                and self.query_one("#main").has_class("-collapse-shown"))

    def show_side(self, pane_id: str) -> None:
        """Make ``pane_id`` the side pane a short screen shows (a tall one shows them all). On a short and narrow
        screen the Collapse pane, too rich for half the width, then takes the Coupling pane's place too."""
        for other in self.SIDE_PANES:
            for pane in self.query(f"#{other}"):
                pane.set_class(other == pane_id, "-shown")
        self.query_one("#main").set_class(pane_id == "collapse", "-collapse-shown")
        self.refresh_bindings()

    @property
    def explorer_screen(self):
        """The explorer's own screen (its layout classes), also while the help screen or the palette is on top."""
        stack = self.screen_stack
        return stack[0] if stack else self.screen

    @property
    def coupling(self) -> CouplingPane:
        return self.query_one("#coupling", CouplingPane)

    @property
    def collapse(self) -> CollapsePane:
        return self.query_one(CollapsePane)

    def _collapse_key(self, change: Callable[[CollapsePane], object]) -> None:
        """Apply ``change`` to the Collapse pane and redraw; on a short screen that shows another side pane, show
        Collapse. A run without collapse data says so (the palette reaches these actions whatever the run)."""
        pane = self.collapse
        if self.refused("collapse"):
            return
        change(pane)
        if self.explorer_screen.has_class("-short") and not pane.has_class("-shown"):
            self.show_side("collapse")
            pane.focus()
        self.show_run()

    def action_step_length(self, delta: int) -> None:
        self._collapse_key(lambda pane: pane.step_length(self.results, delta))

    def action_cycle_family(self) -> None:
        self._collapse_key(lambda pane: pane.cycle_family(self.results))

    def action_toggle_normed(self) -> None:
        self._collapse_key(CollapsePane.toggle_normed)

    def action_cycle_measure(self) -> None:
        self._collapse_key(CollapsePane.cycle_measure)

    def jump_to_length(self, n: int) -> None:
        lengths = self.results.arrays.get(names.COLLAPSE_LENGTHS)
        if lengths is not None and n not in lengths.tolist():
            self.notify(f"no collapse length n = {n} in this run (it has {', '.join(map(str, lengths.tolist()))})",
                        severity="warning", markup=False)
            return
        self._collapse_key(lambda pane: pane.jump_to_length(self.results, n))
