"""Torch-free synthetic engine event streams, shaped exactly like core.engine's, for UI and results tests."""

from __future__ import annotations

import numpy as np

from coupling_tui.core.results.events import LayerDone, RunFinished, RunStarted
from coupling_tui.core.options.run_options import RunOptions


def fake_header(n_layers: int, n_tokens: int, d: int, k: int = 0) -> dict:
    """A run header like core.engine's; ``jacobian`` is None unless ``k`` > 0 (the run's top-K)."""
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
        "params": {"max_tokens": 128, "top_k": k},
        "jacobian": {"method": "closed-form", "compute_dtype": "float32", "top_k": k} if k > 0 else None,
    }


def fake_singular_values(n_layers: int, n_tokens: int, k: int) -> np.ndarray:
    """σ_i of block l at token t: (1 + l) · 0.9^i · (1 + t/10) for i = 0..k-1, shape [L, T, K], float32."""
    layer = 1 + np.arange(n_layers, dtype=np.float64)[:, None, None]
    token = 1 + np.arange(n_tokens, dtype=np.float64)[None, :, None] / 10
    return (layer * token * 0.9 ** np.arange(k)[None, None, :]).astype(np.float32)


def fake_coupling(n_layers: int, n_tokens: int, ks: list[int], seed: int, prefix: str = "") -> dict:
    """Coupling arrays as the engine stores them, with random m in [0.2, 1.1) off the diagonal and 0 on it."""
    rng = np.random.default_rng(seed)
    L, T, nk = n_layers, n_tokens, len(ks)
    depth = rng.uniform(0.2, 1.1, (nk, T, L, L)).astype(np.float32)
    depth[..., np.arange(L), np.arange(L)] = 0
    token = rng.uniform(0.2, 1.1, (nk, L, T, T)).astype(np.float32)
    token[..., np.arange(T), np.arange(T)] = 0
    arrays = {"coupling.ks": np.asarray(ks, np.int64), "coupling.depth": depth[-1], "coupling.depth_k": depth,
              "coupling.depth_trace_k": depth / 3, "coupling.depth_mean_k": depth.mean(axis=1)}
    if not prefix:
        arrays["coupling.token_k"] = token
    return {prefix + name: a for name, a in arrays.items()}


def fake_events(n_layers: int = 4, n_tokens: int = 5, d: int = 8, seed: int = 0, k: int = 0,
                coupling: bool = False, baseline: bool = False) -> list:
    """RunStarted, one LayerDone per block, RunFinished; norms grow 1.5× per block and, when ``k`` > 0 (clamped to
    ``d`` as the engine does), Jacobian arrays come too: σ from ``fake_singular_values``, ‖J‖_F with 80 % of its
    square in the top K, singular vectors for tokens 0 and T-1."""
    rng = np.random.default_rng(seed)
    k = min(k, d)
    hidden = np.full((n_layers + 1, n_tokens, d), np.nan, dtype=np.float32)
    norms = np.full((n_layers + 1, n_tokens), np.nan, dtype=np.float32)
    full = rng.standard_normal((n_layers + 1, n_tokens, d)).astype(np.float32)
    full /= np.linalg.norm(full, axis=-1, keepdims=True)
    full *= (1.5 ** np.arange(n_layers + 1))[:, None, None] * (1 + np.arange(n_tokens))[None, :, None]
    full_norms = np.linalg.norm(full, axis=-1).astype(np.float32)
    hidden[0], norms[0] = full[0], full_norms[0]
    arrays = {
        "tokens.ids": np.arange(10, 10 + n_tokens, dtype=np.int64),
        "trajectory.hidden": hidden,
        "trajectory.norms": norms,
    }
    jacobian_rows: list[dict] = [{} for _ in range(n_layers)]
    if k > 0:
        keep = np.unique(np.array([0, n_tokens - 1], dtype=np.int64))
        S = fake_singular_values(n_layers, n_tokens, k)
        fro = (np.sqrt((S.astype(np.float64) ** 2).sum(-1) / 0.8)).astype(np.float32)
        U = np.linalg.qr(rng.standard_normal((n_layers, len(keep), d, d)))[0][..., :k].astype(np.float32)
        V = np.linalg.qr(rng.standard_normal((n_layers, len(keep), d, d)))[0][..., :k].astype(np.float32)
        arrays.update({
            "jacobian.singular_values": np.full(S.shape, np.nan, dtype=np.float32),
            "jacobian.frobenius": np.full(fro.shape, np.nan, dtype=np.float32),
            "jacobian.vector_tokens": keep,
            "jacobian.U": np.full(U.shape, np.nan, dtype=np.float32),
            "jacobian.V": np.full(V.shape, np.nan, dtype=np.float32),
        })
        jacobian_rows = [{"jacobian.singular_values": (layer, S[layer]), "jacobian.frobenius": (layer, fro[layer]),
                          "jacobian.U": (layer, U[layer]), "jacobian.V": (layer, V[layer])}
                         for layer in range(n_layers)]
    header = fake_header(n_layers, n_tokens, d, k)
    if coupling:  # arrives whole with the first layer (the fakes do not stream coupling entry by entry)
        ks = [max(1, k // 2), k] if k > 1 else [1]
        header["coupling"] = {"ks": ks, "k": ks[-1]}
        coupled = fake_coupling(n_layers, n_tokens, ks, seed + 1)
        if baseline:
            coupled.update(fake_coupling(n_layers, n_tokens, ks, seed + 2, prefix="random_init."))
        arrays.update({name: np.full(a.shape, np.nan, a.dtype) if a.dtype.kind == "f" else a
                       for name, a in coupled.items()})
        jacobian_rows[0].update({name: (Ellipsis, a) for name, a in coupled.items() if a.dtype.kind == "f"})
    events: list = [RunStarted(header=header, arrays=arrays)]
    for layer in range(n_layers):
        events.append(LayerDone(layer=layer, n_layers=n_layers, rows={
            "trajectory.hidden": (layer + 1, full[layer + 1]),
            "trajectory.norms": (layer + 1, full_norms[layer + 1]),
            **jacobian_rows[layer],
        }))
    events.append(RunFinished(seconds=0.5, header={"next_token": {"id": 42, "text": " Paris"}}))
    return events


def collapse_events(model_dir, *, families: tuple[str, ...] = ("ones", "digits", "bernoulli"),
                    lengths: tuple[int, ...] = (2, 4, 8), sensitivity: bool = True, top_k: int = 0) -> list:
    """The real engine's event stream of a collapse run (``coupling-tui collapse``'s, or with ``top_k`` > 0 an
    explore run with ``--collapse``) on the tiny model saved in ``model_dir``: the collapse arrays and header can
    never drift from what the engine makes. Imports torch."""
    from coupling_tui.core.engine import stream as engine
    from coupling_tui.core.engine.collapse import CollapseSpec
    from coupling_tui.core.load.models import ModelRequest, load

    loaded = load(ModelRequest(model=str(model_dir)))
    spec = CollapseSpec(families=families, lengths=lengths, sensitivity=sensitivity, sensitivity_tokens=8)
    return list(engine.stream(loaded, "1 1 1", RunOptions(top_k=top_k, collapse=spec)))
