"""The last block as the official code sees it (``--convention official``, docs/metrics.md "Two conventions").

sugolov/coupling's ``run_coupling_hf`` differentiates HF's ``hidden_states[L]``, which is the *final norm* of the last
block's output, and subtracts I. Per token t (other tokens held fixed) that is, by the chain rule,

    J_official = N_t (I + J_t) − I,     N_t = ∂ norm(y)/∂y at y = x^L_t (the final norm's d×d Jacobian),

J_t the last block's residual-branch Jacobian (the paper's). The norm acts on each token alone, so N_t needs only
x^L_t: one batched backward of the model's own final-norm module (RMSNorm, LayerNorm, …) with cotangent e_a at every
token gives row a of every N_t, d backward passes in all, in the Jacobians' compute dtype.
"""

from __future__ import annotations

import copy
from typing import Any

import torch

from coupling_tui.core.load.placement import execution_device, is_dispatched, plain_copy


class PostNormLastBlock:
    """Turns the last block's residual-branch Jacobians into the official code's ∂norm(x^L)/∂x^{L−1} − I."""

    def __init__(self, model: Any, adapter: Any, last_output: torch.Tensor, dtype: torch.dtype):
        """``last_output`` [T, d]: x^L, the last block's output before the final norm (the trace's)."""
        self.norm = _in_dtype(adapter.final_norm_module(model), dtype)
        self.device = execution_device(self.norm)
        self.x = last_output.detach().to(device=self.device, dtype=dtype)
        self.dtype = dtype

    def norm_jacobians(self, tokens: range) -> torch.Tensor:
        """N [len(tokens), d, d] (rows = outputs): the final norm's Jacobian at x^L_t for t in ``tokens``."""
        x = self.x[tokens.start:tokens.stop].clone().requires_grad_(True)           # [n, d]
        n, d = x.shape
        with torch.enable_grad():
            y = self.norm(x[None])[0]
            eye = torch.eye(d, dtype=self.dtype, device=self.device)
            cotangents = eye[:, None, :].expand(d, n, d)                             # e_a at every token
            (grad,) = torch.autograd.grad(y, x, cotangents, is_grads_batched=True)   # [d (a), n, d (b)]
        return grad.transpose(0, 1).contiguous()

    def apply(self, J: torch.Tensor, tokens: range) -> torch.Tensor:
        """N_t (I + J_t) − I for the last block's J [len(tokens), d, d], on J's device and dtype."""
        N = self.norm_jacobians(tokens).to(device=J.device, dtype=J.dtype)
        out = N @ J
        out += N
        out.diagonal(dim1=-2, dim2=-1).sub_(1)
        return out


def _in_dtype(module: Any, dtype: torch.dtype) -> Any:
    """``module`` itself when its parameters are in ``dtype``, else a copy in ``dtype`` (a norm is d numbers); a
    module accelerate dispatches is copied hook-free onto its execution device."""
    if is_dispatched(module):
        return plain_copy(module, dtype)
    dtypes = {p.dtype for p in module.parameters()} | {b.dtype for b in module.buffers() if b.is_floating_point()}
    return module if dtypes <= {dtype} else copy.deepcopy(module).to(dtype)
