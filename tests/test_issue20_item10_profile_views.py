"""Issue 20 item 10: adjacent coupling m(l, l+1) against depth and m against |i − j| are explorer views too (they
were only figures): ``v`` reaches them after the matrix views; they plot the stored m of the depth matrix shown (the
token's or the token average, at K), the run's random-init twin on the same axes, and the readout quotes the
cursor's stored values. Checked against the arrays the run file holds, not against the code that draws them."""

from __future__ import annotations

import math

import numpy as np
import pytest

from coupling_tui.core.results import names
from coupling_tui.tui.app import CouplingApp
from coupling_tui.tui.panes.coupling_text import NO_PROFILE_COLUMN
from tests.test_collapse_pane import screen_lines
from tests.test_coupling_pane import coupled_run


async def press_until(pilot, pane, view: str) -> None:
    for _ in range(6):
        if pane.view == view:
            return
        await pilot.press("v")
    assert pane.view == view


async def test_item10_adjacent_view_plots_the_stored_m_l_l_plus_1_of_trained_and_random_init():
    run = coupled_run(baseline=True)
    depth, base = run.arrays[names.COUPLING_DEPTH_K], run.arrays[names.random_init(names.COUPLING_DEPTH_K)]
    app = CouplingApp(run=run)
    async with app.run_test(size=(120, 40)) as pilot:
        pane = app.coupling
        assert "adjacent" in pane.views(run) and "distance" in pane.views(run)
        await press_until(pilot, pane, "adjacent")
        await pilot.press("down", "down")                          # layer 2: the pair 2 → 3
        k, token = 1, app.selected_token                           # K = 4 is the second K stored
        assert pane.profile.display and not pane.heatmap.display
        series = {s.label: s.points for s in pane.profile.plot.series}
        trained = depth[k, token].astype(np.float64)
        random = base[k, token].astype(np.float64)
        layers = list(range(trained.shape[0] - 1))
        assert series["trained m(l, l+1)"] == (layers, [trained[l, l + 1] for l in layers])
        assert series["trained m(l+1, l)"] == (layers, [trained[l + 1, l] for l in layers])
        assert series["random-init m(l, l+1)"] == (layers, [random[l, l + 1] for l in layers])
        assert pane.profile.plot.marker == 2 and pane.cursor_value == trained[2, 3]
        assert f"trained: m(2, 3) = {trained[2, 3]:.4f}" in pane.message
        assert f"m(3, 2) = {trained[3, 2]:.4f}" in pane.message
        assert f"random-init: m(2, 3) = {random[2, 3]:.4f}" in pane.message
        assert pane.subtitle.startswith("trained + random-init · adjacent m(l, l+1) · token 6")
        text = "\n".join(screen_lines(app))
        assert "trained m(l, l+1)" in text and "random-init m(l, l+1)" in text    # the legend, on screen
        assert "block l" in text                                                   # the x axis title
        await pilot.press("r")                                     # random-init first (on top, quoted first)
        assert pane.cursor_value == random[2, 3] and pane.message.startswith("layer 2 → 3 · random-init")
        await pilot.press("r", "t")                                # the token average
        mean = run.arrays[names.COUPLING_DEPTH_MEAN_K][k].astype(np.float64)
        assert pane.cursor_value == pytest.approx(mean[2, 3]) and "token average" in pane.subtitle


async def test_item10_distance_view_is_the_mean_over_the_pairs_at_each_distance():
    run = coupled_run()
    depth = run.arrays[names.COUPLING_DEPTH_K]
    app = CouplingApp(run=run)
    async with app.run_test(size=(100, 30)) as pilot:
        pane = app.coupling
        await pilot.press("down", "L", "L", "L")                   # the depth cursor: layer 1 → 3, |i − j| = 2
        await press_until(pilot, pane, "distance")
        m = depth[1, app.selected_token].astype(np.float64)
        L = m.shape[0]
        expected = [np.mean([m[i, j] for i in range(L) for j in range(L) if abs(i - j) == d]) for d in range(1, L)]
        (xs, ys), = [s.points for s in pane.profile.plot.series]
        assert xs == list(range(1, L)) and ys == pytest.approx(expected, abs=0)
        assert pane.profile.plot.marker == 2 and pane.cursor_value == pytest.approx(expected[1], abs=0)
        assert f"|i − j| = 2 · trained: mean m = {expected[1]:.4f} · over the {2 * (L - 2)} pairs" in pane.message
        await pilot.press("L")                                     # shift+→ moves the distance
        assert pane.profile.plot.marker == 3 and pane.cursor_value == pytest.approx(expected[2], abs=0)
        await pilot.press(*["H"] * 9)                              # clamped at |i − j| = 1
        assert pane.profile.plot.marker == 1
        await pilot.press("v")                                     # back to the depth heatmap
        assert pane.view == "depth" and pane.heatmap.display and not pane.profile.display


async def test_item10_profile_keys_that_do_not_apply_say_why_and_the_scale_key_fixes_0_1():
    app = CouplingApp(run=coupled_run())
    async with app.run_test(size=(100, 30)) as pilot:
        pane = app.coupling
        await press_until(pilot, pane, "adjacent")
        lo, hi = pane.profile.plot.y_range
        assert 0 <= lo < hi <= 1.5 and (lo, hi) != (0.0, 1.0)      # auto: the values' span
        await pilot.press("shift+right")
        assert any(NO_PROFILE_COLUMN in str(n.message) for n in app._notifications)
        await pilot.press("m")
        assert any("plot m itself" in str(n.message) for n in app._notifications)
        await pilot.press("s")
        assert pane.profile.plot.y_range == (0.0, 1.0)


async def test_item10_compare_layout_shows_both_runs_profiles_on_one_y_span():
    run = coupled_run(baseline=True)
    app = CouplingApp(run=run, compare=True)
    async with app.run_test(size=(120, 40)) as pilot:
        a, b = app.coupling, app.coupling_b
        await press_until(pilot, a, "distance")
        assert b.view == "distance" and b.profile.display
        assert a.profile.plot.y_range == b.profile.plot.y_range
        spans = [a.profile.auto_range, b.profile.auto_range]
        assert a.profile.plot.y_range == (min(s[0] for s in spans), max(s[1] for s in spans))
        # each pane shows its own run only (its title names it): A trained, B random-init
        assert [s.label for s in a.profile.plot.series] == ["trained"]
        assert [s.label for s in b.profile.plot.series] == ["random-init"]


async def test_item10_pending_layers_are_left_out_not_drawn_as_zero():
    run = coupled_run()
    run.arrays[names.COUPLING_DEPTH_K][:, :, 4:, :] = np.nan     # layers 4 and 5 not computed yet
    run.arrays[names.COUPLING_DEPTH_K][:, :, :, 4:] = np.nan
    app = CouplingApp(run=run)
    async with app.run_test(size=(100, 30)) as pilot:
        pane = app.coupling
        await press_until(pilot, pane, "adjacent")
        await pilot.press(*["down"] * 5)
        xs, ys = pane.profile.plot.series[0].points
        assert xs == [0, 1, 2] and all(math.isfinite(y) for y in ys)
        assert math.isnan(pane.cursor_value) and "m(4, 5) = pending" in pane.message


async def test_item10_the_palette_goes_to_a_profile_view_directly_and_refuses_a_view_the_run_lacks():
    run = coupled_run()
    del run.arrays[names.COUPLING_TOKEN_K]
    app = CouplingApp(run=run)
    async with app.run_test(size=(100, 30)) as pilot:
        pane = app.coupling
        app.set_view("distance")
        await pilot.pause()
        assert pane.view == "distance" and pane.profile.display
        app.set_view("token")
        await pilot.pause()
        assert pane.view == "distance"
        assert any("no token view in this run (it has depth, adjacent, distance)" in str(n.message)
                   for n in app._notifications)
        app.set_view("depth")
        await pilot.pause()
        assert pane.view == "depth" and pane.heatmap.display


async def test_item10_the_profile_readout_is_never_cut_at_80x24():
    run = coupled_run(baseline=True)
    app = CouplingApp(run=run)
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.coupling
        for view in ("adjacent", "distance"):
            await press_until(pilot, pane, view)
            await pilot.pause()
            r = pane.info.region
            shown = " ".join(line[r.x:r.right].strip() for line in screen_lines(app)[r.y:r.bottom])
            assert "…" not in shown, shown
            assert f"{pane.cursor_value:.4f}" in shown, (view, shown)       # the value under the cursor, whole


async def test_item10_e_exports_the_profile_view_as_shown(tmp_path):
    from tests.test_coupling_pane import svg_text

    app = CouplingApp(run=coupled_run(baseline=True), export_dir=tmp_path, run_name="r")
    async with app.run_test(size=(120, 40)) as pilot:
        await press_until(pilot, app.coupling, "adjacent")
        await pilot.press("e")
        await pilot.pause()
        [svg] = list(tmp_path.glob("*.svg"))
        text = svg_text(svg.read_text()).replace(" ", "")               # blank runs are not text elements
        for shown in ("trained m(l, l+1)", "random-init m(l, l+1)", "block l", app.coupling.message.split(" · ")[1]):
            assert shown.replace(" ", "") in text, shown                 # the legend, the axis, the readout


async def test_item10_a_prompt_sets_aggregate_has_the_profiles_of_its_mean_matrix():
    from coupling_tui.core.results.aggregate import aggregate_view
    from tests.test_set_results import filled

    pset = filled()
    app = CouplingApp(run=pset)
    async with app.run_test(size=(120, 40)) as pilot:
        pane = app.coupling
        assert app.entry == pset.n_prompts                             # opened on the aggregate
        await press_until(pilot, pane, "adjacent")
        mean = aggregate_view(app.results, k=pane._k(app.results), last_token=True, metric="m").view.m
        (xs, ys), _ = [s.points for s in pane.profile.plot.series]
        assert ys == [float(mean[l, l + 1]) for l in xs]
        assert pane.subtitle.startswith("trained · adjacent m(l, l+1) · aggregate · last token")
