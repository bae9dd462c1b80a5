"""Context coupling (Aubry et al., ICLR 2025, "token coupling" across positions): the *cross-token* block
Jacobians J^l_{t1 t2} = ∂f^l(X)_{t2} / ∂x_{t1} (t1 ≤ t2; zero for t1 > t2 by causality) of a few chosen layers,
and the coupling of those matrices

- **same output token** t_o: entry [t1, t1'] = m_K(J^l_{t1 t_o}, J^{l'}_{t1' t_o}) for t1, t1' ≤ t_o;
- **same input token** t_i: entry [t2, t2'] = m_K(J^l_{t_i t2}, J^{l'}_{t_i t2'}) for t2, t2' ≥ t_i.

f^l is the residual branch, so the identity is subtracted on the diagonal block (t1 = t2) only: across tokens the
block's Jacobian *is* the branch's (the official code subtracts I there too, a bug; papers-spec §1.4). The
attention is the model's own (eager), not the frozen-context one of the per-token Jacobians.

Cost per layer: d batched backward passes of one block for the output token (row a of every J_{t1 t_o} at once)
and d double-backward passes (Jacobian-vector products, column b of every J_{t_i t2}) for the input token, then
top-K triplets of 2·T matrices and 2·T² coupling entries per layer pair. Dense cross Jacobians of every chosen
layer are kept (2·Lc·T·d² numbers) so that pairs of different chosen layers are coupled too, when they fit
``history_mb``; otherwise only same-layer pairs. docs/metrics.md states the formulas.
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np
import torch

from coupling_tui.core.engine.coupling_stream import coupling_ks, display_k, pair_coupling
from coupling_tui.core.errors import UserError
from coupling_tui.core.results.events import LayerDone
from coupling_tui.core.engine.jacobians.autodiff import (CHUNK_BYTES, BlockCall, branch_forward, capture_block_calls, prepare_block)
from coupling_tui.core.engine.jacobians.layers import compute_dtype
from coupling_tui.core.load.models import LoadedModel
from coupling_tui.core.load.placement import execution_device
from coupling_tui.core.linalg.spectra import top_k as top_k_triplets
from coupling_tui.core.results import names

STAGE = "context"


def resolve_tokens(tokens: tuple[int, int], n_tokens: int) -> tuple[int, int]:
    """(input token, output token) as indices 0..T−1 (negative counts from the end); the input must not come
    after the output, or no pair is causal."""
    resolved = []
    for name, t in zip(("input", "output"), tokens):
        index = int(t) + n_tokens if int(t) < 0 else int(t)
        if not 0 <= index < n_tokens:
            raise UserError(f"context {name} token {t} is outside the prompt's tokens 0..{n_tokens - 1}")
        resolved.append(index)
    return resolved[0], resolved[1]


def cross_token_jacobians(loaded: LoadedModel, call: BlockCall, layer: int, *, out_token: int, in_token: int,
                          dtype: torch.dtype = torch.float32,
                          chunk: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(J_out, J_in), each [T, d, d] (rows = output coordinates) of block ``layer``'s residual branch at its
    captured input: J_out[t1] = ∂f_{out_token}/∂x_{t1}, J_in[t2] = ∂f_{t2}/∂x_{in_token}; computed in ``dtype``."""
    model, adapter = loaded.model, loaded.adapter
    X = call.hidden_states
    T, d = X.shape
    device = execution_device(adapter.block_list(model)[layer])
    block, paths = prepare_block(model, adapter, layer, dtype)
    if chunk is None:
        width = max(max(p.shape) for p in block.parameters())
        chunk = min(128, max(1, CHUNK_BYTES // (T * width * torch.finfo(dtype).bits // 8)))
    chunk = max(1, min(chunk, d))
    J_out = torch.empty(T, d, d, dtype=dtype, device=device)
    J_in = torch.empty(T, d, d, dtype=dtype, device=device)
    with torch.enable_grad():
        x = X.detach().to(device=device, dtype=dtype, copy=True)[None].requires_grad_(True)
        f, _ = branch_forward(block, paths, call, x, frozen=False)
        u = torch.zeros_like(x, requires_grad=True)
        (g,) = torch.autograd.grad(f, x, u, create_graph=True)          # g = Jᵀu, linear in u
        for a0 in range(0, d, chunk):
            c = min(chunk, d - a0)
            rows = torch.arange(c, device=device)
            e = torch.zeros(c, 1, T, d, dtype=dtype, device=device)
            e[rows, 0, out_token, a0 + rows] = 1                          # cotangent e_a at the output token
            (grad,) = torch.autograd.grad(f, x, e, retain_graph=True, is_grads_batched=True)
            J_out[:, a0:a0 + c] = grad[:, 0].transpose(0, 1)               # [T, c, d]: rows a of every J_{t1,out}
            e.zero_()
            e[rows, 0, in_token, a0 + rows] = 1                           # tangent e_b at the input token
            (jv,) = torch.autograd.grad(g, u, e, retain_graph=True, is_grads_batched=True)
            J_in[:, :, a0:a0 + c] = jv[:, 0].permute(1, 2, 0)              # [T, d, c]: columns b of every J_{in,t2}
    return J_out.detach(), J_in.detach()


class ContextPass:
    """Stage "context": for each chosen layer, the cross-token Jacobians of one output and one input token, their
    top-K triplets and Frobenius norms, and the context coupling with every chosen layer done so far."""

    def __init__(self, loaded: LoadedModel, ids: list[int], layers: list[int], tokens: tuple[int, int], *,
                 top_k: int, history_mb: float, topk_solver: str = "auto"):
        self.loaded, self.ids, self.layers = loaded, list(ids), [int(x) for x in layers]
        self.topk_solver = topk_solver
        self.n_tokens = len(ids)
        self.in_token, self.out_token = resolve_tokens(tokens, self.n_tokens)
        self.d = int(loaded.info["d_model"])
        self.ks = coupling_ks(top_k)
        self.kc = max(self.ks)
        self.dtype = compute_dtype(loaded.dtype)
        self.device = torch.device(loaded.device)
        """Where the kept cross Jacobians and bases meet for coupling (each layer's are made on its own device)."""
        dense = 2 * len(self.layers) * self.n_tokens * self.d ** 2 * torch.finfo(self.dtype).bits // 8
        self.cross_layers = len(self.layers) > 1 and dense <= history_mb * 1e6
        """Whether pairs of different chosen layers are coupled too (their dense J fit the history budget)."""
        T, nk, lc = self.n_tokens, len(self.ks), len(self.layers)
        self.out_valid = range(0, self.out_token + 1)                      # t1 ≤ t_out
        self.in_valid = range(self.in_token, T)                            # t2 ≥ t_in
        self.coupling = {side: np.full((nk, lc, lc, T, T), np.nan, np.float32) for side in ("out", "in")}
        self.frobenius = {side: np.full((lc, T), np.nan, np.float32) for side in ("out", "in")}
        self.singular = {side: np.full((lc, T, self.kc), np.nan, np.float32) for side in ("out", "in")}

    def header(self) -> dict[str, Any]:
        return {"layers": self.layers, "in_token": self.in_token, "out_token": self.out_token, "ks": self.ks,
                "k": display_k(self.ks), "norm": "norm", "variant": "ujv", "elementwise_abs": True,
                "cross_layers": self.cross_layers, "attention": "eager (live context)",
                "identity": "subtracted on the diagonal block t1 = t2 only"}

    def stages(self) -> list[dict]:
        return [{"name": STAGE, "steps": len(self.layers)}]

    def arrays(self) -> dict[str, np.ndarray]:
        a = {names.CONTEXT_LAYERS: np.asarray(self.layers, np.int64),
             names.CONTEXT_TOKENS: np.asarray([self.in_token, self.out_token], np.int64)}
        for side in ("out", "in"):
            a[names.context_name(side, "k")] = self.coupling[side].copy()
            a[names.context_name(side, "frobenius")] = self.frobenius[side].copy()
            a[names.context_name(side, "singular_values")] = self.singular[side].copy()
        return a

    def events(self) -> Iterator[LayerDone]:
        input_ids = torch.tensor([self.ids], device=self.loaded.device)
        calls = capture_block_calls(self.loaded.model, self.loaded.adapter, input_ids)
        kept: list[dict] = []                                                 # per chosen layer done: side → (J, U, S, V)
        n_layers = int(self.loaded.info["n_layers"])
        for q, layer in enumerate(self.layers):
            J_out, J_in = cross_token_jacobians(self.loaded, calls[layer], layer, out_token=self.out_token,
                                                in_token=self.in_token, dtype=self.dtype)
            here = {}
            for side, J_all, valid in (("out", J_out, self.out_valid), ("in", J_in, self.in_valid)):
                J = J_all[valid.start:valid.stop]
                u, s, v = top_k_triplets(J, self.kc, solver=self.topk_solver)
                self.frobenius[side][q, valid.start:valid.stop] = torch.linalg.matrix_norm(J).float().cpu().numpy()
                self.singular[side][q, valid.start:valid.stop] = s.float().cpu().numpy()
                here[side] = tuple(t.to(self.device) for t in (J, u, s, v))   # sharded: one coupling device
            del J_out, J_in
            kept.append(here)
            for p in range(q + 1):
                if p != q and not self.cross_layers:
                    continue
                for side, valid in (("out", self.out_valid), ("in", self.in_valid)):
                    self._couple(side, valid, q, p, kept[q][side], kept[p][side])
                    if p != q:
                        self._couple(side, valid, p, q, kept[p][side], kept[q][side])
            if not self.cross_layers:
                kept[q] = {}                                                  # its dense J are no longer needed
            rows = {}
            for side in ("out", "in"):
                rows[names.context_name(side, "k")] = (Ellipsis, self.coupling[side].copy())
                rows[names.context_name(side, "frobenius")] = (q, self.frobenius[side][q].copy())
                rows[names.context_name(side, "singular_values")] = (q, self.singular[side][q].copy())
            yield LayerDone(layer=layer, n_layers=n_layers, stage=STAGE, rows=rows)

    def _couple(self, side: str, valid: range, row: int, col: int, row_data: tuple, col_data: tuple) -> None:
        """Entry [t, t'] = m(J of layer ``row`` at t, bases of layer ``col`` at t') over the causal tokens."""
        J, _, s, _ = row_data
        _, U, _, V = col_data
        norm, _ = pair_coupling(J, s, U, V, self.ks)
        sl = slice(valid.start, valid.stop)
        self.coupling[side][:, row, col, sl, sl] = norm.float().cpu().numpy()
