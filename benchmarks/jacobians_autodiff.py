"""Benchmark of autodiff (frozen-context attention) per-token block Jacobians on SmolLM2-135M: all 30 layers at
T = 16 and 64, against the sgemm peak, the closed form, and the official per-token method (sugolov/coupling).

Run: ``.venv/bin/python benchmarks/jacobians_autodiff.py [--T 16 64] [--reps 2] [--chunk 32] [--mode batched-grad]``.
The machine may be shared: the sgemm peak is re-measured next to each timing and the best of ``--reps`` is kept.
"""

from __future__ import annotations

import argparse
import os
import threading
import time

import torch

from coupling_tui.core.jacobians.autodiff import block_jacobians_autodiff, capture_block_calls
from coupling_tui.core.jacobians.closed_form import block_jacobians
from coupling_tui.core.models import ModelRequest, load

PROMPT = ("The history of science is the study of how people came to understand the natural world. Early astronomers "
          "tracked the motion of the planets, physicians described the body, and mathematicians built the tools that "
          "let later scientists turn careful observation into laws. Those laws predict eclipses, tides and the orbits "
          "of comets, and they guide the engineers who design bridges, engines and the computers we use today.")
GFLOP_PER_TOKEN_LAYER = 4.08
"""Autodiff over d = 576 cotangents: 576 × 7.08 MFLOP (one forward-equivalent of one token-layer per cotangent)."""


def _time(fn) -> float:
    """Wall-clock seconds of one call."""
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def gemm_peak(n: int = 4096, reps: int = 3) -> float:
    """Best sgemm rate (GFLOP/s) of an n×n×n float32 matmul on this machine, now."""
    a, b, c = torch.randn(n, n), torch.randn(n, n), torch.empty(n, n)
    torch.matmul(a, b, out=c)
    return 2 * n ** 3 / min(_time(lambda: torch.matmul(a, b, out=c)) for _ in range(reps)) / 1e9


def rss() -> int:
    """Resident set size of this process in bytes."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_extra_rss(fn) -> float:
    """Peak RSS above the level before ``fn`` while it runs, in GB (sampled every 2 ms: not used for timings)."""
    base, peak, done = rss(), [0], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], rss())
            time.sleep(0.002)
    thread = threading.Thread(target=sample)
    thread.start()
    try:
        fn()
    finally:
        done.set()
        thread.join()
    return max(0, peak[0] - base) / 1e9


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """Relative Frobenius error of a against b."""
    return float((a.double() - b.double()).norm() / b.double().norm())


def all_layers(model, adapter, calls, chunk: int | None, mode: str, out: torch.Tensor) -> None:
    """J of every layer into one reused output buffer (the pure Jacobian work)."""
    for layer, call in enumerate(calls):
        block_jacobians_autodiff(model, adapter, layer, call, chunk=chunk, mode=mode, out=out)


def official_one_token(block, call, t: int, n_chunks: int) -> torch.Tensor:
    """The official per-token method: d reverse-mode VJPs of output token t through the full-sequence HF block
    (model's own attention implementation), vectorised in ``n_chunks`` chunks, then J − I."""
    X = call.hidden_states.detach().clone()[None].requires_grad_(True)
    args, kwargs = call.with_input(X, X.dtype, X.device)
    with torch.enable_grad():
        y = block(*args, **kwargs)
        y = (y[0] if isinstance(y, tuple) else y)[0, t]
        d = y.shape[0]
        eye = torch.eye(d)
        rows = []
        for part in eye.chunk(n_chunks):
            (g,) = torch.autograd.grad(y, X, part, retain_graph=True, is_grads_batched=True)
            rows.append(g[:, 0, t])
    return torch.cat(rows) - eye


def bench_T(loaded, T: int, reps: int, chunk: int | None, mode: str) -> None:
    """Time J for all layers at T tokens; error against the closed form; RSS; the official method's extrapolation."""
    model, adapter = loaded.model, loaded.adapter
    ids = loaded.tokenizer(PROMPT, return_tensors="pt")["input_ids"][:, :T]
    assert ids.shape[1] == T, ids.shape
    t_capture = _time(lambda: capture_block_calls(model, adapter, ids))
    calls = capture_block_calls(model, adapter, ids)
    L, d = len(calls), calls[0].hidden_states.shape[-1]
    fwd = min(_time(lambda: model(input_ids=ids, use_cache=False)) for _ in range(3))
    out = torch.empty(T, d, d)
    block_jacobians_autodiff(model, adapter, 0, calls[0], chunk=chunk, mode=mode, out=out)  # warm-up
    times, peaks = [], []
    for _ in range(reps):
        peaks.append(gemm_peak())
        times.append(_time(lambda: all_layers(model, adapter, calls, chunk, mode, out)))
    peaks.append(gemm_peak())
    t, peak = min(times), max(peaks)
    gflop = GFLOP_PER_TOKEN_LAYER * T * L
    print(f"T={T}: J, {L} layers, float32, {mode}, chunk {chunk or 'auto'}: {t:.2f} s (runs: "
          f"{', '.join(f'{x:.2f}' for x in times)}; {t / L * 1e3:.0f} ms/layer; {t / fwd:.0f}x one full forward of "
          f"{fwd * 1e3:.0f} ms; the capture forward took {t_capture * 1e3:.0f} ms)")
    print(f"  {gflop:.0f} GFLOP -> {gflop / t:.1f} GFLOP/s = {100 * gflop / t / peak:.0f}% of the sgemm peak "
          f"{peak:.0f} GFLOP/s (peaks measured around the runs: {', '.join(f'{p:.0f}' for p in peaks)})")
    for layer in (0, 14):
        call = calls[layer]
        J = block_jacobians_autodiff(model, adapter, layer, call, chunk=chunk, mode=mode)
        C64 = block_jacobians(model.model.layers[layer], call.hidden_states, call.kwargs["position_embeddings"],
                              model.config, dtype=torch.float64)
        C32 = block_jacobians(model.model.layers[layer], call.hidden_states, call.kwargs["position_embeddings"],
                              model.config, dtype=torch.float32)
        print(f"  layer {layer:2d}: autodiff fp32 vs closed form fp64: rel-Frobenius {rel_err(J, C64):.1e}, worst "
              f"token {max(rel_err(J[i], C64[i]) for i in range(T)):.1e}, max abs {float((J - C64).abs().max()):.1e}"
              f" (closed form fp32 vs fp64: {rel_err(C32, C64):.1e}; max |J| {float(C64.abs().max()):.2g})")
    extra = peak_extra_rss(lambda: block_jacobians_autodiff(model, adapter, 14, calls[14], chunk=chunk, mode=mode))
    print(f"  peak extra RSS for one layer (output {T * d * d * 4 / 1e9:.2f} GB included): {extra:.2f} GB")
    bench_official(model, adapter, calls, T, t / L)


def bench_official(model, adapter, calls, T: int, ours_per_layer: float) -> None:
    """Time the official per-token method on 2 tokens of layer 14 and extrapolate to all tokens and layers."""
    block, call = adapter.block_list(model)[14], calls[14]
    n_chunks = 2 * (T // 20) + 5                                       # sugolov/coupling's chunk count
    official_one_token(block, call, T - 1, n_chunks)                   # warm-up
    per_token = min(_time(lambda: official_one_token(block, call, t, n_chunks)) for t in (0, T - 1))
    ours = block_jacobians_autodiff(model, adapter, 14, call, tokens=[0, T - 1])
    err = max(rel_err(ours[i], official_one_token(block, call, t, n_chunks)) for i, t in enumerate((0, T - 1)))
    L = len(calls)
    print(f"  official per-token method (d VJPs through the full block per token, {n_chunks} chunks): "
          f"{per_token:.2f} s/token -> {per_token * T:.1f} s/layer, {per_token * T * L:.0f} s for {L} layers "
          f"(extrapolated) = {per_token * T / ours_per_layer:.0f}x this method; rel diff vs ours {err:.1e}")


def main() -> None:
    """Load SmolLM2 and benchmark each T."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--T", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--chunk", type=int, default=None, help="cotangents per backward (default: the library's)")
    parser.add_argument("--mode", default="batched-grad", choices=("batched-grad", "replicate"))
    args = parser.parse_args()
    t0 = time.perf_counter()
    loaded = load(ModelRequest())
    print(f"model: {loaded.info.get('source')} ({loaded.dtype}, {loaded.device}), loaded in "
          f"{time.perf_counter() - t0:.1f} s; torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"load average {os.getloadavg()[0]:.1f}")
    for T in args.T:
        bench_T(loaded, T, args.reps, args.chunk, args.mode)


if __name__ == "__main__":
    main()
