"""The in-process parts of benchmarks/gpu_suite.py: an end-to-end engine run on a random Qwen2-0.5B-shaped model with
per-stage timers and a float64 check of its top-K triplets, and the collapse stage on the device against the CPU.

Everything runs the engine itself (``engine.stream`` on a model ``core.load.models.load`` read from a saved directory);
the per-stage times come from wrapping the engine's own stage functions with device-synchronised timers for the run
(restored afterwards), so nothing here reimplements a stage."""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from _bench_utils import PROMPT, sync
from coupling_tui.core.engine import model_pass, stream as engine
from coupling_tui.core.engine.coupling_stream import CouplingStream
from coupling_tui.core.engine.jacobians.closed_form import block_jacobians, rotary_cos_sin
from coupling_tui.core.engine.jacobians.layers import LayerJacobians
from coupling_tui.core.engine.trace import trace
from coupling_tui.core.load.models import ModelRequest, load
from coupling_tui.core.options.collapse import CollapseSpec
from coupling_tui.core.options.run_options import DEFAULT_HISTORY_MB, RunOptions
from coupling_tui.core.results import names
from coupling_tui.core.results.events import LayerDone, RunFinished, RunStarted


@dataclass(frozen=True)
class Shape:
    """The e2e model and run: blocks, width, heads, MLP width, vocabulary, tokens T and top-K."""

    layers: int
    hidden: int
    heads: int
    kv_heads: int
    intermediate: int
    vocab: int
    T: int
    K: int
    history_mb: float = DEFAULT_HISTORY_MB


ANCHOR = Shape(layers=24, hidden=896, heads=14, kv_heads=2, intermediate=4864, vocab=151936, T=256, K=32)
"""Qwen2-0.5B's shape (tied embeddings), at the issue's T = 256 and top-32 (its 19.7 GB dense-J history exceeds the
default budget, so the default compute recomputes the upper triangle in a second pass)."""
SMOKE = Shape(layers=2, hidden=64, heads=4, kv_heads=2, intermediate=128, vocab=320, T=16, K=8, history_mb=0.0)
"""The same code paths at a CPU-smoke size (the tiny tokenizer's vocabulary; 14 heads do not divide d = 64), with
no history budget so that the smoke too runs the anchor's second coupling pass."""

STAGES = ("trace", "jacobians", "top-K", "depth coupling", "token coupling", "other")
STAGE_NOTES = {
    "trace": "engine.trace: the forward pass that records every block's input (model_pass.trace)",
    "jacobians": "LayerJacobians.layer: every block's J at every token (both passes when the history does not fit)",
    "top-K": "model_pass.top_k_triplets: the exact top-K solver over every block and token",
    "depth coupling": "CouplingStream.add_layer/add_upper less the token coupling inside them (incl. host copies)",
    "token coupling": "CouplingStream._token_layer/_token_pair: same-layer and layer-pair token coupling",
    "other": "the rest of the run's wall time: host copies of S/U/V, Frobenius norms, fidelity, fits, events",
}


def save_qwen2(shape: Shape, directory: Path) -> Path:
    """A random Qwen2 model of ``shape`` (float32 weights, tied embeddings) and the tests' tiny BPE tokenizer, saved
    to ``directory`` so ``load`` reads it like a user's model."""
    from tests.tiny_models import tiny_tokenizer
    from transformers import Qwen2Config, Qwen2ForCausalLM

    cfg = Qwen2Config(hidden_size=shape.hidden, intermediate_size=shape.intermediate,
                      num_hidden_layers=shape.layers, num_attention_heads=shape.heads,
                      num_key_value_heads=shape.kv_heads, vocab_size=shape.vocab, max_position_embeddings=4096,
                      tie_word_embeddings=True)
    torch.manual_seed(0)
    Qwen2ForCausalLM(cfg).float().eval().save_pretrained(directory)
    tiny_tokenizer().save_pretrained(directory)
    return directory


class StageTimers:
    """Exclusive wall-clock seconds per stage: a timed call nested in another (token coupling inside add_layer) is
    taken out of the outer one. Every start and stop synchronises the device, so the times cover the work."""

    def __init__(self, device: str, clock: Any = time.perf_counter) -> None:
        self.device, self.seconds, self._stack = device, dict.fromkeys(STAGES, 0.0), []
        self.clock = clock
        """time.perf_counter (wall) or time.process_time (CPU seconds, for a calibration on a loaded machine)."""

    def wrap(self, stage: str, fn: Any) -> Any:
        def timed_call(*args: Any, **kwargs: Any) -> Any:
            sync(self.device)
            self._stack.append(0.0)
            t0 = self.clock()
            try:
                return fn(*args, **kwargs)
            finally:
                sync(self.device)
                elapsed = self.clock() - t0
                inner = self._stack.pop()
                self.seconds[stage] += elapsed - inner
                if self._stack:
                    self._stack[-1] += elapsed
        return timed_call


_HOOKS = ((model_pass, "trace", "trace"), (LayerJacobians, "layer", "jacobians"),
          (model_pass, "top_k_triplets", "top-K"), (CouplingStream, "add_layer", "depth coupling"),
          (CouplingStream, "add_upper", "depth coupling"), (CouplingStream, "_token_layer", "token coupling"),
          (CouplingStream, "_token_pair", "token coupling"))


@contextmanager
def timing(timers: StageTimers) -> Iterator[None]:
    """The engine's stage functions wrapped by ``timers`` for the block; the originals are put back after."""
    saved = []
    try:
        for owner, attr, stage in _HOOKS:
            original = owner.__dict__[attr]                    # KeyError: the engine renamed a stage function
            saved.append((owner, attr, original))
            setattr(owner, attr, timers.wrap(stage, original))
        yield
    finally:
        for owner, attr, original in reversed(saved):
            setattr(owner, attr, original)


def fold(events: Iterator[Any]) -> tuple[dict, dict[str, np.ndarray], float]:
    """(header, arrays, engine seconds) of a whole stream: RunStarted's arrays with every LayerDone's rows applied."""
    header, arrays, seconds = {}, {}, float("nan")
    for ev in events:
        if isinstance(ev, RunStarted):
            header, arrays = dict(ev.header), {k: np.array(v) for k, v in ev.arrays.items()}
        elif isinstance(ev, LayerDone):
            for name, (index, values) in ev.rows.items():
                arrays[name][index] = values
        elif isinstance(ev, RunFinished):
            header.update(ev.header)
            seconds = ev.seconds
    return header, arrays, seconds


def long_prompt(T: int) -> str:
    """Enough text for at least T tokens of any tokenizer here."""
    return " ".join([PROMPT] * max(1, T // 16))


def e2e(model_dir: Path, dtype: str, shape: Shape, device: str) -> dict:
    """One default ``compute`` (every stage, top-K ``shape.K``, T = ``shape.T``) of the saved model in ``dtype`` on
    ``device``: wall time per stage, the engine's own time, peak GPU memory and the float64 triplet check. The top-K
    solver is the default's choice on CUDA (subspace iteration) and the same solver named on the CPU (a smoke run
    there covers the GPU's path, where auto would pick scipy)."""
    t0 = time.perf_counter()
    loaded = load(ModelRequest(model=str(model_dir), dtype=dtype, device=device))
    load_s = time.perf_counter() - t0
    options = RunOptions(max_tokens=shape.T, top_k=shape.K, history_mb=shape.history_mb,
                         topk_solver="auto" if loaded.device.startswith("cuda") else "subspace")
    prompt = long_prompt(shape.T)
    cuda = loaded.device.startswith("cuda")
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    timers = StageTimers(loaded.device)
    with timing(timers):
        sync(loaded.device)
        t1 = time.perf_counter()
        header, arrays, engine_s = fold(engine.stream(loaded, prompt, options))
        sync(loaded.device)
        wall = time.perf_counter() - t1
    peak = f"{torch.cuda.max_memory_allocated() / 2**30:.2f} GiB" if cuda else "n/a"
    stages = dict(timers.seconds)
    stages["other"] = max(0.0, wall - sum(v for k, v in stages.items() if k != "other"))
    T = len(header["tokens"]["ids"])
    if T != shape.T:
        raise RuntimeError(f"the prompt gave {T} tokens, not {shape.T}")
    check = triplet_check(loaded, header, arrays)
    jac = header.get("jacobian") or {}
    return {"dtype": dtype, "device": loaded.device, "load_s": load_s, "wall_s": wall, "engine_s": engine_s,
            "stages_s": stages, "peak_gpu_memory": peak, "T": T, "K": shape.K, "layers": shape.layers,
            "d": shape.hidden, "jacobian_method": jac.get("method"), "compute_dtype": jac.get("compute_dtype"),
            "topk_solver": jac.get("topk_solver"), "history": (header.get("coupling") or {}).get("history"),
            "stages": [s["name"] for s in header["stages"]], **check}


def triplet_check(loaded: Any, header: dict, arrays: dict[str, np.ndarray], max_tokens: int = 4) -> dict:
    """The run's stored top-K triplets at a sample of (layer, token) against float64 on the host: each sampled J is
    recomputed by the engine's closed form in float64 at the run's own trace (same weights, same point), its
    singular values by a float64 SVD on the host; returns max |σ − σ_ref|/σ_ref and max ‖J v − σ u‖/σ_1
    (float64)."""
    keep = arrays.get(names.JACOBIAN_VECTOR_TOKENS)
    if keep is None or keep.size == 0:
        raise RuntimeError("the run kept no singular vectors to check")
    pick = sorted({int(i) for i in np.linspace(0, keep.size - 1, min(max_tokens, keep.size)).round()})
    model, adapter = loaded.model, loaded.adapter
    ids = torch.tensor([header["tokens"]["ids"]], device=loaded.device)
    X = trace(model, adapter, ids).block_inputs
    L, T = X.shape[0], X.shape[1]
    cos_sin = rotary_cos_sin(model, T, device=loaded.device)
    blocks = adapter.block_list(model)
    sigma_err, residual, checked = 0.0, 0.0, []
    for layer in sorted({0, L // 2, L - 1}):
        tokens = [int(keep[i]) for i in pick]
        J = block_jacobians(blocks[layer], X[layer], cos_sin, model.config, dtype=torch.float64,
                            tokens=torch.tensor(tokens, device=loaded.device)).cpu()
        s_ref = torch.linalg.svdvals(J)                                    # float64, on the host
        U = torch.from_numpy(arrays[names.JACOBIAN_U][layer][pick]).double()    # [n, d, K]
        V = torch.from_numpy(arrays[names.JACOBIAN_V][layer][pick]).double()
        S = torch.from_numpy(arrays[names.JACOBIAN_SINGULAR_VALUES][layer][tokens]).double()
        k = S.shape[-1]
        sigma_err = max(sigma_err, float(((S - s_ref[:, :k]).abs() / s_ref[:, :k]).max()))
        res = (J @ V - U * S[:, None, :]).norm(dim=1) / s_ref[:, :1]
        residual = max(residual, float(res.max()))
        checked += [(layer, t) for t in tokens]
    return {"sigma_rel_err": sigma_err, "residual": residual, "checked": checked}


def collapse_shares(model_dir: Path, device: str, spec: CollapseSpec) -> dict[str, np.ndarray]:
    """The collapse stage alone (top-K 0) of the saved tiny model on ``device``: its ``collapse.*`` arrays."""
    loaded = load(ModelRequest(model=str(model_dir), dtype="float32", device=device))
    _, arrays, _ = fold(engine.stream(loaded, "Hello world", RunOptions(top_k=0, collapse=spec)))
    return {k: v for k, v in arrays.items() if k.startswith("collapse.")}


def collapse_compare(model_dir: Path, device: str) -> dict:
    """Bit-identical shares (``collapse.identical_low``) of the collapse stage in bfloat16 on ``device`` and on the
    CPU, for the same tiny model: equal or not, and the largest difference of the other collapse arrays."""
    spec = CollapseSpec(families=("ones", "digits", "commas", "bernoulli"), lengths=(2, 5, 9), low_dtype="bfloat16",
                        sensitivity_tokens=8)
    there, here = collapse_shares(model_dir, device, spec), collapse_shares(model_dir, "cpu", spec)
    a, b = there[names.COLLAPSE_IDENTICAL_LOW], here[names.COLLAPSE_IDENTICAL_LOW]
    diffs = {k: float(np.nanmax(np.abs(there[k].astype(np.float64) - here[k].astype(np.float64))))
             for k in sorted(here) if np.issubdtype(here[k].dtype, np.floating) and k in there
             and there[k].shape == here[k].shape and np.isfinite(here[k]).any()}
    return {"device": device, "equal": bool(a.shape == b.shape and np.array_equal(a, b, equal_nan=True)),
            "shape": list(a.shape), "identical_low_device": a.tolist(), "identical_low_cpu": b.tolist(),
            "max_abs_diff": diffs}
