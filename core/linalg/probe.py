"""How fast this machine runs the operations that dominate a run, measured in about a second (0.6-0.8 s on one
thread of a 2-core Xeon; more on a loaded machine, where each call may wait): float32 GEMM at the block Jacobians'
and the coupling's shapes, the exact top-K solver the engine uses (``spectra.top_k``: JᵀJ and the subset
eigensolver), the forward pass's tall products in float32 and in the collapse stage's low precision.

Each rate is the best of a few repetitions after a warm-up (the machine's capability, not its momentary load: the
cost check reports the load average beside the estimate instead). The numbers feed ``core.cost.Rates``; the cache
that keeps them per machine is ``core.cli.calibration``."""

from __future__ import annotations

import time
from typing import Callable

import torch

from coupling_tui.core.linalg.spectra import top_k

GEMM_SHAPE = (4, 384, 1024)
"""Batched [B, d, f] @ [B, f, d]: a block Jacobian's W_down·diag·W_up product at a small width."""
TOPK_SHAPE = (1, 512, 48)
"""B matrices d × d and their top-k triplets: the top-K stage near SmolLM2's width. Smaller matrices (4 × 256) were
tried and misled: on a loaded 2-core machine their many short LAPACK calls ran 14× slower on two threads than on
one, where the engine's d = 576 top-K ran 5× slower, and this shape's probe matched the engine's rate within 10%."""
FORWARD_SHAPE = (256, 384, 1024)
"""[T, d] @ [d, f]: the forward pass's projections (T tokens through one linear layer)."""
MIN_REPEATS, MAX_REPEATS = 3, 25
"""Timed calls after the warm-up call: at least MIN_REPEATS, more while within BUDGET_SECONDS; the fastest counts."""
BUDGET_SECONDS = 0.2
"""Per operation. On a loaded machine a multi-threaded call is often slowed many times by a descheduled thread; the
more calls fit in the budget, the likelier one ran undisturbed."""


Clock = Callable[[], float]
"""What the probe times with: time.perf_counter (wall seconds), or time.process_time for a calibration at one thread
on a loaded machine (benchmarks/estimates.py --clock cpu)."""


def best_seconds(fn: Callable[[], object], device: torch.device, budget: float = BUDGET_SECONDS,
                 clock: Clock = time.perf_counter) -> float:
    """The fastest timed call of ``fn`` after one untimed warm-up call (device-synchronised): MIN_REPEATS calls,
    then more until ``budget`` seconds are spent or MAX_REPEATS calls were made."""
    fn()
    best, spent, calls = float("inf"), 0.0, 0
    while calls < MIN_REPEATS or (spent < budget and calls < MAX_REPEATS):
        _sync(device)
        t0 = clock()
        fn()
        _sync(device)
        elapsed = clock() - t0
        best, spent, calls = min(best, elapsed), spent + elapsed, calls + 1
    return max(best, 1e-9)


def gemm_flops(device: torch.device, clock: Clock = time.perf_counter) -> float:
    """FLOP/s of float32 batched GEMM at ``GEMM_SHAPE``."""
    b, d, f = GEMM_SHAPE
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(b, d, f, generator=gen).to(device)
    w = torch.randn(b, f, d, generator=gen).to(device)
    return 2 * b * d * f * d / best_seconds(lambda: torch.bmm(x, w), device, clock=clock)


def topk_cubes(device: torch.device, clock: Clock = time.perf_counter) -> float:
    """d³ units per second of ``spectra.top_k`` (solver "auto", float32) on ``TOPK_SHAPE``'s random matrices."""
    b, d, k = TOPK_SHAPE
    gen = torch.Generator().manual_seed(0)
    J = torch.randn(b, d, d, generator=gen).to(device)
    return b * d ** 3 / best_seconds(lambda: top_k(J, k), device, clock=clock)


def forward_flops(device: torch.device, dtype: torch.dtype = torch.float32, clock: Clock = time.perf_counter) -> float:
    """FLOP/s of the [T, d] @ [d, f] product at ``FORWARD_SHAPE`` in ``dtype`` (bfloat16: the collapse stage's
    low-precision copy of the model)."""
    t, d, f = FORWARD_SHAPE
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(t, d, generator=gen).to(device=device, dtype=dtype)
    w = torch.randn(d, f, generator=gen).to(device=device, dtype=dtype)
    return 2 * t * d * f / best_seconds(lambda: x @ w, device, clock=clock)


def measure(device: str = "cpu", low_dtype: str = "bfloat16", clock: Clock = time.perf_counter) -> dict[str, float]:
    """Every rate on ``device`` (core.cost.Rates' fields), and the seconds the probe took. On a CPU with several
    threads each rate is also taken on one thread in CPU seconds, and the faster counts: a loaded machine can make
    the multi-threaded probe many times slower than one thread (the top-K solver 200× at load 1.9 on 2 cores),
    which no run is, while one thread's CPU seconds barely notice the neighbours."""
    dev = torch.device(device)
    t0 = time.perf_counter()
    rates = _rates(dev, low_dtype, clock)
    threads = torch.get_num_threads()
    if dev.type == "cpu" and threads > 1:
        torch.set_num_threads(1)
        try:
            single = _rates(dev, low_dtype, time.process_time)
        finally:
            torch.set_num_threads(threads)
        rates = {name: max(rate, single[name]) for name, rate in rates.items()}
    rates["probe_seconds"] = time.perf_counter() - t0
    return rates


def _rates(dev: torch.device, low_dtype: str, clock: Clock) -> dict[str, float]:
    return {"gemm": gemm_flops(dev, clock), "topk": topk_cubes(dev, clock), "forward": forward_flops(dev, clock=clock),
            "low": forward_flops(dev, getattr(torch, low_dtype), clock)}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
