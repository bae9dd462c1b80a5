"""The one in-memory results model every pane reads. Filled either by engine events or from a results file.

Torch-free on purpose: opening a saved run must not import torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from coupling_tui.core.results.events import Event, LayerDone, RunFinished, RunStarted
from coupling_tui.core.results import names


CONTEXT_VIEWS = ("context-out", "context-in")
"""Context coupling views: cross-token Jacobians sharing the output token, or sharing the input token."""
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


def convention_of(header: dict) -> str:
    """The ``--convention`` a run was computed with (``params.convention``); a file written before the flag existed
    has none and was computed the paper's way."""
    return (header.get(names.H_PARAMS) or {}).get(names.H_CONVENTION) or "paper"


def default_k(section: dict | None, ks: list[int]) -> int | None:
    """The K a run is shown at: its header section's ``k`` (``coupling``, ``context``), else the largest of ``ks``
    (the K computed, or shared by two runs); None when there is neither."""
    k = (section or {}).get("k")
    if k is None:
        return int(ks[-1]) if ks else None
    return int(k)


def metric_values(m: np.ndarray, metric: str) -> np.ndarray:
    if metric not in COUPLING_METRICS:
        raise ValueError(f"metric must be one of {COUPLING_METRICS}, got {metric!r}")
    return 1 - m * m if metric == "1-m²" else m


def nanmean(a: np.ndarray, axis: int) -> np.ndarray:
    """Mean over ``axis`` ignoring NaN (entries no token has yet stay NaN, without a warning)."""
    finite = np.isfinite(a)
    count = finite.sum(axis)
    total = np.where(finite, a, 0).sum(axis, dtype=np.float64)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan).astype(np.float32)


def off_diagonal_range(*matrices: np.ndarray) -> tuple[float, float]:
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
    def convention(self) -> str:
        """``paper`` or ``official`` (docs/metrics.md "Two conventions"); ``paper`` for older files."""
        return convention_of(self.header)

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

    # -- the container protocol (core.results.container): a lone run is its one entry --
    @property
    def current(self) -> int:
        return 0

    @property
    def seconds(self) -> float:
        return self.header.get("seconds", 0.0)

    def progress_text(self) -> str:
        return self.stage_text

    def progress_label(self) -> str:
        """The stage's name ("layers"): the bar beside it counts the steps."""
        return self.stage_text.rsplit(" ", 1)[0]

    def current_name(self) -> str:
        return ""

    def shown(self, entry: int) -> Run:
        return self

    @property
    def token_texts(self) -> list[str]:
        return list(self.header.get("tokens", {}).get("text", []))

    @property
    def n_tokens(self) -> int:
        return len(self.token_texts)

    def norms(self, token: int) -> np.ndarray:
        """‖x_t^l‖ for l = 0..L (NaN where not computed yet)."""
        return self.arrays[names.TRAJECTORY_NORMS][:, token]

    def growth_line(self, token: int) -> tuple[list[int], np.ndarray] | None:
        """The exponential-growth fit of ``token``'s norms drawn as a curve: (depths start..l_done,
        exp(a + b·l)), the fit of log‖x^l‖ on l that ``trajectory.growth_factor`` (= e^b) stores, redone from the
        stored norms (core.maths.trajectory.growth_fit); None before two depths from the fit's start exist."""
        from coupling_tui.core.maths.trajectory import growth_fit

        start = int((self.header.get("fits") or {}).get("growth_start", 1))
        norms = self.norms(token)
        done = int(np.isfinite(norms).sum())             # norms fill in order: 0..done-1
        if done - start < 2:
            return None
        fit = growth_fit(norms[:done, None], start=start)
        depths = list(range(start, done))
        return depths, np.exp(fit["intercept"][0] + fit["slope"][0] * np.asarray(depths, np.float64))

    def norm_band(self, low: float = 10, high: float = 90) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per depth, over every token: the ``low`` and ``high`` percentiles and the median of ‖x^l‖ (NaN where
        no token has a value yet). Percentiles, not min/max: an attention-sink token's norm can be 100× the rest."""
        norms = self.arrays[names.TRAJECTORY_NORMS].astype(np.float64)
        out = np.full((3, norms.shape[0]), np.nan)
        for l, row in enumerate(norms):
            row = row[np.isfinite(row)]
            if row.size:
                out[:, l] = np.percentile(row, [low, 50, high])
        return out[0], out[1], out[2]

    def trajectory_values(self, token: int) -> dict[str, float]:
        """The stored trajectory fits of ``token`` (NaN where not computed): growth factor and R², LSS,
        expodistance factor and R², linearisation fidelity at the last depth computed."""
        fits = {"growth": names.TRAJECTORY_GROWTH_FACTOR, "growth_r2": names.TRAJECTORY_GROWTH_R2,
                "lss": names.TRAJECTORY_LSS, "expodistance": names.TRAJECTORY_EXPODISTANCE_FACTOR,
                "expodistance_r2": names.TRAJECTORY_EXPODISTANCE_R2}
        out = {key: float(self.arrays[name][token]) if name in self.arrays else float("nan")
               for key, name in fits.items()}
        fidelity = self.arrays.get(names.TRAJECTORY_FIDELITY)
        done = fidelity[:, token][np.isfinite(fidelity[:, token])] if fidelity is not None else np.zeros(0)
        out["fidelity"] = float(done[-1]) if done.size > 1 else float("nan")
        return out

    def haar_null(self, k: int, layer: int, token: int | None = None) -> float:
        """The expected m_K of block ``layer``'s J against Haar-random bases (the null: ≈ 1 means "no more aligned
        than chance"), from its stored top singular values and ‖J‖_F (core.maths.null_baseline); at ``token``, or the
        mean over tokens when None; NaN when not computed yet."""
        from coupling_tui.core.maths.null_baseline import haar_null_from_spectrum

        S, fro = self.arrays.get(names.JACOBIAN_SINGULAR_VALUES), self.arrays.get(names.JACOBIAN_FROBENIUS)
        d = (self.arrays[names.TRAJECTORY_HIDDEN].shape[-1] if names.TRAJECTORY_HIDDEN in self.arrays
             else int((self.header.get("model") or {}).get("d_model") or 0))
        if S is None or fro is None or not d or k > S.shape[-1]:
            return float("nan")
        rows = slice(None) if token is None else slice(token, token + 1)
        values = haar_null_from_spectrum(S[layer, rows], fro[layer, rows], d, k)
        values = values[np.isfinite(values)]
        return float(values.mean()) if values.size else float("nan")

    @property
    def coupling_ks(self) -> list[int]:
        """The K values the run's coupling matrices were stored for (empty without coupling)."""
        ks = self.arrays.get(names.COUPLING_KS)
        return [] if ks is None else [int(k) for k in ks]

    @property
    def has_baseline(self) -> bool:
        return names.random_init(names.COUPLING_DEPTH_K) in self.arrays

    @property
    def coupling_variants(self) -> list[str]:
        """"ujv" and, for runs computed with --vju, "vju"."""
        return ["ujv"] + (["vju"] if names.COUPLING_DEPTH_VJU_K in self.arrays else [])

    @property
    def context_layers(self) -> list[int]:
        """The layers of context coupling (empty without)."""
        layers = self.arrays.get(names.CONTEXT_LAYERS)
        return [] if layers is None else [int(x) for x in layers]

    @property
    def coupling_views(self) -> list[str]:
        """The views this run can show, in the order ``v`` cycles through them."""
        views = ["depth"]
        if names.COUPLING_TOKEN_K in self.arrays or names.COUPLING_TOKEN_PAIRS in self.arrays:
            views.append("token")
        if self.context_layers:
            views += list(CONTEXT_VIEWS)
        return views

    def token_pairs(self) -> list[tuple[int, int]]:
        """The (row, column) layer pairs of token coupling besides same-layer."""
        pairs = self.arrays.get(names.COUPLING_TOKEN_PAIRS)
        return [] if pairs is None else [(int(r), int(c)) for r, c in pairs]

    def coupling_view(self, *, view: str = "depth", k: int | None = None, token: int | None = None, layer: int = 0,
                      column_layer: int | None = None, metric: str = "1-m²", baseline: bool = False,
                      variant: str = "ujv") -> CouplingView | None:
        """One coupling matrix at K = ``k`` (default: the header's K), trained or random-init (``baseline``); None
        when the run has no such matrix.

        - "depth": L×L at ``token`` (the token average when None), ``variant`` "ujv" or "vju";
        - "token": T×T between block ``layer`` (rows) and block ``column_layer`` (columns; default the same);
        - "context-out" / "context-in": T×T context coupling between the chosen layers ``layer`` and
          ``column_layer`` (both must be context layers), same output / same input token (NaN off the causal
          range)."""
        if view not in ("depth", "token", *CONTEXT_VIEWS):
            raise ValueError(f"view must be depth, token, {' or '.join(CONTEXT_VIEWS)}, got {view!r}")
        column_layer = layer if column_layer is None else column_layer
        if view in CONTEXT_VIEWS:
            return self._context_view(view, k, layer, column_layer, metric)
        ks = self.coupling_ks
        if not ks:
            return None
        k = default_k(self.header.get("coupling"), ks) if k is None else int(k)
        if k not in ks:
            return None
        a = ks.index(k)

        def pick(prefix: str) -> np.ndarray | None:
            if view == "depth":
                name = prefix + (names.COUPLING_DEPTH_K if variant == "ujv" else names.COUPLING_DEPTH_VJU_K)
                if name not in self.arrays:
                    return None
                if token is not None:
                    return self.arrays[name][a, token]
                if variant == "ujv" and prefix + names.COUPLING_DEPTH_MEAN_K in self.arrays:
                    return self.arrays[prefix + names.COUPLING_DEPTH_MEAN_K][a]
                return nanmean(self.arrays[name][a], axis=0)
            if column_layer == layer:
                name = prefix + names.COUPLING_TOKEN_K
                return self.arrays[name][a, layer] if name in self.arrays else None
            pairs = self.arrays.get(prefix + names.COUPLING_TOKEN_PAIRS)
            hits = [] if pairs is None else np.flatnonzero((pairs[:, 0] == layer) & (pairs[:, 1] == column_layer))
            return self.arrays[prefix + names.COUPLING_TOKEN_PAIR_K][a, int(hits[0])] if len(hits) else None

        m = pick(names.RANDOM_INIT_PREFIX if baseline else "")
        if m is None:
            return None
        other = pick("" if baseline else names.RANDOM_INIT_PREFIX)
        values = metric_values(m.astype(np.float64), metric)
        scale = off_diagonal_range(values, None if other is None else metric_values(other.astype(np.float64), metric))
        return CouplingView(values=values, m=m, axis="layer" if view == "depth" else "token", k=k, metric=metric,
                            scale=scale)

    def _context_view(self, view: str, k: int | None, layer: int, column_layer: int,
                      metric: str) -> CouplingView | None:
        info = self.header.get("context") or {}
        layers, ks = self.context_layers, [int(x) for x in info.get("ks", [])]
        k = default_k(info, ks) if k is None else int(k)
        if layer not in layers or column_layer not in layers or k not in ks:
            return None
        m = self.arrays[names.context_name('out' if view == 'context-out' else 'in', "k")][
            ks.index(k), layers.index(layer), layers.index(column_layer)]
        values = metric_values(m.astype(np.float64), metric)
        return CouplingView(values=values, m=m, axis="token", k=k, metric=metric, scale=off_diagonal_range(values))
