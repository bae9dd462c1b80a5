"""The one in-memory results model every pane reads. Filled either by engine events or from a results file.

Torch-free on purpose: opening a saved run must not import torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .events import Event, LayerDone, RunFinished, RunStarted


@dataclass
class Run:
    header: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    layers_done: int = 0
    """Blocks of the main stage ("layers") whose results are in ``arrays`` (blocks complete in order)."""
    steps_done: int = 0
    """LayerDone events applied, all stages together (progress = steps_done / n_steps)."""
    finished: bool = False

    def apply(self, event: Event) -> None:
        """Fold one engine event into the run."""
        if isinstance(event, RunStarted):
            self.header = dict(event.header)
            self.arrays = {name: np.array(a, copy=True) for name, a in event.arrays.items()}
            self.layers_done = 0
            self.steps_done = 0
            self.finished = False
        elif isinstance(event, LayerDone):
            for name, (row, values) in event.rows.items():
                self.arrays[name][row] = values
            self.steps_done += 1
            if event.stage == "layers":
                self.layers_done = event.layer + 1
        elif isinstance(event, RunFinished):
            self.header.update(event.header)
            self.header["seconds"] = event.seconds
            self.finished = True
        else:  # pragma: no cover - a programming error, not user input
            raise TypeError(f"not an engine event: {event!r}")

    # -- convenience views used by the panes (no maths beyond indexing) --
    @property
    def n_layers(self) -> int:
        return int(self.header.get("model", {}).get("n_layers", 0))

    @property
    def n_steps(self) -> int:
        """Steps of every stage the run announced (its blocks, when the header lists no stages)."""
        stages = self.header.get("stages")
        return sum(int(s["steps"]) for s in stages) if stages else self.n_layers

    @property
    def stage_text(self) -> str:
        """Which stage the next step belongs to and how far it is, e.g. "random-init 3/30"."""
        left = self.steps_done
        stages = self.header.get("stages") or [{"name": "layers", "steps": self.n_layers}]
        for n, stage in enumerate(stages):
            steps = int(stage["steps"])
            if left < steps or n == len(stages) - 1:
                return f"{stage['name']} {min(left, steps)}/{steps}"
            left -= steps
        return ""

    @property
    def token_texts(self) -> list[str]:
        return list(self.header.get("tokens", {}).get("text", []))

    @property
    def n_tokens(self) -> int:
        return len(self.token_texts)

    def norms(self, token: int) -> np.ndarray:
        """‖x_t^l‖ for l = 0..L (NaN where not computed yet)."""
        return self.arrays["trajectory.norms"][:, token]
