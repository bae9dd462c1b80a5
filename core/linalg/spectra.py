"""Exact top-K singular triplets of batches of dense Jacobians, from a dense symmetric eigensolver on JᵀJ.

Block Jacobians have flat spectra (small relative gaps), so randomized or matrix-free solvers give inaccurate top-K
vectors; a subset eigensolver (LAPACK ``?syevr`` through SciPy on the CPU, batched ``torch.linalg.eigh`` elsewhere) is
exact and 2-3x cheaper than a full SVD. Forming JᵀJ squares the condition number: the computed σ_i carries a relative
error of about eps·(σ_1/σ_i)²/4, so a matrix whose σ_K is too small next to σ_1 for the requested accuracy (including
rank-deficient and zero matrices) falls back to a full SVD of that matrix alone.

On CUDA devices the default is block subspace iteration on JᵀJ (``core.linalg.subspace``: batched GEMMs and CholeskyQR2,
Rayleigh–Ritz checks, stopping when every top-k residual ‖Jᵀu_i − σ_i v_i‖ is within ``rel_tol``·σ_1), because the
batched dense eigensolver there solves one matrix at a time; matrices it does not converge within its step cap are
solved by the dense eigensolver, so the result is the same exact triplets either way.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.linalg
import torch

from coupling_tui.core.linalg.subspace import subspace_eigenpairs
from coupling_tui.core.options.run_options import SOLVERS

DEFAULT_REL_TOL = {torch.float32: 1e-5, torch.float64: 1e-10}
"""Target relative accuracy of σ_K per compute dtype; decides when a matrix falls back to a full SVD, and is the
subspace solver's residual tolerance (relative to σ_1)."""
SUBSPACE_MAX_ITER = 300
"""Subspace steps after which the matrices still unconverged are solved by the dense eigensolver instead."""


@dataclass
class TopKStats:
    """What one ``top_k`` call did (filled in when passed as ``stats``): the solver it resolved to, subspace steps
    per matrix (empty for the dense solvers), Rayleigh–Ritz checks, and how many matrices went to the dense
    eigensolver after the step cap (``eigh_fallback``) or to a full SVD (``svd_fallback``)."""

    solver: str = ""
    steps: torch.Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.int64))
    checks: int = 0
    eigh_fallback: int = 0
    svd_fallback: int = 0


def resolve_solver(solver: str, device: torch.device | str) -> str:
    """The solver ``top_k`` runs for ``solver`` on ``device``: "auto" is scipy on the CPU, subspace on CUDA and
    batched torch eigh elsewhere."""
    kind = torch.device(device).type
    if solver not in SOLVERS or (solver == "scipy" and kind != "cpu"):
        raise ValueError(f"solver must be auto, torch, subspace or (for CPU tensors) scipy, got {solver!r}")
    if solver != "auto":
        return solver
    return {"cpu": "scipy", "cuda": "subspace"}.get(kind, "torch")


def top_k(J: torch.Tensor, k: int, *, rel_tol: float | None = None, solver: str = "auto",
          start: torch.Tensor | None = None,
          stats: TopKStats | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Top-k singular triplets (U [B,m,k], S [B,k], V [B,n,k]) of J [B,m,n] (or [m,n]), σ sorted descending, so that
    J V = U diag(S); computed in float64 for float64 J and in float32 otherwise.

    ``solver``: "scipy" (LAPACK syevr subset, per matrix, CPU tensors only), "torch" (batched torch.linalg.eigh),
    "subspace" (block subspace iteration, ``core.linalg.subspace``) or "auto" (``resolve_solver``: scipy on the CPU,
    subspace on CUDA). ``start`` [B,n,c] (or [n,c]): a warm start for the subspace solver, e.g. the V of the same
    tokens at the previous layer; the dense solvers ignore it. ``stats``: a TopKStats to fill in."""
    batched = J.dim() == 3
    if J.dim() not in (2, 3):
        raise ValueError(f"J must be [B, m, n] or [m, n], got shape {tuple(J.shape)}")
    J3 = J if batched else J[None]
    dtype = torch.float64 if J.dtype == torch.float64 else torch.float32
    B, m, n = J3.shape
    if not 1 <= k <= min(m, n):
        raise ValueError(f"k must be between 1 and {min(m, n)}, got {k}")
    Jc = J3.detach().to(dtype)
    name = resolve_solver(solver, Jc.device)
    if not torch.isfinite(Jc).all():
        raise ValueError("J contains NaN or infinite entries")
    # Scale every matrix to max |entry| 1 so that JᵀJ neither underflows (tiny attention-sink Jacobians) nor overflows.
    scale = Jc.abs().amax(dim=(1, 2))
    Js = Jc / torch.where(scale > 0, scale, torch.ones_like(scale))[:, None, None]
    tol = rel_tol if rel_tol is not None else DEFAULT_REL_TOL[dtype]
    stats = stats if stats is not None else TopKStats()
    stats.solver = name
    if name == "subspace":
        if start is not None and not batched:
            start = start[None]
        U, S, V = _top_k_subspace(Js, k, tol, start, stats)
    else:
        U, S, V = _top_k_scaled(Js, k, tol, name == "scipy", stats)
    _canonical_signs(U, V)
    S = S * scale[:, None]
    return (U, S, V) if batched else (U[0], S[0], V[0])


def _top_k_scaled(Js: torch.Tensor, k: int, rel_tol: float, use_scipy: bool,
                  stats: TopKStats) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Triplets of matrices scaled to max |entry| 1: eigh on JᵀJ, U = J V / S, a full SVD where that is inaccurate."""
    G = Js.mT @ Js
    lam, V = _top_eigenpairs_scipy(G, k) if use_scipy else _top_eigenpairs_torch(G, k)
    S = lam.clamp_min(0).sqrt()
    U = Js @ V
    return _svd_where_unresolved(Js, U, S, V, rel_tol, stats)


def _sigma_floor(dtype: torch.dtype, rel_tol: float) -> float:
    """σ_K / σ_1 below which JᵀJ cannot give σ_K to ``rel_tol`` (its error is about eps·(σ_1/σ_K)²/4)."""
    return (0.25 * torch.finfo(dtype).eps / rel_tol) ** 0.5


def _svd_where_unresolved(Js: torch.Tensor, JV: torch.Tensor, S: torch.Tensor, V: torch.Tensor, rel_tol: float,
                          stats: TopKStats) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """U = J V / S, except that matrices whose σ_K is too close to 0 next to σ_1 (or σ_1 = 0) get a full SVD."""
    k = S.shape[1]
    floor = _sigma_floor(Js.dtype, rel_tol)
    bad = (S[:, -1] <= floor * S[:, 0]) | (S[:, 0] <= 0)
    U = JV / torch.where(bad[:, None], torch.ones_like(S), S)[:, None, :]
    stats.svd_fallback += int(bad.sum())
    if bad.any():
        Ub, Sb, Vhb = torch.linalg.svd(Js[bad], full_matrices=False)
        U[bad], S[bad], V[bad] = Ub[..., :k], Sb[:, :k], Vhb[:, :k].mT
    return U, S, V


def _top_k_subspace(Js: torch.Tensor, k: int, rel_tol: float, start: torch.Tensor | None,
                    stats: TopKStats) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Triplets of scaled matrices by subspace iteration on JᵀJ: σ_i = ‖J v_i‖ (sorted descending), U = J V / σ;
    the dense eigensolver for matrices unconverged after SUBSPACE_MAX_ITER steps, the SVD where σ_K is unresolved."""
    G = Js.mT @ Js
    res = subspace_eigenpairs(G, k, tol=rel_tol, floor=_sigma_floor(Js.dtype, rel_tol), start=start,
                              max_iter=SUBSPACE_MAX_ITER)
    stats.steps, stats.checks = res.steps, res.checks
    V = res.V
    JV = Js @ V
    S = JV.norm(dim=1)
    S, order = S.sort(dim=1, descending=True)
    V = V.gather(2, order[:, None, :].expand_as(V))
    JV = JV.gather(2, order[:, None, :].expand_as(JV))
    late = ~res.converged.to(Js.device)
    stats.eigh_fallback = int(late.sum())
    if late.any():
        lam, V[late] = _top_eigenpairs_torch(G[late], k) if Js.device.type != "cpu" else _top_eigenpairs_scipy(
            G[late], k)
        S[late] = lam.clamp_min(0).sqrt().to(S.dtype)
        JV[late] = Js[late] @ V[late]
    return _svd_where_unresolved(Js, JV, S, V, rel_tol, stats)


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
