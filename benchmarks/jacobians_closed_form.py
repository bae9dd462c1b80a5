"""Benchmark of closed-form per-token block Jacobians and exact top-K on SmolLM2-135M (all 30 layers, T = 16 and 64).

Run: ``.venv/bin/python benchmarks/jacobians_closed_form.py [--T 16 64] [--k 32] [--reps 2]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from coupling_tui.core.jacobians.closed_form import Workspace, block_jacobians, rotary_cos_sin
from coupling_tui.core.models import ModelRequest, load
from coupling_tui.core.spectra import DEFAULT_REL_TOL, top_k
from coupling_tui.core.trace import trace

PROMPT = ("The history of science is the study of how people came to understand the natural world. Early astronomers "
          "tracked the motion of the planets, physicians described the body, and mathematicians built the tools that "
          "let later scientists turn careful observation into laws. Those laws predict eclipses, tides and the orbits "
          "of comets, and they guide the engineers who design bridges, engines and the computers we use today.")


def gemm_peak(n: int, reps: int = 5) -> float:
    """Best sgemm rate (GFLOP/s) of an n×n×n float32 matmul on this machine."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    c = torch.empty(n, n)
    torch.matmul(a, b, out=c)
    best = min(_time(lambda: torch.matmul(a, b, out=c)) for _ in range(reps))
    return 2 * n ** 3 / best / 1e9


def _time(fn) -> float:
    """Wall-clock seconds of one call."""
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def flops_per_token_layer(config) -> float:
    """FLOPs of one token's J: C R Wq (H·hd²·d), Wo S (d²·H·hd), Wd G (d²·F) and M A (d³) multiply-adds."""
    d, F = config.hidden_size, config.intermediate_size
    H, hd = config.num_attention_heads, config.head_dim
    return 2.0 * (H * hd * hd * d + d * d * H * hd + d * d * F + d ** 3)


def all_layers(model, X, cos, sin, dtype, out, ws) -> None:
    """J for every layer into one reused output buffer (the timing of the pure Jacobian work)."""
    for layer, block in enumerate(model.model.layers):
        block_jacobians(block, X[layer], (cos, sin), model.config, dtype=dtype, workspace=ws, out=out)


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """Relative Frobenius error of a against the float64 b."""
    return float((a.double() - b).norm() / b.norm())


def bench_T(model, tok, T: int, k: int, reps: int, first_peak: float) -> None:
    """Time J for all layers at T tokens, its error against float64 on two layers, and the top-K time."""
    ids = tok(PROMPT, return_tensors="pt")["input_ids"]
    assert ids.shape[1] >= T, ids.shape
    ids = ids[:, :T]
    X = trace(model, _adapter(model), ids).block_inputs
    cos, sin = rotary_cos_sin(model, T)
    L, d = X.shape[0], X.shape[2]
    fwd = min(_time(lambda: model(input_ids=ids, use_cache=False)) for _ in range(3))
    ws, out = Workspace(), torch.empty(T, d, d)
    block_jacobians(model.model.layers[0], X[0], (cos, sin), model.config, workspace=ws, out=out)  # warm-up
    times = [_time(lambda: all_layers(model, X, cos, sin, torch.float32, out, ws)) for _ in range(reps)]
    t = statistics.median(times)
    peak = max(first_peak, gemm_peak(4096, reps=3))  # re-measured next to the timing: the machine is shared
    gflop = flops_per_token_layer(model.config) * T * L / 1e9
    print(f"T={T}: J, {L} layers, float32: {t:.2f} s (runs: {', '.join(f'{x:.2f}' for x in times)}; "
          f"{t / L * 1e3:.0f} ms/layer; {t / fwd:.0f}x one full forward of {fwd * 1e3:.0f} ms)")
    print(f"  {gflop:.1f} GFLOP -> {gflop / t:.1f} GFLOP/s = {100 * gflop / t / peak:.0f}% of sgemm peak {peak:.0f}")
    for layer in (0, 14):
        block = model.model.layers[layer]
        J64 = block_jacobians(block, X[layer], (cos, sin), model.config, dtype=torch.float64)
        J32 = block_jacobians(block, X[layer], (cos, sin), model.config, dtype=torch.float32)
        per_token = max(rel_err(J32[i], J64[i]) for i in range(T))
        print(f"  layer {layer:2d}: float32 vs float64 closed form: rel-Frobenius {rel_err(J32, J64):.1e}, "
              f"worst token {per_token:.1e}, max abs {float((J32.double() - J64).abs().max()):.1e} "
              f"(max |J| {float(J64.abs().max()):.2g})")
    t_f64 = _time(lambda: block_jacobians(model.model.layers[14], X[14], (cos, sin), model.config,
                                           dtype=torch.float64, workspace=ws))
    print(f"  float64 J, one layer: {t_f64:.2f} s (x{L} = {t_f64 * L:.1f} s extrapolated)")
    bench_top_k(model, X, cos, sin, k, ws)


def bench_top_k(model, X, cos, sin, k: int, ws: Workspace) -> None:
    """Exact top-k (scipy syevr subset on JᵀJ) for every layer's float32 J, and how many fell back to the SVD."""
    T = X.shape[1]
    t_topk, ratios = 0.0, []
    for layer, block in enumerate(model.model.layers):
        J = block_jacobians(block, X[layer], (cos, sin), model.config, workspace=ws)
        t0 = time.perf_counter()
        _, S, _ = top_k(J, k)
        t_topk += time.perf_counter() - t0
        ratios.append(S[:, -1] / S[:, 0])
    ratios = torch.stack(ratios)                                   # [L, T]
    floor = (0.25 * torch.finfo(torch.float32).eps / DEFAULT_REL_TOL[torch.float32]) ** 0.5
    fallback = sorted({int(t) for t in (ratios <= floor).nonzero()[:, 1]})
    print(f"  top-{k} for {X.shape[0]}x{T} matrices: {t_topk:.2f} s ({t_topk / X.shape[0] / T * 1e3:.1f} ms each); "
          f"SVD fallbacks: {int((ratios <= floor).sum())} at tokens {fallback} "
          f"(min sigma_K/sigma_1 = {float(ratios.min()):.3f})")


def _adapter(model):
    from coupling_tui.core.arch import adapter_for

    return adapter_for(model.config.model_type)


def main() -> None:
    """Load SmolLM2, measure the GEMM peak, then benchmark each T."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--T", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--reps", type=int, default=2)
    args = parser.parse_args()
    t0 = time.perf_counter()
    loaded = load(ModelRequest())
    model, tok = loaded.model, loaded.tokenizer
    print(f"model: {loaded.info['source']} ({loaded.dtype}, {loaded.device}), loaded in {time.perf_counter() - t0:.1f} s")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"{flops_per_token_layer(model.config) / 1e9:.3f} GFLOP per token-layer")
    peaks = {n: gemm_peak(n) for n in (2048, 4096)}
    peak = max(peaks.values())
    print("sgemm peak: " + ", ".join(f"{n}^3 {g:.0f} GFLOP/s" for n, g in peaks.items()) + f" -> peak {peak:.0f}")
    with torch.no_grad():
        for T in args.T:
            bench_T(model, tok, T, args.k, args.reps, peak)


if __name__ == "__main__":
    main()
