"""Measurement helpers shared by the Jacobian benchmark: timing, GEMM peak, RSS sampling, FLOP counts, errors, the
baselines (official per-token method of sugolov/coupling, naive jacrev) and table printing."""

from __future__ import annotations

import ctypes
import os
import threading
import time
from typing import Any, Callable

import torch

PROMPT = ("The history of science is the study of how people came to understand the natural world. Early astronomers "
          "tracked the motion of the planets, physicians described the body, and mathematicians built the tools that "
          "let later scientists turn careful observation into laws. Those laws predict eclipses, tides and the orbits "
          "of comets, and they guide the engineers who design bridges, engines and the computers we use today.")


def sync(device: Any = None) -> None:
    """Wait for queued CUDA work (no-op on the CPU), so wall-clock timings cover the work itself."""
    if torch.cuda.is_available() and (device is None or torch.device(device).type == "cuda"):
        torch.cuda.synchronize()


def timed(fn: Callable[[], Any], device: Any = "cpu") -> float:
    """Wall-clock seconds of one call of ``fn`` (device-synchronised before and after)."""
    sync(device)
    t0 = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t0


def gemm_peak(n: int = 4096, reps: int = 3, device: Any = "cpu") -> float:
    """Best float32 n×n×n matmul rate (GFLOP/s) on ``device`` right now (warm-up call excluded)."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    c = torch.empty(n, n, device=device)
    torch.matmul(a, b, out=c)
    best = min(timed(lambda: torch.matmul(a, b, out=c), device) for _ in range(reps))
    return 2 * n ** 3 / best / 1e9


class Peak:
    """The GEMM peak of the run: the best rate seen by any measurement so far (the machine may be shared)."""

    def __init__(self, n: int = 4096, reps: int = 3, device: Any = "cpu") -> None:
        """Set the matmul size, repetitions and device; no measurement yet."""
        self.n, self.reps, self.device, self.seen = n, reps, device, []

    def measure(self) -> float:
        """Measure the GEMM rate once more (with the load average) and return it."""
        rate = gemm_peak(self.n, self.reps, self.device)
        self.seen.append((rate, os.getloadavg()[0]))
        return rate

    @property
    def best(self) -> float:
        """The highest rate measured so far (GFLOP/s)."""
        return max(r for r, _ in self.seen)

    def describe(self) -> str:
        """One line listing every measurement as rate@load."""
        return ", ".join(f"{r:.0f}@load {ld:.1f}" for r, ld in self.seen)


def rss() -> int:
    """Resident set size of this process in bytes."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def release_free_memory() -> None:
    """Hand freed heap pages back to the OS (glibc ``malloc_trim``), so the RSS baseline excludes earlier runs."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def peak_extra_rss(fn: Callable[[], Any]) -> float:
    """Peak RSS above the level before ``fn`` while it runs, in GB (sampled every 2 ms; never used for timings)."""
    release_free_memory()
    base, peak, done = rss(), [0], threading.Event()

    def sample() -> None:
        """Poll the RSS until told to stop."""
        while not done.is_set():
            peak[0] = max(peak[0], rss())
            time.sleep(0.002)
    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        fn()
    finally:
        done.set()
        thread.join()
    return max(0, max(peak[0], rss()) - base) / 1e9


def forward_flops(config: Any) -> float:
    """FLOPs of one decoder block's forward for one token: projections and MLP (attention's T-dependent QKᵀ and PV
    are left out, as in the research baseline: < 2% here)."""
    d, F = config.hidden_size, config.intermediate_size
    H, KV = config.num_attention_heads, config.num_key_value_heads
    hd = getattr(config, "head_dim", None) or d // H
    return 2.0 * (d * H * hd * 2 + 2 * d * KV * hd + 3 * d * F)


def closed_form_flops(config: Any) -> float:
    """FLOPs of one token's closed-form J: C R Wq (H·hd²·d), Wo S (d²·H·hd), Wd G (d²·F) and M A (d³)."""
    d, F = config.hidden_size, config.intermediate_size
    H = config.num_attention_heads
    hd = getattr(config, "head_dim", None) or d // H
    return 2.0 * (H * hd * hd * d + d * d * H * hd + d * d * F + d ** 3)


def per_token_rel_err(J: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """‖J_t − ref_t‖_F / ‖ref_t‖_F for every token t of J, ref [T, d, d]."""
    diff = (J.double() - ref.double()).flatten(1).norm(dim=1)
    return diff / ref.double().flatten(1).norm(dim=1)


def rel_err(J: torch.Tensor, ref: torch.Tensor) -> float:
    """Relative Frobenius error of the whole tensor J against ref."""
    return float((J.double() - ref.double()).norm() / ref.double().norm())


def _first(value: Any) -> torch.Tensor:
    """The first element of a tuple/list output, or the value itself."""
    return value[0] if isinstance(value, (tuple, list)) else value


def official_one_token(block: Any, call: Any, t: int, n_chunks: int) -> torch.Tensor:
    """sugolov/coupling's method for one token: d reverse-mode VJPs of output token t through the full-sequence HF
    block (vectorised in ``n_chunks`` chunks of cotangents), then J − I."""
    X = call.hidden_states.detach().clone()[None].requires_grad_(True)
    args, kwargs = call.with_input(X, X.dtype, X.device)
    with torch.enable_grad():
        y = _first(block(*args, **kwargs))[0, t]
        d = y.shape[0]
        eye = torch.eye(d, dtype=X.dtype, device=X.device)
        rows = []
        for part in eye.chunk(n_chunks):
            (g,) = torch.autograd.grad(y, X, part, retain_graph=True, is_grads_batched=True)
            rows.append(g[:, 0, t])
    return torch.cat(rows) - eye


def official_chunks(T: int) -> int:
    """The number of cotangent chunks sugolov/coupling uses at T tokens."""
    return 2 * (T // 20) + 5


def naive_diag_jacobians(block: Any, call: Any, chunk_bytes: int = 1 << 28) -> torch.Tensor:
    """Naive baseline: ``torch.func.jacrev`` of the full-sequence HF block over all T·d inputs, then its diagonal
    blocks minus I: J [T, d, d]. Cotangents are chunked so one [chunk, T, widest] tensor stays near ``chunk_bytes``."""
    X = call.hidden_states.detach().clone()
    T, d = X.shape
    width = max(max(p.shape) for p in block.parameters())
    chunk = int(min(T * d, max(d, chunk_bytes // (T * width * X.element_size()))))

    def fn(x: torch.Tensor) -> torch.Tensor:
        """The block's output [T, d] as a function of its input [T, d]."""
        args, kwargs = call.with_input(x[None], x.dtype, x.device)
        return _first(block(*args, **kwargs))[0]
    with torch.enable_grad():
        full = torch.func.jacrev(fn, chunk_size=chunk)(X)             # [T, d, T, d]
    idx = torch.arange(T)
    diag = full[idx, :, idx, :].clone()                                 # [T, d, d]
    del full
    return diag - torch.eye(d, dtype=X.dtype)


def fmt(value: float | None, spec: str, suffix: str = "") -> str:
    """``value`` formatted with ``spec`` (and ``suffix``), or an em dash when it is None."""
    return "—" if value is None else f"{value:{spec}}{suffix}"


def print_table(rows: list[dict], n_layers: int) -> None:
    """The final summary table: one row per method and T."""
    head = ["method", "T", f"s/{n_layers} layers", "GFLOP/s", "% peak", "max rel err vs fp64", "peak RSS (GB)",
            "x vs official", "x vs naive"]
    body = [[r["method"], str(r["T"]), fmt(r.get("seconds"), ".1f") + (" (extrap.)" if r.get("extrap") else ""),
             fmt(r.get("gflops"), ".0f"), fmt(r.get("pct"), ".0f", "%"), fmt(r.get("err"), ".1e"),
             fmt(r.get("rss"), ".2f"), fmt(r.get("x_official"), ",.0f", "x"),
             fmt(r.get("x_naive"), ",.0f", "x") + (" (est.)" if r.get("naive_est") else "")] for r in rows]
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(head)]
    line = lambda cells: " | ".join(c.ljust(w) if i == 0 else c.rjust(w)  # noqa: E731
                                    for i, (c, w) in enumerate(zip(cells, widths)))
    print(line(head))
    print("-+-".join("-" * w for w in widths))
    for b in body:
        print(line(b))
