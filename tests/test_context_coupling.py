"""Context coupling: the cross-token Jacobians J_{t1 t2} = ∂f_{t2}/∂x_{t1} against float64 autograd of the whole
unmodified decoder layer (identity subtracted on the diagonal block only), their causal zeros, the diagonal block
against the per-token Jacobian engine, and the stored coupling matrices entry by entry."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from coupling_tui.core.engine import stream as engine
from coupling_tui.core.engine.context import cross_token_jacobians
from coupling_tui.core.engine.jacobians import frozen_attention
from coupling_tui.core.engine.jacobians.autodiff import _compute_block, capture_block_calls
from coupling_tui.core.engine.jacobians.layers import LayerJacobians
from coupling_tui.core.load.models import ModelRequest, load
from coupling_tui.core.results.run import Run
from coupling_tui.core.engine.trace import first_tensor, trace
from tests.tiny_models import save_tiny
from coupling_tui.core.options.run_options import RunOptions

PROMPT = "Hello world, hello tokens!"


def _full_jacobian(loaded, call, layer):
    """∂ block(X) / ∂X − I ([T, d, T, d], float64) of the decoder layer called as HF calls it."""
    block = _compute_block(loaded.adapter.block_list(loaded.model)[layer], torch.float64)
    X = call.hidden_states.double()
    T, d = X.shape

    def fn(x):
        args, kwargs = call.with_input(x[None], torch.float64, x.device)
        with frozen_attention.attn_implementation(block, "eager"):
            return first_tensor(block(*args, **kwargs))[0]

    J = torch.autograd.functional.jacobian(fn, X)
    return J - torch.eye(T * d, dtype=J.dtype).reshape(T, d, T, d)


@pytest.fixture(scope="module", params=["llama", "qwen2", "gpt2", "gemma2"])
def family_case(request, tmp_path_factory):
    loaded = load(ModelRequest(model=str(save_tiny(request.param, tmp_path_factory.mktemp(request.param)))))
    ids = torch.tensor([loaded.tokenizer(PROMPT)["input_ids"]])
    return loaded, ids, capture_block_calls(loaded.model, loaded.adapter, ids)


def test_cross_token_jacobians_match_float64_autograd(family_case):
    loaded, ids, calls = family_case
    T = ids.shape[1]
    for layer, (t_in, t_out) in ((0, (0, T - 1)), (loaded.info["n_layers"] - 1, (3, T - 2))):
        J_out, J_in = cross_token_jacobians(loaded, calls[layer], layer, out_token=t_out, in_token=t_in,
                                            dtype=torch.float64, chunk=7)
        ref = _full_jacobian(loaded, calls[layer], layer)                       # [t2, a, t1, b]
        scale = float(ref.abs().max())
        np.testing.assert_allclose(J_out, ref[t_out].permute(1, 0, 2), atol=1e-6 * scale)
        np.testing.assert_allclose(J_in, ref[:, :, t_in, :], atol=1e-6 * scale)
        assert not J_out[t_out + 1:].any() and not J_in[:t_in].any()            # causality, exactly
        assert float(J_out[t_out - 1].abs().max()) > 1e-3 * scale                # the context does reach t_out


def test_the_diagonal_block_is_the_per_token_jacobian(family_case):
    loaded, ids, calls = family_case
    T = ids.shape[1]
    tr = trace(loaded.model, loaded.adapter, ids)
    J_tt = LayerJacobians(loaded, ids, tr.block_inputs, "auto").layer(1, range(T))
    J_out, J_in = cross_token_jacobians(loaded, calls[1], 1, out_token=T - 1, in_token=2, dtype=torch.float32)
    np.testing.assert_allclose(J_out[T - 1], J_tt[T - 1], atol=2e-5 * float(J_tt.abs().max()))
    np.testing.assert_allclose(J_in[2], J_tt[2], atol=2e-5 * float(J_tt.abs().max()))


def _m(J1, J2, k):
    U2, _, Vh2 = np.linalg.svd(J2)
    s1 = np.linalg.svd(J1, compute_uv=False)[:k]
    return np.linalg.norm(np.abs(U2[:, :k].T @ J1 @ Vh2[:k].T) - np.diag(s1)) / np.linalg.norm(s1)


@pytest.mark.parametrize("history_mb", [4096.0, 0.0], ids=["cross-layer", "same-layer-only"])
def test_context_coupling_matrices_match_float64(tiny_dir, history_mb):
    loaded = load(ModelRequest(model=str(tiny_dir)))
    ids = torch.tensor([loaded.tokenizer(PROMPT)["input_ids"]])
    T, layers, t_in, t_out = ids.shape[1], [0, 2], 2, ids.shape[1] - 2
    run, stages = Run(), []
    for event in engine.stream(loaded, PROMPT, RunOptions(top_k=8, token_coupling=False, context_layers=layers,
                                                          context_tokens=(t_in, t_out - T), history_mb=history_mb)):
        run.apply(event)
        stages.append(getattr(event, "stage", None))
    assert stages.count("context") == 2 and run.header["stages"][-1] == {"name": "context", "steps": 2}
    h = run.header["context"]
    assert (h["layers"], h["in_token"], h["out_token"], h["cross_layers"]) == (layers, t_in, t_out, history_mb > 0)
    calls = capture_block_calls(loaded.model, loaded.adapter, ids)
    refs = [_full_jacobian(loaded, calls[l], l).numpy() for l in layers]
    out = [r[t_out].transpose(1, 0, 2) for r in refs]                          # [t1, a, b]
    inp = [r[:, :, t_in, :] for r in refs]                                     # [t2, a, b]
    a = run.arrays
    for q in range(2):
        np.testing.assert_allclose(a["context.out_frobenius"][q, : t_out + 1],
                                   np.linalg.norm(out[q][: t_out + 1], axis=(1, 2)), rtol=1e-4)
        assert np.isnan(a["context.out_frobenius"][q, t_out + 1:]).all()
        assert np.isnan(a["context.in_frobenius"][q, :t_in]).all()
    for side, Js, valid in (("out", out, range(0, t_out + 1)), ("in", inp, range(t_in, T))):
        m = a[f"context.{side}_k"][0]                                          # K = 8: [Lc, Lc, T, T]
        for p in range(2):
            for q in range(2):
                if p != q and not history_mb:
                    assert np.isnan(m[p, q]).all()
                    continue
                ref = np.array([[_m(Js[p][t], Js[q][u], 8) for u in valid] for t in valid])
                np.testing.assert_allclose(m[p, q][np.ix_(valid, valid)], ref, atol=5e-4)
                outside = np.ones((T, T), bool)
                outside[np.ix_(valid, valid)] = False
                assert np.isnan(m[p, q][outside]).all()
        assert np.abs(np.diagonal(m[0, 0])[valid.start:valid.stop]).max() < 1e-4
