"""The coupling metric m_K and its aggregations against an explicit-loop float64 reference (numpy.linalg.svd), plus
hand-built cases with known answers (identical, sign-flipped, Haar-random and transposed Jacobians)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from coupling_tui.core.linalg.coupling import (context_coupling, coupling_columns, coupling_m, coupling_rows, depth_coupling, haar_null, haar_null_expected, one_minus_m_squared, residual_branch, run_scalar, token_coupling)
from coupling_tui.core.linalg.spectra import top_k


def m_ref(J1, J2, k, norm="norm", variant="ujv", use_abs=True) -> float:
    """m_K(J1, J2) entry by entry, from numpy's full SVDs of both matrices."""
    _, s1, _ = np.linalg.svd(J1)
    u2, _, vh2 = np.linalg.svd(J2)
    left, right = (u2[:, :k], vh2[:k].T) if variant == "ujv" else (vh2[:k].T, u2[:, :k])
    total = 0.0
    for a in range(k):
        for b in range(k):
            entry = float(left[:, a] @ J1 @ right[:, b])
            total += ((abs(entry) if use_abs else entry) - (s1[a] if a == b else 0.0)) ** 2
    den = np.sqrt(np.sum(s1[:k] ** 2)) if norm == "norm" else np.sum(s1[:k])
    return np.sqrt(total) / den


def toy_stream(L=8, T=5, d=16, seed=0):
    """A model-like residual stream x^{l+1} = x^l + W2 tanh(W1 x^l + b) (tokens independent) with its exact
    residual-branch Jacobians J^l_t = W2 diag(1 − tanh²) W1: (hidden [L+1, T, d], J [L, T, d, d])."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((T, d))
    hidden, jac = [x], []
    shared = rng.standard_normal((d, d)) / np.sqrt(d)   # a common component, so that layers couple
    for l in range(L):
        W1 = 0.6 * shared + rng.standard_normal((d, d)) / np.sqrt(d)
        W2 = 0.6 * shared.T + rng.standard_normal((d, d)) / np.sqrt(d)
        b = 0.1 * rng.standard_normal(d)
        pre = x @ W1.T + b
        jac.append(np.einsum("ij,tj,jk->tik", W2, 1 - np.tanh(pre) ** 2, W1))
        x = x + np.tanh(pre) @ W2.T
        hidden.append(x)
    return np.stack(hidden), np.stack(jac)


def random_pair(d=40, seed=1):
    """Two Gaussian matrices that share part of their structure (m well inside (0, 1))."""
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((d, d))
    return A + 0.5 * rng.standard_normal((d, d)), A + 0.5 * rng.standard_normal((d, d))


@pytest.mark.parametrize("norm,variant,use_abs", list(itertools.product(["norm", "trace"], ["ujv", "vju"],
                                                                        [True, False])))
def test_coupling_m_matches_loop_reference(norm, variant, use_abs):
    J1, J2 = random_pair()
    u2, _, vh2 = np.linalg.svd(J2)
    for k in (1, 5, 12):
        got = coupling_m(J1, u2[:, :12], vh2[:12].T, None, k, norm=norm, variant=variant, elementwise_abs=use_abs)
        assert isinstance(got, np.ndarray)
        assert got == pytest.approx(m_ref(J1, J2, k, norm, variant, use_abs), rel=1e-12)
    # the triplets the engine stores (spectra.top_k, float64 torch) give the same numbers
    U, S, V = top_k(torch.tensor(J2), 12)
    s1 = np.linalg.svd(J1, compute_uv=False)
    got = coupling_m(torch.tensor(J1), U, V, torch.tensor(s1), 5, norm=norm, variant=variant,
                     elementwise_abs=use_abs)
    assert isinstance(got, torch.Tensor) and got.dtype == torch.float64
    assert float(got) == pytest.approx(m_ref(J1, J2, 5, norm, variant, use_abs), rel=1e-10)


def test_depth_coupling_model_like_matches_reference_and_streaming():
    _, J = toy_stream()
    L, T, d, _ = J.shape
    k = 4
    U, S, V = top_k(torch.tensor(J.reshape(L * T, d, d)), k)
    U, S, V = U.reshape(L, T, d, k), S.reshape(L, T, k), V.reshape(L, T, d, k)
    full = depth_coupling(torch.tensor(J), (U, S, V), k).numpy()          # [T, L, L]
    for t in (0, T - 1):
        ref = np.array([[m_ref(J[i, t], J[j, t], k) for j in range(L)] for i in range(L)])
        np.testing.assert_allclose(full[t], ref, atol=1e-10)
        # one token, as a callable and as a generator
        tri = (U[:, t], S[:, t], V[:, t])
        np.testing.assert_allclose(depth_coupling(lambda i: J[i, t], tri, k), ref, atol=1e-10)
        np.testing.assert_allclose(depth_coupling((J[i, t] for i in range(L)), tri, k), ref, atol=1e-10)
    # streaming: row i against the bases that exist when layer i arrives, then a second pass for j > i
    stream = np.full((L, L, T), np.nan)
    for i in range(L):
        stream[i, :i + 1] = coupling_rows(J[i], U[:i + 1].numpy(), V[:i + 1].numpy(), S[i].numpy(), k)
    for i in range(L - 1):
        stream[i, i + 1:] = coupling_rows(J[i], U[i + 1:].numpy(), V[i + 1:].numpy(), S[i].numpy(), k)
    np.testing.assert_allclose(stream.transpose(2, 0, 1), full, atol=1e-12)
    # a column: every J_j (recomputed, here a generator) against layer 3's bases
    col = coupling_columns((J[j] for j in range(L)), U[3], V[3], (S[j] for j in range(L)), k)
    np.testing.assert_allclose(col.T, full[:, :, 3], atol=1e-12)


def test_depth_diagonal_is_zero_and_orientation_bug_shows():
    _, J = toy_stream(d=64, seed=3)
    Jt = torch.tensor(J[:, -1])                                           # last token, [L, d, d]
    for dtype, tol in ((torch.float32, 1e-6), (torch.float64, 1e-12)):
        tri = top_k(Jt.to(dtype), 8)
        m = depth_coupling(Jt.to(dtype), tri, 8)
        assert m.dtype == dtype
        assert torch.diagonal(m).abs().max() <= tol
        assert m.fill_diagonal_(1).min() > 1e-3                          # distinct layers are not coupled exactly
        # the transposed Jacobians (a rows/columns mix-up) must not pass that check
        assert torch.diagonal(depth_coupling(Jt.to(dtype).mT, tri, 8)).min() > 0.1


def test_identical_jacobians_give_zero():
    J1, _ = random_pair()
    u, s, vh = np.linalg.svd(J1)
    assert coupling_m(J1, u[:, :8], vh[:8].T, s, 8) == pytest.approx(0, abs=1e-13)
    assert coupling_m(J1, u[:, :8], vh[:8].T, s, 8, norm="trace") == pytest.approx(0, abs=1e-13)


def test_sign_flipped_bases_couple_only_with_elementwise_abs():
    """J2 = Q_out J1' Q_inᵀ, Q_out = U1 D1 U1ᵀ and Q_in = V1 D2 V1ᵀ signed reflections inside the top-K block (D1 ≠ D2),
    J1' with J1's singular vectors but other (same-order) singular values: m = 0 with the code's |·|, > 0 without."""
    rng = np.random.default_rng(5)
    d, k = 48, 6
    U1, _ = np.linalg.qr(rng.standard_normal((d, d)))
    V1, _ = np.linalg.qr(rng.standard_normal((d, d)))
    s1 = np.sort(rng.uniform(0.1, 3, d))[::-1]
    s2 = np.sort(rng.uniform(0.1, 3, d))[::-1]
    J1, J2p = (U1 * s1) @ V1.T, (U1 * s2) @ V1.T
    D1, D2 = np.ones(d), np.ones(d)
    D1[[0, 2, 5]], D2[[1, 2]] = -1, -1
    J2 = (U1 * D1) @ U1.T @ J2p @ ((V1 * D2) @ V1.T).T
    U, S, V = (x.numpy() for x in top_k(torch.tensor(J2), k))
    np.testing.assert_allclose(S, s2[:k], rtol=1e-12)
    assert coupling_m(J1, U, V, s1, k) == pytest.approx(0, abs=1e-12)
    assert coupling_m(J1, U, V, s1, k, elementwise_abs=False) > 0.5
    # |·| removes signs only: reordering the top-K directions is not coupling
    J3 = (U1[:, [1, 0] + list(range(2, d))] * s2) @ V1.T
    U, S, V = (x.numpy() for x in top_k(torch.tensor(J3), k))
    assert coupling_m(J1, U, V, s1, k) > 0.05


def test_not_symmetric():
    J1, J2 = random_pair(seed=7)
    m12 = m_ref(J1, J2, 5)
    u1, s1, vh1 = np.linalg.svd(J1)
    u2, s2, vh2 = np.linalg.svd(J2)
    assert coupling_m(J1, u2[:, :5], vh2[:5].T, s1, 5) == pytest.approx(m12, rel=1e-12)
    assert abs(coupling_m(J2, u1[:, :5], vh1[:5].T, s2, 5) - m12) > 1e-3


def test_haar_random_bases_give_about_one():
    """d = 256, K = 8: E[m²] ≈ 1 + (K²f² − 2√(2/π) f Σs)/‖s‖², f = ‖J‖_F/d, i.e. √ ≈ 0.978 for N(0, 1/d) entries;
    over 200 draws the std of one m is ≈ 0.007, so the mean is within ±0.01 of that (> 10 standard errors) and
    every draw within [0.93, 1.03] (> 6 std from the mean)."""
    rng = np.random.default_rng(0)
    J = rng.standard_normal((256, 256)) / 16
    m = haar_null(256, 8, 200, rng, J=J)
    assert m.shape == (200,)
    assert abs(m.mean() - haar_null_expected(J, 8)) < 0.01
    assert 0.93 < m.min() and m.max() < 1.03
    # two Jacobians whose singular bases are independent Haar draws: the same ≈ 1
    q = [np.linalg.qr(rng.standard_normal((256, 256)))[0] for _ in range(4)]
    s = np.linspace(3, 0.5, 256)
    J1, J2 = (q[0] * s) @ q[1].T, (q[2] * s) @ q[3].T
    U, S, V = top_k(torch.tensor(np.stack([J1, J2])), 8)
    m = depth_coupling(torch.tensor(np.stack([J1, J2])), (U, S, V), 8)
    assert 0.93 < m[0, 1] < 1.03 and 0.93 < m[1, 0] < 1.03


def test_k_slices_sorted_triplets():
    J1, J2 = random_pair(seed=2)
    U, S, V = top_k(torch.tensor(J2), 10)
    for k in (3, 10):
        assert float(coupling_m(torch.tensor(J1), U, V, None, k)) == pytest.approx(m_ref(J1, J2, k), rel=1e-10)
    with pytest.raises(ValueError):
        coupling_m(J1, U, V, None, 11)


def test_token_coupling_matches_reference():
    _, J = toy_stream(T=4, seed=2)
    Ja, Jb = J[2], J[5]
    U, S, V = top_k(torch.tensor(Jb), 4)
    got = token_coupling(Ja, (U.numpy(), S.numpy(), V.numpy()), 4)
    ref = np.array([[m_ref(Ja[t], Jb[u], 4) for u in range(4)] for t in range(4)])
    np.testing.assert_allclose(got, ref, atol=1e-10)


def test_context_coupling_and_residual_branch():
    rng = np.random.default_rng(4)
    d, T = 12, 4
    la = {(t1, t2): rng.standard_normal((d, d)) for t2 in range(T) for t1 in range(t2 + 1)}
    lb = {key: J + 0.3 * rng.standard_normal((d, d)) for key, J in la.items()}
    out = context_coupling(la, lb, 3, fixed=1, same="input")
    assert out["tokens"] == [1, 2, 3]
    ref = np.array([[m_ref(la[(1, a)], lb[(1, b)], 3) for b in (1, 2, 3)] for a in (1, 2, 3)])
    np.testing.assert_allclose(out["m"], ref, atol=1e-10)
    out = context_coupling(la, None, 3, fixed=2, same="output")
    assert out["tokens"] == [0, 1, 2]
    ref = np.array([[m_ref(la[(a, 2)], la[(b, 2)], 3) for b in range(3)] for a in range(3)])
    np.testing.assert_allclose(out["m"], ref, atol=1e-10)
    np.testing.assert_allclose(np.diag(out["m"]), 0, atol=1e-12)
    with pytest.raises(ValueError):
        context_coupling({(2, 1): la[(1, 2)]}, None, 3, fixed=2, same="input")
    rb = residual_branch(la)
    np.testing.assert_array_equal(rb[(1, 1)], la[(1, 1)] - np.eye(d))
    np.testing.assert_array_equal(rb[(0, 3)], la[(0, 3)])                  # no −I across tokens


def test_run_scalar_on_hand_matrix():
    m = np.array([[0.0, 0.5, 0.9],
                  [0.6, 0.0, 0.7],
                  [0.8, 0.4, 0.0]])
    out = run_scalar(m, 8, far=2)
    assert out["k"] == 8 and out["layers"] == 3 and out["matrices"] == 1
    assert out["offdiag"] == pytest.approx(3.9 / 6) and out["offdiag_entries"] == 6
    assert out["adjacent"] == pytest.approx(2.2 / 4) and out["adjacent_entries"] == 4
    assert out["far"] == pytest.approx(0.85)
    assert out["adjacent_1_minus_m2"] == pytest.approx(np.mean(1 - np.array([0.5, 0.6, 0.7, 0.4]) ** 2))
    # two tokens, one with a layer not computed yet (NaN): NaNs are skipped, the rest pooled
    m2 = m.copy()
    m2[2] = np.nan
    both = run_scalar(np.stack([m, m2]), 8, far=2)
    assert both["matrices"] == 2 and both["offdiag_entries"] == 10
    assert both["offdiag"] == pytest.approx((3.9 + 0.5 + 0.9 + 0.6 + 0.7) / 10)
    assert one_minus_m_squared(np.array([0.0, 1.0, 1.5])) == pytest.approx([1.0, 0.0, -1.25])


def test_the_haar_null_from_a_stored_spectrum_matches_sampling():
    """The null from only the top-K singular values and ‖J‖_F (what a results file keeps) equals the formula on
    the dense J and, within the sampling error, the mean of m against 200 Haar draws."""
    from coupling_tui.core.maths.null_baseline import haar_null_from_spectrum

    rng = np.random.default_rng(1)
    q = [np.linalg.qr(rng.standard_normal((200, 200)))[0] for _ in range(2)]
    J = (q[0] * np.geomspace(20, 0.1, 200)) @ q[1].T                  # a decaying, Jacobian-like spectrum
    s = np.linalg.svd(J, compute_uv=False)
    from_summary = haar_null_from_spectrum(s[:10], np.linalg.norm(J), 200, 10)
    assert float(from_summary) == pytest.approx(haar_null_expected(J, 10), rel=1e-12)
    assert abs(haar_null(200, 10, 200, rng, J=J).mean() - from_summary) < 0.01
    assert np.isnan(haar_null_from_spectrum(np.zeros(10), 0.0, 200, 10))
