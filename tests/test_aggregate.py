"""The aggregate of a prompt set against a hand computation: mean and sample std over prompts of the layer×layer
coupling, and of the run scalar written out entry by entry."""

from __future__ import annotations

import math

import numpy as np
import pytest

from coupling_tui.core.results.aggregate import (aggregate, aggregate_run, aggregate_view, mean_std, prompt_scalars)
from coupling_tui.core.results.run import Run
from tests.fakes import fake_events


def run_of(**kwargs) -> Run:
    run = Run()
    for event in fake_events(**kwargs):
        run.apply(event)
    return run


def prompts(n_tokens=(5, 7, 3), baseline=False) -> list[Run]:
    """Runs of one fake model (6 layers, K = 2, 4) on prompts of different lengths."""
    return [run_of(n_layers=6, n_tokens=t, k=4, coupling=True, seed=10 * i, baseline=baseline)
            for i, t in enumerate(n_tokens)]


def hand_mean_std(values: list[float]) -> tuple[float, float]:
    n = len(values)
    mean = sum(values) / n
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else math.nan


def hand_scalar(m: np.ndarray, pick) -> float:
    """Mean of m[..., i, j] over the (i, j) that ``pick(i, j)`` accepts, loops written out."""
    flat = m.reshape(-1, m.shape[-1], m.shape[-1])
    vals = [float(x[i, j]) for x in flat for i in range(m.shape[-1]) for j in range(m.shape[-1]) if pick(i, j)]
    return sum(vals) / len(vals)


def test_mean_std_skips_nan_and_uses_the_sample_std():
    values = np.array([[1.0, np.nan, 2.0], [3.0, np.nan, np.nan], [5.0, 4.0, np.nan]])
    mean, std = mean_std(values)
    np.testing.assert_allclose(mean, [3.0, 4.0, 2.0])
    np.testing.assert_allclose(std[0], 2.0)                 # sqrt(((1-3)² + 0 + (5-3)²) / 2)
    assert np.isnan(std[1]) and np.isnan(std[2])            # one value: no spread


def test_matrices_are_the_mean_and_std_over_prompts():
    runs = prompts()
    header, arrays = aggregate(runs)
    assert header["n_prompts"] == 3 and header["ks"] == [2, 4] and header["k"] == 4
    L = 6
    for a in range(2):
        for i in range(L):
            for j in range(L):
                avg = [float(r.arrays["coupling.depth_mean_k"][a, i, j]) for r in runs]
                last = [float(r.arrays["coupling.depth_k"][a, r.n_tokens - 1, i, j]) for r in runs]
                for name, values in (("depth_mean_k", avg), ("depth_last_k", last)):
                    mean, std = hand_mean_std(values)
                    assert arrays[f"aggregate.{name}.mean"][a, i, j] == pytest.approx(mean, rel=1e-6)
                    assert arrays[f"aggregate.{name}.std"][a, i, j] == pytest.approx(std, rel=1e-5, abs=1e-7)
    assert arrays["aggregate.depth_mean_k.mean"].shape == (2, L, L)


def test_scalars_are_the_mean_and_std_of_each_prompts_scalar():
    runs = prompts()
    header, _ = aggregate(runs)
    picks = {"offdiag": lambda i, j: i != j, "adjacent": lambda i, j: abs(i - j) == 1}
    for key, pick in picks.items():
        every = [hand_scalar(r.arrays["coupling.depth_k"][1], pick) for r in runs]      # K = 4, all tokens
        last = [hand_scalar(r.arrays["coupling.depth_k"][1, -1], pick) for r in runs]   # K = 4, last token
        for where, values in (("all_tokens", every), ("last_token", last)):
            entry = header["scalar"][where][key]
            assert entry["values"] == pytest.approx(values, rel=1e-6)
            mean, std = hand_mean_std(values)
            assert entry["mean"] == pytest.approx(mean, rel=1e-6) and entry["std"] == pytest.approx(std, rel=1e-5)
    assert header["scalar"]["all_tokens"]["far"]["mean"] is None      # 6 layers: no |i − j| ≥ 10
    assert prompt_scalars(runs[0])["k"] == 4


def test_one_prompt_has_no_std_and_runs_without_coupling_aggregate_nothing():
    header, arrays = aggregate(prompts((5,)))
    assert header["scalar"]["all_tokens"]["offdiag"]["std"] is None
    assert np.isnan(arrays["aggregate.depth_mean_k.std"]).all()
    header, arrays = aggregate([run_of(n_layers=3, n_tokens=4), run_of(n_layers=3, n_tokens=2)])
    assert header["n_prompts"] == 2 and header["scalar"] is None and arrays == {}


def test_different_ks_cannot_be_aggregated():
    with pytest.raises(ValueError, match="different coupling K"):
        aggregate([run_of(n_layers=3, n_tokens=4, k=4, coupling=True), run_of(n_layers=3, n_tokens=4, k=8,
                                                                               coupling=True, d=16)])


def test_random_init_baseline_is_aggregated_too():
    runs = prompts(baseline=True)
    header, arrays = aggregate(runs)
    expected = np.mean([r.arrays["random_init.coupling.depth_k"][:, -1] for r in runs], axis=0)
    np.testing.assert_allclose(arrays["random_init.aggregate.depth_last_k.mean"], expected, rtol=1e-6)
    assert header["random_init"]["scalar"]["all_tokens"]["offdiag"]["mean"] is not None


def test_the_aggregate_run_shows_the_mean_matrix_with_its_std():
    runs = prompts()
    agg = aggregate_run(runs, n_total=4)
    assert agg.n_tokens == 0 and agg.n_layers == 6 and agg.coupling_ks == [2, 4]
    assert agg.header["aggregate"]["n_total"] == 4
    view = aggregate_view(agg, k=2, last_token=True, metric="m")
    mean = np.mean([r.arrays["coupling.depth_k"][0, -1] for r in runs], axis=0)
    std = np.std([r.arrays["coupling.depth_k"][0, -1] for r in runs], axis=0, ddof=1)
    np.testing.assert_allclose(view.view.values, mean, rtol=1e-6)
    m, s, c = view.cell(1, 3)
    assert (m, s) == pytest.approx((mean[1, 3], std[1, 3]), rel=1e-5) and c == pytest.approx(1 - m * m)
    assert aggregate_view(agg, k=3) is None and aggregate_view(agg, baseline=True) is None
