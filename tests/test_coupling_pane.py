"""The Coupling pane and SVG export: the cell under the cursor shows the stored value, keys change what is shown,
the heatmap's colours follow the values, exports are valid SVG with the screen's numbers, and they fail cleanly."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from coupling_tui.core.results import run_file as results
from coupling_tui.core.results.run import Run
from coupling_tui.tui.app import CouplingApp
from coupling_tui.tui.panes.coupling import CouplingPane
from coupling_tui.tui.panes.coupling_text import NO_COUPLING, ONLY_DEPTH
from coupling_tui.tui.panes.heatmap import CURSOR, MISSING, VIRIDIS, Heatmap, colour, window
from tests.fakes import fake_events


def coupled_run(baseline: bool = False, **kw) -> Run:
    run = Run()
    for event in fake_events(**{"n_layers": 6, "n_tokens": 7, "k": 4, "coupling": True, "baseline": baseline, **kw}):
        run.apply(event)
    return run


def svg_text(svg: str) -> str:
    """All the text an SVG shows (rich writes each run of cells as a <text> element; spaces as &#160;)."""
    root = ET.fromstring(svg)
    return "".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text")).replace("\xa0", " ")


async def test_cursor_cell_shows_the_stored_value_as_keys_move_it():
    run = coupled_run()
    depth = run.arrays["coupling.depth_k"]
    app = CouplingApp(run=run)
    async with app.run_test(size=(100, 30)) as pilot:
        pane = app.query_one(CouplingPane)
        assert pane.current is not None and pane.current.k == 4 and app.selected_token == 6
        assert pane.cursor_value == depth[1, 6, 0, 0] == 0          # the diagonal: a block against itself
        await pilot.press("down", "down", "shift+right", "L", "L", "L", "H")
        assert (app.selected_layer, pane.column["depth"]) == (2, 3)
        m = float(depth[1, 6, 2, 3])
        assert pane.cursor_value == m
        assert pane.message.startswith(f"layer 2 → 3: m = {m:.4f} · 1−m² = {1 - m * m:.4f} · Haar null m ≈ ")
        np.testing.assert_allclose(pane.heatmap.values, 1 - depth[1, 6].astype(np.float64) ** 2)
        assert pane.heatmap.cursor == (2, 3)
        await pilot.press(*["L"] * 10)                                  # clamped at the last layer
        assert pane.column["depth"] == 5 and pane.cursor_value == depth[1, 6, 2, 5]
        await pilot.press("K")                                          # K = 4 -> 2
        assert pane.current.k == 2 and pane.cursor_value == depth[0, 6, 2, 5]
        await pilot.press("t")                                          # token average
        assert pane.cursor_value == pytest.approx(run.arrays["coupling.depth_mean_k"][0, 2, 5])
        assert "token average" in pane.subtitle
        await pilot.press("t", "home")                                  # back to one token: token 0
        assert pane.cursor_value == depth[0, 0, 2, 5]
        await pilot.press("m")
        np.testing.assert_allclose(pane.heatmap.values, depth[0, 0].astype(np.float64))
        assert pane.subtitle.endswith("· m")


async def test_token_view_shows_token_coupling_at_the_selected_layer():
    run = coupled_run()
    tok = run.arrays["coupling.token_k"]
    app = CouplingApp(run=run)
    async with app.run_test(size=(100, 30)) as pilot:
        pane = app.query_one(CouplingPane)
        await pilot.press("v", "down", "down", "down", "left", "left", "L", "L")
        assert pane.view == "token" and pane.current.axis == "token" and pane.current.values.shape == (7, 7)
        assert pane.cursor_value == tok[1, 3, 4, 2]                     # layer 3, row token 4, column token 2
        assert pane.message.startswith("token 4 → 2: m = ")
        assert pane.subtitle == "trained · token · layer 3 · K=4 · 1-m²"
        await pilot.press("v", "v")                                     # the adjacent and distance plots
        assert pane.view == "distance"
        await pilot.press("v")                                          # back: the column is the pair's column
        assert pane.view == "depth" and pane.column["depth"] == 3       # layer (offset 0 from the row layer 3)


async def test_random_init_toggle_uses_the_baseline_and_one_scale_for_both():
    run = coupled_run(baseline=True)
    app = CouplingApp(run=run)
    async with app.run_test(size=(100, 30)) as pilot:
        pane = app.query_one(CouplingPane)
        await pilot.press("down", "L", "L", "L")
        trained_scale = pane.current.scale
        await pilot.press("r")
        assert pane.baseline and "random-init" in pane.subtitle
        assert pane.cursor_value == run.arrays["random_init.coupling.depth_k"][1, 6, 1, 3]
        assert pane.current.scale == trained_scale                     # toggling keeps the colour scale
        both = np.concatenate([1 - run.arrays[n][1, 6][~np.eye(6, dtype=bool)].astype(np.float64) ** 2
                               for n in ("coupling.depth_k", "random_init.coupling.depth_k")])
        assert trained_scale == pytest.approx((both.min(), both.max()))


async def test_runs_without_coupling_or_baseline_say_so():
    app = CouplingApp(run=coupled_run(coupling=False))
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.query_one(CouplingPane)
        assert pane.message == NO_COUPLING and pane.current is None
        await pilot.press("K", "t", "v", "r", "L", "m")
        assert pane.message == NO_COUPLING and app._exception is None
    run = coupled_run()
    del run.arrays["coupling.token_k"]
    app = CouplingApp(run=run)
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.query_one(CouplingPane)
        await pilot.press("r")
        assert not pane.baseline                                        # no baseline: nothing toggles
        assert any("random-baseline" in n.message for n in app._notifications)
        await pilot.press("v")                                          # no token view: the profiles next
        assert pane.view == "adjacent" and not any(n.message == ONLY_DEPTH for n in app._notifications)


def test_colour_scale_ends_missing_values_and_windows():
    assert colour(0.0, 0.0, 1.0) == VIRIDIS[0] and colour(1.0, 0.0, 1.0) == VIRIDIS[-1]
    assert colour(5.0, 0.0, 1.0) == VIRIDIS[-1] and colour(-5.0, 0.0, 1.0) == VIRIDIS[0]   # clipped
    assert colour(math.nan, 0.0, 1.0) == MISSING and colour(0.3, math.nan, math.nan) == MISSING
    assert window(30, 26, 0) == (0, 26) and window(30, 26, 29) == (4, 26) and window(30, 26, 15) == (2, 26)
    assert window(5, 26, 3) == (0, 5)


def test_heatmap_cells_get_the_colours_of_their_values():
    values = np.array([[0.0, 1.0, np.nan], [0.5, 0.0, 1.0], [1.0, 0.25, 0.0]])
    hm = Heatmap()
    hm.set_matrix(values, (0.0, 1.0), (1, 2), "layer")
    text = _render(hm, width=4 + 9, height=5 + 2)                       # 3 px per cell: 9 columns, 9 half-rows
    lines = text.split("\n")
    assert len(lines) == 5 + 2 and all(len(line.plain) <= 13 for line in lines[:5])
    cell = lambda r, c: _cell_colour(text, r * 3, 4 + c * 3)          # noqa: E731
    assert cell(0, 1) == VIRIDIS[-1] and cell(0, 0) == VIRIDIS[0] and cell(0, 2) == MISSING
    assert cell(1, 2) == CURSOR and cell(2, 1) == colour(0.25, 0.0, 1.0)
    assert lines[0].plain.startswith("  0 ") and lines[1].plain.startswith("▶ 1 ")


def _render(hm: Heatmap, width: int, height: int):
    return hm.render_at(width, height)


def _cell_colour(text, pixel_row: int, column: int) -> str:
    """The colour of pixel (row, column): fg of the ▀ on text row pixel_row // 2 if even, else its bg."""
    line = text.split("\n")[pixel_row // 2]
    style = line.get_style_at_offset(Console(), column)
    c = style.color if pixel_row % 2 == 0 else style.bgcolor
    return "#" + "".join(f"{v:02x}" for v in c.get_truecolor())


async def test_e_exports_the_focused_pane_as_valid_svg_with_the_screen_numbers(tmp_path):
    run = coupled_run()
    app = CouplingApp(run=run, export_dir=tmp_path, run_name="myrun")
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("down", "L", "e")
        await pilot.pause()
        pane = app.query_one(CouplingPane)
        path = tmp_path / "myrun-coupling.svg"
        text = svg_text(path.read_text())
        assert all(part in text for part in pane.message.split(" · "))  # "layer 1 → 1: m = 0.0000 · …" as on screen
        assert "Coupling" in text and "Trajectory" not in text             # the pane alone
        await pilot.press("E")
        await pilot.pause(0.5)
    names = sorted(p.name for p in tmp_path.iterdir())               # E after e: the group numbered, e's kept
    assert names == ["myrun-coupling-2.svg", "myrun-coupling.svg", "myrun-screen-2.svg", "myrun-spectrum-2.svg",
                     "myrun-tokens-2.svg", "myrun-trajectory-2.svg"]
    for name in names:
        ET.fromstring((tmp_path / name).read_text())                    # every file parses as XML
    assert "Spectrum" in svg_text((tmp_path / "myrun-spectrum-2.svg").read_text())  # shown for it on a short screen


async def test_export_into_an_unwritable_directory_fails_cleanly(tmp_path):
    (tmp_path / "a-file").write_text("not a directory")
    locked = tmp_path / "a-file" / "svg"                                 # unwritable even for root
    app = CouplingApp(run=coupled_run(), export_dir=locked, run_name="r")
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("e")
        await pilot.pause()
        assert any("cannot write" in n.message for n in app._notifications) and app._exception is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


async def test_export_failure_leaves_no_partial_file(tmp_path, monkeypatch):
    from coupling_tui.core import atomic

    def full_disk(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", full_disk)
    app = CouplingApp(run=coupled_run(), export_dir=tmp_path, run_name="r")
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("e")
        await pilot.pause()
        assert any("No space left" in n.message for n in app._notifications)
    assert list(Path(tmp_path).iterdir()) == []


async def test_a_saved_run_shows_the_same_cell_as_the_live_one(tmp_path):
    run = coupled_run()
    back = results.load(results.save(run, tmp_path / "r.safetensors"))
    app = CouplingApp(run=back)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("down", "down", "L")
        assert app.query_one(CouplingPane).cursor_value == run.arrays["coupling.depth_k"][1, 6, 2, 1]


def test_headless_export_command_writes_every_pane(tmp_path):
    import subprocess
    import sys

    run = coupled_run()
    saved = results.save(run, tmp_path / "myrun.safetensors")
    out = subprocess.run([sys.executable, "-m", "coupling_tui.tui.main", "export", str(saved), "--svg",
                          str(tmp_path / "svg"), "--size", "120x40", "--token", "2", "--layer", "3"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    names = sorted(p.name for p in (tmp_path / "svg").iterdir())
    assert names == [f"myrun-{p}.svg" for p in ("coupling", "screen", "spectrum", "tokens", "trajectory")]
    assert len(out.stdout.split()) == 5
    text = svg_text((tmp_path / "svg" / "myrun-coupling.svg").read_text())
    m = float(run.arrays["coupling.depth_k"][1, 2, 3, 0])
    assert f"layer 3 → 0: m = {m:.4f}" in text and "token 2" in text
    bad = subprocess.run([sys.executable, "-m", "coupling_tui.tui.main", "export", str(tmp_path / "nope"),
                          "--svg", str(tmp_path / "svg2")], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "cannot open" in bad.stderr and "Traceback" not in bad.stderr
