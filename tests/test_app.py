"""Pilot tests of CouplingApp: streaming layer by layer, token keys, cancel, save, errors, view mode, help."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from textual.widgets import ProgressBar, Static
from textual.worker import WorkerState

from coupling_tui.core.results import run_file as results
from coupling_tui.core.errors import UserError
from coupling_tui.core.results.run import Run
from coupling_tui.tui.actions import ACTIONS
from coupling_tui.tui.app import CouplingApp
from coupling_tui.tui.help_screen import HelpScreen
from coupling_tui.tui.panes.readout import middle_cut
from coupling_tui.tui.panes.coupling import CouplingPane
from coupling_tui.tui.panes.spectrum import NO_JACOBIANS, SpectrumPane
from coupling_tui.tui.panes.tokens import TokensPane
from coupling_tui.tui.panes.trajectory import TrajectoryPane
from tests.fakes import fake_events


class GatedJob:
    """An engine job whose LayerDone events each wait for one ``release()``; records when it is closed."""

    PATIENCE_S = 10.0
    """A layer not released within this time ends the stream, so a failed test never leaves a thread blocked."""

    def __init__(self, events: list) -> None:
        self.events = events
        self.gate = threading.Semaphore(0)
        self.stop = threading.Event()
        """Set at teardown so a blocked worker thread ends at once."""
        self.closed = False
        self.yielded = 0
        """How many events the consumer pulled."""

    def release(self, n: int = 1) -> None:
        for _ in range(n):
            self.gate.release()

    def __call__(self):
        return self._events()

    def _events(self):
        try:
            self.yielded = 1
            yield self.events[0]
            for event in self.events[1:]:
                for _ in range(int(self.PATIENCE_S / 0.02)):
                    if self.gate.acquire(timeout=0.02) or self.stop.is_set():
                        break
                else:
                    return
                if self.stop.is_set():
                    return
                self.yielded += 1
                yield event
        finally:
            self.closed = True


@pytest.fixture
async def gated():  # async, so it is torn down before the event loop that waits for the worker threads
    jobs: list[GatedJob] = []

    def make(**kwargs) -> GatedJob:
        jobs.append(GatedJob(fake_events(**kwargs)))
        return jobs[-1]

    yield make
    for job in jobs:
        job.stop.set()


async def wait_until(pilot, predicate, timeout: float = 5.0) -> None:
    """Let the app run until ``predicate()`` holds; fail after ``timeout`` seconds."""
    for _ in range(int(timeout / 0.01)):
        if predicate():
            return
        await pilot.pause(0.01)
    raise AssertionError(f"timed out waiting for {predicate.__doc__ or predicate} (status: {pilot.app.state_text!r})")


def spy_notifications(app: CouplingApp) -> list[tuple[str, str]]:
    """Record (message, severity) of every ``app.notify`` call, still showing them."""
    notes: list[tuple[str, str]] = []
    notify = app.notify

    def record(message: str, **kwargs) -> None:
        notes.append((message, kwargs.get("severity", "information")))
        notify(message, **kwargs)

    app.notify = record  # type: ignore[method-assign]
    return notes


def finished_run(**kwargs) -> Run:
    """A complete run built by applying a fresh synthetic stream."""
    run = Run()
    for event in fake_events(**kwargs):
        run.apply(event)
    return run


async def test_trajectory_fills_in_layer_by_layer(gated):
    job = gated(n_layers=4, n_tokens=5)
    expected = finished_run(n_layers=4, n_tokens=5).arrays["trajectory.norms"]
    app = CouplingApp(job=job)
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.query_one(TrajectoryPane)
        await wait_until(pilot, lambda: pane.plotted[0] == [0])
        assert app.selected_token == 4  # a run opens on its last token, where the papers measure
        await pilot.press("home")
        assert app.state_text == "computing layers 0/4"
        assert app.query_one(ProgressBar).display
        for k in range(1, 5):
            job.release()
            await wait_until(pilot, lambda: app.results.layers_done == k)
            depths, values = pane.plotted
            assert depths == list(range(k + 1))
            np.testing.assert_allclose(values, expected[: k + 1, 0], rtol=1e-6)
            np.testing.assert_allclose(values, app.results.arrays["trajectory.norms"][: k + 1, 0], rtol=1e-6)
            assert app.state_text == f"computing layers {k}/4"
            assert app.query_one(ProgressBar).progress == k
        job.release()
        await wait_until(pilot, lambda: app.results.finished)
        assert app.state_text == "done in 0.5 s"
        assert not app.query_one(ProgressBar).display
        assert app.compute_worker.state == WorkerState.SUCCESS


async def test_token_keys_move_the_selection_and_both_panes_follow():
    run = finished_run(n_layers=3, n_tokens=25)
    app = CouplingApp(run=run)
    async with app.run_test(size=(80, 24)) as pilot:
        tokens, trajectory = app.query_one(TokensPane), app.query_one(TrajectoryPane)
        assert app.selected_token == 24
        steps = [("home", 0), ("right", 1), ("l", 2), ("right_square_bracket", 12), ("end", 24), ("right", 24),
                 ("right_square_bracket", 24), ("left", 23), ("h", 22), ("left_square_bracket", 12),
                 ("home", 0), ("left", 0), ("left_square_bracket", 0)]
        for key, expected in steps:
            await pilot.press(key)
            assert app.selected_token == expected, key
            assert tokens.selected == expected
            assert trajectory.border_subtitle == f"token {expected} '·w{expected}' · trained"
            np.testing.assert_allclose(trajectory.plotted[1], run.norms(expected), rtol=1e-6)


@pytest.mark.parametrize("existing", [b"previous results", None])
async def test_escape_cancels_without_saving(gated, tmp_path: Path, existing: bytes | None):
    save_path = tmp_path / "run.safetensors"
    if existing is not None:
        save_path.write_bytes(existing)
    job = gated(n_layers=4, n_tokens=5)
    app = CouplingApp(job=job, save_path=save_path)
    async with app.run_test(size=(80, 24)) as pilot:
        job.release(2)
        await wait_until(pilot, lambda: app.results.layers_done == 2)
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.compute_worker.state == WorkerState.CANCELLED)
        assert app.state_text == "cancelled after 2/4 layers — nothing saved"
        assert not app.query_one(ProgressBar).display
        job.release(3)  # the engine would go on: the worker must stop reading and close it
        await wait_until(pilot, lambda: job.closed)
        assert job.yielded == 4  # RunStarted, 2 layers, then one more pulled, dropped, and the stream closed
        await pilot.pause(0.05)
        assert app.results.layers_done == 2 and not app.results.finished
        await pilot.press("home", "right")
        assert app.query_one(TrajectoryPane).plotted[0] == [0, 1, 2]
        assert app.query_one(TrajectoryPane).border_subtitle == "token 1 '·w1' · trained"
        assert (save_path.read_bytes() if save_path.exists() else None) == existing
        assert list(tmp_path.iterdir()) == ([save_path] if existing is not None else [])
        await pilot.press("q")
        await pilot.pause()
        assert app._exit


async def test_finished_job_saves_a_file_that_loads_back(tmp_path: Path):
    events = fake_events(n_layers=4, n_tokens=5)
    save_path = tmp_path / "out" / "run.safetensors"
    app = CouplingApp(job=lambda: iter(events), save_path=save_path)
    notes = spy_notifications(app)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: "saved to" in app.state_text)
        assert app.state_text == f"done in 0.5 s · saved to {save_path}"
        assert notes == [(f"computed in 0.5 s · saved to {save_path}", "information")]
    loaded = results.load(save_path)
    assert loaded.finished and loaded.layers_done == 4
    expected = finished_run(n_layers=4, n_tokens=5).arrays["trajectory.norms"]
    np.testing.assert_array_equal(loaded.arrays["trajectory.norms"], expected)
    assert not np.isnan(loaded.arrays["trajectory.norms"]).any()


async def test_a_failed_save_is_an_error_notification(tmp_path: Path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where a folder should be")
    app = CouplingApp(job=lambda: iter(fake_events()), save_path=blocker / "run.safetensors")
    notes = spy_notifications(app)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: "not saved" in app.state_text)
        assert app.state_text == "done in 0.5 s · not saved"
        assert len(notes) == 1 and notes[0][1] == "error" and notes[0][0].startswith(f"cannot write {blocker}")
        assert app.is_running and app.results.finished


@pytest.mark.parametrize("error, shown", [
    (UserError("cannot load fake/model", "check the model name"),
     "error: cannot load fake/model — check the model name"),
    (RuntimeError("no closing tag [/INST] in [b]prompt"), "error: RuntimeError: no closing tag [/INST] in [b]prompt"),
])
async def test_a_failing_job_shows_one_line_and_the_app_stays_up(tmp_path: Path, error, shown):
    events = fake_events(n_layers=4, n_tokens=5)

    def job():
        yield events[0]
        yield events[1]
        raise error

    save_path = tmp_path / "run.safetensors"
    app = CouplingApp(job=job, save_path=save_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: app.state_text.startswith("error"))
        assert app.state_text == shown
        await pilot.pause()                                 # laid out for its new width (it cuts to fit, item 5)
        state = app.query_one("#run-state", Static)
        assert str(state.render()) == middle_cut(shown, state.content_size.width)  # literally, not as markup
        assert str(state.render()).endswith(shown[-20:])
        assert app.is_running and app._exception is None
        assert app.results.layers_done == 1
        await pilot.press("home", "right")
        assert app.selected_token == 1
        assert "Traceback" not in app.export_screenshot()
    assert not save_path.exists()


async def test_view_mode_draws_everything_and_starts_no_worker():
    run = finished_run(n_layers=6, n_tokens=4)
    app = CouplingApp(run=run)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert len(app.workers) == 0
        assert app.query_one(TrajectoryPane).plotted[0] == list(range(7))
        assert not app.query_one(ProgressBar).display
        assert app.state_text == "saved run · complete · 6/6 layers"
        assert "escape" not in app.screen.active_bindings  # nothing to cancel


async def test_help_opens_with_question_mark_and_closes_with_escape():
    app = CouplingApp(run=finished_run())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        assert app.screen.pane_help == CouplingPane.HELP  # the Coupling pane has the focus at start
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, HelpScreen)
        app.query_one(TokensPane).focus()
        await pilot.press("f1")
        await pilot.pause()
        assert app.screen.pane_help == TokensPane.HELP
        await pilot.press("q")
        await pilot.pause()
        assert not isinstance(app.screen, HelpScreen) and app.is_running


def test_bindings_come_from_the_action_registry():
    assert [b.id for b in CouplingApp.BINDINGS] == [a.id for a in ACTIONS]
    assert {b.key for b in CouplingApp.BINDINGS} >= {"left,h", "right,l", "escape", "q", "question_mark,f1",
                                                     "up,k", "down,j", "1", "2", "3"}


async def test_layer_keys_move_the_selection_clamped_and_the_panes_follow():
    run = finished_run(n_layers=5, n_tokens=6, k=8)
    S = run.arrays["jacobian.singular_values"]
    app = CouplingApp(run=run)
    async with app.run_test(size=(100, 30)) as pilot:
        spectrum, trajectory = app.query_one(SpectrumPane), app.query_one(TrajectoryPane)
        await pilot.press("home", "right", "right")
        for key, expected in zip("up down j down down j k up k up k".split(), [0, 1, 2, 3, 4, 4, 3, 2, 1, 0, 0]):
            await pilot.press(key)
            assert (app.selected_layer, app.selected_token) == (expected, 2), key
            xs, ys = spectrum.by_index.plotted
            assert xs == list(range(1, 9)) and ys[0] == pytest.approx((1 + expected) * 1.2)
            np.testing.assert_array_equal(np.float32(ys), S[expected, 2])
            np.testing.assert_array_equal(np.float32(spectrum.by_depth.plotted[1]), S[:, 2, 0])
            assert spectrum.by_depth.marker == expected and trajectory.marker == expected + 1
            assert spectrum.subtitle == f"layer {expected} · token 2 '·w2' · trained"


async def test_spectrum_waits_for_the_selected_layer_while_streaming(gated):
    job = gated(n_layers=4, n_tokens=5, k=6)
    S = finished_run(n_layers=4, n_tokens=5, k=6).arrays["jacobian.singular_values"]
    app = CouplingApp(job=job)
    async with app.run_test(size=(120, 40)) as pilot:
        spectrum = app.query_one(SpectrumPane)
        await wait_until(pilot, lambda: app.results.n_layers == 4)
        await pilot.press("home", "down", "down")
        assert (app.selected_layer, spectrum.message) == (2, "layer 2 not computed yet")
        for done in (1, 2):
            job.release()
            await wait_until(pilot, lambda: app.results.layers_done == done)
            assert spectrum.message == "layer 2 not computed yet" and spectrum.by_depth.plotted[0] == list(range(done))
            np.testing.assert_array_equal(np.float32(spectrum.by_depth.plotted[1]), S[:done, 0, 0])
        job.release()
        await wait_until(pilot, lambda: app.results.layers_done == 3)
        np.testing.assert_array_equal(np.float32(spectrum.by_index.plotted[1]), S[2, 0])
        assert spectrum.message.startswith("σ₁ 3 · σ₆ ") and spectrum.message.endswith("top 6 · closed-form")
        await pilot.press("down")
        assert spectrum.message == "layer 3 not computed yet"
        job.release(2)
        await wait_until(pilot, lambda: app.results.finished)
        assert spectrum.message.startswith("σ₁ 4 · σ₆ ") and spectrum.by_depth.plotted[0] == [0, 1, 2, 3]


async def test_a_run_without_jacobians_says_so_and_keys_still_work():
    app = CouplingApp(run=finished_run(n_layers=3, n_tokens=4))
    async with app.run_test(size=(80, 24)) as pilot:
        spectrum = app.query_one(SpectrumPane)
        assert spectrum.message == NO_JACOBIANS and not spectrum.plots.display
        await pilot.press("3", "home", "down", "down", "down", "j", "right", "up", "question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen) and app.screen.pane_help == SpectrumPane.HELP
        await pilot.press("escape")
        assert (app.selected_layer, app.selected_token) == (1, 1) and app.query_one(TrajectoryPane).marker == 2
        assert spectrum.message == NO_JACOBIANS and spectrum.by_index.plotted == ([], []) and app._exception is None


@pytest.mark.parametrize("key, pane", [("1", CouplingPane), ("2", TrajectoryPane), ("3", SpectrumPane),
                                       ("5", TokensPane)])
async def test_number_keys_focus_the_panes_and_help_follows_the_focus(key, pane):
    app = CouplingApp(run=finished_run(k=4))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("3" if key != "3" else "1", key)
        assert isinstance(app.focused, pane)
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen) and app.screen.pane_help == pane.HELP
        rows = dict(app.screen.rows)                     # the keys table (a wrapping table since issue 20 item 5)
        assert rows["↑/k"].startswith("Select the previous layer") and rows["3"] == "Focus (and show) the Spectrum pane."
        assert {"↓/j", "1", "2"} <= set(rows) and len(rows) == len(ACTIONS)


def test_exactly_one_of_run_or_job():
    with pytest.raises(ValueError):
        CouplingApp()
    with pytest.raises(ValueError):
        CouplingApp(run=Run(), job=lambda: iter(()))


def test_tui_does_not_import_torch():
    code = "import sys, coupling_tui.tui.app; print('torch' in sys.modules, 'coupling_tui.core.engine.stream' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


async def test_real_engine_on_a_tiny_model_streams_and_saves(tiny_dir, tmp_path):
    """The whole path with the real engine: tiny model → engine worker → panes → results file."""
    from coupling_tui.core.engine import stream as engine
    from coupling_tui.core.load.models import ModelRequest, load

    loaded = load(ModelRequest(model=str(tiny_dir)))
    prompt = "Hello world, hello tokens!"
    out = tmp_path / "run.safetensors"
    app = CouplingApp(job=lambda: engine.stream(loaded, prompt), save_path=out)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: out.exists(), timeout=30)
        await pilot.press("end")
        xs, ys = app.query_one(TrajectoryPane).plotted
        sigmas = app.query_one(SpectrumPane).by_index.plotted[1]
    saved = results.load(out)
    last = saved.n_tokens - 1
    assert xs == list(range(saved.n_layers + 1))
    np.testing.assert_allclose(ys, saved.arrays["trajectory.norms"][:, last], rtol=1e-6)
    assert len(sigmas) > 0 and sigmas == [v for v in saved.arrays["jacobian.singular_values"][0, last] if v > 0]
    assert "".join(saved.token_texts) == prompt and saved.finished


@pytest.mark.parametrize("placement, shown", [
    ({"blocks": ["cuda:0", "cuda:0", "cpu"], "offloaded": [2]}, " · sharded: cuda:0 blocks 0–1, cpu 2"),
    ({"blocks": ["cuda:0"] * 3, "offloaded": []}, None),           # one device: nothing to say
    (None, None)])
async def test_the_status_line_names_a_sharded_placement(placement, shown):
    run = finished_run(n_layers=3, n_tokens=4)
    run.header["placement"] = placement
    app = CouplingApp(run=run)
    async with app.run_test(size=(160, 24)):
        info = str(app.query_one("#run-info", Static).render())
        assert info.startswith("fake/model (trained) · cpu · float32 · 4 tokens · 3 layers")
        assert (info.endswith(shown) if shown else "sharded" not in info), info
