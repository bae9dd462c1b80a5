"""The forward trace on tiny random models of every supported family: it records the pre-final-norm residual stream
entering and leaving each block, and the final norm + unembedding reproduce the model's own logits from it."""

from __future__ import annotations

import pytest
import torch

from coupling_tui.core.load.adapters import SUPPORTED, adapter_for
from coupling_tui.core.errors import UserError
from coupling_tui.core.engine.trace import trace
from tests.tiny_models import FAMILIES, tiny_model


@pytest.fixture(scope="module", params=FAMILIES)
def family_model(request):
    return request.param, tiny_model(request.param)


def test_every_registered_family_is_tested():
    assert set(FAMILIES) == set(SUPPORTED)


def test_trace_reproduces_logits_and_hidden_states(family_model):
    family, model = family_model
    adapter = adapter_for(model.config.model_type)
    ids = torch.randint(0, model.config.vocab_size, (1, 9), generator=torch.Generator().manual_seed(1))
    tr = trace(model, adapter, ids)
    n_layers = len(adapter.block_list(model))
    assert tr.hidden.shape == (n_layers + 1, 9, model.get_input_embeddings().weight.shape[1])
    # what leaves block l is what enters block l+1
    torch.testing.assert_close(tr.block_inputs[1:], tr.block_outputs[:-1], rtol=0, atol=0)
    with torch.no_grad():
        out = model(input_ids=ids, output_hidden_states=True, use_cache=False)
    # final norm + unembedding of the recorded last block output = the model's own logits, at every position
    torch.testing.assert_close(adapter.logits(model, tr.hidden[-1]), out.logits[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(tr.last_logits, out.logits[0, -1], rtol=1e-5, atol=1e-5)
    # HF's hidden_states agree for l < L, but its last entry is after the final norm: not a block output
    for layer in range(n_layers):
        torch.testing.assert_close(out.hidden_states[layer][0], tr.hidden[layer], rtol=0, atol=0)
    assert (out.hidden_states[n_layers][0] - tr.hidden[n_layers]).abs().max() > 1e-2
    torch.testing.assert_close(out.hidden_states[n_layers][0], adapter.final_norm_module(model)(tr.hidden[-1]))


def test_trace_hooks_are_removed(family_model):
    _, model = family_model
    adapter = adapter_for(model.config.model_type)
    blocks = adapter.block_list(model)
    model(input_ids=torch.tensor([[1, 2]]))  # HF may install its own hooks on a first call
    before = [(len(b._forward_hooks), len(b._forward_pre_hooks)) for b in blocks]
    trace(model, adapter, torch.tensor([[1, 2, 3]]))
    assert [(len(b._forward_hooks), len(b._forward_pre_hooks)) for b in blocks] == before


@pytest.mark.parametrize("model_type", ["bert", "t5", None])
def test_unsupported_architecture_is_one_clear_message(model_type):
    with pytest.raises(UserError) as info:
        adapter_for(model_type)
    text = str(info.value)
    assert text.startswith(f"unsupported architecture: {model_type or 'unknown'} (supported: ")
    assert "llama" in text and "gpt_neox" in text
