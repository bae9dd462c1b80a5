"""A model's depth (its number of blocks) read cheaply, before any weights load (issue 20 item 12): from a local
directory's config.json or from a GGUF file's metadata (the offline default's too). ``--layers`` is checked
against it before loading; a hub id's depth comes with its config (``models.load``'s ``on_config``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DEPTH_KEYS = ("num_hidden_layers", "n_layer", "num_layers", "n_layers")
"""Where a config names its number of blocks."""


def config_depth(config: Any) -> int | None:
    """The number of blocks a config (a transformers config or config.json's dict) names; None when none."""
    for key in DEPTH_KEYS:
        value = config.get(key) if isinstance(config, dict) else getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def gguf_depth(path: Path) -> int | None:
    """The ``<architecture>.block_count`` of a GGUF file's metadata (only its header is read); None when absent
    or unreadable."""
    try:
        from gguf import GGUFReader

        for name, field in GGUFReader(str(path)).fields.items():
            if name.endswith(".block_count"):
                return int(field.parts[field.data[0]][0])
    except Exception:  # noqa: BLE001 - unreadable here: the load itself says why
        return None
    return None


def cheap_depth(spec: str | None) -> int | None:
    """The depth of ``--model`` ``spec`` (None: the offline default GGUF) when it can be read without loading:
    a local directory's config.json, a .gguf file's metadata; None for a hub id or anything unreadable."""
    from coupling_tui.core.load import default_model

    try:
        if spec is None:
            return gguf_depth(default_model.locate_default_gguf())
        path = Path(spec).expanduser()
        if path.is_file() and path.suffix.lower() == ".gguf":
            return gguf_depth(path)
        if (path / "config.json").is_file():
            return config_depth(json.loads((path / "config.json").read_text()))
    except Exception:  # noqa: BLE001 - a model that cannot be found or read fails with its own message later
        return None
    return None
