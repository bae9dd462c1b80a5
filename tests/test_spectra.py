"""Exact top-K singular triplets (eigh on JᵀJ) against numpy's float64 SVD on random and flat-spectrum matrices."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from coupling_tui.core.linalg.spectra import top_k

D = 96


def with_spectrum(sigma: np.ndarray, seed: int) -> np.ndarray:
    """A D×D matrix Q1 diag(sigma) Q2ᵀ with Haar-random orthogonal Q1, Q2."""
    rng = np.random.default_rng(seed)
    q1, _ = np.linalg.qr(rng.standard_normal((D, D)))
    q2, _ = np.linalg.qr(rng.standard_normal((D, D)))
    return (q1 * sigma) @ q2.T


def flat_spectrum(seed: int) -> np.ndarray:
    """Like a trained block Jacobian: σ1 ≈ 4.5 decaying to ≈ 1, with near-degenerate clusters (gaps ~1e-3)."""
    i = np.arange(D)
    sigma = 1.0 + 3.5 * np.exp(-i / 6.0)
    sigma[20:24] = sigma[20] * (1 - 1e-3 * np.arange(4))  # a tight cluster inside the top 32
    return with_spectrum(np.sort(sigma)[::-1], seed)


def matrices() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"gaussian": np.stack([rng.standard_normal((D, D)) for _ in range(3)]),
            "flat": np.stack([flat_spectrum(s) for s in range(3)]),
            "sink": np.stack([0.03 / 4.5 * flat_spectrum(7)])}


def principal_sine(A: np.ndarray, B: np.ndarray) -> float:
    """Sine of the largest principal angle between the column spans of orthonormal A and B."""
    return float(np.linalg.norm(A - B @ (B.T @ A), 2))


def check_triplets(J: np.ndarray, U, S, V, k: int, sigma_tol: float, vec_tol: float) -> None:
    """Compare one matrix's triplets with numpy's float64 SVD: σ, vectors where the gap allows, subspaces, residuals."""
    U, S, V = (x.double().numpy() for x in (U, S, V))
    u_ref, s_ref, vh_ref = np.linalg.svd(J.astype(np.float64))
    assert np.all(np.diff(S) <= 0)
    np.testing.assert_allclose(S, s_ref[:k], rtol=sigma_tol, atol=sigma_tol * s_ref[0])
    np.testing.assert_allclose(U.T @ U, np.eye(k), atol=vec_tol)
    np.testing.assert_allclose(V.T @ V, np.eye(k), atol=vec_tol)
    scale = s_ref[0]
    assert np.abs(J @ V - U * S).max() <= vec_tol * scale      # J v_i = σ_i u_i
    assert np.abs(J.T @ U - V * S).max() <= vec_tol * scale    # Jᵀ u_i = σ_i v_i
    gaps = -np.diff(s_ref) / scale                              # gaps[i] = (σ_i - σ_{i+1}) / σ_1
    for i in range(k):
        gap = min(gaps[i], gaps[i - 1] if i else np.inf)
        if gap > 1e-2:
            assert abs(U[:, i] @ u_ref[:, i]) > 1 - vec_tol / gap and abs(V[:, i] @ vh_ref[i]) > 1 - vec_tol / gap
    if k < D and gaps[k - 1] > 1e-3:
        assert principal_sine(V, vh_ref[:k].T) <= vec_tol / gaps[k - 1]
        assert principal_sine(U, u_ref[:, :k]) <= vec_tol / gaps[k - 1]


@pytest.mark.parametrize("solver", ["scipy", "torch"])
@pytest.mark.parametrize("kind", ["gaussian", "flat", "sink"])
@pytest.mark.parametrize("k", [1, 8, 64])
def test_float64_matches_numpy_svd(kind, k, solver):
    J = matrices()[kind]
    U, S, V = top_k(torch.from_numpy(J), k, solver=solver)
    assert U.dtype == S.dtype == V.dtype == torch.float64
    assert U.shape == (len(J), D, k) and S.shape == (len(J), k) and V.shape == (len(J), D, k)
    for b in range(len(J)):
        check_triplets(J[b], U[b], S[b], V[b], k, sigma_tol=1e-11, vec_tol=1e-9)


@pytest.mark.parametrize("solver", ["scipy", "torch"])
@pytest.mark.parametrize("kind", ["gaussian", "flat", "sink"])
@pytest.mark.parametrize("k", [1, 8, 64])
def test_float32_in_float32_out(kind, k, solver):
    J = matrices()[kind].astype(np.float32)
    U, S, V = top_k(torch.from_numpy(J), k, solver=solver)
    assert U.dtype == S.dtype == V.dtype == torch.float32
    for b in range(len(J)):
        check_triplets(J[b], U[b], S[b], V[b], k, sigma_tol=1e-5, vec_tol=1e-4)


def test_tiny_and_rank_deficient_matrices_fall_back_to_the_svd():
    """A tiny-scaled matrix (σ² underflows float32), a rank-3 matrix with K = 8, and the zero matrix."""
    rng = np.random.default_rng(1)
    tiny = 1e-30 * rng.standard_normal((D, D))
    rank3 = rng.standard_normal((D, 3)) @ rng.standard_normal((3, D))
    for dtype in (np.float32, np.float64):
        J = np.stack([tiny, rank3, np.zeros((D, D))]).astype(dtype)
        U, S, V = top_k(torch.from_numpy(J), 8, solver="torch" if dtype == np.float32 else "scipy")
        assert all(torch.isfinite(x).all() for x in (U, S, V))
        s_ref = np.linalg.svd(J.astype(np.float64), compute_uv=False)[:, :8]
        for b in range(3):
            np.testing.assert_allclose(S[b].double().numpy(), s_ref[b], rtol=1e-5, atol=1e-5 * s_ref[b, 0])
            np.testing.assert_allclose((U[b].T @ U[b]).double().numpy(), np.eye(8), atol=1e-5)
            np.testing.assert_allclose((V[b].T @ V[b]).double().numpy(), np.eye(8), atol=1e-5)
            resid = (torch.from_numpy(J[b]) @ V[b] - U[b] * S[b]).abs().max()
            assert resid <= 1e-5 * max(s_ref[b, 0], 1e-300)
        assert float(S[2].abs().max()) == 0.0


def test_steep_spectrum_stays_accurate_in_float32():
    """σ_K / σ_1 = 1e-3 is beyond what JᵀJ resolves in float32; the fallback keeps σ_K to ~1e-5."""
    J = with_spectrum(np.geomspace(1.0, 1e-3, D), 3).astype(np.float32)
    U, S, V = top_k(torch.from_numpy(J), 64)
    s_ref = np.linalg.svd(J.astype(np.float64), compute_uv=False)[:64]
    np.testing.assert_allclose(S.double().numpy(), s_ref, rtol=1e-5)


def test_unbatched_other_dtypes_and_signs():
    J = torch.from_numpy(matrices()["gaussian"][0])
    U, S, V = top_k(J.to(torch.bfloat16), 4)
    assert U.shape == (D, 4) and S.shape == (4,) and S.dtype == torch.float32
    U, S, V = top_k(J, 4)
    assert (V.gather(0, V.abs().argmax(0, keepdim=True)) > 0).all()  # deterministic signs
    with pytest.raises(ValueError):
        top_k(J, 0)
    with pytest.raises(ValueError):
        top_k(J, D + 1)
    with pytest.raises(ValueError):
        top_k(J * float("nan"), 2)
    with pytest.raises(ValueError):
        top_k(J, 2, solver="arpack")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_gpu_tensors_use_batched_torch_eigh():
    J = torch.from_numpy(matrices()["flat"]).cuda()
    U, S, V = top_k(J, 8)
    assert U.device.type == "cuda"
    for b in range(len(J)):
        check_triplets(J[b].cpu().numpy(), U[b].cpu(), S[b].cpu(), V[b].cpu(), 8, sigma_tol=1e-11, vec_tol=1e-9)
