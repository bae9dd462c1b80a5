"""A "frozen context" attention function for HF's ``AttentionInterface``: forward values equal eager attention, but
each query token's output depends live only on its own key and value, so the block becomes block-diagonal over tokens.

With ``k̄ = k.detach()`` and ``v̄ = v.detach()`` (numerically equal to k and v), the scores are
``s (q k̄ᵀ + diag(q_t · (k_t − k̄_t)))`` and the output is ``P v̄ + P_tt (v_t − v̄_t)``: the added terms are exactly
zero in the forward pass, while the gradient with respect to x_t sees q_t against every key, and k_t, v_t on the
diagonal only. That is exactly the diagonal block ``∂ f(X)_t / ∂ x_t`` of the full sequence Jacobian, with nothing approximated.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import torch

from coupling_tui.core.errors import UserError

NAME = "coupling_frozen_context"
"""The name under which the function is registered in transformers' ``AttentionInterface``."""

_IGNORED_KWARGS = frozenset({
    "sliding_window",   # already applied by the explicit mask HF builds per layer (checked by the tests)
    "position_ids", "cache_position", "use_cache", "is_causal", "output_attentions", "layer_idx",
    "past_key_values", "layer_past", "position_embeddings",
})


def _refuse(what: str) -> UserError:
    return UserError(f"autodiff Jacobians: this model's attention uses {what}, which the frozen-context attention "
                     "does not implement", "use a supported family (llama, mistral, qwen2, qwen3, gemma, gemma2, "
                     "gemma3_text, phi3, olmo2, gpt2, gpt_neox)")


def frozen_context_attention(module: Any, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                             attention_mask: torch.Tensor | None, scaling: float | None = None,
                             dropout: float = 0.0, softcap: float | None = None,
                             **kwargs: Any) -> tuple[torch.Tensor, None]:
    """Eager attention (scaling, GQA, optional tanh soft-cap, explicit additive or boolean mask) with off-diagonal
    keys/values detached; returns ([B, T, H, hd], None) like HF's attention functions."""
    unknown = sorted(k for k, v in kwargs.items() if k not in _IGNORED_KWARGS and v is not None)
    if unknown:
        raise _refuse(f"the extra argument(s) {', '.join(unknown)}")
    if dropout:
        raise _refuse(f"attention dropout ({dropout}; put the model in eval mode)")
    B, H, T, hd = query.shape
    if key.shape[-2] != T or value.shape[-2] != T:
        raise _refuse(f"a key/value cache ({key.shape[-2]} keys for {T} queries)")
    if attention_mask is None and T > 1:
        raise _refuse("an implicit causal mask (none was passed; capture the call with attn_implementation='eager')")
    groups = H // key.shape[1]
    if groups * key.shape[1] != H:
        raise _refuse(f"{H} query heads over {key.shape[1]} key/value heads")
    if groups > 1:
        key = key.repeat_interleave(groups, 1)
        value = value.repeat_interleave(groups, 1)
    k_det, v_det = key.detach(), value.detach()
    scores = torch.matmul(query, k_det.transpose(-1, -2))
    live = (query * (key - k_det)).sum(-1)                                    # [B, H, T], exactly 0 in value
    scores = scores + torch.diag_embed(live)
    scores = scores * (hd ** -0.5 if scaling is None else scaling)
    if softcap is not None:
        scores = torch.tanh(scores / softcap) * softcap
    if attention_mask is not None:
        mask = attention_mask[..., :T, :T]
        if mask.dtype == torch.bool:
            scores = scores.masked_fill(~mask, float("-inf"))
        else:
            scores = scores + mask.to(scores.dtype)
    probs = torch.softmax(scores, dim=-1)
    out = torch.matmul(probs, v_det)
    p_tt = torch.diagonal(probs, dim1=-2, dim2=-1)                            # [B, H, T]
    out = out + p_tt[..., None] * (value - v_det)
    return out.transpose(1, 2).contiguous(), None


def register() -> str:
    """Register the function with transformers' global ``AttentionInterface`` (idempotent); returns its name."""
    from transformers import AttentionInterface

    AttentionInterface.register(NAME, frozen_context_attention)
    return NAME


def _configs(module: Any) -> list[Any]:
    """Every distinct HF config object reachable from ``module`` (itself and its submodules), by identity."""
    found: dict[int, Any] = {}
    for sub in module.modules():
        cfg = getattr(sub, "config", None)
        if cfg is not None and hasattr(cfg, "_attn_implementation_internal"):
            found.setdefault(id(cfg), cfg)
    return list(found.values())


@contextmanager
def attn_implementation(module: Any, name: str) -> Iterator[None]:
    """Temporarily set the attention implementation of every config under ``module`` to ``name``; always restored."""
    configs = _configs(module)
    saved = [cfg._attn_implementation_internal for cfg in configs]
    try:
        for cfg in configs:
            cfg._attn_implementation_internal = name
        yield
    finally:
        for cfg, value in zip(configs, saved):
            cfg._attn_implementation_internal = value
