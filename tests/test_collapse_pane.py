"""Pilot tests of the Collapse pane on the real engine's collapse stream (tiny model, tests.fakes.collapse_events):
what it shows equals the stored arrays, keys step n, family, states and measure, it fills as lengths complete,
it exports to SVG, and it lays out at 80×24 and 200×60."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from coupling_tui.core.results import run_file as results
from coupling_tui.core.results.run import Run
from coupling_tui.tui.app import CouplingApp
from coupling_tui.tui.panes.collapse import NO_COLLAPSE, TOP_K, CollapsePane
from coupling_tui.tui.panes.coupling import CouplingPane
from coupling_tui.tui.panes.tokens import visible
from coupling_tui.tui.panes.trajectory import TrajectoryPane
from tests.fakes import collapse_events
from tests.test_app import GatedJob, finished_run, wait_until
from tests.test_coupling_pane import svg_text

ROOT = Path(__file__).resolve().parents[1]
BF16_U = 2.0 ** -8


@pytest.fixture(scope="module")
def collapse_stream(tiny_dir):
    """``coupling-tui collapse`` on the tiny model: 3 families × lengths 2, 4, 8, sensitivity, no Jacobians."""
    return collapse_events(tiny_dir)


@pytest.fixture(scope="module")
def explore_stream(tiny_dir):
    """An explorer run with Jacobians and coupling and ``--collapse`` (2 families × lengths 2, 4)."""
    return collapse_events(tiny_dir, families=("ones", "digits"), lengths=(2, 4), top_k=4)


def run_of(events) -> Run:
    run = Run()
    for event in events:
        run.apply(event)
    return run


def screen_lines(app) -> list[str]:
    """The characters on screen, line by line."""
    return ["".join(segment.text for segment in strip) for strip in app.screen._compositor.render_strips()]


def expected_resolution(run: Run, f: int, measure: int) -> list[float]:
    """bf16's resolution at y(n) computed here from its definition (docs/collapse.md)."""
    y = np.abs(run.arrays["collapse.final"][f, :, 0].astype(np.float64))
    return [BF16_U * float(np.median(v)) if measure == 0 else BF16_U * float(v.max()) if measure == 1 else BF16_U
            for v in y]


def check_shown(app, pane: CollapsePane, run: Run, f: int, j: int, *, normed: bool = False, measure: int = 1):
    """Everything the pane shows for family f, length index j equals the results arrays."""
    a = run.arrays
    lengths = a["collapse.lengths"].tolist()
    families = run.header["collapse"]["families"]
    assert pane.subtitle.startswith(f"{families[f]} ({f + 1}/{len(families)}) · n = {lengths[j]} · "
                                    f"{'post' if normed else 'pre'}-norm")
    f32, low, res = pane.plot.series
    done = [k for k in range(len(lengths)) if np.isfinite(app.results.arrays["collapse.diff"][f, k, 0])]
    assert f32.points[0] == low.points[0] == res.points[0] == [lengths[k] for k in done]   # pending: not drawn
    np.testing.assert_array_equal(np.float32(f32.points[1]), a["collapse.diff"][f, done, measure])
    np.testing.assert_array_equal(np.float32(low.points[1]), a["collapse.diff_low"][f, done, measure])
    assert res.points[1] == pytest.approx([expected_resolution(run, f, measure)[k] for k in done], rel=1e-12)
    assert pane.plot.marker == lengths[j] and pane.plot.ylabel == ("L1/d", "L∞", "rel L2")[measure]
    pair = a["collapse.final_normed" if normed else "collapse.final"][f, j]
    delta = pair[1].astype(np.float64) - pair[0].astype(np.float64)
    dims = sorted(range(delta.size), key=lambda k: (-abs(delta[k]), k))[:TOP_K]
    assert [r.dim for r in pane.top_rows] == dims
    assert [r.delta for r in pane.top_rows] == [delta[k] for k in dims]
    assert np.array_equal(pane.strips.pair, pair)
    assert pane.answers == (*a["collapse.next_ids"][f, j].tolist(), *a["collapse.next_ids_low"][f, j].tolist())
    screen = "\n".join(screen_lines(app))
    for k in dims[:3]:                                          # the table's first rows, as stored
        assert f"{k:>5} {pair[0, k]:>9.4g} {pair[1, k]:>9.4g} {delta[k]:>+9.3g}" in screen
    assert f"float32 {a['collapse.diff'][f, j, measure]:.3g} · bfloat16 {a['collapse.diff_low'][f, j, measure]:.3g}" \
        in pane.message
    same = next(line for line in screen_lines(app) if "same bf16 bits" in line)
    d = a["collapse.final"].shape[-1]
    for k in done:                                              # the per-n bit-identical row
        value = a["collapse.identical_low"][f, k]
        count = int(round(float(value) * d))
        assert (f"0 of {d}" if count == 0 else f"{100 * count / d:.1f} %") in same, k


async def test_keys_step_n_and_switch_family_and_the_shown_numbers_are_the_stored_ones(collapse_stream):
    run = run_of(collapse_stream)
    app = CouplingApp(run=run)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        pane = app.query_one(CollapsePane)
        assert isinstance(app.focused, CollapsePane)                  # a collapse run opens on its pane
        steps = [(None, 0, 2), ("comma", 0, 1), ("comma", 0, 0), ("comma", 0, 0), ("full_stop", 0, 1),
                 ("f", 1, 1), ("f", 2, 1), ("full_stop", 2, 2), ("full_stop", 2, 2), ("f", 0, 2)]
        for key, f, j in steps:
            if key:
                await pilot.press(key)
            await pilot.pause()
            assert (pane.family, pane._index(run)) == (f, (f, j)), key
            check_shown(app, pane, run, f, j)


async def test_n_shows_the_post_norm_states_and_d_cycles_the_plotted_difference(collapse_stream):
    run = run_of(collapse_stream)
    app = CouplingApp(run=run)
    async with app.run_test(size=(100, 30)) as pilot:
        pane = app.query_one(CollapsePane)
        await pilot.press("comma", "n")
        await pilot.pause()
        check_shown(app, pane, run, 0, 1, normed=True)
        assert pane.strips.labels[0] == "ŷ(n)" and "after the final norm" in pane.message
        for measure in (0, 2, 1):                               # L∞ first, then L1/d, relative L2
            await pilot.press("d")
            await pilot.pause()
            check_shown(app, pane, run, 0, 1, normed=True, measure=measure)
        await pilot.press("n")
        await pilot.pause()
        check_shown(app, pane, run, 0, 1)


async def test_linf_leads_says_where_it_is_taken_and_shares_show_one_decimal_or_none(collapse_stream):
    run = run_of(collapse_stream)
    d = run.arrays["collapse.final"].shape[-1]
    run.arrays["collapse.identical_low"][0] = [0.0, 1 / d, 7 / d]       # none, one, seven coordinates
    app = CouplingApp(run=run)
    async with app.run_test(size=(120, 32)) as pilot:
        await pilot.pause()
        pane = app.query_one(CollapsePane)
        assert pane.measure == 1 and pane.plot.ylabel == "L∞"
        a = run.arrays
        linf = np.abs(a["collapse.final"][0, 2, 1].astype(np.float64) - a["collapse.final"][0, 2, 0]).max()
        assert f"L∞ (last layer, pre-final-norm): float32 {linf:.3g}" in pane.message
        screen = "\n".join(screen_lines(app))
        assert f" · {100 * 7 / d:.1f} % bit-identical in bf16" in screen            # wrapped, never cut (item 5)
        assert "─ bf16 resolution · max_k |Δ_k|, last layer pre-norm" in screen      # the plot's legend
        same = next(line for line in screen_lines(app) if "same bf16 bits" in line)
        assert same.split("bits")[1].strip(" │").split() == ["0", "of", str(d), f"{100 / d:.1f}", "%", f"{100 * 7 / d:.1f}", "%"]
        await pilot.press("comma", "comma")
        await pilot.pause()
        assert f" · 0 of {d} bit-identical in bf16" in "\n".join(screen_lines(app))
        await pilot.press("d")
        await pilot.pause()
        l1 = np.abs(a["collapse.final"][0, 0, 1].astype(np.float64) - a["collapse.final"][0, 0, 0]).mean()
        assert pane.plot.ylabel == "L1/d" and f"L1/d (last layer, pre-final-norm): float32 {l1:.3g}" \
            in pane.message


async def test_the_pane_says_the_attention_of_both_precisions_or_that_an_old_file_did_not_record_it(
        collapse_stream):
    run = run_of(collapse_stream)
    assert run.header["collapse"]["attention"] == {"reference": "sdpa", "low": "eager"}
    old = run_of(collapse_stream)
    old.header = {**old.header,                                          # a file from before it was recorded
                  "collapse": {k: v for k, v in old.header["collapse"].items() if k != "attention"}}
    for shown, expected in ((run, "attention: float32 sdpa, bfloat16 eager"), (old, "attention: not recorded")):
        app = CouplingApp(run=shown)
        async with app.run_test(size=(160, 32)) as pilot:
            await pilot.pause()
            pane = app.query_one(CollapsePane)
            assert pane.message.splitlines()[0].endswith(f"before the final norm · {expected}")


async def test_the_pane_fills_as_lengths_complete_and_pending_is_never_drawn_as_zero(collapse_stream):
    stages = [e.stage for e in collapse_stream[1:-1]]
    n_layers = stages.count("layers")
    job = GatedJob(collapse_stream)
    final = run_of(collapse_stream)
    app = CouplingApp(job=job)
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            pane = app.query_one(CollapsePane)
            await wait_until(pilot, lambda: pane.subtitle != "")
            await pilot.pause()
            assert isinstance(app.focused, CollapsePane) and not app.query_one(CouplingPane).region.area
            assert pane.subtitle.startswith("ones (1/3) · n = 8 ")          # nothing computed: the longest n
            assert "L∞: pending" in pane.message and pane.answers == (-1, -1, -1, -1) and pane.top_rows == []
            assert all(s.points == ([], []) for s in pane.plot.series)
            assert pane.strips.pair is None and pane.strips.message.startswith("pending")
            job.release(n_layers + 1)                                 # the layers, then the pair (ones, n=2)
            await wait_until(pilot, lambda: app.results.steps_done == n_layers + 1)
            await pilot.pause()
            check_shown(app, pane, final, 0, 0)                       # it follows the pairs as they come
            f32 = pane.plot.series[0].points
            assert f32[0] == [2] and pane.plot.x_values == (2, 4, 8)
            same = next(line for line in screen_lines(app) if "same bf16 bits" in line)
            assert same.count("…") == 2                               # n = 4, 8 pending, not 0 %
            await pilot.press("full_stop", "full_stop")               # a chosen n stays chosen
            await pilot.pause()
            assert pane.subtitle.startswith("ones (1/3) · n = 8 ") and "L∞: pending" in pane.message
            assert pane.strips.region.height == 1 and pane.plot.series[0].points[0] == [2]
            job.release(2)
            await wait_until(pilot, lambda: app.results.steps_done == n_layers + 3)
            await pilot.pause()
            check_shown(app, pane, final, 0, 2)
            assert pane.strips.region.height == 3
            ids = final.arrays["collapse.next_ids"][0, 2]
            assert f"n #{ids[0]}, n+1 #{ids[1]}" in pane.message      # the texts come with the stage's end
            job.release(len(collapse_stream))
            await wait_until(pilot, lambda: app.results.finished)
            await pilot.pause()
            text = final.header["collapse"]["next_text"]
            assert f"n '{visible(text[str(ids[0])])}', n+1 '{visible(text[str(ids[1])])}'" in pane.message
            assert pane.sens.data == [float(v) for v in final.arrays["collapse.sensitivity"]]
    finally:
        job.stop.set()


async def test_e_and_E_export_the_collapse_pane_with_its_numbers(collapse_stream, tmp_path):
    run = run_of(collapse_stream)
    app = CouplingApp(run=run, export_dir=tmp_path, run_name="c")
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("comma", "e")
        await pilot.pause()
        pane = app.query_one(CollapsePane)
        text = svg_text((tmp_path / "c-collapse.svg").read_text())
        assert "Collapse" in text and "Trajectory" not in text
        row = pane.top_rows[0]
        assert f"{row.dim:>5} {row.short:>9.4g} {row.long:>9.4g} {row.delta:>+9.3g}" in text
        assert f"float32 {run.arrays['collapse.diff'][0, 1, 1]:.3g}" in text     # L∞, shown first
        await pilot.press("E")
        await pilot.pause(0.5)
    names = sorted(p.name for p in tmp_path.iterdir())
    # a collapse run: Collapse alone (item 3); E after e numbers its group rather than replace (item 10)
    assert names == ["c-collapse-2.svg", "c-collapse.svg", "c-screen-2.svg"]
    for name in names:
        ET.fromstring((tmp_path / name).read_text())


async def test_an_explorer_run_with_collapse_keeps_coupling_and_adds_the_pane(explore_stream, tmp_path):
    run = run_of(explore_stream)
    app = CouplingApp(run=run, export_dir=tmp_path, run_name="x")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        pane, coupling = app.query_one(CollapsePane), app.query_one(CouplingPane)
        assert isinstance(app.focused, CouplingPane) and coupling.region.width >= 38
        assert not pane.region.area                                   # a short screen shows Trajectory first
        await pilot.press("full_stop")                                # a collapse key shows the pane: on a
        await pilot.pause()                                           # short, narrow screen it takes the width
        assert pane.region.width == 80 and isinstance(app.focused, CollapsePane) and not coupling.region.area
        assert not pane.has_class("-stacked") and pane.plot.region.height >= 4
        check_shown(app, pane, run, 0, 1)
        assert "cycle K" not in screen_lines(app)[-1] and "family" in screen_lines(app)[-1]
        await pilot.press("K")                                        # coupling keys wait for the Coupling pane
        assert coupling.k is None
        await pilot.press("E")
        await pilot.pause(0.5)
        assert pane.region.width == 80 and not coupling.region.area   # as it was before the export
        await pilot.press("1")
        await pilot.pause()
        assert isinstance(app.focused, CouplingPane) and coupling.region.width >= 38 and not pane.region.area
        assert app.query_one(TrajectoryPane).region.area
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        f"x-{p}.svg" for p in ("collapse", "coupling", "screen", "spectrum", "tokens", "trajectory")]
    assert "Coupling" in svg_text((tmp_path / "x-coupling.svg").read_text())


@pytest.mark.parametrize("size, stacked", [((130, 30), True), ((200, 60), False)])
async def test_on_a_wide_screen_collapse_sits_beside_coupling(explore_stream, size, stacked):
    run = run_of(explore_stream)
    app = CouplingApp(run=run)
    async with app.run_test(size=size) as pilot:
        await pilot.press("4")
        await pilot.pause()
        pane, coupling = app.query_one(CollapsePane), app.query_one(CouplingPane)
        assert pane.region.x >= coupling.region.right and coupling.region.width >= 38
        assert pane.has_class("-stacked") == stacked and pane.plot.region.height >= 4
        assert pane.top.region.area and pane.strips.region.height == 3
        if stacked:                                                   # the table above the plot
            assert pane.top.region.bottom <= pane.plot.region.y
        else:                                                         # every side pane, Collapse the tallest
            assert pane.region.height > app.query_one(TrajectoryPane).region.height >= 8
        check_shown(app, pane, run, 0, 1)


@pytest.mark.parametrize("size, mode", [((80, 24), "-compact"), ((80, 19), "-tiny"), ((200, 60), "")])
async def test_layout_of_a_collapse_run(collapse_stream, size, mode):
    app = CouplingApp(run=run_of(collapse_stream))
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        pane = app.query_one(CollapsePane)
        region = pane.region
        assert not app.query_one(CouplingPane).region.area          # no Jacobians: no Coupling pane
        assert region.x == 0 and region.width == size[0] and region.bottom <= size[1] - 1
        assert app.query_one("Footer").region.bottom == size[1]
        parts = [pane.info, pane.strips, pane.top, pane.plot] + ([pane.per_n, pane.sens] if mode != "-tiny" else [])
        for part in parts:
            assert part.region.area and region.contains_region(part.region), part.id
        assert pane.top.region.y == pane.plot.region.y - 1            # the table beside the plot
        assert pane.plot.region.height >= 4 and pane.has_class("-compact") == (mode != "")
        assert pane.has_class("-tiny") == (mode == "-tiny") and pane.per_n.display == (mode != "-tiny")
        if size[1] < 40:
            assert not app.query_one(TrajectoryPane).region.area
        else:
            assert pane.plot.region.height >= 12
            assert not app.query_one(TrajectoryPane).region.area and region.height == size[1] - 2   # item 3
            lines = screen_lines(app)
            assert any(line.strip("│ ").startswith("greedy n/n+1") for line in lines)


@pytest.mark.parametrize("size", [(80, 24), (200, 60)])
async def test_a_run_without_collapse_data_hides_the_pane_and_4_says_why(size):
    app = CouplingApp(run=finished_run(k=4))
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        pane = app.query_one(CollapsePane)
        assert not pane.region.area and pane.message.startswith("no collapse data")
        await pilot.press("4", "f", "comma", "n")
        await pilot.pause()
        assert [n.message for n in app._notifications] == [NO_COLLAPSE]
        assert (pane.family, pane.length, pane.normed) == (0, None, False) and not pane.region.area
        assert isinstance(app.focused, CouplingPane)
        footer = screen_lines(app)[-1]
        assert "family" not in footer and "length" not in footer
        app.jump_to_length(4)                                         # the palette's way in
        await pilot.pause()
        assert list(app._notifications)[-1].message == NO_COLLAPSE


async def test_the_palette_jumps_to_a_length(collapse_stream):
    app = CouplingApp(run=run_of(collapse_stream))
    async with app.run_test(size=(100, 30)) as pilot:
        pane = app.query_one(CollapsePane)
        app.jump_to_length(4)
        await pilot.pause()
        assert pane.plot.marker == 4
        app.jump_to_length(5)
        await pilot.pause()
        assert pane.plot.marker == 4 and "no collapse length n = 5" in list(app._notifications)[-1].message


def test_view_and_export_of_a_collapse_file_without_torch(collapse_stream, tmp_path):
    """`coupling-tui export` of a collapse results file: the collapse pane is among the SVGs, with its numbers, and
    torch is never imported."""
    run = run_of(collapse_stream)
    path = results.save(run, tmp_path / "col.safetensors")
    code = f"""
import sys
from coupling_tui.tui.main import main
code = main(["export", {str(path)!r}, "--svg", {str(tmp_path / 'svg')!r}, "--size", "120x40"])
print(code, 'torch' in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-2:] == ["0", "False"]
    names = sorted(p.name for p in (tmp_path / "svg").iterdir())
    assert "col-collapse.svg" in names and "col-coupling.svg" not in names
    text = svg_text((tmp_path / "svg" / "col-collapse.svg").read_text())
    assert "n = 8 vs 9 repeats" in text and f"float32 {run.arrays['collapse.diff'][0, 2, 1]:.3g}" in text  # L∞ first
