"""Trajectory measures against explicit-loop float64 references (np.polyfit, scipy.stats.linregress) on a model-like
residual stream, plus hand-built trajectories with known answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import linregress

from coupling_tui.core.maths.trajectory import (expodistance, growth_fit, linearisation_fidelity, lss, sigma1_depth_fit)
from tests.test_coupling import toy_stream


def lss_ref(traj: np.ndarray) -> float:
    """LSS of one trajectory [n+1, d] by walking unit steps one at a time."""
    walk = traj[0].copy()
    for l in range(1, len(traj)):
        step = traj[l] - traj[l - 1]
        walk = walk + step / np.sqrt(np.sum(step ** 2))
    return (len(traj) - 1) / np.sqrt(np.sum((walk - traj[0]) ** 2))


def test_growth_fit_matches_linregress_and_recovers_geometric_norms():
    hidden, _ = toy_stream()
    norms = np.linalg.norm(hidden, axis=-1)
    fit = growth_fit(norms.astype(np.float32))
    for t in range(norms.shape[1]):
        ref = linregress(np.arange(1, 9), np.log(norms[1:, t]))
        assert fit["slope"][t] == pytest.approx(ref.slope, rel=1e-5)
        assert fit["intercept"][t] == pytest.approx(ref.intercept, rel=1e-5, abs=1e-6)
        assert fit["r2"][t] == pytest.approx(ref.rvalue ** 2, rel=1e-5)
    # exactly geometric norms from layer 1 on; layer 0 (the embedding) on another scale is left out by default
    geo = np.stack([2.5 * 1.3 ** np.arange(13), 0.7 * 0.9 ** np.arange(13)], axis=1)
    geo[0] = [100.0, 1e-4]
    fit = growth_fit(geo)
    np.testing.assert_allclose(fit["factor"], [1.3, 0.9], rtol=1e-12)
    np.testing.assert_allclose(fit["intercept"], np.log([2.5, 0.7]), rtol=1e-12)
    np.testing.assert_allclose(fit["r2"], 1, atol=1e-12)
    assert (growth_fit(geo, start=0)["r2"] < 0.9).all()


def test_lss_matches_loop_reference():
    hidden, _ = toy_stream()
    got = lss(hidden)
    for t in range(hidden.shape[1]):
        assert got[t] == pytest.approx(lss_ref(hidden[:, t]), rel=1e-12)
    assert (got >= 1).all()
    assert lss(hidden, start=2)[0] == pytest.approx(lss_ref(hidden[2:, 0]), rel=1e-12)


def test_lss_straight_line_zigzag_and_zero_steps():
    rng = np.random.default_rng(0)
    x0, v = rng.standard_normal(32), rng.standard_normal(32)
    c = np.cumsum(rng.uniform(0.1, 5, 10))                               # uneven steps, one direction
    line = np.concatenate([x0[None], x0 + c[:, None] * v])[:, None, :]   # [11, 1, 32]
    assert lss(line)[0] == pytest.approx(1, abs=1e-12)
    paused = np.concatenate([line[:4], line[3:]])                        # a repeated state: a zero step
    assert lss(paused)[0] == pytest.approx(1, abs=1e-12)
    zig = np.zeros((5, 1, 2))                                            # steps (1, ±1) alternately
    for l in range(1, 5):
        zig[l, 0] = zig[l - 1, 0] + [1, (-1) ** l]
    assert lss(zig)[0] == pytest.approx(np.sqrt(2), rel=1e-12)          # 4 / ‖4·e1/√2‖
    assert np.isnan(lss(np.zeros((4, 1, 3))))[0]


def test_linearisation_fidelity():
    rng = np.random.default_rng(1)
    L, T, d = 6, 3, 10
    A = 0.3 * rng.standard_normal((L, d, d)) / np.sqrt(d)
    x = [rng.standard_normal((T, d))]
    for l in range(L):                                                   # linear blocks f(x) = A x exactly
        x.append(x[-1] + x[-1] @ A[l].T)
    hidden = np.stack(x)
    J = np.broadcast_to(A[:, None], (L, T, d, d))
    np.testing.assert_allclose(linearisation_fidelity(J, hidden[0], hidden[L]), 1, atol=1e-12)
    # the model-like stream: against an explicit product of (I + J), as an array, a callable and torch tensors
    hidden, J = toy_stream()
    for t in range(hidden.shape[1]):
        x_lin = hidden[0, t].copy()
        for l in range(len(J)):
            x_lin = (np.eye(J.shape[-1]) + J[l, t]) @ x_lin
        ref = x_lin @ hidden[-1, t] / np.linalg.norm(x_lin) / np.linalg.norm(hidden[-1, t])
        assert linearisation_fidelity(J[:, t], hidden[0, t], hidden[-1, t]) == pytest.approx(ref, rel=1e-12)
        got = linearisation_fidelity(lambda l: torch.tensor(J[l, t]), hidden[0, t], hidden[-1, t], n_layers=len(J))
        assert got == pytest.approx(ref, rel=1e-12)
        assert ref < 1 - 1e-6                                            # tanh blocks are not linear
    with pytest.raises(ValueError):
        linearisation_fidelity(lambda l: J[l, 0], hidden[0, 0], hidden[-1, 0])


def test_sigma1_depth_fit():
    layers = np.arange(30)
    sigma1 = 1 / (0.5 + 0.2 * layers)
    sigma1[:9] = 7.0                                                     # early layers off the law, left out
    fit = sigma1_depth_fit(np.stack([sigma1, 2 * sigma1], axis=1))
    np.testing.assert_allclose(fit["slope"], [0.2, 0.1], rtol=1e-12)
    np.testing.assert_allclose(fit["intercept"], [0.5, 0.25], rtol=1e-12)
    np.testing.assert_allclose(fit["r2"], 1, atol=1e-12)
    noisy = 1 / (0.5 + 0.2 * layers + np.random.default_rng(0).normal(0, 0.3, 30))
    ref = linregress(layers[5:], 1 / noisy[5:])
    fit = sigma1_depth_fit(noisy, start=5)
    assert (fit["slope"], fit["intercept"], fit["r2"]) == pytest.approx((ref.slope, ref.intercept, ref.rvalue ** 2))


def test_expodistance():
    hidden, _ = toy_stream()
    got = expodistance(hidden)
    for t in range(hidden.shape[1]):
        lengths = [np.sqrt(np.sum((hidden[l, t] - hidden[l - 1, t]) ** 2)) for l in range(2, 9)]
        slope, intercept = np.polyfit(np.arange(2, 9), np.log(lengths), 1)
        assert (got["slope"][t], got["intercept"][t]) == pytest.approx((slope, intercept), rel=1e-10)
        ratios = [lengths[i + 1] / lengths[i] for i in range(len(lengths) - 1)]
        assert got["ratio_cv"][t] == pytest.approx(np.std(ratios) / np.mean(ratios), rel=1e-10)
    # exactly geometric steps (ratio 1.4) along changing directions: factor 1.4, R² = 1, CV = 0
    rng = np.random.default_rng(2)
    steps = 1.4 ** np.arange(10)[:, None] * np.eye(16)[rng.integers(0, 16, 10)]
    traj = np.concatenate([np.full((1, 16), 50.0), 50 + np.cumsum(steps, axis=0)])[:, None]
    out = expodistance(traj, start=0)
    assert out["factor"][0] == pytest.approx(1.4, rel=1e-12)
    assert out["r2"][0] == pytest.approx(1, abs=1e-12) and out["ratio_cv"][0] == pytest.approx(0, abs=1e-12)
    traj[5] = traj[4]                                                    # a zero step: log 0 → NaN
    assert np.isnan(expodistance(traj, start=0)["ratio_cv"][0])
