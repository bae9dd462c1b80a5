"""One forward pass that records the residual stream entering and leaving every decoder block, before the final
norm. (HF's last ``hidden_states`` entry is taken *after* the final norm in these families: not a block output.)"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch


@dataclass
class Trace:
    block_inputs: torch.Tensor
    """[L, T, d]: x^l entering block l (on block 0's input device, whatever device each block runs on)."""
    block_outputs: torch.Tensor
    """[L, T, d]: x^{l+1} leaving block l (pre-final-norm)."""
    last_logits: torch.Tensor
    """[V]: the model's own logits at the last position."""

    @property
    def hidden(self) -> torch.Tensor:
        """[L+1, T, d]: x^0 (embeddings entering block 0) then the output of every block."""
        return torch.cat([self.block_inputs[:1], self.block_outputs], 0)


def first_tensor(value: Any) -> torch.Tensor:
    """A module output as a tensor: the first element where a layer returns a tuple (older HF layers)."""
    return value[0] if isinstance(value, (tuple, list)) else value


@torch.no_grad()
def trace(model: Any, adapter: Any, input_ids: torch.Tensor) -> Trace:
    """Run ``model`` on one unpadded sequence ``input_ids`` [1, T] and record every block's input and output."""
    blocks = adapter.block_list(model)
    inputs: list[torch.Tensor | None] = [None] * len(blocks)
    outputs: list[torch.Tensor | None] = [None] * len(blocks)

    def pre_hook(index):
        def hook(module, args, kwargs):
            x = kwargs.get("hidden_states", args[0] if args else None)
            inputs[index] = first_tensor(x).detach()[0]
        return hook

    def post_hook(index):
        def hook(module, args, kwargs, output):
            outputs[index] = first_tensor(output).detach()[0]
        return hook

    handles = []
    try:
        for i, block in enumerate(blocks):
            handles.append(block.register_forward_pre_hook(pre_hook(i), with_kwargs=True))
            handles.append(block.register_forward_hook(post_hook(i), with_kwargs=True))
        out = model(input_ids=input_ids, use_cache=False, logits_to_keep=1)
    finally:
        for h in handles:
            h.remove()
    missing = [i for i, (a, b) in enumerate(zip(inputs, outputs)) if a is None or b is None]
    if missing:
        raise RuntimeError(f"blocks {missing} did not run during the forward pass")
    return Trace(block_inputs=_gathered(inputs), block_outputs=_gathered(outputs),
                 last_logits=out.logits[0, -1].detach())


def _gathered(states: list) -> torch.Tensor:
    """[L, T, d] on the device of block 0's tensor: a model sharded across devices (core.load.placement) leaves each
    block's states on its own device; these are small (T·d per block) and gathered on one."""
    device = states[0].device
    return torch.stack([s.to(device) for s in states])
