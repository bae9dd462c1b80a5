"""Checks of a local ``--model`` (a .gguf file or a saved model directory) that read no weights, so a second model
(``--compare``) is checked before the first one loads: the path exists, a directory has config.json
(``check_local``), and its weights are there and their safetensors headers read (``check_weights``) (random bytes, empty or truncated files are refused here,
naming the file; issue 17 defect 4)."""

from __future__ import annotations

import json
from pathlib import Path

from coupling_tui.core.errors import UserError
from coupling_tui.core.load.load_errors import UnreadableModel, detail

WEIGHT_HINT = "re-save the model with save_pretrained, or download it again"


def check_local(spec: str) -> Path | None:
    """The resolved local model a ``--model`` names (a .gguf file or a saved model directory), None for a hub id;
    UserError when it names a local path that is not a loadable model."""
    path = Path(spec).expanduser()
    if spec.lower().endswith(".gguf"):
        if not path.is_file():
            raise UserError(f"model not found: {spec} (no such .gguf file)")
        return path.resolve()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise UserError(f"model not found: {spec} is a directory without config.json",
                            "point --model at a saved Hugging Face model directory")
        return path.resolve()
    if path.exists() or spec.startswith((".", "/", "~")):
        raise UserError(f"model not found: {spec} (no such directory)")
    return None


def weight_files(folder: Path) -> list[Path]:
    """The safetensors files a saved model's weights are in: the shards its index names, else every top-level
    ``*.safetensors``. A shard the index names but the folder lacks is an UnreadableModel."""
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        try:
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise UnreadableModel(f"the weights of {folder} cannot be read: {index.name} is not a shard index "
                                  f"({detail(exc)})", WEIGHT_HINT) from None
        missing = [s for s in shards if not (folder / s).is_file()]
        if missing:
            raise UnreadableModel(f"the weights of {folder} are incomplete: {index.name} names {len(shards)} "
                                  f"shard(s) and {len(missing)} are missing ({', '.join(missing[:3])})", WEIGHT_HINT)
        return [folder / s for s in shards]
    return sorted(folder.glob("*.safetensors"))


def check_weights(folder: Path, spec: str) -> None:
    """The directory has weights, and each safetensors file's header reads and covers the whole file."""
    from safetensors import safe_open

    files = weight_files(folder)
    if not files:
        if any(folder.glob("pytorch_model*.bin")):
            return                      # torch pickles: read only by the load itself
        raise UnreadableModel(f"{spec} has no weights (no model.safetensors, no shards, no pytorch_model.bin)",
                              "a saved model directory holds the weights save_pretrained writes; "
                              "--random-init needs only config.json and the tokenizer")
    for file in files:
        try:
            with safe_open(str(file), framework="numpy"):
                pass
        except Exception as exc:  # noqa: BLE001 - SafetensorError, OSError: random bytes, empty, truncated
            raise UnreadableModel(f"{file} is not a readable safetensors file (empty, truncated or corrupt: "
                                  f"{detail(exc)})", WEIGHT_HINT) from None
