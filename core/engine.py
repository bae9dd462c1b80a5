"""Orchestration: a generator of small engine events (core.events), one per layer, that a CLI, the TUI or a test
consumes. Nothing here draws or saves; stopping the iteration between layers stops the work."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any, Iterator

import numpy as np
import torch

from . import __version__
from .errors import UserError
from .events import Event, LayerDone, RunFinished, RunStarted
from .models import LoadedModel
from .jacobians import DEFAULT_TOP_K, DEFAULT_VECTOR_BUDGET_MB
from .jacobians.layers import LayerJacobians, vector_tokens
from .prompts import DEFAULT_MAX_TOKENS
from .spectra import top_k as top_k_triplets
from .trace import trace


def tokenize(loaded: LoadedModel, prompt: str, max_tokens: int) -> tuple[list[int], int | None]:
    """Token ids of ``prompt`` (the tokenizer's own special tokens included), cut to the first ``max_tokens``
    and to the model's context; returns (ids, original length if truncated else None)."""
    ids = list(loaded.tokenizer(prompt, add_special_tokens=True)["input_ids"])
    if not ids:
        raise UserError("the prompt has no tokens", "give some text to analyse")
    limit = max_tokens
    context = getattr(loaded.model.config, "max_position_embeddings", None) or getattr(
        loaded.model.config, "n_positions", None)
    if context:
        limit = min(limit, int(context))
    if len(ids) > limit:
        return ids[:limit], len(ids)
    return ids, None


def token_texts(tokenizer: Any, ids: list[int]) -> list[str]:
    return [tokenizer.decode([i]) for i in ids]


def stream(loaded: LoadedModel, prompt: str, *, max_tokens: int = DEFAULT_MAX_TOKENS, top_k: int = DEFAULT_TOP_K,
           jacobian_method: str = "auto", vector_budget_mb: float = DEFAULT_VECTOR_BUDGET_MB,
           params: dict | None = None) -> Iterator[Event]:
    """Yield RunStarted, one LayerDone per block, then RunFinished.

    Each LayerDone carries the residual stream leaving that block and its per-token norms and, when ``top_k`` > 0,
    the block's per-token Jacobian summary: the top-K singular values and Frobenius norm of every token's J, and
    the top-K singular vectors of the tokens chosen by ``vector_tokens``. Only one layer's dense Jacobians exist
    at a time; a consumer that stops iterating stops the work between layers."""
    started = time.perf_counter()
    ids, truncated_from = tokenize(loaded, prompt, max_tokens)
    input_ids = torch.tensor([ids], device=loaded.device)
    tr = trace(loaded.model, loaded.adapter, input_ids)
    hidden = tr.hidden.float().cpu().numpy()                      # [L+1, T, d], pre-final-norm
    norms = np.linalg.norm(hidden.astype(np.float64), axis=-1).astype(np.float32)
    n_layers, n_tokens, d = hidden.shape
    n_layers -= 1
    k = min(top_k, d)
    jac = LayerJacobians(loaded, input_ids, tr.block_inputs, jacobian_method) if k > 0 else None

    header = {
        "tool": {"name": "coupling-tui", "version": __version__},
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": dict(loaded.info),
        "dtype": loaded.dtype,
        "device": loaded.device,
        "prompt": prompt,
        "tokens": {"ids": ids, "text": token_texts(loaded.tokenizer, ids), "truncated_from": truncated_from},
        "params": {"max_tokens": max_tokens, "top_k": k, "jacobian_method": jacobian_method,
                   "vector_budget_mb": vector_budget_mb, **(params or {})},
        "jacobian": None if jac is None else {
            "method": jac.method, "compute_dtype": str(jac.dtype).replace("torch.", ""), "top_k": k},
        "versions": {"torch": torch.__version__, "transformers": _transformers_version()},
    }
    arrays = {
        "tokens.ids": np.asarray(ids, dtype=np.int64),
        "trajectory.hidden": _unfilled(hidden.shape),
        "trajectory.norms": _unfilled(norms.shape),
    }
    arrays["trajectory.hidden"][0] = hidden[0]
    arrays["trajectory.norms"][0] = norms[0]
    if jac is not None:
        keep = vector_tokens(n_tokens, n_layers, d, k, vector_budget_mb)
        arrays.update({
            "jacobian.singular_values": _unfilled((n_layers, n_tokens, k)),
            "jacobian.frobenius": _unfilled((n_layers, n_tokens)),
            "jacobian.vector_tokens": keep,
            "jacobian.U": _unfilled((n_layers, len(keep), d, k)),
            "jacobian.V": _unfilled((n_layers, len(keep), d, k)),
        })
    yield RunStarted(header=header, arrays=arrays)
    for layer in range(n_layers):
        rows = {"trajectory.hidden": (layer + 1, hidden[layer + 1]),
                "trajectory.norms": (layer + 1, norms[layer + 1])}
        if jac is not None:
            rows.update(_jacobian_rows(jac, layer, k, keep))
        yield LayerDone(layer=layer, n_layers=n_layers, rows=rows)
    next_id = int(tr.last_logits.argmax())
    yield RunFinished(seconds=time.perf_counter() - started, header={
        "next_token": {"id": next_id, "text": loaded.tokenizer.decode([next_id])}})


def _unfilled(shape: tuple[int, ...]) -> np.ndarray:
    return np.full(shape, np.nan, dtype=np.float32)


def _jacobian_rows(jac: LayerJacobians, layer: int, k: int, keep: np.ndarray) -> dict:
    """Top-K triplets and Frobenius norms of every token's J at ``layer``, token chunk by token chunk."""
    S = np.empty((jac.n_tokens, k), np.float32)
    fro = np.empty(jac.n_tokens, np.float32)
    U = np.empty((len(keep), jac.d, k), np.float32)
    V = np.empty((len(keep), jac.d, k), np.float32)
    for chunk in jac.token_chunks():
        J = jac.layer(layer, chunk)
        u, s, v = top_k_triplets(J, k)
        S[chunk.start:chunk.stop] = s.float().cpu().numpy()
        fro[chunk.start:chunk.stop] = torch.linalg.matrix_norm(J).float().cpu().numpy()
        sel = np.flatnonzero((keep >= chunk.start) & (keep < chunk.stop))
        if sel.size:
            local = torch.as_tensor(keep[sel] - chunk.start, device=u.device)
            U[sel] = u[local].float().cpu().numpy()
            V[sel] = v[local].float().cpu().numpy()
        del J, u, s, v
    return {"jacobian.singular_values": (layer, S), "jacobian.frobenius": (layer, fro),
            "jacobian.U": (layer, U), "jacobian.V": (layer, V)}


def _transformers_version() -> str:
    import transformers

    return transformers.__version__
