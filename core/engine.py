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
from .prompts import DEFAULT_MAX_TOKENS
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


def stream(loaded: LoadedModel, prompt: str, *, max_tokens: int = DEFAULT_MAX_TOKENS,
           params: dict | None = None) -> Iterator[Event]:
    """Yield RunStarted, one LayerDone per block (the residual stream leaving it and its per-token norms), then
    RunFinished. Trajectories come from one forward pass; per-layer work added later streams the same way."""
    started = time.perf_counter()
    ids, truncated_from = tokenize(loaded, prompt, max_tokens)
    input_ids = torch.tensor([ids], device=loaded.device)
    tr = trace(loaded.model, loaded.adapter, input_ids)
    hidden = tr.hidden.float().cpu().numpy()                      # [L+1, T, d], pre-final-norm
    norms = np.linalg.norm(hidden.astype(np.float64), axis=-1).astype(np.float32)
    n_layers, n_tokens = hidden.shape[0] - 1, hidden.shape[1]

    header = {
        "tool": {"name": "coupling-tui", "version": __version__},
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": dict(loaded.info),
        "dtype": loaded.dtype,
        "device": loaded.device,
        "prompt": prompt,
        "tokens": {"ids": ids, "text": token_texts(loaded.tokenizer, ids), "truncated_from": truncated_from},
        "params": {"max_tokens": max_tokens, **(params or {})},
        "versions": {"torch": torch.__version__, "transformers": _transformers_version()},
    }
    arrays = {
        "tokens.ids": np.asarray(ids, dtype=np.int64),
        "trajectory.hidden": np.full_like(hidden, np.nan),
        "trajectory.norms": np.full_like(norms, np.nan),
    }
    arrays["trajectory.hidden"][0] = hidden[0]
    arrays["trajectory.norms"][0] = norms[0]
    yield RunStarted(header=header, arrays=arrays)
    for layer in range(n_layers):
        yield LayerDone(layer=layer, n_layers=n_layers, rows={
            "trajectory.hidden": (layer + 1, hidden[layer + 1]),
            "trajectory.norms": (layer + 1, norms[layer + 1]),
        })
    next_id = int(tr.last_logits.argmax())
    yield RunFinished(seconds=time.perf_counter() - started, header={
        "next_token": {"id": next_id, "text": loaded.tokenizer.decode([next_id])}})


def _transformers_version() -> str:
    import transformers

    return transformers.__version__
