"""A prompt set in memory: one Run per prompt plus their aggregate, filled by core.engine.batch's events or from a saved
set (core.results.set_file). Torch-free, like Run: the explorer and ``coupling-tui view`` read it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from coupling_tui.core.results.aggregate import aggregate_run
from coupling_tui.core.results.events import BatchFinished, BatchStarted, PromptStarted
from coupling_tui.core.results.run import Run


@dataclass
class PromptSet:
    labels: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    runs: list[Run] = field(default_factory=list)
    """One per prompt; a prompt not started yet has an empty Run."""
    current: int = -1
    """The prompt being computed (-1 before the first starts)."""
    finished: bool = False
    seconds: float = 0.0
    header: dict[str, Any] = field(default_factory=dict)
    """The saved set's header (core.results.set_file); empty while computing."""
    _aggregate: Run | None = None

    @property
    def n_prompts(self) -> int:
        return len(self.labels)

    def apply(self, event) -> None:
        """Fold one event of ``core.engine.batch.stream_prompts`` into the set."""
        if isinstance(event, BatchStarted):
            self.labels, self.texts = list(event.labels), list(event.texts)
            self.runs = [Run() for _ in event.labels]
            self.current, self.finished, self._aggregate = -1, False, None
        elif isinstance(event, PromptStarted):
            self.current = event.index
        elif isinstance(event, BatchFinished):
            self.seconds = event.seconds
            self.finished = True
        else:
            run = self.runs[self.current]
            run.apply(event)
            if run.finished:
                self._aggregate = None                  # one more prompt to average

    def complete_runs(self) -> list[Run]:
        return [r for r in self.runs if r.finished]

    @property
    def aggregate(self) -> Run:
        """The aggregate over the prompts finished so far (core.results.aggregate.aggregate_run); rebuilt when one more
        finishes."""
        if self._aggregate is None:
            self._aggregate = aggregate_run(self.complete_runs(), self.n_prompts)
        return self._aggregate

    def view(self, index: int) -> Run:
        """What the explorer shows at entry ``index``: prompt ``index``'s run, or the aggregate at ``n_prompts``."""
        return self.aggregate if index >= self.n_prompts else self.runs[index]

    def entry_text(self, index: int) -> str:
        """"prompt 2/4 · code" or "aggregate of 3/4 prompts"."""
        if index >= self.n_prompts:
            n = len(self.complete_runs())
            return f"aggregate of {n} prompts" if n == self.n_prompts else f"aggregate of {n}/{self.n_prompts} prompts"
        return f"prompt {index + 1}/{self.n_prompts} · {self.labels[index]}"

    @property
    def steps_done(self) -> int:
        return sum(r.steps_done for r in self.runs)

    @property
    def n_steps(self) -> int:
        """Steps of every prompt's run: those announced, and for prompts not started yet the last announced count
        (prompts differ in tokens, not in layers or stages, so the count is a good guess)."""
        known = [r.n_steps for r in self.runs if r.header]
        guess = known[-1] if known else 0
        return sum(known) + guess * (self.n_prompts - len(known))

    def progress_text(self) -> str:
        """"prompt 2/4 · layers 3/30"."""
        if self.current < 0:
            return f"prompt 0/{self.n_prompts}"
        run = self.runs[self.current]
        stage = f" · {run.stage_text}" if run.header else ""
        return f"prompt {self.current + 1}/{self.n_prompts}{stage}"

    # -- the container protocol (core.results.container) --
    def progress_label(self) -> str:
        """The progress text with the prompt's own step count (the bar beside it counts every prompt's steps)."""
        return self.progress_text() if self.labels else "prompts"

    def current_name(self) -> str:
        """The label of the prompt being computed ("" before the first starts)."""
        return self.labels[self.current] if 0 <= self.current < self.n_prompts else ""

    def shown(self, entry: int) -> Run:
        return self.view(entry)
