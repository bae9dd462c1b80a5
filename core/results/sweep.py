"""A sweep in memory while it computes: for each model (as the user named it) its container (a Run, or a PromptSet
for two or more prompts), its state and its seconds, filled by core.engine.sweep's events. It is a RunContainer
(core.results.container), so the headless progress bar counts models × prompts × layers through the same protocol
as for one run. The table of a finished sweep and its file live in core.results.sweep_table. Torch-free."""

from __future__ import annotations

from dataclasses import dataclass, field

from coupling_tui.core.results.events import (BatchStarted, ModelComputed, ModelFailed, ModelFinished, ModelProgress,
                                              ModelSkipped, ModelStarted, SweepFinished, SweepStarted)
from coupling_tui.core.results.prompt_set import PromptSet
from coupling_tui.core.results.run import Run

PENDING, RUNNING, OK, FAILED, SKIPPED = "pending", "running", "ok", "failed", "skipped"


@dataclass
class ModelState:
    """One model of the sweep."""

    name: str
    state: str = PENDING
    container: Run | PromptSet | None = None
    """Filled while it computes in process, or whole when a Ray task hands it over; None until then."""
    reason: str = ""
    """Why it failed, or why it was skipped."""
    seconds: float = 0.0
    remote_steps: tuple[int, int] = (0, 0)
    """(done, total) reported by a Ray task still computing."""

    @property
    def steps_done(self) -> int:
        if self.container is not None:
            return self.container.steps_done
        return self.remote_steps[0]

    @property
    def n_steps(self) -> int | None:
        """Steps of the model's runs, once known (None before its first run starts)."""
        if self.container is not None and self.container.n_steps:
            return self.container.n_steps
        return self.remote_steps[1] or None


@dataclass
class Sweep:
    models: list[ModelState] = field(default_factory=list)
    current: int = -1
    """The model whose in-process events arrive now (-1 before the first)."""
    finished: bool = False
    seconds: float = 0.0
    just_ended: list[int] = field(default_factory=list)
    """Models that reached an end state (ok, failed, skipped) with the last event applied: the driver saves them."""

    def apply(self, event) -> None:
        """Fold one event of ``core.engine.sweep``'s streams into the sweep."""
        self.just_ended = []
        if isinstance(event, SweepStarted):
            self.models = [ModelState(name) for name in event.models]
            self.current, self.finished = -1, False
        elif isinstance(event, ModelStarted):
            self.current = event.index
            self.models[event.index].state = RUNNING
        elif isinstance(event, ModelProgress):
            state = self.models[event.index]
            state.state, state.remote_steps = RUNNING, (event.steps_done, event.n_steps)
        elif isinstance(event, ModelComputed):
            self._end(event.index, OK, seconds=event.seconds, container=event.container)
        elif isinstance(event, ModelFinished):
            self._end(event.index, OK, seconds=event.seconds)
        elif isinstance(event, ModelFailed):
            self._end(event.index, FAILED, reason=event.reason, seconds=event.seconds)
        elif isinstance(event, ModelSkipped):
            self._end(event.index, SKIPPED, reason=event.reason)
        elif isinstance(event, SweepFinished):
            self.seconds, self.finished = event.seconds, True
        else:                                           # a run's or a prompt set's event of the current model
            state = self.models[self.current]
            if state.container is None:
                state.container = PromptSet() if isinstance(event, BatchStarted) else Run()
            state.container.apply(event)

    def _end(self, index: int, state: str, *, seconds: float = 0.0, reason: str = "", container=None) -> None:
        model = self.models[index]
        model.state, model.reason, model.seconds = state, reason, seconds
        if container is not None:
            model.container = container
        if state == FAILED:
            model.container = None                      # a half-computed model is not a result
        self.just_ended = [index]

    # -- the container protocol (core.results.container) --
    @property
    def steps_done(self) -> int:
        return sum(m.steps_done for m in self.models if m.state in (RUNNING, OK))

    @property
    def n_steps(self) -> int:
        """Steps of every model still to count: those announced, and for models not started yet the mean of the
        announced (a guess: models differ in depth); skipped and failed models drop out."""
        counted = [m for m in self.models if m.state not in (FAILED, SKIPPED)]
        known = [m.n_steps for m in counted if m.n_steps]
        guess = round(sum(known) / len(known)) if known else 0
        return sum(m.n_steps or guess for m in counted)

    def progress_text(self) -> str:
        """"model 2/5 HuggingFaceTB/SmolLM2-135M · prompt 1/3 · layers 3/30"."""
        n = len(self.models)
        running = [i for i, m in enumerate(self.models) if m.state == RUNNING]
        if not running:
            done = sum(m.state != PENDING for m in self.models)
            return f"models {done}/{n}"
        if len(running) > 1:                            # Ray tasks side by side
            return f"models {sum(m.state not in (PENDING, RUNNING) for m in self.models)}/{n} · {len(running)} running"
        i = running[0]
        model = self.models[i]
        inner = model.container.progress_text() if model.container is not None and model.container.n_steps else ""
        return f"model {i + 1}/{n} {model.name}" + (f" · {inner}" if inner else "")

    def progress_label(self) -> str:
        return self.progress_text() if self.models else "models"

    def current_name(self) -> str:
        return self.models[self.current].name if 0 <= self.current < len(self.models) else ""

    def shown(self, entry: int) -> Run:
        container = self.models[entry].container
        if container is None:
            return Run()
        return container if isinstance(container, Run) else container.aggregate
