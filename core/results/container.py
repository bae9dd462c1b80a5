"""What every container of runs shares: one run (``Run``), a prompt set (``PromptSet``) and two models side by side
(``Comparison``) are all filled by applying events in order and are all shown one run at a time. The explorer's one
event handler and the headless commands' one progress loop (``cli.common.stream_with_progress``) read them through
this protocol alone. Torch-free."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from coupling_tui.core.results.comparison import Comparison
from coupling_tui.core.results.events import BatchStarted, CompareStarted
from coupling_tui.core.results.prompt_set import PromptSet
from coupling_tui.core.results.run import Run


@runtime_checkable
class RunContainer(Protocol):
    """A run, a prompt set or a comparison as the explorer and the progress bars see it."""

    finished: bool
    """True once the container's last event (RunFinished, BatchFinished, CompareFinished) was applied."""

    def apply(self, event) -> None:
        """Fold one event of the container's stream in."""

    @property
    def n_steps(self) -> int:
        """Steps of every stage of every run the container will hold (a guess for runs not started yet)."""

    @property
    def steps_done(self) -> int:
        """Steps applied so far, all runs together."""

    @property
    def seconds(self) -> float:
        """Engine seconds of the whole computation (0 until it finishes)."""

    @property
    def current(self) -> int:
        """The entry being computed (-1 before the first run starts; a lone run is always entry 0)."""

    def progress_text(self) -> str:
        """Where the computation is, as the explorer's status line says it after "computing ", e.g. "layers 3/30",
        "prompt 2/4 · layers 3/30", "A SmolLM2 · layers 3/30"."""

    def progress_label(self) -> str:
        """The description of a progress bar that counts ``steps_done`` of ``n_steps`` beside it."""

    def current_name(self) -> str:
        """What names the entry being computed in a note about it ("" for a lone run, a prompt's label, "A"/"B")."""

    def shown(self, entry: int) -> Run:
        """The run the explorer shows at ``entry`` (a lone run at any entry)."""


def container_for(event) -> RunContainer | None:
    """A new, empty container when ``event`` opens one (BatchStarted: a PromptSet, CompareStarted: a Comparison);
    None for any other event (it belongs to the container already open)."""
    if isinstance(event, BatchStarted):
        return PromptSet()
    if isinstance(event, CompareStarted):
        return Comparison()
    return None
