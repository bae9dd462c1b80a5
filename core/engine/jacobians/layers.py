"""Per-layer block Jacobians of one traced sequence by the chosen method (closed form where the family has one,
generic autodiff elsewhere), plus the choice of which tokens keep their singular vectors in the results file."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from coupling_tui.core.load.placement import execution_device
from coupling_tui.core.engine.jacobians.autodiff import (block_jacobians_autodiff, capture_block_calls, method_for)
from coupling_tui.core.engine.jacobians.closed_form import Workspace, block_jacobians, rotary_cos_sin
from coupling_tui.core.engine.jacobians.final_norm import PostNormLastBlock

DENSE_BUDGET_BYTES = 2 << 30
"""Largest dense J batch held at once; longer sequences are processed in token chunks."""


def compute_dtype(model_dtype: str) -> torch.dtype:
    """Jacobian maths runs in float32 at least whatever the model dtype; a float64 model gets float64."""
    return torch.float64 if model_dtype == "float64" else torch.float32


class LayerJacobians:
    """J^l_t for every layer l of one sequence, one layer (or token chunk) at a time, each on its block's device."""

    def __init__(self, loaded: Any, input_ids: torch.Tensor, block_inputs: torch.Tensor, requested: str = "auto",
                 *, last_output: torch.Tensor | None = None):
        """``last_output`` [T, d] (x^L, the last block's output) takes the last block through the final norm, as
        the official code does (``--convention official``: ``PostNormLastBlock``); None = every block's clean
        residual branch (the paper's)."""
        self.loaded = loaded
        self.method = method_for(loaded.info.get("family"), requested)
        self.dtype = compute_dtype(loaded.dtype)
        self.block_inputs = block_inputs
        self.n_tokens, self.d = block_inputs.shape[1], block_inputs.shape[2]
        self.last_block = None if last_output is None else PostNormLastBlock(
            loaded.model, loaded.adapter, last_output, self.dtype)
        self.n_layers = block_inputs.shape[0]
        if self.method == "closed-form":
            self._cos_sin = {}
            self._workspaces = {}
            """Per device (a sharded model's blocks run on several): rotary cos/sin and the scratch buffers."""
        else:
            self._calls = capture_block_calls(loaded.model, loaded.adapter, input_ids)

    def token_chunks(self) -> list[range]:
        """Token ranges whose dense J fit the memory budget together."""
        per_token = self.d * self.d * torch.finfo(self.dtype).bits // 8
        size = max(1, min(self.n_tokens, DENSE_BUDGET_BYTES // per_token))
        return [range(s, min(s + size, self.n_tokens)) for s in range(0, self.n_tokens, size)]

    def layer(self, layer: int, tokens: range) -> torch.Tensor:
        """J [len(tokens), d, d] (rows = outputs) of block ``layer``'s residual branch at the selected tokens; with
        ``last_output`` the last block's is ∂norm(x^L)/∂x^{L−1} − I instead."""
        J = self._branch(layer, tokens)
        if self.last_block is not None and layer == self.n_layers - 1:
            J = self.last_block.apply(J, tokens)
        return J

    def _branch(self, layer: int, tokens: range) -> torch.Tensor:
        model, adapter = self.loaded.model, self.loaded.adapter
        if self.method == "closed-form":
            block = adapter.block_list(model)[layer]
            device = self.device(layer)
            if device not in self._workspaces:
                self._workspaces[device] = Workspace()
                self._cos_sin[device] = rotary_cos_sin(model, self.n_tokens, device=device)
            return block_jacobians(block, self.block_inputs[layer], self._cos_sin[device], model.config,
                                   dtype=self.dtype, tokens=tokens, workspace=self._workspaces[device])
        return block_jacobians_autodiff(model, adapter, layer, self._calls[layer], dtype=self.dtype, tokens=tokens)

    def device(self, layer: int) -> torch.device:
        """Where block ``layer`` runs, and so where its J are made (one device unless the model is sharded)."""
        return execution_device(self.loaded.adapter.block_list(self.loaded.model)[layer])


def vector_tokens(n_tokens: int, n_layers: int, d: int, k: int, budget_mb: float) -> np.ndarray:
    """Which tokens keep their top-K singular vectors in the file: as many as ``budget_mb`` allows (U and V in
    float32, every layer), evenly spaced, always including the last token (the papers' choice) and token 0."""
    per_token = n_layers * 2 * d * k * 4
    n_keep = int(max(1, min(n_tokens, budget_mb * 1e6 // per_token)))
    if n_keep == 1:
        return np.array([n_tokens - 1], dtype=np.int64)
    return np.unique(np.linspace(0, n_tokens - 1, n_keep).round().astype(np.int64))
