"""Torch-free synthetic engine event streams, shaped exactly like core.engine's, for UI and results tests."""

from __future__ import annotations

import numpy as np

from coupling_tui.core.events import LayerDone, RunFinished, RunStarted


def fake_header(n_layers: int, n_tokens: int, d: int) -> dict:
    return {
        "tool": {"name": "coupling-tui", "version": "test"},
        "model": {"source": "fake/model", "path": "fake/model", "revision": None, "family": "llama",
                  "class": "LlamaForCausalLM", "n_layers": n_layers, "d_model": d, "vocab_size": 100,
                  "random_init": False, "seed": None},
        "dtype": "float32",
        "device": "cpu",
        "prompt": " ".join(f"w{i}" for i in range(n_tokens)),
        "tokens": {"ids": list(range(10, 10 + n_tokens)), "text": [f" w{i}" for i in range(n_tokens)],
                   "truncated_from": None},
        "params": {"max_tokens": 128},
    }


def fake_events(n_layers: int = 4, n_tokens: int = 5, d: int = 8, seed: int = 0) -> list:
    """RunStarted, one LayerDone per block, RunFinished. Norms grow geometrically with depth (factor 1.5)."""
    rng = np.random.default_rng(seed)
    hidden = np.full((n_layers + 1, n_tokens, d), np.nan, dtype=np.float32)
    norms = np.full((n_layers + 1, n_tokens), np.nan, dtype=np.float32)
    full = rng.standard_normal((n_layers + 1, n_tokens, d)).astype(np.float32)
    full /= np.linalg.norm(full, axis=-1, keepdims=True)
    full *= (1.5 ** np.arange(n_layers + 1))[:, None, None] * (1 + np.arange(n_tokens))[None, :, None]
    full_norms = np.linalg.norm(full, axis=-1).astype(np.float32)
    hidden[0], norms[0] = full[0], full_norms[0]
    events: list = [RunStarted(header=fake_header(n_layers, n_tokens, d), arrays={
        "tokens.ids": np.arange(10, 10 + n_tokens, dtype=np.int64),
        "trajectory.hidden": hidden,
        "trajectory.norms": norms,
    })]
    for layer in range(n_layers):
        events.append(LayerDone(layer=layer, n_layers=n_layers, rows={
            "trajectory.hidden": (layer + 1, full[layer + 1]),
            "trajectory.norms": (layer + 1, full_norms[layer + 1]),
        }))
    events.append(RunFinished(seconds=0.5, header={"next_token": {"id": 42, "text": " Paris"}}))
    return events
