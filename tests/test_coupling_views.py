"""The coupling pane's extra views on a real engine run of the tiny model: token coupling between two layers, the
vju variant and the two context views show exactly the stored matrices, and missing ones say how to compute them."""

from __future__ import annotations

import numpy as np
import pytest

from coupling_tui.core.load.models import ModelRequest, load
from coupling_tui.tui.app import CouplingApp
from coupling_tui.tui.panes.coupling import CouplingPane
from tests.test_engine_coupling import _run


@pytest.fixture(scope="module")
def run(tiny_dir):
    loaded = load(ModelRequest(model=str(tiny_dir)))
    return _run(loaded, top_k=10, vju=True, token_pairs=[(1, 2), (2, 1)], context_layers=[0, 2],
                context_tokens=(1, -1))[0]


def _cursor(app):
    return app.selected_token, app.selected_layer


async def test_token_view_between_two_layers_follows_the_depth_cursor(run):
    tp, pairs = run.arrays["coupling.token_pair_k"], run.arrays["coupling.token_pairs"].tolist()
    app = CouplingApp(run=run)
    async with app.run_test(size=(120, 36)) as pilot:
        pane = app.query_one(CouplingPane)
        await pilot.press("home", "down", "L", "L")                       # depth cursor: layer 1 → column 2
        assert pane.column["depth"] == 2 and app.selected_layer == 1
        await pilot.press("v", "right", "right", "L")                    # token view of the pair 1 → 2
        assert pane.view == "token" and "layers 1 → 2" in pane.subtitle
        np.testing.assert_array_equal(pane.current.m, tp[1, pairs.index([1, 2])])   # K = 10 is index 1
        assert pane.cursor_value == tp[1, pairs.index([1, 2]), 2, 1]
        await pilot.press("up")                                          # both layers move: 0 → 1, not computed
        assert pane.current is None and "--token-pairs 0:1" in pane.message
        await pilot.press("down", "v", "v", "v", "v", "v")               # context-out, -in, the profiles, depth
        assert pane.view == "depth" and pane.column["depth"] == 2


async def test_vju_toggle_shows_the_vju_matrix(run):
    app = CouplingApp(run=run)
    async with app.run_test(size=(120, 36)) as pilot:
        pane = app.query_one(CouplingPane)
        await pilot.press("u")
        assert pane.variant == "vju" and "vju" in pane.subtitle
        t = app.selected_token
        np.testing.assert_array_equal(pane.current.m, run.arrays["coupling.depth_vju_k"][1, t])
        await pilot.press("t")                                           # token average of vju
        np.testing.assert_allclose(pane.current.m, run.arrays["coupling.depth_vju_k"][1].mean(0), rtol=1e-5)
        await pilot.press("u")
        assert pane.variant == "ujv"
        np.testing.assert_array_equal(pane.current.m, run.arrays["coupling.depth_mean_k"][1])


async def test_context_views_show_the_stored_matrices_at_the_nearest_context_layer(run):
    out, inp = run.arrays["context.out_k"], run.arrays["context.in_k"]
    app = CouplingApp(run=run)
    async with app.run_test(size=(120, 36)) as pilot:
        pane = app.query_one(CouplingPane)
        await pilot.press("down", "down", "L", "L", "v", "v")            # cell 2 → 2; context layers: 0 and 2
        assert pane.view == "context-out" and "layer 2" in pane.subtitle and "t_out=" in pane.subtitle
        np.testing.assert_array_equal(pane.current.m, out[1, 1, 1])       # K = 10, layer 2 → layer 2
        await pilot.press("v")
        assert pane.view == "context-in" and "t_in=1" in pane.subtitle
        np.testing.assert_array_equal(pane.current.m, inp[1, 1, 1])
        assert np.isnan(pane.current.m[0]).all()                          # t2 < t_in: not causal, not shown
        await pilot.press("up")                                          # layer 1: nearest context layer is 0
        assert "layer 0" in pane.subtitle
        np.testing.assert_array_equal(pane.current.m, inp[1, 0, 0])


async def test_an_only_depth_run_cycles_through_the_profiles_only(run):
    from coupling_tui.core.results.run import Run

    slim = Run(header=dict(run.header), arrays={n: a for n, a in run.arrays.items()
                                                if not n.startswith(("context.", "coupling.token"))})
    app = CouplingApp(run=slim)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("v", "u")
        pane = app.query_one(CouplingPane)
        assert pane.view == "adjacent" and pane.variant == "vju"         # vju is still there
        await pilot.press("v", "v")
        assert pane.view == "depth"


async def test_the_cursor_line_shows_the_haar_null_of_the_row_jacobian(run):
    from coupling_tui.core.maths.null_baseline import haar_null_from_spectrum

    app = CouplingApp(run=run)
    async with app.run_test(size=(160, 40)) as pilot:
        pane = app.query_one(CouplingPane)
        await pilot.press("down", "L")                                   # cell 1 → 1, K = 10
        t, d = app.selected_token, run.arrays["trajectory.hidden"].shape[-1]
        null = haar_null_from_spectrum(run.arrays["jacobian.singular_values"][1, t],
                                       run.arrays["jacobian.frobenius"][1, t], d, 10)
        assert f"Haar null m ≈ {float(null):.3f}" in pane.message and 0.5 < float(null) < 1.1
        await pilot.press("t")                                           # the token average: the mean null
        nulls = haar_null_from_spectrum(run.arrays["jacobian.singular_values"][1],
                                        run.arrays["jacobian.frobenius"][1], d, 10)
        assert f"Haar null m ≈ {float(nulls.mean()):.3f}" in pane.message
