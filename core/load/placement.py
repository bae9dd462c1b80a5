"""Where each decoder block of a loaded model lives, and how to compute on it there.

A model loaded with ``--device-map``/``--max-memory`` is dispatched by accelerate: each module carries an
``AlignDevicesHook`` whose ``execution_device`` is where its forward runs. A block *offloaded* to ``cpu`` (with a
GPU main device) or to ``disk`` keeps its weights on the ``meta`` device; the hook reads them in for each forward
and drops them after. The engine therefore never asks a parameter where a block is (``execution_device``), reads
offloaded weights inside ``materialised`` (closed form), and runs autodiff on a ``plain_copy`` (hook-free, real
weights, compute dtype). Everything else of a plain single-device model passes through unchanged.
"""

from __future__ import annotations

import contextlib
import copy
from typing import Any, Iterator

import torch

from coupling_tui.core.options.sharding import device_label

_HOOK_ATTRS = ("_hf_hook", "_old_forward", "forward")
"""Instance attributes accelerate's ``add_hook_to_module`` sets on a module."""


def _hooks(module: Any) -> list[Any]:
    hook = getattr(module, "_hf_hook", None)
    if hook is None:
        return []
    return list(getattr(hook, "hooks", None) or [hook])          # a SequentialHook holds several


def execution_device(module: Any) -> torch.device:
    """Where ``module``'s forward runs: its accelerate hook's execution device, else that of its first real
    parameter or buffer (of it or a submodule), else the CPU."""
    for m in module.modules():
        for hook in _hooks(m):
            device = getattr(hook, "execution_device", None)
            if device is not None:
                return torch.device(device)
        for t in _own_tensors(m):
            if t.device.type != "meta":
                return t.device
    return torch.device("cpu")


def _own_tensors(module: Any) -> Iterator[torch.Tensor]:
    yield from module.parameters(recurse=False)
    yield from module.buffers(recurse=False)


def is_offloaded(module: Any) -> bool:
    """Whether some of ``module``'s weights are offloaded (on the meta device, read in by a hook)."""
    return any(p.device.type == "meta" for p in module.parameters())


def is_dispatched(model: Any) -> bool:
    """Whether accelerate hooks are attached anywhere in ``model``."""
    return any(hasattr(m, "_hf_hook") for m in model.modules())


@contextlib.contextmanager
def materialised(module: Any) -> Iterator[Any]:
    """Within the block, every offloaded weight of ``module`` is real, on its hook's execution device (accelerate's
    ``align_module_device``, submodule by submodule); outside, nothing changes. Free for a resident module."""
    if not is_offloaded(module):
        yield module
        return
    from accelerate.utils import align_module_device, has_offloaded_params

    with contextlib.ExitStack() as stack:
        for m in module.modules():
            if has_offloaded_params(m):
                stack.enter_context(align_module_device(m))
        yield module


def plain_copy(module: Any, dtype: torch.dtype) -> Any:
    """A copy of ``module`` without accelerate hooks, its weights real (read in where offloaded), in ``dtype``, on
    its execution device: what autodiff may call and differentiate like an ordinary module. One block's weights."""
    device = execution_device(module)
    with materialised(module):
        saved = {m: {a: m.__dict__.pop(a) for a in _HOOK_ATTRS if a in m.__dict__} for m in module.modules()}
        try:
            twin = copy.deepcopy(module)
        finally:
            for m, attrs in saved.items():
                m.__dict__.update(attrs)
    return twin.to(device=device, dtype=dtype)


def block_labels(model: Any, adapter: Any) -> list[str]:
    """Each block's place as the device map says it (``cuda:1``, ``cpu``, ``disk``), else its execution device."""
    device_map = getattr(model, "hf_device_map", None) or {}
    blocks = adapter.block_list(model)
    labels = []
    for i, block in enumerate(blocks):
        name = f"{adapter.blocks}.{i}"
        keys = [k for k in device_map if k == "" or name == k or name.startswith(k + ".")]
        labels.append(device_label(device_map[max(keys, key=len)]) if keys else str(execution_device(block)))
    return labels


def describe(model: Any, adapter: Any, device_map, max_memory) -> dict:
    """The results header's ``placement``: how the model was asked to be placed and where each block ended up
    (its label, its execution device, and which blocks are offloaded)."""
    blocks = adapter.block_list(model)
    labels = block_labels(model, adapter)
    execution = [str(execution_device(b)) for b in blocks]
    offloaded = [i for i, b in enumerate(blocks) if is_offloaded(b)]
    return {"device_map": device_map if isinstance(device_map, str) else "explicit",
            "max_memory": None if max_memory is None else {device_label(k): int(v) for k, v in max_memory.items()},
            "blocks": labels, "execution": execution, "offloaded": offloaded,
            "devices": sorted(set(execution))}


def input_device(model: Any) -> str:
    """Where the token ids go: the input embedding's execution device."""
    return str(execution_device(model.get_input_embeddings()))


def dispatch(model: Any, device_map, max_memory, offload_dir: str) -> Any:
    """Place an already-built model (the random-init baseline) as ``from_pretrained`` would: a strategy is turned
    into a module → device map by accelerate (whole decoder blocks never split), then hooks are attached."""
    from accelerate import dispatch_model, infer_auto_device_map
    from accelerate.utils import get_balanced_memory, get_max_memory

    if isinstance(device_map, str):
        no_split = getattr(model, "_no_split_modules", None) or []
        if device_map == "sequential":
            memory = get_max_memory(max_memory)
        else:
            memory = get_balanced_memory(model, max_memory=max_memory, no_split_module_classes=no_split,
                                         low_zero=device_map == "balanced_low_0")
        device_map = infer_auto_device_map(model, max_memory=memory, no_split_module_classes=no_split)
    if len(set(device_map.values())) > 1 or "disk" in device_map.values():
        model = dispatch_model(model, device_map=device_map, offload_dir=offload_dir)
    else:
        model = model.to(torch.device(next(iter(device_map.values()))))
    model.hf_device_map = dict(device_map)
    return model
