"""Architecture adapters: for each supported model family, where its decoder blocks, final norm and unembedding
live, and how logits follow from the last block's output. One small registry, no per-family maths elsewhere."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from coupling_tui.core.errors import UserError


@dataclass(frozen=True)
class Adapter:
    families: tuple[str, ...]
    """HF ``config.model_type`` values this adapter serves."""
    blocks: str
    """Attribute path from the *ForCausalLM model to the ModuleList of decoder blocks."""
    final_norm: str
    """Attribute path to the final norm applied before the unembedding."""
    softcap_attr: str | None = None
    """Config attribute of a final-logit soft-cap (Gemma 2), applied as cap * tanh(logits / cap)."""
    branch_outputs: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """Per family: the block submodules (paths from the decoder block) whose outputs (first element if a tuple) sum
    to exactly what the block adds to the residual stream, f(X) = block(X) - X (checked against transformers 5.23)."""

    def branch_modules(self, model_type: str | None) -> tuple[str, ...]:
        """The residual-branch submodule paths of ``model_type``'s decoder block (see ``branch_outputs``)."""
        for family, paths in self.branch_outputs:
            if family == model_type:
                return paths
        raise UserError(f"no residual-branch description for architecture {model_type or 'unknown'}")

    def get(self, model: Any, path: str) -> Any:
        obj = model
        for part in path.split("."):
            obj = getattr(obj, part)
        return obj

    def block_list(self, model: Any) -> Any:
        return self.get(model, self.blocks)

    def final_norm_module(self, model: Any) -> Any:
        return self.get(model, self.final_norm)

    def unembedding(self, model: Any) -> Any:
        """The unembedding (``lm_head``/``embed_out``), found through HF's own accessor in every family."""
        return model.get_output_embeddings()

    def logits(self, model: Any, last_block_output: Any) -> Any:
        """Final norm, unembedding and (where the family has one) soft-capping of the pre-norm residual stream."""
        out = self.unembedding(model)(self.final_norm_module(model)(last_block_output))
        cap = getattr(model.config, self.softcap_attr, None) if self.softcap_attr else None
        if cap:
            import torch

            out = cap * torch.tanh(out / cap)
        return out


_ATTN_MLP = ("self_attn", "mlp")
_POST_NORMS = ("post_attention_layernorm", "post_feedforward_layernorm")  # sandwich norms: the branch ends in a norm

ADAPTERS: tuple[Adapter, ...] = (
    Adapter(families=("llama", "mistral", "qwen2", "qwen3", "phi3", "olmo2", "gemma", "gemma2", "gemma3_text"),
            blocks="model.layers", final_norm="model.norm", softcap_attr="final_logit_softcapping",
            branch_outputs=(("llama", _ATTN_MLP), ("mistral", _ATTN_MLP), ("qwen2", _ATTN_MLP),
                            ("qwen3", _ATTN_MLP), ("phi3", _ATTN_MLP), ("gemma", _ATTN_MLP),
                            ("olmo2", _POST_NORMS), ("gemma2", _POST_NORMS), ("gemma3_text", _POST_NORMS))),
    Adapter(families=("gpt2",), blocks="transformer.h", final_norm="transformer.ln_f",
            branch_outputs=(("gpt2", ("attn", "mlp")),)),
    Adapter(families=("gpt_neox",), blocks="gpt_neox.layers", final_norm="gpt_neox.final_layer_norm",
            branch_outputs=(("gpt_neox", ("attention", "mlp")),)),
)

SUPPORTED: tuple[str, ...] = tuple(f for a in ADAPTERS for f in a.families)


def adapter_for(model_type: str | None) -> Adapter:
    for adapter in ADAPTERS:
        if model_type in adapter.families:
            return adapter
    raise UserError(
        f"unsupported architecture: {model_type or 'unknown'} (supported: {', '.join(SUPPORTED)})",
        "coupling-tui analyses decoder-only causal LMs; encoders and encoder-decoder models have no such blocks",
    )
