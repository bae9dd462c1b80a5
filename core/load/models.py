"""Resolve ``--model`` (Hugging Face id, local directory, .gguf file or the offline default), pick dtype and device,
and load the model, tokenizer and architecture adapter. Errors become one-line UserErrors."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from coupling_tui.core.load.adapters import Adapter, adapter_for
from coupling_tui.core.cost import weights_bytes
from coupling_tui.core.errors import UserError
from coupling_tui.core.load.hub import cache_only
from coupling_tui.core.load.load_errors import UnreadableModel, explain
from coupling_tui.core.load.local_model import check_local, check_weights
from coupling_tui.core.faults import is_out_of_memory, load_out_of_memory_error
from coupling_tui.core.options.sharding import check_gpus, check_request

DTYPES = ("auto", "float32", "bfloat16", "float16", "float64")


@dataclass(frozen=True)
class ModelRequest:
    model: str | None = None
    """HF id, local directory or .gguf path; None means the offline default."""
    revision: str | None = None
    dtype: str = "auto"
    device: str = "auto"
    trust_remote_code: bool = False
    random_init: bool = False
    seed: int = 0
    device_map: str | dict | None = None
    """accelerate placement: a strategy (auto, balanced, balanced_low_0, sequential) or {module path: device}
    (core.options.sharding); None loads the whole model onto ``device``."""
    max_memory: dict | None = None
    """{GPU index or "cpu"/"disk": bytes} capping each device under a strategy (implies ``auto``)."""


@dataclass
class LoadedModel:
    model: Any
    tokenizer: Any
    adapter: Adapter
    device: str
    dtype: str
    info: dict = field(default_factory=dict)
    """The results header's ``model`` entry."""
    notes: list[str] = field(default_factory=list)
    """Things the user should know about how it was loaded (a dtype emulated on this CPU), one line each."""
    placement: dict | None = None
    """Sharded loads only (core.load.placement.describe): where each block lives; the results header's ``placement``.
    ``device`` is then where the token ids go (the input embedding's device)."""
    load_seconds: float = 0.0
    """Wall seconds the front end waited for this load (a GGUF's one-time dequantisation included), told beside the
    cost estimate; 0 when nobody timed it."""

    @property
    def devices(self) -> list[str]:
        """Each block's execution device (one entry per block; all ``device`` when not sharded)."""
        if self.placement is not None:
            return list(self.placement["execution"])
        return [self.device] * int(self.info.get("n_layers", 0))


def resolve_device(name: str) -> str:
    import torch

    name = (name or "auto").strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        return "mps" if mps is not None and mps.is_available() else "cpu"
    if name == "cpu":
        return "cpu"
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise UserError(f"--device {name}: no CUDA GPU is visible to torch {torch.__version__}",
                            "use --device cpu, or install a CUDA build of torch")
        index = name.partition(":")[2]
        if index and (not index.isdigit() or int(index) >= torch.cuda.device_count()):
            raise UserError(f"--device {name}: there are {torch.cuda.device_count()} CUDA devices")
        return name
    if name == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise UserError("--device mps: Apple MPS is not available here", "use --device cpu")
        return "mps"
    raise UserError(f"unknown device: {name}", "use one of auto, cpu, cuda, cuda:N, mps")


def resolve_dtype(name: str, device: str, config: Any) -> str:
    """``auto`` is float32 on the CPU (fast and exact enough for Jacobian maths) and the checkpoint's own
    half-precision dtype on a GPU."""
    name = (name or "auto").strip().lower()
    if name not in DTYPES:
        raise UserError(f"unknown dtype: {name}", f"use one of {', '.join(DTYPES)}")
    if name == "float64" and device == "mps":
        raise UserError("--dtype float64 is not supported on MPS", "use --device cpu for float64")
    if name != "auto":
        return name
    if device == "cpu":
        return "float32"
    stored = str(getattr(config, "dtype", None) or getattr(config, "torch_dtype", None) or "").replace("torch.", "")
    return stored if stored in ("bfloat16", "float16") else "float32"


def _source(request: ModelRequest, on_stage: Callable[[str], None] | None,
            on_note: Callable[[str], None] | None = None) -> tuple[str, dict]:
    """Where from_pretrained should read, and what the header records about the source."""
    from coupling_tui.core.load import default_model

    if request.model is None:
        gguf = default_model.locate_default_gguf()
        return str(default_model.converted_dir(gguf, on_stage, on_note)), {
            "source": default_model.DEFAULT_LABEL, "gguf_file": str(gguf)}
    spec = request.model
    path = check_local(spec)
    if path is not None and spec.lower().endswith(".gguf"):
        return str(default_model.converted_dir(path, on_stage, on_note)), {"source": spec, "gguf_file": str(path)}
    if path is not None:
        return str(path), {"source": spec}
    return spec, {"source": spec}


def check_model(spec: str, trust_remote_code: bool = False) -> None:
    """Everything about a local ``--model`` that can be checked without reading its weights: the path, its config
    and architecture, and its weight files' headers (a hub id or a .gguf: only that it exists). ``--compare`` runs it
    on model B before model A loads."""
    path = check_local(spec)
    if path is None or not path.is_dir():
        return
    config = _load_config(str(path), ModelRequest(model=spec, trust_remote_code=trust_remote_code))
    adapter_for(getattr(config, "model_type", None))
    check_weights(path, spec)


def _load_config(src: str, request: ModelRequest) -> Any:
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(src, revision=request.revision, trust_remote_code=request.trust_remote_code,
                                          local_files_only=cache_only(src))
    except Exception as exc:  # transformers raises OSError/ValueError/hub errors with long texts
        raise explain(src, exc, "config", local=Path(src).is_dir()) from exc


def inspect(request: ModelRequest, on_stage: Callable[[str], None] | None = None) -> tuple[Any, Any, str, str]:
    """The config and tokenizer of the model ``request`` names, and the dtype and device it would load as, without its
    weights (a sweep's estimate before any model loads; a .gguf is converted once, as ``load`` would). A part that
    cannot be read is one UserError, as from ``load``."""
    import transformers
    from transformers import AutoTokenizer

    transformers.utils.logging.set_verbosity_error()
    device = resolve_device(request.device) if request.device_map is None else "cpu"
    src, info = _source(request, on_stage)
    config = _load_config(src, request)
    adapter_for(getattr(config, "model_type", None))
    try:
        tokenizer = AutoTokenizer.from_pretrained(src, revision=request.revision,
                                                  trust_remote_code=request.trust_remote_code)
    except Exception as exc:  # noqa: BLE001 - as _read: one line naming the part
        raise explain(src, exc, "tokenizer", Path(src).is_dir()) from exc
    return config, tokenizer, resolve_dtype(request.dtype, device, config), device


def load(request: ModelRequest, on_stage: Callable[[str], None] | None = None,
         on_config: Callable[[Any], None] | None = None) -> LoadedModel:
    """Load the model in eval mode with gradients off, on the resolved device and dtype. ``on_config`` sees the
    config before any weights load (a UserError it raises stops the load)."""
    import torch
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    device_map = check_request(request.device, request.device_map, request.max_memory)
    if device_map is not None:
        check_gpus(device_map, request.max_memory, torch.cuda.device_count() if torch.cuda.is_available() else 0)
        device = "cuda" if torch.cuda.is_available() else "cpu"         # what --dtype auto decides by
    else:
        device = resolve_device(request.device)
    said: list[str] = []                  # notes from the cache (an entry discarded), printed with the others
    src, info = _source(request, on_stage, said.append)
    try:
        config, adapter, dtype, tokenizer, model = _read(src, info, request, device, device_map, on_stage, on_config)
    except UnreadableModel as exc:
        if "gguf_file" not in info:
            raise
        from coupling_tui.core.load import default_model

        # A cached conversion that does not load (a file damaged after it was written): convert again, once.
        default_model.discard(Path(src), exc.message, said.append)
        src = str(default_model.converted_dir(Path(info["gguf_file"]), on_stage, said.append))
        config, adapter, dtype, tokenizer, model = _read(src, info, request, device, device_map, on_stage, on_config)
    for p in model.parameters():
        p.requires_grad_(False)
    blocks = adapter.block_list(model)
    info.update({
        "path": src,
        "revision": request.revision,
        "resolved_revision": getattr(config, "_commit_hash", None),
        "family": config.model_type,
        "class": type(model).__name__,
        "n_layers": len(blocks),
        "d_model": int(model.get_input_embeddings().weight.shape[1]),
        "vocab_size": int(model.get_input_embeddings().weight.shape[0]),
        "n_params": int(sum(p.numel() for p in model.parameters())),
        "random_init": request.random_init,
        "seed": request.seed if request.random_init else None,
    })
    notes = said + [n for n in (dtype_note(dtype, device),) if n]
    where = None
    if device_map is not None:
        from coupling_tui.core.load.placement import describe, input_device

        where = describe(model, adapter, device_map, request.max_memory)
        device = input_device(model)
        notes += offload_notes(where)
    return LoadedModel(model=model, tokenizer=tokenizer, adapter=adapter, device=device, dtype=dtype, info=info,
                       notes=notes, placement=where)


def _read(src: str, info: dict, request: ModelRequest, device: str, device_map, on_stage, on_config=None) -> tuple:
    """Config, adapter, dtype, tokenizer and model from ``src``; a part that fails to read is one UserError naming
    it (an UnreadableModel for a local directory)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    local = Path(src).is_dir()
    if on_stage:
        on_stage(f"reading config of {info['source']}")
    config = _load_config(src, request)
    if on_config is not None:
        on_config(config)
    adapter = adapter_for(getattr(config, "model_type", None))
    if local and not request.random_init:
        check_weights(Path(src), info["source"])
    dtype = resolve_dtype(request.dtype, device, config)
    torch_dtype = getattr(torch, dtype)
    common = dict(revision=request.revision, trust_remote_code=request.trust_remote_code,
                  local_files_only=cache_only(src))
    part = "tokenizer"
    try:
        if on_stage:
            on_stage(f"loading tokenizer and {'random-init' if request.random_init else 'trained'} weights")
        tokenizer = AutoTokenizer.from_pretrained(src, **common)
        part = "weights"
        if device_map is not None:
            model = _load_sharded(src, config, request, device_map, torch_dtype, common)
        elif request.random_init:
            torch.manual_seed(request.seed)
            model = AutoModelForCausalLM.from_config(config, dtype=torch_dtype,
                                                     trust_remote_code=request.trust_remote_code)
        else:
            model = AutoModelForCausalLM.from_pretrained(src, dtype=torch_dtype, **common)
        if device_map is None:           # weights are already in dtype; buffers such as RoPE's inv_freq stay
            model = model.to(device=device)   # float32, as HF (and a sharded load) keep them
        model = model.eval()
    except UserError:
        raise
    except Exception as exc:
        if is_out_of_memory(exc):
            raise load_out_of_memory_error(info["source"], dtype, device, weights_bytes(config, dtype)) from exc
        if local or isinstance(exc, (OSError, ValueError)):   # a local file's reader raises many kinds
            raise explain(src, exc, part, local) from exc
        raise
    return config, adapter, dtype, tokenizer, model


def _load_sharded(src: str, config: Any, request: ModelRequest, device_map, torch_dtype, common: dict) -> Any:
    """The model placed by accelerate (``device_map``/``max_memory``); disk offload goes to a private folder
    under the cache, removed at exit."""
    import torch
    from transformers import AutoModelForCausalLM

    from coupling_tui.core.load.placement import dispatch

    offload = _offload_folder()
    with _quiet_accelerate():            # its "parameters on the meta device" warning: offload_notes says it
        if request.random_init:
            torch.manual_seed(request.seed)
            model = AutoModelForCausalLM.from_config(config, dtype=torch_dtype,
                                                     trust_remote_code=request.trust_remote_code)
            return dispatch(model, device_map, request.max_memory, offload)
        return AutoModelForCausalLM.from_pretrained(src, dtype=torch_dtype, device_map=device_map,
                                                    max_memory=request.max_memory, offload_folder=offload, **common)


@contextlib.contextmanager
def _quiet_accelerate():
    logger = logging.getLogger("accelerate.big_modeling")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _offload_folder() -> str:
    import atexit
    import shutil
    import tempfile

    from coupling_tui.core.load.default_model import cache_root

    root = cache_root() / "offload"
    root.mkdir(parents=True, exist_ok=True)
    folder = tempfile.mkdtemp(prefix="run-", dir=root)
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def offload_notes(where: dict) -> list[str]:
    """What the user should know about offloaded blocks: they run, slowly."""
    if not where["offloaded"]:
        return []
    blocks = list(where["offloaded"])
    kinds = sorted({where["blocks"][i] for i in blocks})
    return [f"note: {len(blocks)} block{'s' if len(blocks) != 1 else ''} ({_ranges(blocks)}) offloaded to "
            f"{' and '.join(kinds)}: their weights are read in for every forward and every Jacobian, which is slow; "
            "a larger --max-memory (or more GPUs) keeps them resident"]


def _ranges(blocks: list[int]) -> str:
    """``1–3, 7`` for blocks [1, 2, 3, 7]."""
    runs: list[list[int]] = []
    for b in blocks:
        if runs and runs[-1][1] == b - 1:
            runs[-1][1] = b
        else:
            runs.append([b, b])
    return ", ".join(str(a) if a == b else f"{a}–{b}" for a, b in runs)


def cpu_has_native_half(dtype: str) -> bool | None:
    """Whether this x86 CPU computes ``dtype`` (bfloat16, float16) natively (AVX512-BF16/-FP16 or AMX);
    None when torch cannot tell (another architecture, an older torch)."""
    import platform

    import torch

    if platform.machine().lower() not in ("x86_64", "amd64"):
        return None
    checks = {"bfloat16": ("_is_avx512_bf16_supported", "_is_amx_tile_supported"),
              "float16": ("_is_avx512_fp16_supported", "_is_amx_fp16_supported")}[dtype]
    found = [getattr(torch.cpu, name, None) for name in checks]
    if not any(callable(f) for f in found):
        return None
    return any(callable(f) and f() for f in found)


def dtype_note(dtype: str, device: str) -> str | None:
    """The stated fallback for a half dtype on a CPU without native support: it still runs, emulated."""
    if device != "cpu" or dtype not in ("bfloat16", "float16") or cpu_has_native_half(dtype) is not False:
        return None
    return (f"note: this CPU has no native {dtype}; torch emulates it, usually slower than float32 and no smaller "
            "for the Jacobians (computed in float32 anyway) — drop --dtype for float32")
