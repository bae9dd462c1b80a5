"""What a run will cost before it starts: peak memory and wall time from the run's sizes. Torch-free.

The model follows the engine's data structures (core/engine/, core/engine/coupling_stream.py) and is calibrated on
measured runs on the reference 2-core CPU (docs/metrics.md "measured cost", benchmarks/RESULTS.md): the default
run (SmolLM2, 30 layers × 52 tokens, d = 576, K = 50, float32) takes 114 s — Jacobians 21.7 s, top-50 triplets
33.9 s, depth coupling 21.5 s, token coupling 33.7 s — and keeps 2.07 GB of dense-J history. Times scale with the
CPU threads torch uses (GEMM-bound); on a GPU they are a rough guess. Every stage of ``engine.stream`` is
estimated, the forward trace included (its attention is O(T²)), and the collapse stage (``collapse_cost``: its
forward passes in both precisions and the sensitivity's backward passes).
"""

from __future__ import annotations

from dataclasses import dataclass, field

REFERENCE_THREADS = 2
"""The measurements above are on 2 CPU threads."""
J_SECONDS = 21.7 / (30 * 52)
"""Closed-form block Jacobian, seconds per (layer, token) at d = 576; scales as d³ above a floor."""
J_FLOOR = 0.15
"""The part of J_SECONDS that does not shrink with d (small-matrix overheads; measured at d = 128)."""
AUTODIFF_FACTOR = 70.1 / 24.2
"""Generic autodiff Jacobians against closed form (benchmarks/RESULTS.md, T = 64)."""
TOPK_SECONDS = 33.9 / (30 * 52)
"""Exact top-K triplets of one d = 576 Jacobian (K = 50); scales as d³ above a floor, barely with K."""
TOPK_FLOOR = 0.11
"""The part of TOPK_SECONDS that does not shrink with d (LAPACK subset eigh: 14 ms at d = 128, 120 at 576)."""
COUPLING_FLOPS = 85e9
"""Effective FLOP/s of the depth and token coupling (1.69 TFLOP in 21.5 s, 2.93 TFLOP in 33.7 s, counting
ENTRY_OVERHEAD)."""
ENTRY_OVERHEAD = 1000
"""FLOP-equivalents per K_max² of one m_K entry: the cumulative sums and copies, which dominate at small d."""
FORWARD_FLOPS = 31e9
"""Effective FLOP/s of the forward trace (eager attention, every hidden state kept), from the --top-k 0 run over
8,192 tokens of SmolLM2 that took 214 s on the reference CPU (issue 17): FORWARD_LINEAR·d² per token and block
(the projections and the MLP) plus 4·T·d (attention scores and their product with V: O(T²) per block)."""
FORWARD_LINEAR = 24
"""FLOPs per token and block of a decoder block's matrix products, in units of d² (2 × 12 d² parameters)."""
REFERENCE_D = 576
GPU_SPEEDUP = 50.0
"""A rough factor for CUDA devices; nothing here is calibrated on a GPU."""
COUPLING_KS = (8, 10, 30, 50)
"""As core.engine.coupling_stream.COUPLING_KS (kept equal by a test; that module imports torch)."""
CLOSED_FORM_FAMILIES = ("llama", "mistral", "qwen2")
"""As core.engine.jacobians.closed_form.FAMILIES (kept equal by a test)."""
DENSE_BUDGET_BYTES = 2 << 30
"""As core.engine.jacobians.layers.DENSE_BUDGET_BYTES: a layer's dense J beyond this is taken in token chunks."""
REDUCE_FLAGS = "--max-tokens, --top-k, --layers, --history-mb, --no-token-coupling or --dtype"
"""The flags that make a run smaller, named in every message about size."""


def coupling_ks(top_k: int) -> list[int]:
    ks = [k for k in COUPLING_KS if k <= top_k]
    return ks or ([top_k] if top_k > 0 else [])


@dataclass
class RunCost:
    """Peak memory (bytes, by part) and wall time (seconds, by stage) of one run."""

    memory: dict[str, float] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    device: str = "cpu"

    @property
    def total_bytes(self) -> float:
        return sum(self.memory.values())

    @property
    def total_seconds(self) -> float:
        return sum(self.seconds.values())

    def text(self) -> str:
        """One line: "about 3.1 GB (2.1 GB dense-J history, …) and about 2 min on the CPU"."""
        parts = sorted(((v, k) for k, v in self.memory.items() if v >= 0.05 * self.total_bytes), reverse=True)
        detail = ", ".join(f"{fmt_bytes(v)} {k}" for v, k in parts[:3])
        where = "a GPU (rough)" if self.device.startswith("cuda") else f"the {self.device.upper()}"
        return f"about {fmt_bytes(self.total_bytes)} ({detail}) and {fmt_seconds(self.total_seconds)} on {where}"


def fmt_bytes(n: float) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n:.0f} B"


def fmt_seconds(s: float) -> str:
    if s < 90:
        return f"about {max(1, round(s))} s"
    if s < 5400:
        return f"about {round(s / 60)} min"
    return f"about {s / 3600:.1f} h"


def estimate(*, n_layers: int, d: int, tokens: int, top_k: int, history_mb: float, dtype: str = "float32",
             token_coupling: bool = True, weights_bytes: float = 0.0, family: str | None = "llama",
             jacobian_method: str = "auto", layers: list[int] | None = None, baseline: bool = False,
             vector_budget_mb: float = 100.0, device: str = "cpu", threads: int = REFERENCE_THREADS,
             vju: bool = False, token_pairs: int = 0, context_layers: int = 0) -> RunCost:
    """Memory and time of ``engine.stream`` with these sizes. ``layers`` = the blocks with Jacobians (None = all);
    ``weights_bytes`` = the loaded model's parameters (doubled with ``baseline``); ``vju`` a second depth-coupling
    product, ``token_pairs`` extra T×T matrices, ``context_layers`` the layers of the context stage (cross-token
    Jacobians by d backward and d double-backward passes: about three autodiff Jacobian layers each)."""
    L, T = n_layers, tokens
    n = len(layers) if layers is not None else L                  # blocks whose Jacobians are computed
    jb = 8 if dtype == "float64" else 4                           # Jacobian maths: float32, float64 for float64
    k = min(max(top_k, 0), d)
    ks = coupling_ks(k)
    kc, nk = (max(ks), len(ks)) if ks else (0, 0)
    passes = 2 if baseline else 1
    chunk = max(1, min(T, DENSE_BUDGET_BYTES // (d * d * jb)))
    mem: dict[str, float] = {"weights": weights_bytes * passes,
                             "trajectories": (L + 1) * T * d * (4 + 8 + jb)}    # hidden, norms' float64, inputs
    sec: dict[str, float] = {"forward trace": passes * L * T * (FORWARD_LINEAR * d * d + 4 * T * d) / FORWARD_FLOPS}
    if k > 0:
        one_token_coupling = token_coupling and chunk == T
        history = n * T * d * d * jb
        keep_history = history <= history_mb * 1e6
        mem["dense Jacobians"] = 3 * chunk * d * d * jb           # one layer's J, the closed form's workspace
        mem["singular bases"] = passes * n * T * (2 * d + 1) * kc * jb
        if keep_history:
            mem["dense-J history"] = passes * history
        mem["coupling arrays"] = (3 * nk + 1) * T * L * L * 4 * passes + (nk * L * T * T * 4 if one_token_coupling
                                                                           else 0)
        mem["results file"] = 2 * (L * T * (k + 2) * 4 + min(vector_budget_mb * 1e6, 2 * L * T * d * k * 4))
        method_factor = AUTODIFF_FACTOR if (jacobian_method == "autodiff" or (
            jacobian_method == "auto" and family not in CLOSED_FORM_FAMILIES)) else 1.0
        cube = (d / REFERENCE_D) ** 3
        per_entry = 2 * d * d * kc + 2 * d * kc * kc + ENTRY_OVERHEAD * kc * kc   # one m_K entry
        j_one = J_SECONDS * ((1 - J_FLOOR) * cube + J_FLOOR)           # one closed-form (layer, token) J
        topk_one = TOPK_SECONDS * ((1 - TOPK_FLOOR) * cube + TOPK_FLOOR)  # its top-K triplets
        sec["Jacobians"] = passes * j_one * method_factor * n * T * (1 if keep_history else 2)
        sec["top-K"] = passes * topk_one * n * T
        sec["depth coupling"] = passes * n * n * T * per_entry / COUPLING_FLOPS
        if one_token_coupling:
            sec["token coupling"] = n * T * T * per_entry / COUPLING_FLOPS
        if vju:
            sec["vju coupling"] = passes * n * n * T * per_entry / COUPLING_FLOPS
            mem["coupling arrays"] += 2 * nk * T * L * L * 4 * passes
        if token_pairs and one_token_coupling:
            sec["token pairs"] = token_pairs * T * T * per_entry / COUPLING_FLOPS
            mem["coupling arrays"] += token_pairs * nk * T * T * 4
        if context_layers:
            lc = context_layers
            cross = 2 * lc * T * d * d * jb
            pairs = lc * lc if cross <= history_mb * 1e6 else lc
            mem["context Jacobians"] = cross if pairs > lc else 2 * T * d * d * jb
            sec["context coupling"] = (lc * 3 * j_one * AUTODIFF_FACTOR * T + lc * 2 * topk_one * T
                                       + pairs * 2 * T * T * per_entry / COUPLING_FLOPS)
    mem["results file"] = mem.get("results file", 0.0) + 2 * (L + 1) * T * d * 4
    speed = GPU_SPEEDUP if device.startswith("cuda") else max(1, min(threads, 16)) / REFERENCE_THREADS
    return RunCost(memory=mem, seconds={name: s / speed for name, s in sec.items()}, device=device)


LOW_SLOWDOWN_CPU = {"bfloat16": 10.0, "float16": 10.0, "float32": 1.0, "float64": 2.0}
"""How much slower a forward pass runs in the low precision than in float32 on a CPU (bfloat16 and float16 matrix
products are emulated without AVX-512: about a tenth of float32's speed, docs/collapse.md); 1 on a GPU."""
COLLAPSE_CALIBRATION = 1.0
"""Left at 1: the SmolLM2 runs of benchmarks/collapse_table.py (docs/collapse.md; a shared 2-core CPU whose load
varied) took 0.82-1.06 of this model's time for all five families to n = 128 (sequences up to 259 tokens) but
0.30-0.38 of it for the ones family to n = 512 and 1024 (up to 2049 tokens): at long lengths the estimate is high by
about 3x, a bound rather than a prediction; too few and too noisy measurements to fit a length dependence."""
VJP_FORWARDS = 2.0
"""One vector-Jacobian product of the sensitivity costs about this many forward passes of the same sequence."""


def forward_seconds(n_layers: int, d: int, tokens: int) -> float:
    """One forward pass through ``n_layers`` blocks at ``tokens`` tokens on the reference CPU, float32."""
    return n_layers * tokens * (FORWARD_LINEAR * d * d + 4 * tokens * d) / FORWARD_FLOPS


def collapse_cost(*, n_layers: int, d: int, sequence_tokens: list[int], low_dtype: str = "bfloat16",
                  sensitivity_tokens: int = 0, probes: int = 0, weights_bytes: float = 0.0, heads: int = 1,
                  device: str = "cpu", threads: int = REFERENCE_THREADS) -> RunCost:
    """The collapse stage: every sequence (both of each pair, every family and length: ``sequence_tokens``) once in
    float32 and once in ``low_dtype``, then ``probes`` vector-Jacobian products of one ``sensitivity_tokens``-token
    sequence (0: none). Memory: the low-precision copy of the weights, the float32 hidden states one trace keeps,
    one layer's attention scores (eager) and the sensitivity's graph."""
    slow = 1.0 if device.startswith("cuda") else LOW_SLOWDOWN_CPU.get(low_dtype, 1.0)
    passes = sum(forward_seconds(n_layers, d, t) for t in sequence_tokens)
    sec = {"collapse pairs": passes * (1 + (slow if low_dtype != "float32" else 0)) * COLLAPSE_CALIBRATION}
    if sensitivity_tokens and probes:
        sec["collapse sensitivity"] = (forward_seconds(n_layers, d, sensitivity_tokens) * (1 + VJP_FORWARDS * probes)
                                       * COLLAPSE_CALIBRATION)
    longest = max(sequence_tokens, default=0)
    low_bytes = {"float32": 4, "float64": 8}.get(low_dtype, 2)
    mem = {"collapse low copy": weights_bytes * low_bytes / 4 if low_dtype != "float32" else 0.0,
           "collapse states": (n_layers + 1) * longest * d * 4 + heads * longest * longest * 4,
           "collapse sensitivity graph": n_layers * sensitivity_tokens * d * 4 * 16 * 2}   # rough: activations
    speed = GPU_SPEEDUP if device.startswith("cuda") else max(1, min(threads, 16)) / REFERENCE_THREADS
    return RunCost(memory=mem, seconds={k: v / speed for k, v in sec.items()}, device=device)


def weights_bytes(config, dtype: str) -> float:
    """Parameter bytes of a decoder-only model from its HF config (a rough count: embeddings, attention with
    grouped KV heads, a gated MLP), for a load that runs out of memory before the model exists."""
    def get(*names, default=0):
        return next((getattr(config, a) for a in names if getattr(config, a, None)), default)

    d = int(get("hidden_size", "n_embd", "d_model"))
    L = int(get("num_hidden_layers", "n_layer", "num_layers"))
    vocab = int(get("vocab_size"))
    ff = int(get("intermediate_size", "n_inner", default=4 * d))
    heads = int(get("num_attention_heads", "n_head", default=1))
    kv = int(get("num_key_value_heads", default=heads))
    attn = d * d * 2 + 2 * d * (d * kv // max(heads, 1))
    params = vocab * d * (1 if getattr(config, "tie_word_embeddings", True) else 2) + L * (attn + 3 * d * ff)
    return params * {"float64": 8, "float32": 4}.get(dtype, 2)
