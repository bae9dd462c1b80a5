"""The Trajectory pane's fit curve, token band and values line against the stored arrays of a real engine run."""

from __future__ import annotations

import math

import numpy as np
import pytest

from coupling_tui.core.load.models import ModelRequest, load
from coupling_tui.core.results.run import Run
from coupling_tui.tui.panes.trajectory import TrajectoryPane, values_title
from tests.test_engine_coupling import _run
from tests.test_panes import PaneApp


@pytest.fixture(scope="module")
def run(tiny_dir):
    return _run(load(ModelRequest(model=str(tiny_dir))), top_k=4, token_coupling=False)[0]


def test_the_fit_curve_is_the_stored_growth_fit(run):
    for t in range(run.n_tokens):
        depths, fitted = run.growth_line(t)
        assert depths == list(range(1, run.n_layers + 1))
        ratios = fitted[1:] / fitted[:-1]                        # exp(a + b l): a constant factor e^b per block
        np.testing.assert_allclose(ratios, run.arrays["trajectory.growth_factor"][t], rtol=1e-5)
        logs, ls = np.log(run.norms(t)[1:].astype(np.float64)), np.arange(1, run.n_layers + 1)
        b, a = np.polyfit(ls, logs, 1)                           # an independent least-squares line
        np.testing.assert_allclose(fitted, np.exp(a + b * ls), rtol=1e-5)


def test_no_fit_before_two_depths_and_a_band_of_every_token(run):
    partial = Run(header=run.header, arrays={n: a.copy() for n, a in run.arrays.items()})
    partial.arrays["trajectory.norms"][2:] = np.nan
    assert partial.growth_line(0) is None                        # depths 1 only: nothing to fit yet
    low, mid, high = run.norm_band()
    norms = run.arrays["trajectory.norms"].astype(np.float64)
    np.testing.assert_allclose(low, np.percentile(norms, 10, axis=1))
    np.testing.assert_allclose(mid, np.median(norms, axis=1))
    np.testing.assert_allclose(high, np.percentile(norms, 90, axis=1))
    low, _, _ = partial.norm_band()
    assert np.isfinite(low[:2]).all() and np.isnan(low[2:]).all()


def test_values_are_the_stored_ones(run):
    t = run.n_tokens - 1
    v = run.trajectory_values(t)
    a = run.arrays
    assert v["growth"] == pytest.approx(float(a["trajectory.growth_factor"][t]))
    assert v["growth_r2"] == pytest.approx(float(a["trajectory.growth_r2"][t]))
    assert v["lss"] == pytest.approx(float(a["trajectory.lss"][t]))
    assert v["fidelity"] == pytest.approx(float(a["trajectory.fidelity"][-1, t]))
    assert values_title(v) == (f"growth ×{v['growth']:.3f}/block (R² {v['growth_r2']:.3f}) · LSS {v['lss']:.2f} · "
                               f"fidelity {v['fidelity']:.3f}")
    assert "growth ×–/block" in values_title({k: math.nan for k in v})


async def test_the_pane_draws_token_fit_and_band_with_the_values_line(run):
    pane = TrajectoryPane()
    async with PaneApp(pane).run_test(size=(80, 24)) as pilot:
        t = run.n_tokens - 1
        pane.show(run, t, 1)
        await pilot.pause()
        labels = [s.label for s in pane.series]
        assert labels == ["token", "fit", "p10", "p50", "p90"]                 # each percentile named (item 8)
        assert pane.title_text == "Trajectory ● token · ─ fit · ┄ p10 · ─ p50 · ┄ p90"
        np.testing.assert_allclose(pane.plotted[1], run.norms(t))
        plain = pane.render().plain
        assert f"LSS {run.trajectory_values(t)['lss']:.2f}" in plain and "growth ×" in plain
        assert pane.caption == values_title(run.trajectory_values(t))


async def test_a_narrow_pane_shows_the_short_values_line(run):
    from coupling_tui.tui.panes.trajectory import short_values_title

    pane = TrajectoryPane()
    async with PaneApp(pane).run_test(size=(38, 20)) as pilot:
        t = run.n_tokens - 1
        pane.show(run, t, 1)
        await pilot.pause()
        short = short_values_title(run.trajectory_values(t))
        assert short in pane.render().plain and "growth ×" not in pane.render().plain
