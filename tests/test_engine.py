"""The streaming engine: event order, what each layer carries, and the Run it fills (checked against the trace)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from coupling_tui.core.engine import stream as engine
from coupling_tui.core.results.events import LayerDone, RunFinished, RunStarted
from coupling_tui.core.load.models import ModelRequest, load
from coupling_tui.core.results.run import Run
from coupling_tui.core.engine.trace import trace
from coupling_tui.core.options.run_options import RunOptions


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
    started = next(engine.stream(loaded, prompt, RunOptions(max_tokens=5)))
    assert started.header["tokens"]["ids"] == loaded.tokenizer(prompt)["input_ids"][:5]
    assert started.header["tokens"]["truncated_from"] == full > 5
    assert started.arrays["trajectory.hidden"].shape[1] == 5


def test_prompt_longer_than_the_context_is_cut_to_it(loaded):
    prompt = " ".join(["1"] * 300)  # the tiny model's context is 256 positions
    started = next(engine.stream(loaded, prompt, RunOptions(max_tokens=10_000)))
    assert len(started.header["tokens"]["ids"]) == 256


def test_stopping_between_layers_stops_the_work(loaded):
    stream = engine.stream(loaded, "The capital of France is")
    next(stream), next(stream)
    stream.close()  # a consumer that stops iterating stops the engine
    with pytest.raises(StopIteration):
        next(stream)


def _reference_J(loaded, prompt, layer, method):
    """J of every token at ``layer`` straight from the method module (each verified against float64 autograd in its
    own tests), to check the engine's plumbing: which layer, token and triplet lands where."""
    from coupling_tui.core.engine.jacobians.layers import LayerJacobians

    ids = torch.tensor([loaded.tokenizer(prompt)["input_ids"]])
    tr = trace(loaded.model, loaded.adapter, ids)
    jac = LayerJacobians(loaded, ids, tr.block_inputs, method)
    return jac.layer(layer, range(ids.shape[1])).double().numpy()


@pytest.mark.parametrize("family, method", [("llama", "closed-form"), ("llama", "autodiff"), ("gpt2", "autodiff"),
                                            ("gpt_neox", "auto")])
def test_layers_carry_exact_top_k_triplets(tmp_path, monkeypatch, family, method):
    from coupling_tui.core.engine.jacobians import layers
    from tests.tiny_models import save_tiny

    monkeypatch.setattr(layers, "DENSE_BUDGET_BYTES", 3 * 32 * 32 * 4)  # force token chunks of 3
    loaded = load(ModelRequest(model=str(save_tiny(family, tmp_path / family))))
    prompt = "Hello world, hello tokens!"
    run = Run()
    for event in engine.stream(loaded, prompt, RunOptions(top_k=5, jacobian_method=method, vector_budget_mb=0.012)):
        run.apply(event)
    S, keep = run.arrays["jacobian.singular_values"], run.arrays["jacobian.vector_tokens"]
    T = run.n_tokens
    assert S.shape == (3, T, 5) and np.isfinite(S).all()
    assert run.header["jacobian"]["method"] == ("autodiff" if family != "llama" else method)
    assert keep[-1] == T - 1 and 1 < len(keep) < T  # the budget keeps a few tokens, the last among them
    for layer in range(3):
        J = _reference_J(loaded, prompt, layer, run.header["jacobian"]["method"])
        np.testing.assert_allclose(S[layer], np.linalg.svd(J, compute_uv=False)[:, :5], rtol=2e-4, atol=1e-6)
        np.testing.assert_allclose(run.arrays["jacobian.frobenius"][layer], np.linalg.norm(J, axis=(1, 2)),
                                   rtol=1e-5)
        U, V = run.arrays["jacobian.U"][layer], run.arrays["jacobian.V"][layer]
        for i, t in enumerate(keep):
            np.testing.assert_allclose(J[t] @ V[i], U[i] * S[layer, t], atol=2e-4 * S[layer, t, 0])


def test_top_k_zero_skips_the_jacobians(loaded):
    started = next(engine.stream(loaded, "Hello", RunOptions(top_k=0)))
    assert started.header["jacobian"] is None
    assert not [name for name in started.arrays if name.startswith("jacobian.")]
