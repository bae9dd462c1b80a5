"""A prompt set through the real engine on a tiny model: events tagged by prompt, progress as prompts × layers,
each prompt's run the same as a single run, the aggregate's scalar the engine's, and closing mid-batch stops it."""

from __future__ import annotations

import numpy as np
import pytest

from coupling_tui.core.engine import batch
from coupling_tui.core.engine import stream as engine
from coupling_tui.core.results.aggregate import prompt_scalars
from coupling_tui.core.cost import RunCost
from coupling_tui.core.cli.cost_check import set_cost
from coupling_tui.core.results.events import (BatchFinished, BatchStarted, LayerDone, PromptStarted, RunFinished, RunStarted)
from coupling_tui.core.load.models import ModelRequest, load
from coupling_tui.core.results.prompt_set import PromptSet
from coupling_tui.core.options.prompts import Prompt
from coupling_tui.core.options.run_options import RunOptions
from coupling_tui.core.results.run import Run

PROMPTS = [Prompt("The capital of France is", "capital", "f.jsonl:1", "f.jsonl"),
           Prompt("1 1 1 1 1 1 1 1", "ones", "f.jsonl:2", "f.jsonl")]
OPTIONS = RunOptions(top_k=8, token_coupling=False)


@pytest.fixture(scope="module")
def loaded(tiny_dir):
    return load(ModelRequest(model=str(tiny_dir)))


@pytest.fixture(scope="module")
def streamed(loaded):
    return list(batch.stream_prompts(loaded, PROMPTS, OPTIONS.with_params(model="tiny")))


def test_events_are_tagged_by_prompt_in_order(streamed):
    kinds = [type(e).__name__ for e in streamed]
    L = 3
    one = ["PromptStarted", "RunStarted"] + ["LayerDone"] * L + ["RunFinished"]
    assert kinds == ["BatchStarted"] + one + one + ["BatchFinished"]
    assert streamed[0] == BatchStarted(labels=("capital", "ones"), texts=tuple(p.text for p in PROMPTS))
    assert [(e.index, e.n_prompts) for e in streamed if isinstance(e, PromptStarted)] == [(0, 2), (1, 2)]
    params = [e.header["params"] for e in streamed if isinstance(e, RunStarted)]
    assert [p["prompt_set"] for p in params] == [
        {"index": 0, "n_prompts": 2, "label": "capital", "source": "f.jsonl:1"},
        {"index": 1, "n_prompts": 2, "label": "ones", "source": "f.jsonl:2"}]
    assert all(p["prompt_file"] == "f.jsonl" and p["model"] == "tiny" for p in params)
    assert isinstance(streamed[-1], BatchFinished) and streamed[-1].seconds > 0


def test_progress_counts_prompts_times_layers(streamed):
    pset, seen = PromptSet(), []
    for event in streamed:
        pset.apply(event)
        if isinstance(event, LayerDone):
            seen.append((pset.progress_text(), pset.steps_done, pset.n_steps))
    assert seen[0] == ("prompt 1/2 · layers 1/3", 1, 6)       # the second prompt's steps guessed from the first
    assert seen[-1] == ("prompt 2/2 · layers 3/3", 6, 6)
    assert pset.finished and [r.finished for r in pset.runs] == [True, True]
    assert pset.entry_text(2) == "aggregate of 2 prompts" and pset.entry_text(1) == "prompt 2/2 · ones"


def test_each_prompt_is_the_single_run_and_the_aggregate_uses_its_scalar(streamed, loaded):
    pset = PromptSet()
    for event in streamed:
        pset.apply(event)
    for prompt, run in zip(PROMPTS, pset.runs):
        alone = Run()
        for event in engine.stream(loaded, prompt.text, OPTIONS):
            alone.apply(event)
        assert run.token_texts == alone.token_texts
        np.testing.assert_array_equal(run.arrays["trajectory.norms"], alone.arrays["trajectory.norms"])
        np.testing.assert_allclose(run.arrays["coupling.depth_k"], alone.arrays["coupling.depth_k"], rtol=1e-5)
        ours = prompt_scalars(run)["all_tokens"]
        assert ours["offdiag"] == pytest.approx(run.header["coupling_scalar"]["offdiag"], rel=1e-6)
    agg = pset.aggregate.header["aggregate"]
    values = [r.header["coupling_scalar"]["offdiag"] for r in pset.runs]
    assert agg["scalar"]["all_tokens"]["offdiag"]["mean"] == pytest.approx(np.mean(values), rel=1e-6)
    assert agg["scalar"]["all_tokens"]["offdiag"]["std"] == pytest.approx(np.std(values, ddof=1), rel=1e-5)


def test_closing_mid_batch_closes_the_running_prompt_and_starts_no_other():
    closed = []

    def stream(loaded, text, options=None, **kw):
        try:
            yield RunStarted(header={"prompt": text}, arrays={})
            for layer in range(5):
                yield LayerDone(layer=layer, n_layers=5)
            yield RunFinished(seconds=0.1)
        finally:
            closed.append(text)

    events = batch.stream_prompts(None, PROMPTS, stream=stream)
    pulled = [next(events) for _ in range(6)]         # BatchStarted, PromptStarted, RunStarted, 3 layers
    assert isinstance(pulled[-1], LayerDone) and pulled[-1].layer == 2
    events.close()
    assert closed == [PROMPTS[0].text]
    assert list(events) == []


def test_a_sets_cost_adds_the_times_and_keeps_the_other_prompts_results():
    a = RunCost(memory={"weights": 100.0, "results file": 10.0}, seconds={"Jacobians": 2.0, "top-K": 1.0})
    b = RunCost(memory={"weights": 100.0, "results file": 30.0, "dense-J history": 50.0}, seconds={"Jacobians": 4.0})
    cost = set_cost([a, b, a])
    assert cost.seconds == {"Jacobians": 8.0, "top-K": 2.0}
    assert cost.memory == {"weights": 100.0, "results file": 30.0, "dense-J history": 50.0,
                           "other prompts' results": 20.0}
