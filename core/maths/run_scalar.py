"""The run scalar: one number per run from depth-coupling matrices (docs/metrics.md "One number per run"), and the
two ways a run's headline pools them: the last token's matrix (the papers' and the official code's quantity) and
every token's (token 0, the attention sink, included). Torch-free, so a saved run or a prompt set's aggregate can
recompute it without torch."""

from __future__ import annotations

import numpy as np

LAST_TOKEN, ALL_TOKENS = "last_token", "all_tokens"
"""The two poolings of a run's headline, in the order it shows them (the papers' first)."""
LABELS = {LAST_TOKEN: "last token", ALL_TOKENS: "all-token mean"}
"""How every screen and printout names them."""


def run_scalar(m, k: int | None = None, *, far: int = 10) -> dict:
    """One number per run from depth-coupling matrices m [..., L, L] (leading axes: tokens, prompts; NaN entries,
    e.g. layers not computed, are skipped): the mean of m over i ≠ j, over |i − j| = 1 (both directions) and over
    |i − j| ≥ ``far``, each also as 1 − m² (None where no entry exists: JSON-safe); with what was averaged (K as told, matrices,
    layers, entries)."""
    m, gap = _square(m)
    L = m.shape[-1]
    flat = m.reshape(-1, L, L)
    out = {"k": k, "matrices": flat.shape[0], "layers": L}
    for name, mask in (("offdiag", gap > 0), ("adjacent", gap == 1), ("far", gap >= far)):
        vals = flat[:, mask]
        vals = vals[~np.isnan(vals)]
        out[name] = float(vals.mean()) if vals.size else None
        out[f"{name}_1_minus_m2"] = float((1 - vals ** 2).mean()) if vals.size else None
        out[f"{name}_entries"] = int(vals.size)
    return out


def _square(m) -> tuple[np.ndarray, np.ndarray]:
    """m as float64 [..., L, L] (checked) and the layer distance |i − j| of every entry [L, L]."""
    m = np.asarray(m, dtype=np.float64)
    if m.ndim < 2 or m.shape[-2] != m.shape[-1]:
        raise ValueError(f"m must be [..., L, L], got shape {m.shape}")
    L = m.shape[-1]
    return m, np.abs(np.subtract.outer(np.arange(L), np.arange(L)))


def distance_profile(m) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """m against the layer distance: for each |i − j| = 1 .. L − 1, the mean of m [L, L] over the 2(L − |i − j|)
    ordered pairs at that distance (both directions), NaN entries skipped. Returns (distances [L − 1] int, mean m
    [L − 1] float64, NaN where no entry at that distance is finite, finite entries averaged [L − 1] int)."""
    m, gap = _square(m)
    if m.ndim != 2:
        raise ValueError(f"m must be one [L, L] matrix, got shape {m.shape}")
    distances = np.arange(1, m.shape[0])
    means, counts = np.full(distances.size, np.nan), np.zeros(distances.size, np.int64)
    for n, g in enumerate(distances):
        vals = m[gap == g]
        vals = vals[np.isfinite(vals)]
        counts[n] = vals.size
        if vals.size:
            means[n] = vals.mean()
    return distances, means, counts


def adjacent_coupling(m) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The coupling of neighbouring blocks along depth, from m [L, L] (row = the Jacobian, column = the basis):
    (l = 0 .. L − 2, m[l, l + 1]: block l's Jacobian in block l + 1's singular bases, m[l + 1, l]: block l + 1's
    in block l's), the stored entries, float64."""
    m, _ = _square(m)
    if m.ndim != 2:
        raise ValueError(f"m must be one [L, L] matrix, got shape {m.shape}")
    layers = np.arange(m.shape[0] - 1)
    return layers, m[layers, layers + 1], m[layers + 1, layers]


def last_token_scalar(depth, k: int | None = None, *, far: int = 10) -> dict:
    """The papers' run scalar from one run's depth coupling at one K, depth [T, L, L] (token t's matrix m_K(J^i_t,
    J^j_t)): ``run_scalar`` of the last token's matrix alone, t = T − 1 (the official code takes the Jacobians at
    index −1), so ``offdiag`` is the mean of m_K[T − 1][i, j] over the L(L − 1) pairs i ≠ j; with ``tokens`` =
    "last" and ``token`` = T − 1."""
    depth = _tokens_axis(depth)
    return {**run_scalar(depth[-1], k, far=far), "tokens": "last", "token": depth.shape[0] - 1}


def all_tokens_scalar(depth, k: int | None = None, *, far: int = 10) -> dict:
    """``run_scalar`` pooled over every token's matrix of depth [T, L, L] (token 0 included; each finite entry
    weighs the same), with ``tokens`` = "all": what the engine's header has called ``coupling_scalar`` since 0.1.0."""
    depth = _tokens_axis(depth)
    return {**run_scalar(depth, k, far=far), "tokens": "all"}


def _tokens_axis(depth) -> np.ndarray:
    depth = np.asarray(depth, dtype=np.float64)
    if depth.ndim != 3 or depth.shape[0] < 1:
        raise ValueError(f"depth must be [T ≥ 1, L, L], got shape {depth.shape}")
    return depth
