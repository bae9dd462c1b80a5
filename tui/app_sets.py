"""The explorer's prompt sets (core.results.prompt_set): p / P stepping through the prompts and the aggregate over prompts
(the app's one event handler streams a set like any container)."""

from __future__ import annotations

from coupling_tui.core.results.aggregate import is_aggregate
from coupling_tui.core.results.prompt_set import PromptSet

from .panes.coupling import CouplingPane


class PromptSetsMixin:
    """Mixed into CouplingApp: ``prompt_set`` and ``entry`` hold the set and the entry shown."""

    prompt_set: PromptSet | None
    entry: int

    # -- prompt sets: p / P step through the prompts and the aggregate --
    def action_step_prompt(self, delta: int) -> None:
        if self.refused("prompts"):
            return
        self.show_entry((self.entry + delta) % (self.prompt_set.n_prompts + 1))

    def jump_to_prompt(self, number: int) -> None:
        """Show prompt ``number`` (1-based, as the status line counts)."""
        if self.prompt_set is None or not 1 <= number <= self.prompt_set.n_prompts:
            n = 0 if self.prompt_set is None else self.prompt_set.n_prompts
            self.notify(f"no prompt {number} in this run (it has {max(n, 1)})", severity="warning", markup=False)
            return
        self.show_entry(number - 1)

    def show_aggregate(self) -> None:
        if self.refused("prompts"):
            return
        self.show_entry(self.prompt_set.n_prompts)

    def show_entry(self, entry: int) -> None:
        """Show a prompt set's prompt ``entry`` (or the aggregate at ``n_prompts``); every pane follows. The token
        stays the last one when it was (where the papers measure), else the same index, clamped."""
        assert self.prompt_set is not None
        was_last = self.selected_token >= self.results.n_tokens - 1
        self.entry = entry
        if self.results.n_tokens:
            self.selected_token = (self.results.n_tokens - 1 if was_last
                                   else min(self.selected_token, self.results.n_tokens - 1))
        self.arrange()
        if is_aggregate(self.results):
            self.query_one(CouplingPane).focus()
        self.show_run()
