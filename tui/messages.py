"""Messages the compute and save workers post to the app; the app applies them on the main thread only."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from textual.message import Message

from coupling_tui.core.events import Event


@dataclass
class EngineEvent(Message):
    """One engine event (RunStarted, LayerDone or RunFinished), forwarded from the compute worker."""

    event: Event


@dataclass
class ComputeFailed(Message):
    """The compute job raised; ``message`` is the one line to show the user."""

    message: str


@dataclass
class ComputeCancelled(Message):
    """The compute worker saw the cancel request and stopped reading the engine's events."""


@dataclass
class RunSaved(Message):
    """The finished run was written to ``path``."""

    path: Path


@dataclass
class SaveFailed(Message):
    """Writing the finished run failed; ``message`` is the one line to show the user."""

    message: str
