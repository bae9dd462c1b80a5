"""What a run will cost before it starts: peak memory and wall time from the run's sizes. Torch-free.

The model follows the engine's data structures (core/engine/, core/engine/coupling_stream.py) and is calibrated on
measured runs on the reference 2-core CPU (benchmarks/RESULTS.md): the default run (SmolLM2, 30 layers × 52 tokens,
d = 576, K = 50, float32) took 114 s there — Jacobians 21.7 s, top-50 triplets 33.9 s, depth coupling 21.5 s, token
coupling 33.7 s — and keeps 2.07 GB of dense-J history (benchmarks/docs_metrics.py measures it again, stage by
stage against this estimate, for docs/metrics.md "Measured cost"). Times scale with the
CPU threads torch uses (GEMM-bound); on a GPU they are a rough guess. Every stage of ``engine.stream`` is
estimated, the forward trace and the collapse stage included.

The constants are seconds on that reference CPU. On any other machine (or device) each stage is scaled by ``Rates``:
what ``core.linalg.probe`` measures here against what it measures there (``REFERENCE_RATES``), one rate per kind of
work (GEMM, the top-K eigensolver, the forward pass, its low precision), so that a machine twice as fast at an
operation gets half the time for the stages made of it. Without measured rates the old guess applies: the CPU
threads torch uses, or ``GPU_SPEEDUP``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

REFERENCE_THREADS = 2
"""The measurements above are on 2 CPU threads (without measured rates, times scale with the threads torch uses)."""
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
COLLAPSE_FLOPS = 79e9
"""Effective float32 FLOP/s of the collapse stage's forward passes at REFERENCE_RATES (FORWARD_LINEAR·d² + 4·T·d per
token and block, as the forward trace): SmolLM2's default collapse run (4 families × 6 lengths, 48 sequences of 5 to
257 tokens, 0.80 TFLOP in each precision) spent 29.6 CPU seconds on its pairs in float32 and bfloat16."""
COLLAPSE_LOW_FLOPS = 42e9
"""The same in bfloat16: COLLAPSE_FLOPS × the probe's bfloat16/float32 ratio (the run times both precisions
together)."""
COLLAPSE_CALL_SECONDS = 0.004
"""Fixed seconds of one short forward pass (hooks, per-block Python, the greedy token); a guess, 0.4 s of the 29.6."""
BACKWARD_FACTOR = 0.66
"""A batched vector-Jacobian product (one probe of the sensitivity) against a forward pass: the same run's
sensitivity (127 tokens, 32 probes) took 8.8 CPU seconds."""
BUSY_MARGIN = 0.5
"""The machine is called busy when its 1-minute load average exceeds its cores by more than this."""
REDUCE_FLAGS = "--max-tokens, --top-k, --layers, --history-mb, --no-token-coupling or --dtype"
"""The flags that make a run smaller, named in every message about size."""


@dataclass(frozen=True)
class Rates:
    """How fast a machine runs each kind of work, as ``core.linalg.probe`` measures it: FLOP/s of float32 GEMM at a
    block Jacobian's shape (``gemm``), d³ units per second of the exact top-K solver (``topk``), FLOP/s of the forward
    pass's products in float32 (``forward``) and in the collapse stage's low precision (``low``)."""

    gemm: float
    topk: float
    forward: float
    low: float

    @classmethod
    def from_dict(cls, values: dict) -> "Rates":
        """From a dict with (at least) every field, each a positive finite number; ValueError otherwise."""
        rates = {}
        for name in ("gemm", "topk", "forward", "low"):
            value = values[name] if isinstance(values, dict) and name in values else None
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
                raise ValueError(f"rate {name!r} is {value!r}, not a positive number")
            rates[name] = float(value)
        return cls(**rates)

    def speedup(self, reference: "Rates") -> dict[str, float]:
        """Each rate against ``reference``'s: 2.0 = twice as fast."""
        return {name: getattr(self, name) / getattr(reference, name) for name in ("gemm", "topk", "forward", "low")}


REFERENCE_RATES = Rates(gemm=1.57e11, topk=9.5e9, forward=1.65e11, low=8.9e10)
"""The rates the seconds above are at: ``core.linalg.probe`` on one thread of a 2-core Intel Xeon VM, in CPU seconds
(the mean of nine probes, each within 7% of it, top-K of four within 1%; 2026-12-04, load average 4-7 from other
work, which CPU seconds at one thread are nearly immune to). That thread, timed the same way
(benchmarks/estimates.py --threads 1 --clock cpu --max-tokens 26, default prompt), ran each stage within 16% of
the seconds above: Jacobians 12.3 s (estimate 10.8), top-K 16.3 (17.0), depth coupling 10.7 (10.6), token coupling
7.7 (9.2); the 1,024-token --top-k 0 run 9.6 s (FORWARD_FLOPS: 10.2). So the reference CPU's two threads did what
one thread of that Xeon does, and the seconds stand; the collapse constants above are from the same calibration."""
STAGE_RATES = {"forward trace": "forward", "Jacobians": "gemm", "top-K": "topk", "depth coupling": "gemm",
               "token coupling": "gemm", "vju coupling": "gemm", "token pairs": "gemm", "context coupling": "gemm",
               "collapse pairs": "forward", "collapse low precision": "low", "collapse sensitivity": "forward"}
"""Which rate each stage's time scales with."""


@dataclass(frozen=True)
class CollapseWork:
    """The collapse stage's forward passes: the token count of every sequence (each pair's short and long), each
    run once in float32 and once in ``low_dtype``, and the sensitivity's sequence and probes (0 = none)."""

    sequences: tuple[int, ...]
    low_dtype: str = "bfloat16"
    sensitivity_tokens: int = 0
    sensitivity_probes: int = 0
    heads: int = 1
    """Attention heads: the eager low-precision pass keeps one layer's T×T scores per head."""


def busy_note(load: float | None, cores: int | None) -> str:
    """"machine busy: load 3.1 on 2 cores; expect longer" when the 1-minute load average exceeds the cores by
    more than BUSY_MARGIN, else ""."""
    if load is None or not cores or load <= cores + BUSY_MARGIN:
        return ""
    return f"machine busy: load {load:.1f} on {cores} core{'s' if cores != 1 else ''}; expect longer"


def coupling_ks(top_k: int) -> list[int]:
    ks = [k for k in COUPLING_KS if k <= top_k]
    return ks or ([top_k] if top_k > 0 else [])


@dataclass
class RunCost:
    """Peak memory (bytes, by part) and wall time (seconds, by stage) of one run."""

    memory: dict[str, float] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    device: str = "cpu"
    done_seconds: float = 0.0
    """Seconds already spent before the estimate (loading the model, a GGUF's one-time dequantisation included):
    told beside it, not part of ``total_seconds`` (which decides whether to ask)."""
    measured: bool = False
    """True when the times are scaled by this machine's measured rates (core.cli.calibration)."""

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
        done = f" (after {self.done_seconds:.0f} s loading)" if self.done_seconds >= 0.5 else ""
        return (f"about {fmt_bytes(self.total_bytes)} ({detail}) and {fmt_seconds(self.total_seconds)} on {where}"
                f"{done}")


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
             vju: bool = False, token_pairs: int = 0, context_layers: int = 0, collapse: CollapseWork | None = None,
             rates: Rates | None = None) -> RunCost:
    """Memory and time of ``engine.stream`` with these sizes. ``layers`` = the blocks with Jacobians (None = all);
    ``weights_bytes`` = the loaded model's parameters (doubled with ``baseline``); ``vju`` a second depth-coupling
    product, ``token_pairs`` extra T×T matrices, ``context_layers`` the layers of the context stage (cross-token
    Jacobians by d backward and d double-backward passes: about three autodiff Jacobian layers each), ``collapse``
    the collapse stage's passes. ``rates``: this machine's (core.linalg.probe), against ``REFERENCE_RATES``; None
    scales by ``threads`` (or ``GPU_SPEEDUP`` on CUDA) instead."""
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
    if collapse is not None:
        sec.update(collapse_seconds(collapse, n_layers=L, d=d))
        mem.update(collapse_memory(collapse, n_layers=L, d=d, weights_bytes=weights_bytes))
    if rates is not None:
        speed = rates.speedup(REFERENCE_RATES)
        return RunCost(memory=mem, seconds={name: s / speed[STAGE_RATES[name]] for name, s in sec.items()},
                       device=device, measured=True)
    speed = GPU_SPEEDUP if device.startswith("cuda") else max(1, min(threads, 16)) / REFERENCE_THREADS
    return RunCost(memory=mem, seconds={name: s / speed for name, s in sec.items()}, device=device)


def collapse_seconds(work: CollapseWork, *, n_layers: int, d: int) -> dict[str, float]:
    """Reference-CPU seconds of the collapse stage: every sequence forward in float32 and in the low precision, and
    the sensitivity (one forward with autograd, then a vector-Jacobian product per probe)."""
    def forward(t: int) -> float:
        return n_layers * t * (FORWARD_LINEAR * d * d + 4 * t * d)

    low_flops = COLLAPSE_FLOPS if work.low_dtype == "float32" else COLLAPSE_LOW_FLOPS
    out = {"collapse pairs": sum(forward(t) / COLLAPSE_FLOPS + COLLAPSE_CALL_SECONDS for t in work.sequences),
           "collapse low precision": sum(forward(t) / low_flops + COLLAPSE_CALL_SECONDS for t in work.sequences)}
    if work.sensitivity_tokens:
        passes = 1 + BACKWARD_FACTOR * work.sensitivity_probes
        out["collapse sensitivity"] = passes * (forward(work.sensitivity_tokens) / COLLAPSE_FLOPS
                                                + COLLAPSE_CALL_SECONDS)
    return out


def collapse_memory(work: CollapseWork, *, n_layers: int, d: int, weights_bytes: float) -> dict[str, float]:
    """The collapse stage's memory: the low-precision copy of the weights, the float32 hidden states one trace keeps
    and one layer's attention scores at the longest sequence, and the sensitivity's graph (rough: activations)."""
    longest = max(work.sequences, default=0)
    low_bytes = {"float32": 4, "float64": 8}.get(work.low_dtype, 2)
    return {"collapse low copy": weights_bytes * low_bytes / 4 if work.low_dtype != "float32" else 0.0,
            "collapse states": (n_layers + 1) * longest * d * 4 + work.heads * longest * longest * 4,
            "collapse sensitivity graph": n_layers * work.sensitivity_tokens * d * 4 * 16 * 2}


def _config_value(config, *names, default=0):
    """The first of ``names`` an HF config sets (non-zero), else ``default``."""
    return next((getattr(config, a) for a in names if getattr(config, a, None)), default)


def config_width(config) -> int:
    """The model width d an HF config names (0 when none does)."""
    return int(_config_value(config, "hidden_size", "n_embd", "d_model"))


def weights_bytes(config, dtype: str) -> float:
    """Parameter bytes of a decoder-only model from its HF config (a rough count: embeddings, attention with
    grouped KV heads, a gated MLP), for a load that runs out of memory before the model exists."""
    get = partial(_config_value, config)
    d = config_width(config)
    L = int(get("num_hidden_layers", "n_layer", "num_layers"))
    vocab = int(get("vocab_size"))
    ff = int(get("intermediate_size", "n_inner", default=4 * d))
    heads = int(get("num_attention_heads", "n_head", default=1))
    kv = int(get("num_key_value_heads", default=heads))
    attn = d * d * 2 + 2 * d * (d * kv // max(heads, 1))
    params = vocab * d * (1 if getattr(config, "tie_word_embeddings", True) else 2) + L * (attn + 3 * d * ff)
    return params * {"float64": 8, "float32": 4}.get(dtype, 2)
