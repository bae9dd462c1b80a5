"""Messages the compute and save workers post to the app; the app applies them on the main thread only."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from textual.message import Message

from coupling_tui.core.errors import UserError
from coupling_tui.core.results.events import Event
from coupling_tui.core.faults import is_out_of_memory, out_of_memory_error


def one_line(exc: BaseException) -> str:
    """The message a user sees for ``exc``: a UserError's own text, else its type and text; never a traceback."""
    if is_out_of_memory(exc) and not isinstance(exc, UserError):
        exc = out_of_memory_error("computing")
    text = str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"
    return " — ".join(line.strip() for line in text.splitlines() if line.strip())


def exit_status(exc: BaseException) -> int:
    """The status the command ends with after ``exc`` failed a compute or a save: 2 for the user's input or
    environment (a UserError, running out of memory), 1 for a bug — the statuses ``coupling-tui compute`` uses."""
    return 2 if isinstance(exc, UserError) or is_out_of_memory(exc) else 1


@dataclass(frozen=True)
class Failure:
    """What went wrong in the explorer that its exit must still report (issue 17 defect 7): the one line printed
    after the terminal is restored, and the exit status."""

    message: str
    status: int

    @classmethod
    def of(cls, exc: BaseException) -> "Failure":
        return cls(one_line(exc), exit_status(exc))


@dataclass
class EngineEvent(Message):
    """One engine event (RunStarted, LayerDone or RunFinished), forwarded from the compute worker."""

    event: Event


@dataclass
class ComputeFailed(Message):
    """The compute job raised; ``failure`` is the one line to show the user and the exit status it means."""

    failure: Failure


@dataclass
class ComputeCancelled(Message):
    """The compute worker saw the cancel request and stopped reading the engine's events."""


@dataclass
class RunSaved(Message):
    """The finished run was written to ``path`` (and a comparison's model B to ``other``)."""

    path: Path
    other: Path | None = None


@dataclass
class SaveFailed(Message):
    """Writing the finished run failed; ``failure`` is the one line to show the user and the exit status it means."""

    failure: Failure
