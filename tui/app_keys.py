"""Whether each registered action applies to what is on screen (``UserAction.needs`` in actions.py), and why not:
the footer hides an action that does not apply, the command palette leaves its commands out, and its key says why
instead of doing nothing."""

from __future__ import annotations

from textual import events

from coupling_tui.core.results.aggregate import has_aggregate_baseline, is_aggregate

from .actions import action_for_key, requirement
from .notices import NO_PAIR, NO_PROMPTS
from .panes.collapse import NO_COLLAPSE, CollapsePane
from .panes.coupling_text import NO_COUPLING, ONLY_DEPTH

NO_BASELINE = "this run has no random-init baseline: compute it with --random-baseline"
NO_VJU = "this run has only the ujv variant: compute the vju one with --vju"
NO_COMPUTE = "nothing to cancel: no compute is running"
COLLAPSE_ZOOMED = "the Collapse pane fills this small screen: 1 brings the Coupling pane back"
COLLAPSE_RUN = ("a collapse run has no coupling, tokens or layers to select (coupling-tui collapse computes no "
                "Jacobians): , . choose n, f the family, n and d what is plotted")
AGGREGATE_TOKENS = ("the aggregate over prompts has no tokens (prompts differ in them): t switches last token / "
                    "token average, p / P show a prompt")
BASELINE_IN_COMPARE = ("the compare layout shows each run as its pane's title names it: c goes back to the one-run "
                       "layout, where r switches trained / random-init")


class KeysMixin:
    """Mixed into CouplingApp (``results``, ``computing``, ``prompt_set``, ``pair``, ``comparing``, ``has_place``)."""

    def applies(self, needs: str) -> bool:
        """Whether an action needing ``needs`` (actions.NEEDS, or "" for nothing) applies now."""
        if not needs:
            return True
        if needs == "computing":                       # Esc: cancel a compute, or go back to the Sweep view
            return self.computing or self.back
        if needs == "compare":
            return self.pair() is not None
        if needs == "prompts":
            return self.prompt_set is not None
        if needs == "collapse":
            return CollapsePane.available(self.results)
        if needs in ("tokens", "layers"):
            run = self.results
            return not CollapsePane.collapse_only(run) and (needs == "layers" or not is_aggregate(run))
        coupling = self._coupling_shown()
        if needs == "baseline":
            run = self.results
            return coupling and not self.comparing() and (run.has_baseline or has_aggregate_baseline(run))
        if needs == "vju":
            return coupling and len(self.results.coupling_variants) > 1
        if needs == "views":
            return coupling and (len(self.coupling.views(self.results)) > 1 or self.coupling.view != "depth")
        return coupling

    def why_not(self, needs: str) -> str:
        """Why an action needing ``needs`` does not apply now (one line for a warning)."""
        if needs in ("tokens", "layers", "coupling", "baseline", "vju", "views") and CollapsePane.collapse_only(
                self.results):
            return COLLAPSE_RUN
        if needs == "tokens":
            return AGGREGATE_TOKENS
        if needs in ("coupling", "baseline", "vju", "views") and not self._coupling_shown():
            return COLLAPSE_ZOOMED if self.collapse_zoomed() else NO_COUPLING
        return {"computing": NO_COMPUTE, "compare": NO_PAIR, "prompts": NO_PROMPTS, "collapse": NO_COLLAPSE,
                "baseline": BASELINE_IN_COMPARE if self.comparing() else NO_BASELINE, "vju": NO_VJU,
                "views": ONLY_DEPTH}.get(needs, "")

    def _coupling_shown(self) -> bool:
        """The Coupling pane is on screen with coupling to show (or the run has not announced itself yet)."""
        run = self.results
        return (self.has_place(self.coupling) and not self.collapse_zoomed()
                and (bool(run.coupling_ks) or not run.header))

    def refused(self, needs: str) -> bool:
        """True (and the reason shown) when an action needing ``needs`` does not apply: the palette and the
        actions' own callers go through here as the keys do."""
        if self.applies(needs):
            return False
        why = self.why_not(needs)
        if all(shown.message != why for shown in self._notifications):    # a key pressed again: one warning
            self.notify(why, severity="warning", markup=False)
        return True

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return self.applies(requirement(action))

    def on_key(self, event: events.Key) -> None:
        """A registered key whose action does not apply says why (Textual would drop it silently). Only on the
        explorer's own screen: the help screen and the palette keep their keys."""
        if self.screen is not self.screen_stack[0]:
            return
        action = action_for_key(event.aliases)
        if action is not None and action.needs and not self.applies(action.needs):
            event.prevent_default()
            event.stop()
            self.refused(action.needs)
