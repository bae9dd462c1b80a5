"""The Sweep view (issue 19 item 4): ``coupling-tui view DIR`` and ``export DIR`` on a sweep, the view↔explorer
loop, and ``sweep --view`` streaming a live sweep into it. The sweep is tests/conftest.py's ``swept``."""

from __future__ import annotations

import json

import pytest

from tests.sweep_helpers import COMMON, rows_of
from tests.test_cli import cli


async def test_the_sweep_view_draws_the_scatter_and_opens_a_model(swept):
    from coupling_tui.core.results import sweep_table
    from coupling_tui.tui.panes.sweep_scatter import SweepScatter, points
    from coupling_tui.tui.sweep_app import SweepApp

    out = swept[0]
    table = sweep_table.load(out)
    app = SweepApp(table, out, out)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        scatter = app.query_one(SweepScatter)
        assert scatter.axes.x == "coupling_scalar_last_token" and scatter.axes.y == "score"
        assert len(points(table, scatter.axes)) == 4                     # the failed model has no point
        assert str(scatter.border_title).startswith("Sweep · fit: R² ")
        assert f"R² {table['fits']['coupling_scalar_last_token']['r2']:.3f}" in str(scatter.border_title)
        await pilot.press("t")                                            # the all-token mean instead
        assert scatter.axes.x == "coupling_scalar" and "all-token mean" in str(app.query_one("#sweep-status").render())
        await pilot.press("s")                                            # sorted by m last token
        models = app.query_one("#models")
        last = [table["rows"][i]["coupling_scalar_last_token"] for i in models.rows_shown[:4]]
        assert last == sorted(last)
        await pilot.press("down", "down", "down", "down", "enter")        # the failed model: nothing to open
        await pilot.pause()
        assert app.return_value is None and app.is_running
        assert models.selected == 4
        await pilot.press("up", "up", "up", "enter")
        await pilot.pause()
    chosen = app.return_value
    assert chosen.sort == 1 and chosen.pooling == "coupling_scalar"
    assert chosen.selected == models.rows_shown[1]


def test_enter_opens_the_models_run_and_esc_comes_back(swept, monkeypatch):
    """The loop of `view DIR`: the Sweep view's choice opens that model's results in the explorer (Esc there is
    BACK), and the Sweep view comes back with the same selection, sort and pooling; q quits."""
    from coupling_tui.tui import main as tui_main
    from coupling_tui.tui.app import BACK, CouplingApp
    from coupling_tui.tui.sweep_app import SweepApp, SweepView

    out = swept[0]
    seen, script = [], [SweepView(2, 1, "coupling_scalar"), BACK, None]

    def fake_run_app(app, **kw):
        seen.append(app)
        return script[len(seen) - 1]

    monkeypatch.setattr(tui_main, "run_app", fake_run_app)
    assert tui_main.view_sweep(out, out) == 0
    assert [type(a) for a in seen] == [SweepApp, CouplingApp, SweepApp]
    opened = seen[1]
    assert opened.back and opened.results.header["params"]["sweep"]["model"] == json.loads(
        (out / "sweep.json").read_text())["rows"][2]["model"]
    assert seen[2].view == SweepView(2, 1, "coupling_scalar")


async def test_esc_in_the_opened_run_returns_back(swept):
    from coupling_tui.tui.app import BACK
    from coupling_tui.tui.main import view_app

    row = rows_of(swept[0])[0]
    app = view_app(str(swept[0] / row["results"]))
    app.back = True
    async with app.run_test() as pilot:
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
    assert app.return_value == BACK


@pytest.mark.parametrize("size", ["80x24", "120x40"])
def test_export_writes_the_scatter_and_the_table(swept, tmp_path, size):
    out = cli("export", str(swept[0]), "--svg", str(tmp_path), "--size", size)
    assert out.returncode == 0, out.stderr
    names = sorted(p.name for p in tmp_path.glob("*.svg"))
    assert names == ["out-models.svg", "out-scatter.svg", "out-screen.svg"]
    text = (tmp_path / "out-scatter.svg").read_text()
    assert "fit:" in text and "R²" in text
    assert "random-init…" in (tmp_path / "out-models.svg").read_text()           # the twin told apart



def test_viewing_a_sweep_imports_no_torch(swept, tmp_path):
    import subprocess
    import sys

    code = ("import sys; from coupling_tui.tui.main import main; "
            f"code = main(['export', {str(swept[0])!r}, '--svg', {str(tmp_path)!r}]); "
            "print(code, sorted(m for m in ('torch', 'transformers', 'scipy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "0 []", out.stdout + out.stderr


async def test_a_live_sweep_streams_rows_into_the_view(sweep_names, tmp_path):
    """``sweep --view``: the Sweep view computes the sweep in its worker; rows appear as models finish, and the
    table it shows at the end is the one written to DIR."""
    import asyncio

    from coupling_tui.core.cli.sweep import build_sweep_parser, prepare_sweep
    from coupling_tui.tui.panes.sweep_models import SweepModels
    from coupling_tui.tui.sweep_app import SweepApp

    args = build_sweep_parser().parse_args(["-m", sweep_names[0], "-m", "/no/such/model", "-m", sweep_names[2],
                                            *COMMON, "-o", str(tmp_path / "o"), "--view"])
    said: list[str] = []
    prepared = prepare_sweep(args, said.append)
    app = SweepApp({"rows": [], "prompts": [], "fits": {}}, prepared.directory, tmp_path, live=prepared.drive)
    seen_rows = []
    async with app.run_test(size=(100, 30)) as pilot:
        for _ in range(600):
            await asyncio.sleep(0.1)
            seen_rows.append(len(app.table["rows"]))
            if not app.computing:
                break
        assert not app.computing and app.failure is None
        await pilot.pause()
        assert app.query_one(SweepModels).row_count == 3
    assert seen_rows[0] < 3 and sorted(seen_rows) == seen_rows              # rows arrived one by one
    assert [r["model"] for r in rows_of(tmp_path / "o")] == [sweep_names[0], "/no/such/model", sweep_names[2]]
    assert any(line.startswith("model 3/3") for line in said)


async def test_quitting_a_live_sweep_stops_it_between_events(tmp_path):
    import threading

    from coupling_tui.tui.sweep_app import SweepApp

    events, stopped = [], threading.Event()

    def endless(on_event):
        from coupling_tui.core.results.sweep import Sweep

        try:
            while True:
                on_event(Sweep())
                events.append(1)
                threading.Event().wait(0.02)
        finally:
            stopped.set()

    app = SweepApp({"rows": [], "prompts": [], "fits": {}}, tmp_path, tmp_path, live=endless)
    async with app.run_test() as pilot:
        await pilot.pause(0.3)
        assert app.computing and events
        await pilot.press("q")
    assert stopped.wait(5) and app.return_value is None
