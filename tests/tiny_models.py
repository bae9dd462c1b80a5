"""Tiny random causal LMs of every supported family, built from configs (no network), plus a small byte-level BPE
tokenizer trained in memory, so whole runs can be saved to a directory and loaded like a user's model."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedTokenizerFast

VOCAB = 320
COMMON = dict(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=4,
              num_key_value_heads=2, max_position_embeddings=256)

CONFIGS: dict[str, dict] = {
    "llama": dict(COMMON),
    "mistral": dict(COMMON, sliding_window=None),
    "qwen2": dict(COMMON),
    "qwen3": dict(COMMON, head_dim=8),
    "gemma": dict(COMMON, head_dim=8),
    "gemma2": dict(COMMON, head_dim=8, final_logit_softcapping=5.0, attn_logit_softcapping=20.0,
                   query_pre_attn_scalar=8, sliding_window=4),
    "gemma3_text": dict(COMMON, head_dim=8, query_pre_attn_scalar=8, sliding_window=4),
    "phi3": dict(COMMON, pad_token_id=0),
    "olmo2": dict(COMMON),
    "gpt2": dict(vocab_size=VOCAB, n_embd=32, n_layer=3, n_head=4, n_positions=256),
    "gpt_neox": dict(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                     num_attention_heads=4, max_position_embeddings=256),
}
FAMILIES = tuple(CONFIGS)


def tiny_model(family: str, seed: int = 0, dtype: torch.dtype = torch.float32, **overrides):
    """A tiny random ``family`` model; ``overrides`` change its config (e.g. more layers, a wider d)."""
    cfg = AutoConfig.for_model(family, **{**CONFIGS[family], **overrides})
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(cfg, dtype=dtype).eval()
    # Random init leaves norms at 1 and biases at 0; perturb everything so no term hides behind a constant.
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


CORPUS = ["The capital of France is Paris.", "1 1 1 1 1 1 1 1", "0 1 0 1 1 0 1", "Hello world, hello tokens!",
          "Transformers add each block's output to the residual stream."] * 20


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", bos_token="<|endoftext|>")


def save_tiny(family: str, directory: Path, seed: int = 0, **overrides) -> Path:
    model = tiny_model(family, seed, **overrides)
    model.save_pretrained(directory)
    tiny_tokenizer().save_pretrained(directory)
    return directory
