"""Per-token trajectory measures of Aubry et al. (ICLR 2025): exponential norm growth, line-shape score (LSS),
linearisation fidelity, 1/σ_1 against depth and an "expodistance" candidate; numpy float64, pure functions.

Inputs are as a results file stores them (docs/results-format.md): ``hidden`` [L+1, T, d] pre-final-norm
(row 0 = embeddings entering block 0, row l = x^l leaving block l−1) and ``norms`` [L+1, T] = ‖x^l_t‖₂. Layer
indices l in the fits are these row indices (blocks: their 0-based index). Every fit is an OLS line y = a + b·l
per token with R² = 1 − SS_res/SS_tot (NaN where y is constant).
"""

from __future__ import annotations

from typing import Callable, Iterable

import numpy as np


def _f64(x) -> np.ndarray:
    """x as a float64 numpy array (torch tensors included)."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


def ols(x, Y) -> dict:
    """OLS line fit of every column of Y [n, ...] on x [n]: {"slope", "intercept", "r2"}, each [...]."""
    x, Y = _f64(x), _f64(Y)
    xc = x - x.mean()
    shape = (-1,) + (1,) * (Y.ndim - 1)
    with np.errstate(divide="ignore", invalid="ignore"):   # a column with ±inf (log of a zero norm) fits to NaN
        yc = Y - Y.mean(axis=0)
        slope = (xc.reshape(shape) * yc).sum(axis=0) / (xc @ xc)
        intercept = Y.mean(axis=0) - slope * x.mean()
        ss_res = ((yc - slope * xc.reshape(shape)) ** 2).sum(axis=0)
        ss_tot = (yc ** 2).sum(axis=0)
        r2 = np.where(ss_tot > 0, 1 - ss_res / np.where(ss_tot > 0, ss_tot, 1), np.nan)
    return {"slope": slope, "intercept": intercept, "r2": r2}


def growth_fit(norms, start: int = 1) -> dict:
    """Exponential norm growth per token: OLS of log‖x^l‖ on l over l = start..L (default 1: layer 0 is the
    embedding, often on another scale). Returns {"factor": e^b, "slope": b, "intercept": a, "r2"}, each [T]."""
    norms = _f64(norms)
    layers = np.arange(start, norms.shape[0])
    if len(layers) < 2:
        raise ValueError(f"need at least two layers from start={start}, have {norms.shape[0]} rows")
    with np.errstate(divide="ignore"):
        fit = ols(layers, np.log(norms[start:]))
    return {"factor": np.exp(fit["slope"]), **fit}


def _steps(hidden, start: int) -> np.ndarray:
    """Steps x^l − x^{l−1} between the states start..L, [L − start, T, d]."""
    h = _f64(hidden)
    if h.ndim != 3 or h.shape[0] - start < 2:
        raise ValueError(f"hidden must be [L+1, T, d] with at least two rows from start={start}, got {h.shape}")
    return np.diff(h[start:], axis=0)


def lss(hidden, start: int = 0) -> np.ndarray:
    """Line-shape score per token (Gai & Zhang): x̃^0 = x^0, x̃^l = x̃^{l−1} + Δ^l/‖Δ^l‖, LSS = n / ‖x̃^L − x̃^0‖,
    over the states start..L. 1 for a straight line, ≥ 1 otherwise. Zero steps (repeated states) have no direction
    and are dropped, n = the non-zero steps (= L − start without any); all-zero → NaN, a closed loop → inf. [T]"""
    steps = _steps(hidden, start)
    length = np.linalg.norm(steps, axis=-1)
    moving = length > 0
    unit = np.where(moving[..., None], steps / np.where(moving, length, 1)[..., None], 0.0)
    n = moving.sum(axis=0).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = n / np.linalg.norm(unit.sum(axis=0), axis=-1)
    return np.where(n > 0, out, np.nan)


def linearisation_fidelity(jacobians: Iterable | Callable[[int], object], x0, x_target,
                           n_layers: int | None = None) -> np.ndarray:
    """cos(x_lin, x_target) with x_lin = Π_l (I + J^l) x^0: the residual stream chained through the block
    linearisations, J^l the residual-branch Jacobians [..., d, d] in block order (an array [L, ..., d, d], an
    iterable, or a callable l -> J^l with ``n_layers``), x0 [..., d] (hidden[0, t]). We compare with the
    pre-final-norm x^L (hidden[L, t]); the official `compute_linearization` compares with the post-norm
    hidden_states[−1] (a norm only rescales per coordinate, so its cosine differs slightly). Returns [...]."""
    if callable(jacobians):
        if n_layers is None:
            raise ValueError("a callable of Jacobians needs n_layers")
        get = jacobians
        jacobians = (get(l) for l in range(n_layers))
    x = _f64(x0)
    for J in jacobians:
        x = x + np.einsum("...ij,...j->...i", _f64(J), x)
    y = _f64(x_target)
    with np.errstate(divide="ignore", invalid="ignore"):      # a zero vector has no direction: NaN
        return (x * y).sum(-1) / (np.linalg.norm(x, axis=-1) * np.linalg.norm(y, axis=-1))


def sigma1_depth_fit(sigma1, start: int = 9, first_depth: int = 0) -> dict:
    """OLS of 1/σ_1(J^l) on the depth of block l over rows l ≥ ``start`` (the official code fits from row 9 on),
    for sigma1 [L, ...] (e.g. jacobian.singular_values[:, :, 0]); a σ_max ∝ 1/depth law gives R² ≈ 1. Block l's
    depth is ``first_depth`` + l: 0 = the block index (``--convention paper``), 1 = the official code's 1-based
    depth (its intercept is the 0-based one minus the slope; slope and R² are the same). Each [...]."""
    s = _f64(sigma1)
    rows = np.arange(start, s.shape[0])
    if len(rows) < 2:
        raise ValueError(f"need at least two blocks from start={start}, have {s.shape[0]}")
    with np.errstate(divide="ignore"):
        return ols(rows + first_depth, 1 / s[start:])


def expodistance(hidden, start: int = 1) -> dict:
    """The "expodistance" candidate (b) of papers-spec §1.6 (the paper's exact formula is unknown): per token,
    OLS of log Δ^l on l, Δ^l = ‖x^l − x^{l−1}‖ the step lengths between the states start..L (default 1: the
    embedding is left out, so l = start+1..L), and the coefficient of variation (population std / mean) of the
    consecutive ratios Δ^{l+1}/Δ^l, 0 for exactly exponential spacing. Returns {"factor": e^b, "slope", "intercept",
    "r2", "ratio_cv"}, each [T]; a zero step gives NaN."""
    steps = _steps(hidden, start)
    length = np.linalg.norm(steps, axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.where(length > 0, np.log(np.where(length > 0, length, 1)), np.nan)
        fit = ols(np.arange(start + 1, start + 1 + len(length)), logs)
        ratios = length[1:] / length[:-1]
        cv = ratios.std(axis=0) / ratios.mean(axis=0) if len(ratios) else np.full(length.shape[1:], np.nan)
    bad = ~(length > 0).all(axis=0)
    cv = np.where(bad, np.nan, cv)
    return {"factor": np.exp(fit["slope"]), **fit, "ratio_cv": cv}


__all__ = ["ols", "growth_fit", "lss", "linearisation_fidelity", "sigma1_depth_fit", "expodistance"]
