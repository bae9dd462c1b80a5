"""Per-token block Jacobians of any supported architecture by reverse-mode autodiff through the unmodified HF decoder
layer, made block-diagonal over tokens by the frozen-context attention (research benchmark, method "2c").

Each decoder layer's call (hidden states, explicit mask, position embeddings, ...) is captured during one forward with
``attn_implementation="eager"``; the layer is then re-called on a live input under the frozen-context attention, and
the residual branch ``f(X) = block(X) − X`` is taken as the sum of the outputs of the submodules listed in
``Adapter.branch_outputs`` (never as ``block(X) − X``, which cancels catastrophically on massive-activation tokens).
One batched backward with cotangent e_a at every token gives row a of every token's J: d backward passes in all.

Dtype: the layer runs in the requested ``dtype`` (float32 or float64). When the model is in another dtype (bf16/fp16,
or float32 when float64 is asked), a copy of that one layer is cast to ``dtype``, so memory stays at one layer.
HF's RMSNorm/softmax upcast to float32 only, so float64 results of RMSNorm families are float32-limited in places.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Sequence

import torch

from coupling_tui.core.errors import UserError
from coupling_tui.core.load.placement import execution_device, is_dispatched, plain_copy
from coupling_tui.core.engine.trace import first_tensor
from coupling_tui.core.engine.jacobians.selection import token_index
from coupling_tui.core.engine.jacobians import frozen_attention

from coupling_tui.core.options.run_options import JACOBIAN_METHODS as METHODS  # noqa: F401 (``--jacobian-method``)
CHUNK_BYTES = 24 << 20
"""Default bytes of one [chunk, T, widest layer] gradient tensor (fastest on a 2-core CPU: 16-40 MB)."""


@dataclass
class BlockCall:
    """The positional and keyword arguments one decoder layer was called with (tensors detached, batch of one)."""

    args: tuple
    kwargs: dict

    @property
    def hidden_states(self) -> torch.Tensor:
        """[T, d]: the residual stream entering the layer."""
        return (self.kwargs["hidden_states"] if "hidden_states" in self.kwargs else self.args[0])[0]

    def with_input(self, x: torch.Tensor, dtype: torch.dtype, device: torch.device) -> tuple[tuple, dict]:
        """The call with hidden states replaced by ``x`` [B, T, d] and floating tensors cast to ``dtype`` (copies)."""
        args = tuple(_cast(a, dtype, device) for a in self.args)
        kwargs = {k: _cast(v, dtype, device) for k, v in self.kwargs.items()}
        if "hidden_states" in kwargs:
            kwargs["hidden_states"] = x
        else:
            args = (x, *args[1:])
        return args, kwargs


def _cast(value: Any, dtype: torch.dtype, device: torch.device) -> Any:
    """Fresh copies of tensors (floating ones in ``dtype``), recursing into tuples/lists; other values unchanged."""
    if torch.is_tensor(value):
        target = dtype if value.is_floating_point() else value.dtype
        return value.detach().to(device=device, dtype=target, copy=True)
    if isinstance(value, (tuple, list)):
        return type(value)(_cast(v, dtype, device) for v in value)
    return value


def _detach(value: Any) -> Any:
    if torch.is_tensor(value):
        return value.detach()
    if isinstance(value, (tuple, list)):
        return type(value)(_detach(v) for v in value)
    return value


def capture_block_calls(model: Any, adapter: Any, input_ids: torch.Tensor) -> list[BlockCall]:
    """Run ``model`` once on ``input_ids`` [1, T] with eager attention (explicit masks, incl. sliding windows) and
    record every decoder layer's call; the model's attention implementation is restored afterwards."""
    if input_ids.dim() != 2 or input_ids.shape[0] != 1:
        raise UserError(f"autodiff Jacobians take one unpadded sequence [1, T], got shape {tuple(input_ids.shape)}")
    blocks = adapter.block_list(model)
    calls: list[BlockCall | None] = [None] * len(blocks)

    def hook(index: int):
        def pre_hook(module, args, kwargs):
            calls[index] = BlockCall(args=_detach(tuple(args)), kwargs=_detach(dict(kwargs)))
        return pre_hook

    handles = [block.register_forward_pre_hook(hook(i), with_kwargs=True) for i, block in enumerate(blocks)]
    try:
        with torch.no_grad(), frozen_attention.attn_implementation(model, "eager"):
            model(input_ids=input_ids, use_cache=False, logits_to_keep=1)
    finally:
        for h in handles:
            h.remove()
    missing = [i for i, c in enumerate(calls) if c is None]
    if missing:
        raise RuntimeError(f"decoder layers {missing} did not run during the forward pass")
    return calls  # type: ignore[return-value]


def _compute_block(block: Any, dtype: torch.dtype) -> Any:
    """``block`` itself when its parameters are already in ``dtype``, else a copy of it cast to ``dtype``; a block
    an accelerate hook places or offloads (a sharded model) is always copied, hook-free with real weights on its
    execution device (core.load.placement.plain_copy), so autodiff sees an ordinary module."""
    if is_dispatched(block):
        return plain_copy(block, dtype)
    dtypes = {p.dtype for p in block.parameters()} | {b.dtype for b in block.buffers() if b.is_floating_point()}
    return block if dtypes <= {dtype} else copy.deepcopy(block).to(dtype)


def prepare_block(model: Any, adapter: Any, layer: int, dtype: torch.dtype) -> tuple[Any, tuple[str, ...]]:
    """(block in ``dtype``, its residual-branch submodule paths) for decoder layer ``layer`` of ``model``."""
    block = _compute_block(adapter.block_list(model)[layer], dtype)
    if block.training:
        raise UserError("autodiff Jacobians need the model in eval mode (dropout would make the block random)")
    return block, adapter.branch_modules(getattr(model.config, "model_type", None))


def branch_forward(block: Any, paths: Sequence[str], call: BlockCall, x: torch.Tensor, *,
                   frozen: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """(f, out): the residual branch (sum of the outputs of the submodules ``paths``) and the output of ``block``
    re-called on ``x`` [B, T, d], under the frozen-context attention unless ``frozen`` is False (then eager)."""
    pieces: list[torch.Tensor] = []

    def keep(module, args, output):
        pieces.append(first_tensor(output))

    handles = [_submodule(block, p).register_forward_hook(keep) for p in paths]
    args, kwargs = call.with_input(x, x.dtype, x.device)
    name = frozen_attention.register() if frozen else "eager"
    try:
        with frozen_attention.attn_implementation(block, name):
            out = first_tensor(block(*args, **kwargs))
    finally:
        for h in handles:
            h.remove()
    if len(pieces) != len(paths):
        raise RuntimeError(f"expected one output from each of {tuple(paths)}, got {len(pieces)}")
    return sum(pieces[1:], pieces[0]), out


def _submodule(block: Any, path: str) -> Any:
    for part in path.split("."):
        block = getattr(block, part)
    return block


def _check_branch(f: torch.Tensor, out: torch.Tensor, x: torch.Tensor, layer: int) -> None:
    """Guard against a wrong branch description: f must equal out − x up to rounding of the residual sum."""
    with torch.no_grad():
        err = (out - x - f).abs().max()
        scale = (x.abs() + f.abs()).max()
        if not bool(err <= 64 * torch.finfo(x.dtype).eps * scale):
            raise RuntimeError(f"layer {layer}: the branch outputs do not sum to block(x) − x (error {float(err):.3g}"
                               f" at scale {float(scale):.3g}); the architecture adapter's branch_outputs is wrong")


def block_jacobians_autodiff(model: Any, adapter: Any, layer: int, call: BlockCall, *,
                             dtype: torch.dtype = torch.float32, chunk: int | None = None, tokens: Any = None,
                             mode: str = "batched-grad", out: torch.Tensor | None = None) -> torch.Tensor:
    """J [T_sel, d, d] (rows = outputs) of layer ``layer``'s residual branch at its captured input, for the tokens
    ``tokens`` (default all), by ``ceil(d / chunk)`` batched backward passes computed in ``dtype``; ``chunk``
    (cotangents per pass) defaults to what keeps one activation-gradient tensor near 24 MB (64 for SmolLM2, T = 64).

    ``mode`` "batched-grad" runs one forward and vmaps the backward over ``chunk`` cotangents
    (``is_grads_batched``); "replicate" repeats the sequence ``chunk`` times along the batch and backprops once."""
    if dtype not in (torch.float32, torch.float64):
        raise UserError(f"autodiff Jacobians are computed in float32 or float64, not {dtype}")
    if mode not in ("batched-grad", "replicate"):
        raise ValueError(f"mode must be 'batched-grad' or 'replicate', not {mode!r}")
    X = call.hidden_states
    T, d = X.shape
    device = execution_device(adapter.block_list(model)[layer])
    idx = token_index(tokens, T)
    J = out if out is not None else torch.empty(idx.numel(), d, d, dtype=dtype, device=device)
    if J.shape != (idx.numel(), d, d) or J.dtype != dtype:
        raise ValueError(f"out must be {dtype} of shape {(idx.numel(), d, d)}, got {J.dtype} {tuple(J.shape)}")
    block, paths = prepare_block(model, adapter, layer, dtype)
    if chunk is None:
        width = max(max(p.shape) for p in block.parameters())
        chunk = min(128, CHUNK_BYTES // (T * width * torch.finfo(dtype).bits // 8))
    chunk = max(1, min(chunk, d))
    idx_dev = idx.to(device)
    with torch.enable_grad():
        if mode == "batched-grad":
            x = X.detach().to(device=device, dtype=dtype, copy=True)[None].requires_grad_(True)
            f, y = branch_forward(block, paths, call, x)
            _check_branch(f, y, x, layer)
            for a0 in range(0, d, chunk):
                c = min(chunk, d - a0)
                g = _cotangents(c, a0, T, d, idx_dev, dtype, device)[:, None]       # [c, 1, T, d]
                (grad,) = torch.autograd.grad(f, x, g, retain_graph=a0 + c < d, is_grads_batched=True)
                J[:, a0:a0 + c].copy_(grad[:, 0, idx_dev].transpose(0, 1))
        else:
            for a0 in range(0, d, chunk):
                c = min(chunk, d - a0)
                x = X.detach().to(device=device, dtype=dtype)[None].repeat(c, 1, 1).requires_grad_(True)
                f, y = branch_forward(block, paths, call, x)
                if a0 == 0:
                    _check_branch(f, y, x, layer)
                (grad,) = torch.autograd.grad(f, x, _cotangents(c, a0, T, d, idx_dev, dtype, device))
                J[:, a0:a0 + c].copy_(grad[:, idx_dev].transpose(0, 1))
                del f, y, grad, x
    return J


def _cotangents(c: int, a0: int, T: int, d: int, idx: torch.Tensor, dtype: torch.dtype,
                device: torch.device) -> torch.Tensor:
    """[c, T, d]: cotangent i is e_{a0+i} at every selected token (zero elsewhere)."""
    g = torch.zeros(c, T, d, dtype=dtype, device=device)
    rows = torch.arange(c, device=device)
    g[rows[:, None], idx[None, :], (a0 + rows)[:, None]] = 1
    return g


def method_for(model_type: str | None, requested: str = "auto") -> str:
    """The Jacobian method to use: 'closed-form' or 'autodiff' ('auto' picks closed-form where it exists)."""
    from coupling_tui.core.engine.jacobians.closed_form import FAMILIES

    if requested not in METHODS:
        raise UserError(f"unknown Jacobian method {requested!r} (choose from {', '.join(METHODS)})")
    if requested == "auto":
        return "closed-form" if model_type in FAMILIES else "autodiff"
    if requested == "closed-form" and model_type not in FAMILIES:
        raise UserError(f"no closed-form Jacobian for architecture {model_type or 'unknown'}",
                        f"closed form covers {', '.join(FAMILIES)}; use --jacobian-method autodiff (or auto)")
    return requested
