"""What the engine yields: small frozen records, numpy arrays only (no torch), so any thread or file can hold them.

A run is a stream ``RunStarted, LayerDone × (steps of every stage), RunFinished``. ``RunStarted`` carries the run header and
every array the run will have, already allocated (rows not computed yet are NaN); each ``LayerDone`` fills rows
of those arrays. A consumer that applies the events in order (see ``core.results.run.Run.apply``) holds the same data a
saved results file holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np


@dataclass(frozen=True)
class RunStarted:
    header: Mapping[str, Any]
    """JSON-able description of the run: model, dtype, device, prompt, tokens, parameters."""
    arrays: Mapping[str, np.ndarray]
    """Every array of the run, allocated at full size; rows still to come are NaN."""


@dataclass(frozen=True)
class LayerDone:
    layer: int
    """Index of the block that just finished, 0-based."""
    n_layers: int
    """How many blocks the run computes in all."""
    rows: Mapping[str, tuple[Any, np.ndarray]] = field(default_factory=dict)
    """Array name -> (index, values): ``array[index] = values``; the index is a row along axis 0, a tuple of
    indices/slices, or ``...`` for the whole array (e.g. fits recomputed over the layers so far)."""
    stage: str = "layers"
    """Which stage of the run (the header's ``stages``) this step belongs to: "layers" is the model's one pass
    over its blocks; others (a second coupling pass, the random-init baseline) follow it."""


@dataclass(frozen=True)
class RunFinished:
    seconds: float
    """Wall-clock seconds of the engine run (model loading excluded)."""
    header: Mapping[str, Any] = field(default_factory=dict)
    """Header entries known only at the end (e.g. the greedy next token); merged into the run header."""


Event = RunStarted | LayerDone | RunFinished


# -- a prompt set: the engine's stream once per prompt (core.engine.batch) --

@dataclass(frozen=True)
class BatchStarted:
    """A run over several prompts begins; each prompt's own stream (``RunStarted`` … ``RunFinished``) follows its
    ``PromptStarted``."""

    labels: tuple[str, ...]
    texts: tuple[str, ...]


@dataclass(frozen=True)
class PromptStarted:
    index: int
    """0-based: which prompt the run events that follow belong to."""
    n_prompts: int


@dataclass(frozen=True)
class BatchFinished:
    seconds: float
    """Wall-clock seconds of every prompt's run together (model loading excluded)."""


BatchEvent = BatchStarted | PromptStarted | BatchFinished | Event
"""What ``core.engine.batch.stream_prompts`` yields."""


# -- two models on one prompt, side by side (core.results.comparison, ``--compare``) --

@dataclass(frozen=True)
class CompareStarted:
    """Two runs of the same prompt begin: model A's stream (``RunStarted`` … ``RunFinished``) follows
    ``SideStarted(0)``, model B's ``SideStarted(1)``."""

    labels: tuple[str, str]
    """The two models as the user named them."""


@dataclass(frozen=True)
class SideStarted:
    index: int
    """0 = model A, 1 = model B: which side the run events that follow belong to."""


@dataclass(frozen=True)
class CompareFinished:
    seconds: float
    """Wall-clock seconds of both runs together (model loading excluded)."""


CompareEvent = CompareStarted | SideStarted | CompareFinished | Event
"""What ``core.engine.compare.stream_compare`` yields."""


# -- many models on the same prompts, one after another or one Ray task each (core.engine.sweep, ``sweep``) --

@dataclass(frozen=True)
class SweepStarted:
    """A sweep over ``models`` (as the user named them) begins. In process, each model's own stream (a run's or a
    prompt set's events) follows its ``ModelStarted``; from a Ray task, ``ModelProgress`` tells how far it is and
    ``ModelComputed`` hands over the whole container."""

    models: tuple[str, ...]


@dataclass(frozen=True)
class ModelStarted:
    index: int
    """0-based: which model the events that follow belong to."""


@dataclass(frozen=True)
class ModelProgress:
    """A model computing elsewhere (a Ray task) has done ``steps_done`` of ``n_steps``."""

    index: int
    steps_done: int
    n_steps: int


@dataclass(frozen=True)
class ModelComputed:
    """A model computed elsewhere (a Ray task): its whole container (a Run or a PromptSet)."""

    index: int
    container: Any
    seconds: float
    """Wall seconds of the task, loading included."""


@dataclass(frozen=True)
class ModelFinished:
    index: int
    seconds: float
    """Wall seconds of the model, loading included."""


@dataclass(frozen=True)
class ModelFailed:
    index: int
    reason: str
    """One line: why (the error message a ``compute`` of this model alone would print)."""
    seconds: float = 0.0


@dataclass(frozen=True)
class ModelSkipped:
    """A model whose results exist with the same options: not computed again (``--force`` recomputes)."""

    index: int
    reason: str


@dataclass(frozen=True)
class SweepFinished:
    seconds: float


SweepEvent = (SweepStarted | ModelStarted | ModelProgress | ModelComputed | ModelFinished | ModelFailed
              | ModelSkipped | SweepFinished | BatchEvent)
"""What ``core.engine.sweep`` yields."""
