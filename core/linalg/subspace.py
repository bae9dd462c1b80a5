"""Top-k eigenpairs of batches of symmetric positive semi-definite G = JᵀJ by block subspace iteration, for GPUs.

A dense eigensolver on every d×d matrix is the bottleneck on a GPU (torch's batched CUDA eigh solves one matrix at a
time above n = 32). Subspace iteration needs only batched GEMMs and tiny factorisations:

- a block of b = k + p columns (oversampling p, default k, at most n): the top-k vectors converge at the rate
  λ_{b+1}/λ_i per step instead of λ_{k+1}/λ_k, which is what makes flat spectra (σ_k/σ_{k+1} ≈ 0.997) tractable;
- each step V ← orth(G V), orth = CholeskyQR2 (a Cholesky QR with a tiny diagonal shift, then a second pass that
  re-orthogonalises); matrices whose Cholesky fails or whose result is not orthonormal are redone by Householder QR;
- Rayleigh–Ritz at scheduled steps: the eigenpairs of VᵀGV (b×b, in float64 on the CPU) rotate the block, the top-k
  Ritz pairs' residuals decide which matrices have converged (they leave the batch) and, from the Ritz-value ratios,
  when to look again;
- a warm start (the previous layer's or a neighbouring token's V) fills the first columns of the starting block,
  seeded Gaussian columns the rest.

Stopping rule (u_i = J v_i / σ_i, so J v_i = σ_i u_i exactly and ‖Jᵀu_i − σ_i v_i‖ = ‖G v_i − σ_i² v_i‖ / σ_i):
‖G v_i − θ_i v_i‖ ≤ tol · σ_1 · max(σ_i, floor · σ_1) for i ≤ k, i.e. ‖Jᵀu_i − σ_i v_i‖ ≤ tol · σ_1 wherever σ_i is
above ``floor`` · σ_1 (below it the caller falls back to a full SVD anyway). Matrices still unconverged after
``max_iter`` steps are reported so that the caller can solve them exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

FIRST_CHECK = 6
"""Steps before the first Rayleigh–Ritz check of a cold start (a warm start is checked after half as many)."""
MAX_GAP = 64
"""Most steps between two checks."""
ORTHO_TOL = 1e-2
"""Largest |QᵀQ − I| entry after the first Cholesky pass for which the second pass is trusted to reach orthonormality."""


@dataclass
class SubspaceResult:
    """Top-k Ritz pairs of each matrix: lam [B,k] descending, V [B,n,k]; steps [B] = G·V products each matrix
    took; converged [B] = whether it met the residual tolerance within ``max_iter`` steps; checks = Rayleigh–Ritz
    checks run on the batch."""

    lam: torch.Tensor
    V: torch.Tensor
    steps: torch.Tensor
    converged: torch.Tensor
    checks: int


def block_size(k: int, n: int, oversample: int | None = None) -> int:
    """Columns of the iterated block: k + p (p = k unless given), at most n."""
    return min(n, k + (k if oversample is None else max(0, oversample)))


def subspace_eigenpairs(G: torch.Tensor, k: int, *, tol: float, floor: float, start: torch.Tensor | None = None,
                        oversample: int | None = None, max_iter: int = 300, seed: int = 0) -> SubspaceResult:
    """The k largest eigenpairs of each symmetric PSD G [B,n,n] by block subspace iteration (see the module doc)."""
    B, n, _ = G.shape
    b = block_size(k, n, oversample)
    V = orthonormalize(starting_block(G, b, start, seed))
    lam_out = torch.zeros(B, k, dtype=G.dtype, device=G.device)
    V_out = torch.zeros(B, n, k, dtype=G.dtype, device=G.device)
    steps = torch.full((B,), max_iter, dtype=torch.int64)
    converged = torch.zeros(B, dtype=torch.bool)
    active = torch.arange(B)
    Ga, step, checks = G, 0, 0
    next_check = min(max_iter, FIRST_CHECK // 2 if start is not None else FIRST_CHECK)
    while active.numel():
        W = Ga @ V
        step += 1
        if step < next_check:
            V = orthonormalize(W)
            continue
        checks += 1
        theta, V, W = rayleigh_ritz(V, W)
        ratio = residual_ratio(V[..., :k], W[..., :k], theta, tol, floor)   # ≤ 1 where converged
        met = (ratio <= 1).all(dim=1)
        done = torch.ones_like(met) if step >= max_iter else met
        idx = active[done.cpu()]
        lam_out[idx.to(G.device)], V_out[idx.to(G.device)] = theta[done, :k], V[done, :, :k]
        steps[idx] = step
        converged[idx] = met[done].cpu()
        if done.all():
            break
        if done.any():
            keep = ~done
            active, Ga, V, W, theta, ratio = active[keep.cpu()], Ga[keep], V[keep], W[keep], theta[keep], ratio[keep]
        next_check = min(max_iter, step + steps_to_converge(ratio, theta, k))
        V = orthonormalize(W)
    return SubspaceResult(lam_out, V_out, steps, converged, checks)


def starting_block(G: torch.Tensor, b: int, start: torch.Tensor | None, seed: int) -> torch.Tensor:
    """[B,n,b]: the warm-start columns first (at most b of them), seeded Gaussian columns after."""
    B, n, _ = G.shape
    gen = torch.Generator(device=G.device).manual_seed(seed)
    block = torch.randn(B, n, b, generator=gen, device=G.device, dtype=G.dtype)
    if start is not None:
        if start.dim() == 2:
            start = start[None]
        if start.shape[:2] != (B, n):
            raise ValueError(f"start must be [B, n, c] = [{B}, {n}, c], got {tuple(start.shape)}")
        c = min(b, start.shape[2])
        block[..., :c] = start[..., :c].to(device=G.device, dtype=G.dtype)
    return block


def orthonormalize(X: torch.Tensor) -> torch.Tensor:
    """Orthonormal Q [B,n,b] spanning each X's columns: CholeskyQR2 (shifted first pass), Householder QR for the
    matrices where it fails (a Cholesky breakdown, or a first pass too far from orthonormal for the second)."""
    Q1, ok1, _ = cholesky_qr(X, shift=True)
    Q, ok2, off = cholesky_qr(Q1, shift=False)
    redo = ~(ok1 & ok2 & (off <= ORTHO_TOL))
    if redo.any():
        Q[redo] = torch.linalg.qr(X[redo]).Q
    return Q


def cholesky_qr(X: torch.Tensor, shift: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One Cholesky QR pass: (Q = X R⁻¹ with RᵀR = XᵀX (+ s·I), whether the factorisation succeeded per matrix, the
    largest |XᵀX − I| entry per matrix)."""
    gram = X.mT @ X
    off = (gram - torch.eye(gram.shape[-1], dtype=X.dtype, device=X.device)).abs().amax(dim=(1, 2))
    if shift:
        eps = torch.finfo(X.dtype).eps
        s = 10 * eps * gram.diagonal(dim1=1, dim2=2).sum(-1)              # 10·eps·‖X‖_F²
        gram = gram + s[:, None, None] * torch.eye(gram.shape[-1], dtype=X.dtype, device=X.device)
    L, info = torch.linalg.cholesky_ex(gram)
    ok = (info == 0) & torch.isfinite(L).all(dim=(1, 2))
    L = torch.where(ok[:, None, None], L, torch.eye(L.shape[-1], dtype=X.dtype, device=X.device))
    Q = torch.linalg.solve_triangular(L.mT, X, upper=True, left=False)
    return Q, ok & torch.isfinite(Q).all(dim=(1, 2)), off


def rayleigh_ritz(V: torch.Tensor, W: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Ritz values θ [B,b] (descending) of G on span(V), with V and W = G V rotated to the Ritz vectors."""
    H = V.mT @ W
    theta, Z = small_eigh((H + H.mT) / 2)
    theta, Z = theta.flip(-1), Z.flip(-1)
    return theta, V @ Z, W @ Z


def small_eigh(H: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Ascending eigenpairs of small symmetric H [B,b,b], computed in float64 on the CPU (torch's CUDA eigh runs one
    matrix at a time for 32 < b ≤ 512, far slower than this round trip) and returned in H's dtype and device."""
    w, Z = torch.linalg.eigh(H.detach().to("cpu", torch.float64))
    return w.to(H.device, H.dtype), Z.to(H.device, H.dtype)


def residual_ratio(V: torch.Tensor, W: torch.Tensor, theta: torch.Tensor, tol: float, floor: float) -> torch.Tensor:
    """[B,k] ‖G v_i − θ_i v_i‖ / (tol · σ_1 · max(σ_i, floor·σ_1)); a matrix has converged where all are ≤ 1."""
    k = V.shape[-1]
    sigma = theta.clamp_min(0).sqrt()
    s1 = sigma[:, :1]
    res = (W - V * theta[:, None, :k]).norm(dim=1)
    bound = tol * s1 * torch.maximum(sigma[:, :k], floor * s1)
    zero = s1 <= 0                                                          # G = 0: nothing to converge
    return torch.where(zero, torch.zeros_like(res), res / torch.where(zero, torch.ones_like(bound), bound))


def steps_to_converge(ratio: torch.Tensor, theta: torch.Tensor, k: int) -> int:
    """Steps until most of the remaining matrices should pass, from residual ratio r_i shrinking like (θ_b/θ_i) per
    step: max_i log(r_i)/log(θ_i/θ_b), the 90th percentile over matrices, between 2 and MAX_GAP."""
    rate = (theta[:, -1:].clamp_min(0) / theta[:, :k].clamp_min(torch.finfo(theta.dtype).tiny)).clamp(1e-30, 0.999)
    need = (ratio.clamp_min(1).log() / -rate.log()).amax(dim=1)
    q = float(torch.quantile(need.double().cpu(), 0.9)) if need.numel() > 1 else float(need.max())
    return int(min(MAX_GAP, max(2, math.ceil(1.1 * q))))
