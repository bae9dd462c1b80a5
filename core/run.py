"""The one in-memory results model every pane reads. Filled either by engine events or from a results file.

Torch-free on purpose: opening a saved run must not import torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .events import Event, LayerDone, RunFinished, RunStarted


COUPLING_METRICS = ("1-m²", "m")
"""How a coupling matrix is shown: the official notebook's 1 − m² (1 = coupled) or m itself (0 = coupled)."""


@dataclass(frozen=True)
class CouplingView:
    """One coupling matrix as a pane shows it: values in the chosen metric, NaN where not computed yet."""

    values: np.ndarray
    """[n, n]: entry [row, column] = metric of m_K(J_row, J_column)."""
    m: np.ndarray
    """The same entries as stored (m_K), whatever the metric."""
    axis: str
    """"layer" (depth coupling) or "token" (token coupling at one layer)."""
    k: int
    metric: str
    scale: tuple[float, float]
    """Colour-scale range: the finite off-diagonal values of this matrix and of its trained/random-init
    counterpart, so toggling between them keeps one scale; (nan, nan) when nothing is finite yet."""

    def cell(self, row: int, column: int) -> tuple[float, float]:
        """The stored m_K at [row, column] and its 1 − m² (NaN when not computed yet)."""
        m = float(self.m[row, column])
        return m, 1 - m * m


def _metric(m: np.ndarray, metric: str) -> np.ndarray:
    if metric not in COUPLING_METRICS:
        raise ValueError(f"metric must be one of {COUPLING_METRICS}, got {metric!r}")
    return 1 - m * m if metric == "1-m²" else m


def _off_diagonal_range(*matrices: np.ndarray) -> tuple[float, float]:
    vals = [a[~np.eye(a.shape[0], dtype=bool)] for a in matrices if a is not None and a.size]
    vals = np.concatenate(vals) if vals else np.zeros(0)
    vals = vals[np.isfinite(vals)]
    return (float(vals.min()), float(vals.max())) if vals.size else (float("nan"), float("nan"))


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

    @property
    def coupling_ks(self) -> list[int]:
        """The K values the run's coupling matrices were stored for (empty without coupling)."""
        ks = self.arrays.get("coupling.ks")
        return [] if ks is None else [int(k) for k in ks]

    @property
    def has_baseline(self) -> bool:
        return "random_init.coupling.depth_k" in self.arrays

    def coupling_view(self, *, view: str = "depth", k: int | None = None, token: int | None = None, layer: int = 0,
                      metric: str = "1-m²", baseline: bool = False) -> CouplingView | None:
        """Depth coupling (view "depth": L×L at ``token``, or the token average when ``token`` is None) or token
        coupling (view "token": T×T at ``layer``) at K = ``k`` (default: the header's K), trained or random-init
        (``baseline``); None when the run has no such matrix."""
        ks = self.coupling_ks
        if not ks:
            return None
        k = int((self.header.get("coupling") or {}).get("k", ks[-1])) if k is None else int(k)
        if k not in ks:
            return None
        a = ks.index(k)

        def pick(prefix: str) -> np.ndarray | None:
            if view == "depth":
                name = prefix + ("coupling.depth_mean_k" if token is None else "coupling.depth_k")
                if name not in self.arrays:
                    return None
                return self.arrays[name][a] if token is None else self.arrays[name][a, token]
            name = prefix + "coupling.token_k"
            return self.arrays[name][a, layer] if name in self.arrays else None

        if view not in ("depth", "token"):
            raise ValueError(f"view must be 'depth' or 'token', got {view!r}")
        m = pick("random_init." if baseline else "")
        if m is None:
            return None
        other = pick("" if baseline else "random_init.")
        values = _metric(m.astype(np.float64), metric)
        scale = _off_diagonal_range(values, None if other is None else _metric(other.astype(np.float64), metric))
        return CouplingView(values=values, m=m, axis="layer" if view == "depth" else "token", k=k, metric=metric,
                            scale=scale)
