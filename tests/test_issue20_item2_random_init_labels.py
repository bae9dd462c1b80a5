"""Issue 20 item 2: a run beside its random-init twin. Every pane shows the run its title names, and every title
names its run (model and trained/random-init): pane B's footer says random-init, ``r`` is refused in the compare
layout (it put the twin's values in pane A, titled trained), ``r`` then ``c`` lands on the trained run in pane A,
and in the one-run layout ``r`` switches the Trajectory and Spectrum panes to the twin too. A real run with its
baseline on the tiny Llama (3 blocks)."""

from __future__ import annotations

import pytest

from coupling_tui.core.results import compare
from coupling_tui.core.results import run_file as results
from coupling_tui.tui.main import view_app
from coupling_tui.tui.panes.coupling import CouplingPane
from coupling_tui.tui.panes.spectrum import SpectrumPane
from coupling_tui.tui.panes.trajectory import TrajectoryPane, values_title
from tests.test_app_compare import stored_m
from tests.test_compare import OPTIONS, PROMPT, folded, loaded  # noqa: F401 (fixture)


@pytest.fixture(scope="module")
def rb_file(loaded, tiny_dir, tmp_path_factory):  # noqa: F811
    """``rb.safetensors``: the tiny Llama computed with its random-init baseline."""
    from coupling_tui.core.engine import stream as engine
    from coupling_tui.core.load.models import ModelRequest, load

    baseline = load(ModelRequest(model=str(tiny_dir), random_init=True, seed=3))
    path = tmp_path_factory.mktemp("rb") / "rb.safetensors"
    results.save(folded(engine.stream(loaded, PROMPT, OPTIONS, baseline=baseline)), path)
    return path


def notes_of(app) -> list[str]:
    notes: list[str] = []
    app.notify = lambda message, **kw: notes.append(message)  # type: ignore[method-assign]
    return notes


async def test_view_random_init_names_each_pane_s_run_and_r_is_refused_in_the_compare_layout(rb_file, tmp_path):
    app = view_app(str(rb_file), str(tmp_path), "random-init")
    run = app.results
    twin = compare.random_init_run(run)
    async with app.run_test(size=(120, 40)) as pilot:
        a_pane, b_pane = app.coupling, app.query_one("#coupling-b", CouplingPane)
        name = run.header["model"]["source"].rstrip("/").rsplit("/", 1)[-1]
        assert a_pane.border_title == f"Coupling · A trained · {name}"       # what tells A and B apart first
        assert b_pane.border_title == f"Coupling · B random-init · {name}"
        assert a_pane.subtitle.startswith("trained · ") and b_pane.subtitle.startswith("random-init · ")  # was "trained"
        k, t = a_pane.current.k, app.selected_token
        trained_m = stored_m(run, k, t, app.selected_layer, a_pane.column["depth"])
        assert a_pane.cursor_value == pytest.approx(trained_m)
        notes = notes_of(app)
        await pilot.press("r")                              # was: the twin's values in pane A, titled trained
        assert len(notes) == 1 and "c goes back to the one-run layout, where r switches" in notes[0], notes
        assert a_pane.cursor_value == pytest.approx(trained_m) and not a_pane.baseline
        assert a_pane.subtitle.startswith("trained · ")
        assert b_pane.cursor_value == pytest.approx(stored_m(twin, k, t, app.selected_layer,
                                                             b_pane.column["depth"]))


async def test_r_then_c_from_the_one_run_layout_shows_the_trained_run_in_pane_a(rb_file, tmp_path):
    app = view_app(str(rb_file), str(tmp_path))
    run = app.results
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("r")
        assert app.coupling.baseline and app.coupling.subtitle.startswith("random-init · ")
        await pilot.press("c")
        assert app.screen.has_class("-compare")
        a_pane = app.coupling
        k, t = a_pane.current.k, app.selected_token
        assert a_pane.cursor_value == pytest.approx(stored_m(run, k, t, app.selected_layer, a_pane.column["depth"]))
        assert a_pane.border_title.startswith("Coupling · A trained · ") and a_pane.subtitle.startswith("trained · ")


async def test_r_in_the_one_run_layout_switches_trajectory_and_spectrum_to_the_twin(rb_file, tmp_path):
    app = view_app(str(rb_file), str(tmp_path))
    run = app.results
    twin = compare.random_init_run(run)
    async with app.run_test(size=(120, 50)) as pilot:
        trajectory, spectrum = app.query_one(TrajectoryPane), app.query_one(SpectrumPane)
        t, layer = app.selected_token, app.selected_layer
        assert trajectory.caption == values_title(run.trajectory_values(t))
        assert trajectory.subtitle.endswith("· trained") and spectrum.subtitle.endswith("· trained")
        assert values_title(twin.trajectory_values(t)) != trajectory.caption
        await pilot.press("r")
        assert trajectory.caption == values_title(twin.trajectory_values(t))     # was: still the trained values
        assert spectrum.message == SpectrumPane._numbers(twin, t, layer)
        assert spectrum.message != SpectrumPane._numbers(run, t, layer)
        assert trajectory.subtitle.endswith("· random-init") and spectrum.subtitle.endswith("· random-init")
        assert "(random-init)" in str(app.query_one("#run-info").render())
        await pilot.press("r")
        assert trajectory.caption == values_title(run.trajectory_values(t))
        assert spectrum.message == SpectrumPane._numbers(run, t, layer)


async def test_item5_at_80x24_the_titles_and_the_status_line_keep_trained_and_random_init(rb_file, tmp_path):
    """The compare layout on a run and its twin at 80×24: "trained" and "random-init" are never cut from the panes'
    titles or the status line (they were: "B tiny (random-i…", "B tiny (ran…")."""
    app = view_app(str(rb_file), str(tmp_path), "random-init")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        b_pane = app.query_one("#coupling-b", CouplingPane)
        shown = app.screen._compositor.render_strips()                  # noqa: SLF001 - the cells on screen
        text = "\n".join("".join(seg.text for seg in strip) for strip in shown)
        assert "B random-init" in text and "A trained" in text, text
        assert b_pane.border_title.startswith("Coupling · B random-init")
