"""What the engine yields: small frozen records, numpy arrays only (no torch), so any thread or file can hold them.

A run is a stream ``RunStarted, LayerDone × n_layers, RunFinished``. ``RunStarted`` carries the run header and
every array the run will have, already allocated (rows not computed yet are NaN); each ``LayerDone`` fills rows
of those arrays. A consumer that applies the events in order (see ``core.run.Run.apply``) holds the same data a
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
    rows: Mapping[str, tuple[int, np.ndarray]] = field(default_factory=dict)
    """Array name -> (row along axis 0, values) to write into that array."""


@dataclass(frozen=True)
class RunFinished:
    seconds: float
    """Wall-clock seconds of the engine run (model loading excluded)."""
    header: Mapping[str, Any] = field(default_factory=dict)
    """Header entries known only at the end (e.g. the greedy next token); merged into the run header."""


Event = RunStarted | LayerDone | RunFinished
