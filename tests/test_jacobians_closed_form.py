"""Closed-form per-token block Jacobians against a float64 autograd reference on tiny llama/mistral/qwen2 models."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM

from coupling_tui.core.load.adapters import adapter_for
from coupling_tui.core.errors import UserError
from coupling_tui.core.engine.jacobians.closed_form import Workspace, block_jacobians, rotary_cos_sin
from coupling_tui.core.engine.trace import trace
from tests.jacobian_checks import assert_causal, rel_err
from tests.tiny_models import CONFIGS, tiny_model

T = 7
FAMILIES = ("llama", "mistral", "qwen2", "llama-biased")


def make_model(name: str, dtype: torch.dtype = torch.float32, **overrides):
    """A tiny family model; ``llama-biased`` also has q/k/v/o and MLP biases (all perturbed away from 0)."""
    if name == "llama-biased":
        overrides = dict(attention_bias=True, mlp_bias=True, **overrides)
        name = "llama"
    if not overrides:
        return tiny_model(name, dtype=dtype)
    cfg = AutoConfig.for_model(name, **dict(CONFIGS[name], **overrides))
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(cfg, dtype=dtype).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


def traced(model, n_tokens: int = T):
    """The forward trace of fixed random ids: residual stream entering and leaving each block."""
    ids = torch.randint(0, model.config.vocab_size, (1, n_tokens), generator=torch.Generator().manual_seed(3))
    return trace(model, adapter_for(model.config.model_type), ids)


def block_inputs(model, n_tokens: int = T) -> torch.Tensor:
    """[L, T, d] residual stream entering each block."""
    return traced(model, n_tokens).block_inputs


# ------------------------------------------------------------------ a float64-clean functional reference
def branch_fn(block, config, cos, sin, dtype=torch.float64):
    """f(X) = block(X) - X over the whole sequence X [T, d], every op in ``dtype`` (unlike HF's upcasting layer)."""
    attn, mlp = block.self_attn, block.mlp
    cast = lambda t: None if t is None else t.detach().to(dtype)  # noqa: E731
    lin = lambda x, m: torch.nn.functional.linear(x, cast(m.weight), cast(m.bias))  # noqa: E731
    H, KV, hd = config.num_attention_heads, config.num_key_value_heads, attn.head_dim
    cos, sin = cos.to(dtype), sin.to(dtype)

    def rms(x, norm):
        return cast(norm.weight) * x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + norm.variance_epsilon)

    def rope(x):
        half = x.shape[-1] // 2
        return x * cos + torch.cat((-x[..., half:], x[..., :half]), -1) * sin

    def f(X):
        n = X.shape[0]
        h1 = rms(X, block.input_layernorm)
        q = rope(lin(h1, attn.q_proj).view(n, H, hd).transpose(0, 1))
        k = rope(lin(h1, attn.k_proj).view(n, KV, hd).transpose(0, 1)).repeat_interleave(H // KV, 0)
        v = lin(h1, attn.v_proj).view(n, KV, hd).transpose(0, 1).repeat_interleave(H // KV, 0)
        s = (q @ k.transpose(1, 2)) * attn.scaling
        s = s.masked_fill(~torch.ones(n, n, dtype=torch.bool).tril(), float("-inf"))
        o = lin((s.softmax(-1) @ v).transpose(0, 1).reshape(n, H * hd), attn.o_proj)
        h2 = rms(X + o, block.post_attention_layernorm)
        return o + lin(torch.nn.functional.silu(lin(h2, mlp.gate_proj)) * lin(h2, mlp.up_proj), mlp.down_proj)

    return f


def full_jacobian(f, X: torch.Tensor) -> torch.Tensor:
    """[T, d, T, d]: d f(X)[t1] / d X[t2] by autograd in float64."""
    return torch.autograd.functional.jacobian(f, X.to(torch.float64), vectorize=True)


@pytest.fixture(scope="module", params=FAMILIES)
def case(request):
    """(model, block inputs [L,T,d], cos, sin, per-layer float64 references [T,d,T,d])."""
    model = make_model(request.param)
    X = block_inputs(model)
    cos, sin = rotary_cos_sin(model, T)
    layers = model.model.layers
    refs = [full_jacobian(branch_fn(layers[i], model.config, cos, sin), X[i]) for i in range(len(layers))]
    return model, X, cos, sin, refs


def test_reference_matches_the_hf_block(case):
    """The functional reference, run in float32, reproduces what the HF block adds to the residual stream."""
    model, X, cos, sin, _ = case
    tr = traced(model)
    for i, layer in enumerate(model.model.layers):
        f32 = branch_fn(layer, model.config, cos, sin, torch.float32)
        want = tr.block_outputs[i] - tr.block_inputs[i]
        assert rel_err(f32(X[i]), want) < 2e-6


def test_reference_is_causal(case):
    """The output at token t1 never depends on a later input token t2 > t1: those blocks are exactly zero."""
    *_, refs = case
    for full in refs:
        assert_causal(full)


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-4)])
def test_diagonal_blocks_match_autograd(case, dtype, tol):
    model, X, cos, sin, refs = case
    ws = Workspace()
    for i, layer in enumerate(model.model.layers):
        J = block_jacobians(layer, X[i], (cos, sin), model.config, dtype=dtype, chunk=3, workspace=ws)
        assert J.dtype == dtype and J.shape == (T, X.shape[-1], X.shape[-1])
        want = torch.stack([refs[i][t, :, t, :] for t in range(T)])
        assert rel_err(J, want) <= tol, (i, rel_err(J, want))
        for t in range(T):  # every token, not just on average
            assert rel_err(J[t], want[t]) <= 10 * tol


def test_rows_are_outputs(case):
    """J_t v is the directional derivative of f_t along v at token t; J_tᵀ v is not (J is far from symmetric)."""
    model, X, cos, sin, _ = case
    layer = model.model.layers[1]
    f = branch_fn(layer, model.config, cos, sin)
    X64 = X[1].double()
    J = block_jacobians(layer, X[1], (cos, sin), model.config, dtype=torch.float64)
    v = torch.randn(X64.shape[1], dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    for t in (0, T - 1):
        tangent = torch.zeros_like(X64)
        tangent[t] = v
        _, jvp = torch.autograd.functional.jvp(f, X64, tangent)
        assert rel_err(J[t] @ v, jvp[t]) < 1e-10
        assert rel_err(J[t].T @ v, jvp[t]) > 0.1


def test_token_selection_and_large_inputs():
    """``tokens`` picks (and orders) rows; a sink-like huge token and peaked attention stay exact."""
    model = make_model("qwen2")
    layer, cos, sin = model.model.layers[0], *rotary_cos_sin(model, T)
    X = 3.0 * torch.randn(T, model.config.hidden_size, generator=torch.Generator().manual_seed(7))
    X[0] *= 1e3
    ref = full_jacobian(branch_fn(layer, model.config, cos, sin), X)
    J = block_jacobians(layer, X, (cos, sin), model.config, dtype=torch.float64, tokens=[5, 0, -1])
    want = torch.stack([ref[t, :, t, :] for t in (5, 0, T - 1)])
    assert rel_err(J, want) < 1e-10


def test_half_precision_model_is_differentiated_in_float32():
    """A bfloat16 model's J is computed in float32 from its (bfloat16-valued) weights and input."""
    model = make_model("llama", dtype=torch.bfloat16)
    X = block_inputs(model)[2]
    cos, sin = rotary_cos_sin(model, T, dtype=torch.float64)
    J = block_jacobians(model.model.layers[2], X, (cos, sin), model.config)
    ref = full_jacobian(branch_fn(model.model.layers[2], model.config, cos, sin), X)
    assert J.dtype == torch.float32
    assert rel_err(J, torch.stack([ref[t, :, t, :] for t in range(T)])) < 1e-4


def test_rotary_helper_returns_the_models_cos_sin():
    model = make_model("mistral")
    cos, sin = rotary_cos_sin(model, 5, dtype=torch.float64)
    want = model.model.rotary_emb(torch.zeros(1, 5, 4), torch.arange(5)[None])
    assert cos.dtype == torch.float64 and cos.shape == (5, model.model.layers[0].self_attn.head_dim)
    torch.testing.assert_close(cos.float(), want[0][0], rtol=0, atol=0)
    torch.testing.assert_close(sin.float(), want[1][0], rtol=0, atol=0)


@pytest.mark.parametrize("name,overrides,n_tokens,message", [
    ("mistral", dict(sliding_window=4), 6, "sliding-window"),
    ("llama", dict(hidden_act="gelu"), 4, "hidden_act"),
    ("qwen3", dict(head_dim=8), 4, "qwen3"),
    ("gpt2", {}, 4, "gpt2"),
])
def test_uncovered_models_are_refused(name, overrides, n_tokens, message):
    model = make_model(name, **overrides)
    block = model.model.layers[0] if hasattr(model, "model") else model.transformer.h[0]
    X = torch.randn(n_tokens, model.config.hidden_size)
    cos = sin = torch.zeros(n_tokens, 8)
    with pytest.raises(UserError, match=message):
        block_jacobians(block, X, (cos, sin), model.config)


def test_sliding_window_at_least_the_prompt_is_fine():
    model = make_model("mistral", sliding_window=T)
    X = block_inputs(model)
    cos, sin = rotary_cos_sin(model, T)
    layer = model.model.layers[0]
    ref = full_jacobian(branch_fn(layer, model.config, cos, sin), X[0])
    J = block_jacobians(layer, X[0], (cos, sin), model.config, dtype=torch.float64)
    assert rel_err(J, torch.stack([ref[t, :, t, :] for t in range(T)])) < 1e-10


@pytest.mark.real_model
def test_smollm2_float32_matches_float64(smollm2):
    """On the real model (massive residual activations), float32 J agrees with float64 J on layers 0/14/29."""
    model = smollm2.model
    ids = smollm2.tokenizer("The capital of France is Paris, and the capital", return_tensors="pt")["input_ids"]
    X = trace(model, smollm2.adapter, ids[:, :8]).block_inputs
    cos, sin = rotary_cos_sin(model, 8)
    for layer in (0, 14, 29):
        block = model.model.layers[layer]
        J32 = block_jacobians(block, X[layer], (cos, sin), model.config, dtype=torch.float32)
        J64 = block_jacobians(block, X[layer], (cos, sin), model.config, dtype=torch.float64)
        assert rel_err(J32, J64) <= 1e-4, (layer, rel_err(J32, J64))
        assert torch.isfinite(J32).all()
