"""Exact top-K singular triplets of batches of dense Jacobians, from a dense symmetric eigensolver on JᵀJ.

Block Jacobians have flat spectra (small relative gaps), so randomized or matrix-free solvers give inaccurate top-K
vectors; a subset eigensolver (LAPACK ``?syevr`` through SciPy on the CPU, batched ``torch.linalg.eigh`` elsewhere) is
exact and 2-3x cheaper than a full SVD. Forming JᵀJ squares the condition number: the computed σ_i carries a relative
error of about eps·(σ_1/σ_i)²/4, so a matrix whose σ_K is too small next to σ_1 for the requested accuracy (including
rank-deficient and zero matrices) falls back to a full SVD of that matrix alone.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
import torch

DEFAULT_REL_TOL = {torch.float32: 1e-5, torch.float64: 1e-10}
"""Target relative accuracy of σ_K per compute dtype; decides when a matrix falls back to a full SVD."""


def top_k(J: torch.Tensor, k: int, *, rel_tol: float | None = None,
          solver: str = "auto") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Top-k singular triplets (U [B,m,k], S [B,k], V [B,n,k]) of J [B,m,n] (or [m,n]), σ sorted descending, so that
    J V = U diag(S); computed in float64 for float64 J and in float32 otherwise.

    ``solver``: "scipy" (LAPACK syevr subset, per matrix, CPU tensors only), "torch" (batched torch.linalg.eigh) or
    "auto" (scipy on the CPU, torch elsewhere)."""
    batched = J.dim() == 3
    if J.dim() not in (2, 3):
        raise ValueError(f"J must be [B, m, n] or [m, n], got shape {tuple(J.shape)}")
    J3 = J if batched else J[None]
    dtype = torch.float64 if J.dtype == torch.float64 else torch.float32
    B, m, n = J3.shape
    if not 1 <= k <= min(m, n):
        raise ValueError(f"k must be between 1 and {min(m, n)}, got {k}")
    Jc = J3.detach().to(dtype)
    if solver not in ("auto", "scipy", "torch") or (solver == "scipy" and Jc.device.type != "cpu"):
        raise ValueError(f"solver must be auto, torch or (for CPU tensors) scipy, got {solver!r}")
    if not torch.isfinite(Jc).all():
        raise ValueError("J contains NaN or infinite entries")
    # Scale every matrix to max |entry| 1 so that JᵀJ neither underflows (tiny attention-sink Jacobians) nor overflows.
    scale = Jc.abs().amax(dim=(1, 2))
    Js = Jc / torch.where(scale > 0, scale, torch.ones_like(scale))[:, None, None]
    use_scipy = solver == "scipy" or (solver == "auto" and Jc.device.type == "cpu")
    U, S, V = _top_k_scaled(Js, k, rel_tol if rel_tol is not None else DEFAULT_REL_TOL[dtype], use_scipy)
    _canonical_signs(U, V)
    S = S * scale[:, None]
    return (U, S, V) if batched else (U[0], S[0], V[0])


def _top_k_scaled(Js: torch.Tensor, k: int, rel_tol: float,
                  use_scipy: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Triplets of matrices scaled to max |entry| 1: eigh on JᵀJ, U = J V / S, a full SVD where that is inaccurate."""
    G = Js.mT @ Js
    lam, V = _top_eigenpairs_scipy(G, k) if use_scipy else _top_eigenpairs_torch(G, k)
    S = lam.clamp_min(0).sqrt()
    eps = torch.finfo(Js.dtype).eps
    floor = (0.25 * eps / rel_tol) ** 0.5
    # σ_K too close to 0 next to σ_1 (or σ_1 = 0): JᵀJ cannot resolve it to rel_tol; so the SVD takes over.
    bad = (S[:, -1] <= floor * S[:, 0]) | (S[:, 0] <= 0)
    U = (Js @ V) / torch.where(bad[:, None], torch.ones_like(S), S)[:, None, :]
    if bad.any():
        Ub, Sb, Vhb = torch.linalg.svd(Js[bad], full_matrices=False)
        U[bad], S[bad], V[bad] = Ub[..., :k], Sb[:, :k], Vhb[:, :k].mT
    return U, S, V


def _top_eigenpairs_torch(G: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The k largest eigenpairs (descending) of each symmetric G [B,n,n], by one batched torch.linalg.eigh."""
    w, Q = torch.linalg.eigh(G)
    return w[:, -k:].flip(-1), Q[..., -k:].flip(-1)


def _top_eigenpairs_scipy(G: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The k largest eigenpairs (descending) of each symmetric CPU G [B,n,n], by LAPACK syevr on that subset only."""
    B, n, _ = G.shape
    w_all = np.empty((B, k), dtype=G.numpy().dtype)
    Q_all = np.empty((B, n, k), dtype=w_all.dtype)
    G_np = G.numpy()
    for b in range(B):
        w, Q = scipy.linalg.eigh(G_np[b], subset_by_index=[n - k, n - 1], driver="evr", check_finite=False)
        w_all[b], Q_all[b] = w[::-1], Q[:, ::-1]
    return torch.from_numpy(w_all), torch.from_numpy(Q_all)


def _canonical_signs(U: torch.Tensor, V: torch.Tensor) -> None:
    """Flip each pair (u_i, v_i) in place so that the largest-magnitude entry of v_i is positive (deterministic)."""
    pivot = V.abs().argmax(dim=1, keepdim=True)
    sign = torch.gather(V, 1, pivot).sign()
    sign[sign == 0] = 1
    U.mul_(sign)
    V.mul_(sign)
