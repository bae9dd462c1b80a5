"""Autodiff (frozen-context attention) per-token block Jacobians of every supported family against a float64 autograd
reference of the unmodified HF block, plus the branch-sum, forward-invariance, restore and closed-form checks."""

from __future__ import annotations

import copy

import pytest
import torch

from coupling_tui.core.load.adapters import adapter_for
from coupling_tui.core.errors import UserError
from coupling_tui.core.engine.jacobians import autodiff
from coupling_tui.core.engine.jacobians import closed_form
from coupling_tui.core.engine.jacobians import frozen_attention
from coupling_tui.core.engine.jacobians.autodiff import (BlockCall, block_jacobians_autodiff, branch_forward, capture_block_calls, method_for, prepare_block)
from tests.jacobian_checks import assert_causal, rel_err
from tests.tiny_models import FAMILIES, tiny_model

T = 6
EXACT = "coupling_test_exact_eager"


def exact_eager(module, query, key, value, attention_mask, scaling=None, dropout=0.0, softcap=None, **kwargs):
    """HF's eager attention without its float32 softmax upcast, so float64 stays float64 (the test's reference)."""
    groups = query.shape[1] // key.shape[1]
    key, value = key.repeat_interleave(groups, 1), value.repeat_interleave(groups, 1)
    w = (query @ key.transpose(-1, -2)) * (query.shape[-1] ** -0.5 if scaling is None else scaling)
    if softcap is not None:
        w = torch.tanh(w / softcap) * softcap
    w = (w + attention_mask.to(w.dtype)).softmax(-1)
    return (w @ value).transpose(1, 2).contiguous(), w


def exact_rms_forward(norm):
    """A dtype-preserving RMSNorm forward (HF's upcasts to float32 only): llama-style w·x̂ or gemma-style (1+w)·x̂."""
    gemma = hasattr(norm, "eps") and not hasattr(norm, "variance_epsilon")
    eps = norm.eps if gemma else norm.variance_epsilon

    def forward(x):
        xh = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
        return xh * (1.0 + norm.weight) if gemma else norm.weight * xh
    return forward


def float64_model(model):
    """A float64 copy of ``model`` whose RMSNorms compute in float64 too."""
    m64 = copy.deepcopy(model).double()
    for module in m64.modules():
        if type(module).__name__.endswith("RMSNorm"):
            module.forward = exact_rms_forward(module)
    return m64


def reference_branch(block, call: BlockCall):
    """X [T, d] ↦ block(X) − X in float64 through the unmodified HF block (exact eager attention)."""
    def f(X):
        args, kwargs = call.with_input(X[None], torch.float64, X.device)
        with frozen_attention.attn_implementation(block, EXACT):
            out = block(*args, **kwargs)
        return (out[0] if isinstance(out, tuple) else out)[0] - X
    return f


def diag_blocks(full: torch.Tensor) -> torch.Tensor:
    return torch.stack([full[t, :, t, :] for t in range(full.shape[0])])


@pytest.fixture(scope="module", autouse=True)
def exact_attention():
    from transformers import AttentionInterface

    AttentionInterface.register(EXACT, exact_eager)


def ids_for(model, n=T):
    return torch.randint(0, model.config.vocab_size, (1, n), generator=torch.Generator().manual_seed(3))


@pytest.fixture(scope="module", params=FAMILIES)
def case(request):
    """(family, float32 model, float64 model, adapter, captured calls, per-layer float64 references [T,d,T,d])."""
    family = request.param
    model = tiny_model(family)
    adapter = adapter_for(model.config.model_type)
    calls = capture_block_calls(model, adapter, ids_for(model))
    m64 = float64_model(model)
    refs = []
    for layer, call in enumerate(calls):
        block = adapter.block_list(m64)[layer]
        X = call.hidden_states.double()
        refs.append(torch.autograd.functional.jacobian(reference_branch(block, call), X, vectorize=True))
    return family, model, m64, adapter, calls, refs


def test_reference_is_causal(case):
    """Output token t1 never depends on a later input token: those blocks of the reference are exactly zero."""
    *_, refs = case
    for full in refs:
        assert_causal(full)


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-4)])
def test_diagonal_blocks_match_the_float64_reference(case, dtype, tol):
    """Every layer's J (all tokens) matches the diagonal blocks of the float64 full-sequence reference."""
    family, model, m64, adapter, calls, refs = case
    source = m64 if dtype == torch.float64 else model
    for layer, call in enumerate(calls):
        J = block_jacobians_autodiff(source, adapter, layer, call, dtype=dtype, chunk=12)
        assert J.dtype == dtype and J.shape == (T, call.hidden_states.shape[-1], call.hidden_states.shape[-1])
        want = diag_blocks(refs[layer])
        assert rel_err(J, want) <= tol, (family, layer, rel_err(J, want))
        for t in range(T):
            assert rel_err(J[t], want[t]) <= 10 * tol, (family, layer, t)


def test_replicated_batch_mode_agrees(case):
    """The 'replicate' backward (sequence repeated along the batch) gives the same J as the vmapped backward."""
    family, model, m64, adapter, calls, refs = case
    J = block_jacobians_autodiff(m64, adapter, 1, calls[1], dtype=torch.float64, chunk=10, mode="replicate",
                                 tokens=[T - 1, 0, 2])
    assert rel_err(J, diag_blocks(refs[1])[[T - 1, 0, 2]]) <= 1e-10, family


def test_branch_outputs_sum_to_the_block_update(case):
    """The adapter's branch submodules add up to block(X) − X (the unfrozen HF block, float64)."""
    family, model, m64, adapter, calls, refs = case
    for layer, call in enumerate(calls):
        block, paths = prepare_block(m64, adapter, layer, torch.float64)
        x = call.hidden_states.double()[None]
        with torch.no_grad():
            f, out = branch_forward(block, paths, call, x, frozen=False)
        assert rel_err(f, out - x) < 1e-13, (family, layer, paths)


def test_frozen_attention_keeps_forward_values(case):
    """Under the frozen-context attention the block output equals HF's eager output (float32, bit for bit near)."""
    family, model, m64, adapter, calls, refs = case
    for layer, call in enumerate(calls):
        block, paths = prepare_block(model, adapter, layer, torch.float32)
        x = call.hidden_states[None].clone()
        with torch.no_grad():
            f_frozen, out_frozen = branch_forward(block, paths, call, x)
            f_eager, out_eager = branch_forward(block, paths, call, x, frozen=False)
        torch.testing.assert_close(out_frozen, out_eager, rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(f_frozen, f_eager, rtol=1e-6, atol=1e-6)


def test_attention_implementation_and_hooks_are_restored(case):
    """Capturing and differentiating leave every config's attention implementation and no hook behind."""
    family, model, m64, adapter, calls, refs = case
    before = model.config._attn_implementation
    capture_block_calls(model, adapter, ids_for(model))
    block_jacobians_autodiff(model, adapter, 0, calls[0], chunk=16)
    assert model.config._attn_implementation == before
    for module in model.modules():
        cfg = getattr(module, "config", None)
        if cfg is not None and hasattr(cfg, "_attn_implementation_internal"):
            assert cfg._attn_implementation == before
        assert not module._forward_hooks and not module._forward_pre_hooks


def test_gemma2_sliding_window_is_honoured():
    """With T = 7 > window 4, sliding layers' reference ignores tokens ≥ 4 back, and autodiff still matches it."""
    model = tiny_model("gemma2")
    adapter = adapter_for("gemma2")
    calls = capture_block_calls(model, adapter, ids_for(model, 7))
    m64 = float64_model(model)
    sliding = [i for i, kind in enumerate(model.config.layer_types) if kind == "sliding_attention"]
    assert sliding and model.config.sliding_window == 4
    for layer in sliding:
        call = calls[layer]
        ref = torch.autograd.functional.jacobian(reference_branch(adapter.block_list(m64)[layer], call),
                                                 call.hidden_states.double(), vectorize=True)
        for t1 in range(4, 7):
            assert torch.count_nonzero(ref[t1, :, : t1 - 3, :]) == 0       # outside the window
            assert ref[t1, :, t1 - 3, :].abs().max() > 0                   # inside it
        J = block_jacobians_autodiff(m64, adapter, layer, call, dtype=torch.float64)
        assert rel_err(J, diag_blocks(ref)) <= 1e-10


@pytest.mark.parametrize("family", ["llama", "qwen2"])
def test_agrees_with_the_closed_form(family):
    """Float64 autodiff equals the colleague's float64 closed form (independent derivation) on every layer."""
    model = tiny_model(family)
    adapter = adapter_for(family)
    calls = capture_block_calls(model, adapter, ids_for(model))
    m64 = float64_model(model)
    for layer, call in enumerate(calls):
        J = block_jacobians_autodiff(m64, adapter, layer, call, dtype=torch.float64)
        cos, sin = call.kwargs["position_embeddings"]
        C = closed_form.block_jacobians(model.model.layers[layer], call.hidden_states, (cos, sin), model.config,
                                        dtype=torch.float64)
        assert rel_err(J, C) <= 1e-10, (family, layer, rel_err(J, C))


def test_half_precision_model_is_differentiated_in_float32():
    """A bfloat16 model's layer is run as a float32 copy; the model itself is left in bfloat16."""
    model = tiny_model("llama", dtype=torch.bfloat16)
    adapter = adapter_for("llama")
    calls = capture_block_calls(model, adapter, ids_for(model))
    J = block_jacobians_autodiff(model, adapter, 2, calls[2])
    assert J.dtype == torch.float32 and next(model.parameters()).dtype == torch.bfloat16
    m64 = float64_model(model)
    ref = torch.autograd.functional.jacobian(reference_branch(m64.model.layers[2], calls[2]),
                                             calls[2].hidden_states.double(), vectorize=True)
    assert rel_err(J, diag_blocks(ref)) < 1e-4


def test_works_from_inference_mode_and_no_grad():
    """Calls captured under inference_mode, Jacobians requested under no_grad: same J as plain calls."""
    model = tiny_model("qwen3")
    adapter = adapter_for("qwen3")
    with torch.inference_mode():
        calls = capture_block_calls(model, adapter, ids_for(model))
    with torch.no_grad():
        J = block_jacobians_autodiff(model, adapter, 1, calls[1], tokens=range(T))
    plain = capture_block_calls(model, adapter, ids_for(model))
    assert rel_err(J, block_jacobians_autodiff(model, adapter, 1, plain[1])) < 1e-12


def test_refusals():
    """Unsupported dtypes, tokens, training mode, attention sinks and implicit masks are refused clearly."""
    model = tiny_model("llama")
    adapter = adapter_for("llama")
    calls = capture_block_calls(model, adapter, ids_for(model))
    with pytest.raises(UserError, match="float32 or float64"):
        block_jacobians_autodiff(model, adapter, 0, calls[0], dtype=torch.bfloat16)
    with pytest.raises(UserError, match="out of range"):
        block_jacobians_autodiff(model, adapter, 0, calls[0], tokens=[T])
    model.train()
    with pytest.raises(UserError, match="eval mode"):
        block_jacobians_autodiff(model, adapter, 0, calls[0])
    model.eval()
    q = torch.zeros(1, 2, 3, 4)
    with pytest.raises(UserError, match="s_aux"):
        frozen_attention.frozen_context_attention(model, q, q, q, torch.zeros(1, 1, 3, 3), s_aux=torch.zeros(2))
    with pytest.raises(UserError, match="implicit causal mask"):
        frozen_attention.frozen_context_attention(model, q, q, q, None)


def test_method_choice():
    """'auto' picks the closed form for llama/mistral/qwen2 only; an impossible closed form is a UserError."""
    assert method_for("llama", "auto") == "closed-form" and method_for("qwen2") == "closed-form"
    assert method_for("gemma2", "auto") == "autodiff" and method_for("gpt2", "autodiff") == "autodiff"
    assert method_for("mistral", "autodiff") == "autodiff"
    with pytest.raises(UserError, match="closed-form"):
        method_for("gpt_neox", "closed-form")
    with pytest.raises(UserError, match="unknown Jacobian method"):
        method_for("llama", "numeric")
    assert set(autodiff.METHODS) == {"auto", "closed-form", "autodiff"}


@pytest.mark.real_model
def test_smollm2_autodiff_matches_closed_form(smollm2):
    """On the real model (massive activations), float32 autodiff agrees with the float32 closed form, T = 8."""
    model, adapter = smollm2.model, smollm2.adapter
    ids = smollm2.tokenizer("The capital of France is Paris, and the capital", return_tensors="pt")["input_ids"]
    calls = capture_block_calls(model, adapter, ids[:, :8])
    for layer in (0, 14, 29):
        call = calls[layer]
        J = block_jacobians_autodiff(model, adapter, layer, call, chunk=192)
        C = closed_form.block_jacobians(model.model.layers[layer], call.hidden_states,
                                        call.kwargs["position_embeddings"], model.config, dtype=torch.float64)
        assert rel_err(J, C) <= 1e-4, (layer, rel_err(J, C))
