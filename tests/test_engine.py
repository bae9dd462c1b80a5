"""The streaming engine: event order, what each layer carries, and the Run it fills (checked against the trace)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from coupling_tui.core import engine
from coupling_tui.core.events import LayerDone, RunFinished, RunStarted
from coupling_tui.core.models import ModelRequest, load
from coupling_tui.core.run import Run
from coupling_tui.core.trace import trace


@pytest.fixture(scope="module")
def loaded(tiny_dir):
    return load(ModelRequest(model=str(tiny_dir)))


def test_events_stream_one_layer_at_a_time(loaded):
    events = list(engine.stream(loaded, "The capital of France is Paris."))
    n_layers = loaded.info["n_layers"]
    assert isinstance(events[0], RunStarted) and isinstance(events[-1], RunFinished)
    assert [e.layer for e in events[1:-1]] == list(range(n_layers))
    assert all(isinstance(e, LayerDone) and e.n_layers == n_layers for e in events[1:-1])
    started = events[0]
    hidden = started.arrays["trajectory.hidden"]
    assert np.isfinite(hidden[0]).all() and np.isnan(hidden[1:]).all()  # only x^0 before any layer


def test_run_holds_the_trace_and_its_norms(loaded):
    prompt = "Hello world, hello tokens!"
    run = Run()
    for event in engine.stream(loaded, prompt):
        run.apply(event)
    ids = loaded.tokenizer(prompt)["input_ids"]
    expected = trace(loaded.model, loaded.adapter, torch.tensor([ids])).hidden.numpy()
    np.testing.assert_array_equal(run.arrays["trajectory.hidden"], expected)
    np.testing.assert_allclose(run.arrays["trajectory.norms"], np.linalg.norm(expected.astype(np.float64), axis=-1),
                               rtol=1e-6)
    np.testing.assert_array_equal(run.arrays["tokens.ids"], ids)
    assert run.layers_done == run.n_layers == 3 and run.finished
    assert "".join(run.token_texts) == prompt
    assert run.header["model"]["family"] == "llama" and run.header["prompt"] == prompt
    logits = loaded.model(input_ids=torch.tensor([ids])).logits[0, -1]
    assert run.header["next_token"]["id"] == int(logits.argmax())


def test_long_prompt_is_cut_and_the_cut_is_recorded(loaded):
    prompt = "1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1"
    full = len(loaded.tokenizer(prompt)["input_ids"])
    started = next(engine.stream(loaded, prompt, max_tokens=5))
    assert started.header["tokens"]["ids"] == loaded.tokenizer(prompt)["input_ids"][:5]
    assert started.header["tokens"]["truncated_from"] == full > 5
    assert started.arrays["trajectory.hidden"].shape[1] == 5


def test_prompt_longer_than_the_context_is_cut_to_it(loaded):
    prompt = " ".join(["1"] * 300)  # the tiny model's context is 256 positions
    started = next(engine.stream(loaded, prompt, max_tokens=10_000))
    assert len(started.header["tokens"]["ids"]) == 256


def test_stopping_between_layers_stops_the_work(loaded):
    stream = engine.stream(loaded, "The capital of France is")
    next(stream), next(stream)
    stream.close()  # a consumer that stops iterating stops the engine
    with pytest.raises(StopIteration):
        next(stream)
