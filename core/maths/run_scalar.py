"""The run scalar: one number per run from depth-coupling matrices (docs/metrics.md "One number per run").
Torch-free, so a saved run or a prompt set's aggregate can recompute it without torch."""

from __future__ import annotations

import numpy as np


def run_scalar(m, k: int | None = None, *, far: int = 10) -> dict:
    """One number per run from depth-coupling matrices m [..., L, L] (leading axes: tokens, prompts; NaN entries,
    e.g. layers not computed, are skipped): the mean of m over i ≠ j, over |i − j| = 1 (both directions) and over
    |i − j| ≥ ``far``, each also as 1 − m² (None where no entry exists: JSON-safe); with what was averaged (K as told, matrices,
    layers, entries)."""
    m = np.asarray(m, dtype=np.float64)
    L = m.shape[-1]
    if m.ndim < 2 or m.shape[-2] != L:
        raise ValueError(f"m must be [..., L, L], got shape {m.shape}")
    gap = np.abs(np.subtract.outer(np.arange(L), np.arange(L)))
    flat = m.reshape(-1, L, L)
    out = {"k": k, "matrices": flat.shape[0], "layers": L}
    for name, mask in (("offdiag", gap > 0), ("adjacent", gap == 1), ("far", gap >= far)):
        vals = flat[:, mask]
        vals = vals[~np.isnan(vals)]
        out[name] = float(vals.mean()) if vals.size else None
        out[f"{name}_1_minus_m2"] = float((1 - vals ** 2).mean()) if vals.size else None
        out[f"{name}_entries"] = int(vals.size)
    return out
