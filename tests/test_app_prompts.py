"""Pilot tests of a prompt set in the explorer: prompt 1 fills while the others compute, p/P switch prompts and
the aggregate (every pane follows), the set is saved whole, and a cancel mid-batch writes nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from textual.widgets import ProgressBar, Static
from textual.worker import WorkerState

from coupling_tui.core.results import set_file as set_results
from coupling_tui.tui.app import CouplingApp
from coupling_tui.tui.panes.coupling import CouplingPane
from coupling_tui.tui.panes.tokens import TokensPane
from tests.test_app import GatedJob, wait_until
from tests.test_set_results import batch_events, filled


@pytest.fixture
async def gated_batch():
    jobs: list[GatedJob] = []

    def make() -> GatedJob:
        jobs.append(GatedJob(batch_events()))
        return jobs[-1]

    yield make
    for job in jobs:
        job.stop.set()


def info(app) -> str:
    return str(app.query_one("#run-info", Static).render())


async def test_a_set_streams_then_p_switches_prompts_and_the_aggregate(gated_batch, tmp_path: Path):
    job = gated_batch()
    out = tmp_path / "set"
    app = CouplingApp(job=job, save_path=out)
    async with app.run_test(size=(120, 40)) as pilot:
        job.release(3)                       # PromptStarted, RunStarted, layer 0 of prompt 1
        await wait_until(pilot, lambda: app.results.layers_done == 1)
        assert app.state_text == "computing prompt 1/2 · layers 1/4"
        assert app.query_one(ProgressBar).total == 8 and app.query_one(ProgressBar).progress == 1
        assert info(app).startswith("prompt 1/2 · prose · fake/model")
        job.release(100)
        await wait_until(pilot, lambda: "saved to" in app.state_text)
        expected = filled()
        pane = app.query_one(CouplingPane)
        np.testing.assert_array_equal(pane.current.m, expected.runs[0].arrays["coupling.depth_k"][1, 4])
        await pilot.press("p")
        assert info(app).startswith("prompt 2/2 · code / 2") and app.selected_token == 6   # still the last token
        np.testing.assert_array_equal(pane.current.m, expected.runs[1].arrays["coupling.depth_k"][1, 6])
        assert len(app.query_one(TokensPane).cells) == 7
        await pilot.press("p")
        assert info(app).startswith("aggregate of 2 prompts")
        last = np.stack([r.arrays["coupling.depth_k"][1, -1] for r in expected.runs])
        np.testing.assert_allclose(pane.current.m, last.mean(axis=0), rtol=1e-6)
        await pilot.press("down", "L", "L")
        std = last.std(axis=0, ddof=1)[1, 2]
        assert pane.message == (f"layer 1 → 2: m = {last.mean(axis=0)[1, 2]:.4f} ± {std:.4f} (mean ± std over 2) "
                                f"· 1−m² = {1 - last.mean(axis=0)[1, 2] ** 2:.4f}")
        assert not app.query_one(TokensPane).display or not app.query_one(TokensPane).region.area
        await pilot.press("t")
        avg = np.stack([r.arrays["coupling.depth_mean_k"][1] for r in expected.runs]).mean(axis=0)
        np.testing.assert_allclose(pane.current.m, avg, rtol=1e-6)
        assert "token average" in pane.subtitle
        await pilot.press("p")
        assert info(app).startswith("prompt 1/2 · prose")
        await pilot.press("P")
        assert info(app).startswith("aggregate")
    saved = set_results.load(out)
    assert saved.labels == ["prose", "code / 2"] and [r.n_tokens for r in saved.runs] == [5, 7]


async def test_cancel_mid_batch_saves_nothing(gated_batch, tmp_path: Path):
    job = gated_batch()
    app = CouplingApp(job=job, save_path=tmp_path / "set")
    async with app.run_test(size=(100, 30)) as pilot:
        job.release(10)                      # prompt 1 whole (7 events), then PromptStarted, RunStarted, a layer
        await wait_until(pilot, lambda: app.prompt_set is not None and app.prompt_set.runs[1].layers_done == 1)
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.compute_worker.state == WorkerState.CANCELLED)
        assert app.state_text == "cancelled in prompt 2/2 after 1/4 layers — nothing saved"
        job.release(100)
        await wait_until(pilot, lambda: job.closed)
        await pilot.pause(0.05)
        assert list(tmp_path.iterdir()) == []
        await pilot.press("p")               # what arrived stays on screen and can be browsed
        assert info(app).startswith("prompt 2/2")


async def test_a_saved_set_opens_on_its_aggregate_and_a_single_run_has_no_prompt_keys(tmp_path: Path):
    from coupling_tui.tui.main import view_app
    from tests.test_app import finished_run

    path = set_results.save(filled(), tmp_path / "set")
    app = view_app(str(path))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert info(app).startswith("aggregate of 2 prompts") and app.check_action("step_prompt", (1,))
        assert app.state_text.startswith("saved prompt set · 2/2 prompts complete")
        await pilot.press("p")
        assert info(app).startswith("prompt 1/2 · prose")
    single = CouplingApp(run=finished_run(n_layers=3, n_tokens=4))
    async with single.run_test(size=(100, 30)) as pilot:
        assert not single.check_action("step_prompt", (1,))
