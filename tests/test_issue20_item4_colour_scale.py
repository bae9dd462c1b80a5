"""Issue 20 item 4: the coupling heatmap's colour scale. The auto scale (the matrix's off-diagonal range) paints the
diagonal's 1 − m² = 1 as its top colour without saying so; a fixed 0–1 scale (key ``s``, palette, ``--scale
fixed`` on the explorer, view and export command lines) lets runs be compared by eye, and the legend on screen says
which scale is on."""

from __future__ import annotations

import pytest

from coupling_tui.core.results import run_file as results
from coupling_tui.tui.actions import ACTIONS, help_rows, palette_entries
from coupling_tui.tui.app import CouplingApp
from coupling_tui.tui.main import build_explore_parser, build_export_parser, build_view_parser, main, view_app
from coupling_tui.tui.panes.heatmap import VIRIDIS
from tests.test_collapse_pane import screen_lines
from tests.test_coupling_pane import coupled_run, svg_text


def legend_line(app) -> str:
    """The heatmap legend as on screen: the line under the column axis."""
    return next(line for line in screen_lines(app) if "████" in line)


async def test_s_switches_auto_to_fixed_0_1_and_the_legend_says_which():
    run = coupled_run()
    app = CouplingApp(run=run)
    async with app.run_test(size=(120, 40)) as pilot:
        pane = app.coupling
        lo, hi = pane.current.scale                              # the off-diagonal range of this matrix
        assert lo < hi < 1 and pane.heatmap.scale == (lo, hi)
        line = legend_line(app)
        assert f"{lo:.3g} " in line and f" {hi:.3g} auto scale: off-diagonal range" in line, line
        await pilot.press("s")
        assert pane.heatmap.scale == (0.0, 1.0)
        line = legend_line(app)
        assert "0 ████" in line and "█ 1 fixed scale 0–1" in line, line
        assert pane.cursor_value == 0                            # the diagonal: 1 − m² = 1, the top colour
        await pilot.press("s")
        assert pane.heatmap.scale == (lo, hi) and "auto scale" in legend_line(app)


async def test_the_legend_names_its_scale_at_80x24():
    app = CouplingApp(run=coupled_run(), scale="fixed")
    async with app.run_test(size=(80, 24)):
        line = legend_line(app)
        assert "fixed" in line and line.count("│") == 4, line   # inside the pane, not cut by its border


def test_the_scale_key_is_in_the_registry_with_help_and_palette_entries():
    action = next(a for a in ACTIONS if a.id == "toggle-scale")
    assert action.keys == "s" and action.needs == "coupling"
    assert any(keys == "s" and "fixed 0–1" in text and "--scale fixed" in text for keys, text in help_rows())
    titles = {e.title: (e.method, e.args) for e in palette_entries()}
    assert titles["Colour scale: fixed 0–1"] == ("set_scale", ("fixed",))
    assert titles["Colour scale: auto"] == ("set_scale", ("auto",))


@pytest.mark.parametrize("build", [build_explore_parser, build_view_parser, build_export_parser])
def test_scale_flag_on_the_explorer_view_and_export_command_lines(build):
    required = {"build_view_parser": ["x.safetensors"], "build_export_parser": ["x.safetensors", "--svg", "d"]}
    base = required.get(build.__name__, [])
    assert build().parse_args(base).scale == "auto"
    assert build().parse_args(base + ["--scale", "fixed"]).scale == "fixed"
    with pytest.raises(SystemExit):
        build().parse_args(base + ["--scale", "log"])


async def test_view_scale_fixed_opens_on_the_fixed_scale(tmp_path):
    path = tmp_path / "run.safetensors"
    results.save(coupled_run(), path)
    app = view_app(str(path), str(tmp_path), scale="fixed")
    async with app.run_test(size=(120, 40)):
        assert app.coupling.heatmap.scale == (0.0, 1.0) and "fixed scale 0–1" in legend_line(app)


def test_export_scale_fixed_writes_the_fixed_legend(tmp_path):
    path = tmp_path / "run.safetensors"
    results.save(coupled_run(), path)
    assert main(["export", str(path), "--svg", str(tmp_path / "svg"), "--size", "120x40", "--scale", "fixed"]) == 0
    text = svg_text((tmp_path / "svg" / "run-coupling.svg").read_text())
    assert "fixed scale 0–1" in text and VIRIDIS[-1] in (tmp_path / "svg" / "run-coupling.svg").read_text().lower()
