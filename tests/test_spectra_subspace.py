"""The subspace-iteration top-K solver (core.linalg.subspace through core.linalg.spectra.top_k(solver="subspace")) against numpy's
float64 SVD: random, flat, clustered, repeated, rank-deficient and zero matrices, real block Jacobians of a tiny
model; its warm start, its dense-eigh fallback after the step cap, its CholeskyQR2, and the engine's coupling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from coupling_tui.core.engine import stream as engine
from coupling_tui.core.linalg import spectra
from coupling_tui.core.linalg.spectra import TopKStats, resolve_solver, top_k
from coupling_tui.core.linalg.subspace import block_size, orthonormalize
from tests.test_spectra import check_triplets, matrices, principal_sine
from coupling_tui.core.options.run_options import RunOptions

N = 128


def with_spectrum(sigma: np.ndarray, seed: int, n: int = N) -> np.ndarray:
    """n×n Q1 diag(sigma) Q2ᵀ with Haar-random orthogonal Q1, Q2."""
    rng = np.random.default_rng(seed)
    q1, _ = np.linalg.qr(rng.standard_normal((n, n)))
    q2, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return (q1 * sigma) @ q2.T


def jacobian_like_sigma(n: int = N) -> np.ndarray:
    """σ decaying like SmolLM2's block Jacobians (σ1/σ8/σ32/σ64 ≈ 4.5/1.9/1.25/1.0), then a slow tail."""
    i = np.arange(n)
    return np.interp(i, [0, 7, 31, 63, n - 1], [4.5, 1.9, 1.25, 1.0, 0.3])


def solve(J: np.ndarray, k: int, **kw):
    """top_k with the subspace solver and its stats."""
    stats = TopKStats()
    U, S, V = top_k(torch.from_numpy(J), k, solver="subspace", stats=stats, **kw)
    return U, S, V, stats


def residuals(J: np.ndarray, U, S, V) -> tuple[float, float]:
    """max_i ‖J v_i − σ_i u_i‖ / σ_1 and max_i ‖Jᵀ u_i − σ_i v_i‖ / σ_1 (float64), worst over the batch."""
    Jd = J.astype(np.float64)
    U, S, V = (x.double().numpy() for x in (U, S, V))
    s1 = np.linalg.svd(Jd, compute_uv=False)[:, :1]
    r1 = np.linalg.norm(Jd @ V - U * S[:, None, :], axis=1) / s1
    r2 = np.linalg.norm(Jd.transpose(0, 2, 1) @ U - V * S[:, None, :], axis=1) / s1
    return float(r1.max()), float(r2.max())


@pytest.mark.parametrize("kind", ["gaussian", "flat", "sink"])
@pytest.mark.parametrize("k", [1, 8, 32])
def test_float64_matches_numpy_svd(kind, k):
    J = matrices()[kind]
    U, S, V, stats = solve(J, k)
    # σ_32 / σ_65 = 1.016 in "flat" and "sink" (n = 96): ~700 steps to 1e-10, so the cap sends them to eigh
    expected_fallback = len(J) if kind != "gaussian" and k == 32 else 0
    assert stats.solver == "subspace" and stats.eigh_fallback == expected_fallback and (stats.steps > 0).all()
    assert U.dtype == S.dtype == V.dtype == torch.float64
    assert U.shape == (len(J), J.shape[1], k) and S.shape == (len(J), k) and V.shape == (len(J), J.shape[2], k)
    for b in range(len(J)):
        check_triplets(J[b], U[b], S[b], V[b], k, sigma_tol=1e-9, vec_tol=1e-9)
    assert max(residuals(J, U, S, V)) <= 1e-10


@pytest.mark.parametrize("kind", ["gaussian", "flat", "sink"])
@pytest.mark.parametrize("k", [1, 8, 32])
def test_float32_in_float32_out_within_the_stated_tolerance(kind, k):
    J = matrices()[kind].astype(np.float32)
    U, S, V, stats = solve(J, k)
    assert U.dtype == S.dtype == V.dtype == torch.float32 and stats.eigh_fallback == 0
    for b in range(len(J)):
        check_triplets(J[b], U[b], S[b], V[b], k, sigma_tol=1e-5, vec_tol=1e-4)
    r1, r2 = residuals(J, U, S, V)
    assert r1 <= 2e-6 and r2 <= 2 * spectra.DEFAULT_REL_TOL[torch.float32]   # stopping rule: ≤ 1e-5·σ_1 (+ rounding)


def test_flat_boundary_sigma_k_over_sigma_k1_0997():
    """σ_16/σ_17 = 0.997 exactly at the K boundary: σ, residuals and the K-subspace (to tol/gap) still match."""
    k = 16
    sigma = jacobian_like_sigma()
    sigma[k] = sigma[k - 1] * 0.997
    sigma[k + 1:] = np.minimum(sigma[k + 1:], sigma[k] * 0.99)
    J = np.stack([with_spectrum(sigma, s) for s in range(3)])
    U, S, V, stats = solve(J, k)
    assert stats.eigh_fallback == 0
    np.testing.assert_allclose(S.numpy(), np.tile(sigma[:k], (3, 1)), rtol=1e-10)
    assert max(residuals(J, U, S, V)) <= 1e-10
    gap = (sigma[k - 1] - sigma[k]) / sigma[0]
    for b in range(3):
        _, _, vh = np.linalg.svd(J[b])
        assert principal_sine(V[b].numpy(), vh[:k].T) <= 1e-8 / gap


def test_repeated_singular_values_give_the_same_projectors():
    """σ_3 = σ_4 = σ_5 and σ_9 = … = σ_12 inside the top 12: vectors are not unique there, projectors are."""
    sigma = jacobian_like_sigma()
    sigma[3:6] = sigma[3]
    sigma[9:12] = sigma[9]
    J = with_spectrum(sigma, 5)[None]
    U, S, V, _ = solve(J, 12)
    u_ref, _, vh_ref = np.linalg.svd(J[0])
    V0, U0 = V[0].numpy(), U[0].numpy()
    for cluster in (slice(3, 6), slice(9, 12), slice(0, 12)):
        Pv, Pu = V0[:, cluster] @ V0[:, cluster].T, U0[:, cluster] @ U0[:, cluster].T
        np.testing.assert_allclose(Pv, vh_ref[cluster].T @ vh_ref[cluster], atol=1e-9)
        np.testing.assert_allclose(Pu, u_ref[:, cluster] @ u_ref[:, cluster].T, atol=1e-9)
    np.testing.assert_allclose(S[0].numpy(), sigma[:12], rtol=1e-11)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rank_deficient_zero_and_tiny_matrices(dtype):
    """Rank 3 with K = 8, the zero matrix and a 1e-30-scaled one: finite, orthonormal, σ right (SVD fallback)."""
    rng = np.random.default_rng(1)
    rank3 = rng.standard_normal((N, 3)) @ rng.standard_normal((3, N))
    J = np.stack([rank3, np.zeros((N, N)), 1e-30 * rng.standard_normal((N, N))]).astype(dtype)
    U, S, V, stats = solve(J, 8)
    assert all(torch.isfinite(x).all() for x in (U, S, V))
    assert stats.svd_fallback >= 2                                   # rank 3 and zero: σ_8 = 0
    s_ref = np.linalg.svd(J.astype(np.float64), compute_uv=False)[:, :8]
    for b in range(3):
        np.testing.assert_allclose(S[b].double().numpy(), s_ref[b], rtol=1e-5, atol=1e-5 * s_ref[b, 0])
        np.testing.assert_allclose((V[b].mT @ V[b]).double().numpy(), np.eye(8), atol=1e-5)
        np.testing.assert_allclose((U[b].mT @ U[b]).double().numpy(), np.eye(8), atol=1e-5)
    assert float(S[1].abs().max()) == 0.0


def test_real_block_jacobians_of_a_tiny_model(tiny_dir):
    """Every block Jacobian of a tiny Llama (d = 32, K = 8 so the block is 16 < d) against numpy's SVD."""
    from coupling_tui.core.engine.jacobians.layers import LayerJacobians
    from coupling_tui.core.load.models import ModelRequest, load
    from coupling_tui.core.engine.trace import trace

    loaded = load(ModelRequest(model=str(tiny_dir)))
    ids = torch.tensor([loaded.tokenizer("Hello world, hello tokens!")["input_ids"]])
    jac = LayerJacobians(loaded, ids, trace(loaded.model, loaded.adapter, ids).block_inputs, "auto")
    J = torch.cat([jac.layer(layer, range(ids.shape[1])) for layer in range(loaded.info["n_layers"])])
    assert J.dtype == torch.float32 and block_size(8, J.shape[-1]) < J.shape[-1]
    U, S, V, stats = solve(J.numpy(), 8)
    assert stats.eigh_fallback == 0
    Jd = J.double().numpy()
    s_ref = np.linalg.svd(Jd, compute_uv=False)[:, :8]
    np.testing.assert_allclose(S.double().numpy(), s_ref, rtol=1e-5, atol=1e-6 * s_ref.max())
    r1, r2 = residuals(J.numpy(), U, S, V)
    assert r1 <= 2e-6 and r2 <= 2e-5
    U2, S2, V2 = top_k(J, 8, solver="scipy")
    np.testing.assert_array_equal(V.gather(1, V.abs().argmax(1, keepdim=True)) > 0, True)     # canonical signs
    aligned = (U * U2).sum(1).abs().numpy()
    assert np.median(aligned) > 0.999                          # mostly the same vectors as the dense solver


def test_warm_start_from_a_nearby_matrix_takes_fewer_steps():
    sigma = jacobian_like_sigma()
    J = np.stack([with_spectrum(sigma, s) for s in range(3)])
    _, _, V, cold = solve(J, 16)
    nearby = J + 1e-9 * np.random.default_rng(2).standard_normal(J.shape)
    Uw, Sw, Vw, warm = solve(nearby, 16, start=V)
    _, _, _, cold2 = solve(nearby, 16)
    assert warm.steps.max() < cold2.steps.min() / 2 and cold.steps.min() > 10
    assert max(residuals(nearby, Uw, Sw, Vw)) <= 1e-10
    with pytest.raises(ValueError):
        solve(J, 16, start=V[:2])


def test_unconverged_matrices_alone_fall_back_to_the_dense_eigensolver(monkeypatch):
    """With a 7-step cap, a fast-decaying matrix converges, the flat ones do not and are solved by eigh."""
    monkeypatch.setattr(spectra, "SUBSPACE_MAX_ITER", 7)
    fast = with_spectrum(2.0 ** (-np.arange(N) / 4), 0)
    flat = [with_spectrum(1.0 + 3.5 * np.exp(-np.arange(N) / 6.0), s) for s in (1, 2)]
    J = np.stack([fast, *flat]).astype(np.float32)
    U, S, V, stats = solve(J, 8)
    assert stats.eigh_fallback == 2 and stats.steps[0] < 7 and (stats.steps[1:] == 7).all()
    for b in range(3):
        check_triplets(J[b], U[b], S[b], V[b], 8, sigma_tol=1e-5, vec_tol=1e-4)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cholesky_qr2_orthonormalises_ill_conditioned_and_rank_deficient_blocks(dtype):
    rng = np.random.default_rng(3)
    a, _ = np.linalg.qr(rng.standard_normal((N, 24)))
    b, _ = np.linalg.qr(rng.standard_normal((24, 24)))
    steep = (a * np.geomspace(1, 1e-9, 24)) @ b.T                       # cond 1e9: beyond CholeskyQR2
    mild = (a * np.geomspace(1, 1e-2, 24)) @ b.T
    deficient = rng.standard_normal((N, 5)) @ rng.standard_normal((5, 24))
    X = torch.tensor(np.stack([mild, steep, deficient, np.zeros((N, 24))]), dtype=dtype)
    Q = orthonormalize(X)
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    for q in Q:
        np.testing.assert_allclose((q.mT @ q).double().numpy(), np.eye(24), atol=tol)
    span_err = (X[0] - Q[0] @ (Q[0].mT @ X[0])).norm() / X[0].norm()
    assert span_err <= tol


def test_auto_picks_subspace_on_cuda_and_scipy_on_the_cpu():
    assert resolve_solver("auto", "cpu") == "scipy" and resolve_solver("auto", "cuda") == "subspace"
    assert resolve_solver("subspace", "cpu") == "subspace" and resolve_solver("auto", "mps") == "torch"
    with pytest.raises(ValueError):
        resolve_solver("scipy", "cuda")
    with pytest.raises(ValueError):
        resolve_solver("lobpcg", "cpu")


def test_unbatched_input_and_warm_start():
    J = torch.from_numpy(with_spectrum(jacobian_like_sigma(), 4))
    U, S, V = top_k(J, 4, solver="subspace")
    assert U.shape == (N, 4) and S.shape == (4,) and V.shape == (N, 4)
    U2, S2, V2 = top_k(J, 4, solver="subspace", start=V)
    np.testing.assert_allclose(S2.numpy(), S.numpy(), rtol=1e-12)
    np.testing.assert_allclose(V2.numpy(), V.numpy(), atol=1e-9)


def test_engine_coupling_is_the_same_with_the_subspace_solver(tiny_dir):
    from coupling_tui.core.load.models import ModelRequest, load
    from coupling_tui.core.results.run import Run

    loaded = load(ModelRequest(model=str(tiny_dir)))
    runs = {}
    for solver in ("auto", "subspace"):
        run = Run()
        for event in engine.stream(loaded, "Hello world, hello tokens!",
                                   RunOptions(top_k=8, topk_solver=solver, context_layers="0,2")):
            run.apply(event)
        runs[solver] = run
    a, b = runs["auto"], runs["subspace"]
    assert a.header["jacobian"]["topk_solver"] == "scipy" and b.header["jacobian"]["topk_solver"] == "subspace"
    for name in ("jacobian.singular_values", "coupling.depth_k", "coupling.depth_trace_k", "coupling.token_k",
                 "context.out_k", "context.in_k", "context.out_singular_values"):
        x, y = a.arrays[name], b.arrays[name]
        assert np.isfinite(x).any() and np.array_equal(np.isnan(x), np.isnan(y)), name
        np.testing.assert_allclose(y, x, atol=2e-5, rtol=1e-4, equal_nan=True, err_msg=name)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_gpu_subspace_matches_numpy_and_auto_uses_it():
    J = matrices()["flat"]
    stats = TopKStats()
    U, S, V = top_k(torch.from_numpy(J).cuda(), 8, stats=stats)
    assert stats.solver == "subspace" and U.device.type == "cuda"
    for b in range(len(J)):
        check_triplets(J[b], U[b].cpu(), S[b].cpu(), V[b].cpu(), 8, sigma_tol=1e-9, vec_tol=1e-9)
    J32 = torch.from_numpy(J.astype(np.float32)).cuda()
    U, S, V = top_k(J32, 32, solver="subspace")
    for b in range(len(J)):
        check_triplets(J[b].astype(np.float32), U[b].cpu(), S[b].cpu(), V[b].cpu(), 32, sigma_tol=1e-5,
                       vec_tol=1e-4)
