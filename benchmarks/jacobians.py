"""Benchmark of per-token block Jacobians (all layers × all tokens) on SmolLM2-135M, in one run on one machine: the
closed form, generic autodiff (batched-grad), and the engine's end-to-end J + exact top-K, against a GEMM peak measured
in the same run, float64 references, and two baselines (sugolov/coupling's per-token method; naive ``jacrev``). On a
CUDA machine it also runs a random Qwen2-0.5B-shaped model at T = 256 (alone with ``--gpu-only``).

Run: ``.venv/bin/python benchmarks/jacobians.py [--quick] [--T 16 64] [--reps 2] [--naive-64] [--gpu auto|on|off|cpu]
[--wait-load 0.6] [--gpu-only]``. ``--quick`` (T = 8, 3 layers, one rep) is a smoke test. Timed runs never run the
RSS sampler; every timing is the best of its runs, and the GEMM peak is the best rate measured around all of them."""

from __future__ import annotations

import argparse
import os
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import torch

from _bench_utils import (PROMPT, Peak, closed_form_flops, forward_flops, naive_diag_jacobians, official_chunks,
                          official_one_token, peak_extra_rss, per_token_rel_err, print_table, timed)
from coupling_tui.core.engine import stream as engine
from coupling_tui.core.load.adapters import adapter_for
from coupling_tui.core.results.events import LayerDone
from coupling_tui.core.engine.jacobians.autodiff import block_jacobians_autodiff, capture_block_calls
from coupling_tui.core.engine.jacobians.closed_form import Workspace, block_jacobians, rotary_cos_sin
from coupling_tui.core.load.models import LoadedModel, ModelRequest, load
from coupling_tui.core.linalg.spectra import DEFAULT_REL_TOL
from coupling_tui.core.engine.trace import trace
from coupling_tui.core.options.run_options import RunOptions

TOP_K = 32


@dataclass
class Case:
    """One sequence length on one model: inputs, captured layer calls and the float64 references."""

    loaded: Any
    T: int
    ids: torch.Tensor
    X: torch.Tensor                     # [L, T, d] block inputs of the engine's trace (closed form, engine)
    cos_sin: tuple
    calls: list                         # captured eager layer calls (autodiff, official, naive)
    check: tuple[int, ...]              # layers whose errors are measured
    fwd: float = 0.0
    refs: dict = field(default_factory=dict)

    @property
    def blocks(self) -> Any:
        """The model's decoder layers."""
        return self.loaded.adapter.block_list(self.loaded.model)

    @property
    def L(self) -> int:
        """Number of decoder layers."""
        return len(self.calls)

    def ref(self, layer: int, x: torch.Tensor) -> torch.Tensor:
        """float64 closed-form J of ``layer`` at input x [T, d] (cached per distinct input)."""
        for x0, J in self.refs.get(layer, []):
            if torch.equal(x0, x):
                return J
        J = block_jacobians(self.blocks[layer], x, self.cos_sin, self.loaded.model.config, dtype=torch.float64)
        self.refs.setdefault(layer, []).append((x, J))
        return J


def prepare(loaded: Any, T: int, check: tuple[int, ...]) -> Case:
    """Tokenise the prompt to T tokens, trace it, capture the layer calls and time one full forward."""
    model, adapter = loaded.model, loaded.adapter
    ids = torch.tensor([engine.tokenize(loaded, PROMPT, T)[0]])
    assert ids.shape[1] == T, ids.shape
    case = Case(loaded, T, ids, trace(model, adapter, ids).block_inputs, rotary_cos_sin(model, T),
                capture_block_calls(model, adapter, ids), check)
    with torch.no_grad():
        case.fwd = min(timed(lambda: model(input_ids=ids, use_cache=False)) for _ in range(3))
    return case


def best_of(fn, reps: int, peak: Peak) -> tuple[float, list[float]]:
    """Best wall time of ``reps`` calls of ``fn`` (a warm-up happens elsewhere), measuring the GEMM peak around them."""
    times = []
    for _ in range(reps):
        peak.measure()
        times.append(timed(fn))
    peak.measure()
    return min(times), times


def errors(case: Case, jac, layers, inputs) -> tuple[float, float]:
    """(worst per-token rel-Frobenius error, worst whole-layer error) of ``jac(layer)`` against float64, over layers."""
    worst_tok, worst_layer = 0.0, 0.0
    for layer in layers:
        J, R = jac(layer), case.ref(layer, inputs(layer))
        worst_tok = max(worst_tok, float(per_token_rel_err(J, R).max()))
        worst_layer = max(worst_layer, float((J.double() - R).norm() / R.norm()))
    return worst_tok, worst_layer


def bench_closed_form(case: Case, reps: int, peak: Peak) -> dict:
    """Closed-form J for every layer in float32 (reused workspace and output), its error and its working set."""
    model, T, d = case.loaded.model, case.T, case.X.shape[2]
    ws, out = Workspace(), torch.empty(T, d, d)

    def run() -> None:
        """All layers into one output buffer."""
        for layer, block in enumerate(case.blocks):
            block_jacobians(block, case.X[layer], case.cos_sin, model.config, workspace=ws, out=out)
    block_jacobians(case.blocks[0], case.X[0], case.cos_sin, model.config, workspace=ws, out=out)  # warm-up
    t, times = best_of(run, reps, peak)
    err, err_layer = errors(case, lambda l: block_jacobians(case.blocks[l], case.X[l], case.cos_sin, model.config),
                            case.check, lambda l: case.X[l])
    last = case.check[-1]
    rss = peak_extra_rss(lambda: block_jacobians(case.blocks[last], case.X[last], case.cos_sin, model.config))
    t64 = timed(lambda: block_jacobians(case.blocks[last], case.X[last], case.cos_sin, model.config,
                                        dtype=torch.float64, workspace=ws))
    flops = closed_form_flops(model.config) * T * case.L
    print(f"  closed form fp32: {t:.2f} s (runs {', '.join(f'{x:.2f}' for x in times)}; "
          f"{t / case.L * 1e3:.0f} ms/layer;"
          f" {t / case.fwd:.0f}x one full forward of {case.fwd * 1e3:.0f} ms); {flops / 1e9:.0f} GFLOP -> "
          f"{flops / t / 1e9:.0f} GFLOP/s; err worst token {err:.1e}, per layer {err_layer:.1e}; RSS {rss:.2f} GB; "
          f"float64 J of one layer {t64:.2f} s (x{case.L} = {t64 * case.L:.0f} s)")
    return dict(method="closed form (fp32)", seconds=t, flops=flops, err=err, rss=rss)


def bench_autodiff(case: Case, reps: int, peak: Peak, mode: str, chunk: int | None) -> dict:
    """Generic autodiff J (``mode``, ``chunk`` cotangents per pass) for every layer, its error and its working set."""
    loaded, T, d = case.loaded, case.T, case.X.shape[2]
    out = torch.empty(T, d, d)
    opts = dict(mode=mode, chunk=chunk)

    def run() -> None:
        """All layers into one output buffer."""
        for layer, call in enumerate(case.calls):
            block_jacobians_autodiff(loaded.model, loaded.adapter, layer, call, out=out, **opts)
    block_jacobians_autodiff(loaded.model, loaded.adapter, 0, case.calls[0], out=out, **opts)     # warm-up
    t, times = best_of(run, reps, peak)
    err, err_layer = errors(case, lambda l: block_jacobians_autodiff(loaded.model, loaded.adapter, l, case.calls[l],
                                                                     **opts),
                            case.check, lambda l: case.calls[l].hidden_states)
    last = case.check[-1]
    rss = peak_extra_rss(lambda: block_jacobians_autodiff(loaded.model, loaded.adapter, last, case.calls[last], **opts))
    flops = d * forward_flops(loaded.model.config) * T * case.L
    print(f"  autodiff fp32 ({mode}, chunk {chunk or 'auto'}): {t:.2f} s (runs {', '.join(f'{x:.2f}' for x in times)}; "
          f"{t / case.L * 1e3:.0f} ms/layer); {flops / 1e9:.0f} GFLOP (d x forward) -> {flops / t / 1e9:.0f} GFLOP/s; "
          f"err worst token {err:.1e}, per layer {err_layer:.1e}; RSS {rss:.2f} GB")
    return dict(method=f"autodiff (fp32, {mode})", seconds=t, flops=flops, err=err, rss=rss)


def consume(loaded: Any, T: int, layers: tuple[int, ...] = ()) -> dict:
    """Run the engine (J + exact top-K for every layer) on the prompt's first T tokens; return σ of ``layers``."""
    sigma = {}
    for event in engine.stream(loaded, PROMPT, RunOptions(max_tokens=T, top_k=TOP_K)):
        if isinstance(event, LayerDone) and event.layer in layers:
            sigma[event.layer] = torch.as_tensor(event.rows["jacobian.singular_values"][1])
    return sigma


def bench_engine(case: Case, reps: int, peak: Peak) -> dict:
    """End-to-end engine time for J + exact top-32 of every layer and token; σ error against float64 SVD."""
    sigma: dict = {}
    t, times = best_of(lambda: sigma.update(consume(case.loaded, case.T, tuple(range(case.L)))), reps, peak)
    S_all = torch.stack([sigma[layer] for layer in range(case.L)])                      # [L, T, K]
    floor = (0.25 * torch.finfo(torch.float32).eps / DEFAULT_REL_TOL[torch.float32]) ** 0.5
    fallbacks = int((S_all[..., -1] <= floor * S_all[..., 0]).sum())
    err = 0.0
    for layer, S in ((layer, sigma[layer]) for layer in case.check):
        ref = torch.linalg.svdvals(case.ref(layer, case.X[layer]))[:, :TOP_K]
        err = max(err, float(((S.double() - ref).abs() / ref).max()))
    rss = peak_extra_rss(lambda: consume(case.loaded, case.T))
    print(f"  engine J + exact top-{TOP_K}: {t:.2f} s (runs {', '.join(f'{x:.2f}' for x in times)}; "
          f"{t / case.fwd:.0f}x one full forward); max rel sigma err {err:.1e}; RSS {rss:.2f} GB; full-SVD fallbacks "
          f"{fallbacks} of {S_all.shape[0] * S_all.shape[1]} (min sigma_K/sigma_1 "
          f"{float((S_all[..., -1] / S_all[..., 0]).min()):.3f})")
    return dict(method=f"engine: J + exact top-{TOP_K}", seconds=t, err=err, rss=rss)


def bench_official(case: Case, layer: int, tokens: list[int], warm: bool) -> dict:
    """sugolov/coupling's per-token method on ``tokens`` of ``layer``, extrapolated to all tokens × layers."""
    block, call, T = case.blocks[layer], case.calls[layer], case.T
    n = official_chunks(T)
    if warm:
        official_one_token(block, call, T - 1, n)
    per_token = min(timed(lambda: official_one_token(block, call, t, n)) for t in tokens)
    R = case.ref(layer, call.hidden_states)
    err = max(float(per_token_rel_err(official_one_token(block, call, t, n)[None], R[t:t + 1])) for t in tokens)
    rss = peak_extra_rss(lambda: official_one_token(block, call, T - 1, n))
    seconds = per_token * T * case.L
    flops = T * T * call.hidden_states.shape[1] * forward_flops(case.loaded.model.config) * case.L
    print(f"  official per-token method (d VJPs through the full block, {n} chunks; layer {layer}, tokens {tokens}): "
          f"{per_token:.2f} s/token -> {per_token * T:.1f} s/layer -> {seconds:.0f} s for {case.L} layers "
          f"(extrapolated); err {err:.1e}; RSS {rss:.2f} GB")
    return dict(method="official (sugolov/coupling)", seconds=seconds, flops=flops, err=err, rss=rss, extrap=True)


def bench_naive(case: Case, layer: int, separate_rss: bool) -> dict:
    """Naive jacrev of the full-sequence HF block on one layer, diagonal blocks taken; extrapolated to all layers."""
    block, call, T = case.blocks[layer], case.calls[layer], case.T
    holder = {}
    if separate_rss:
        t = timed(lambda: holder.update(J=naive_diag_jacobians(block, call)))
        rss = peak_extra_rss(lambda: naive_diag_jacobians(block, call))
    else:   # one expensive run: timed with the sampler on (it slows runs by ~10-25%)
        start = time.perf_counter()
        rss = peak_extra_rss(lambda: holder.update(J=naive_diag_jacobians(block, call)))
        t = time.perf_counter() - start
    R = case.ref(layer, call.hidden_states)
    err = float(per_token_rel_err(holder["J"], R).max())
    flops = T * T * call.hidden_states.shape[1] * forward_flops(case.loaded.model.config) * case.L
    print(f"  naive jacrev (full sequence, {T * call.hidden_states.shape[1]} cotangents; layer {layer}): "
          f"{t:.1f} s/layer"
          f" -> {t * case.L:.0f} s for {case.L} layers (extrapolated){'' if separate_rss else ' (RSS sampler on)'};"
          f" err {err:.1e}; RSS {rss:.2f} GB")
    return dict(method="naive jacrev (full seq)", seconds=t * case.L, flops=flops, err=err, rss=rss, extrap=True)


class _FixedTokenizer:
    """Stand-in tokenizer for the random GPU model: every prompt becomes the same fixed token ids."""

    def __init__(self, ids: list[int]) -> None:
        self.ids = ids

    def __call__(self, text: str, **kwargs: Any) -> dict:
        return {"input_ids": list(self.ids)}

    def decode(self, ids: list[int]) -> str:
        return "".join(f"<{i}>" for i in ids)


def gpu_section(mode: str, quick: bool) -> None:
    """Random Qwen2-0.5B-shaped model (24 layers, d = 896, GQA 14/2) at T = 256 on CUDA: J and engine J + top-32."""
    device = "cuda" if torch.cuda.is_available() and mode != "off" else ("cpu" if mode == "cpu" else None)
    if device is None:
        why = "--gpu off" if mode == "off" else f"no CUDA device visible to torch {torch.__version__}"
        print(f"\n== GPU section skipped ({why}): Qwen2-0.5B-shaped T = 256 needs a CUDA GPU ==")
        return
    from transformers import Qwen2Config, Qwen2ForCausalLM

    L, T = (3, 8) if quick else (24, 256)
    d, H, F = (128, 2, 512) if quick and device == "cpu" else (896, 14, 4864)     # a CPU code-path test: smaller d
    cfg = Qwen2Config(hidden_size=d, intermediate_size=F, num_hidden_layers=L, num_attention_heads=H,
                      num_key_value_heads=2, vocab_size=151936, max_position_embeddings=32768, tie_word_embeddings=True)
    torch.manual_seed(0)
    with torch.device(device):
        model = Qwen2ForCausalLM(cfg).float().eval()
    model.requires_grad_(False)
    name = torch.cuda.get_device_name() if device == "cuda" else "CPU (test of the code path)"
    print(f"\n== GPU: random Qwen2-0.5B-shaped model ({L} layers, d {d}, GQA {H}/2), float32, T = {T} on {name} ==")
    ids = torch.randint(cfg.vocab_size, (T,), generator=torch.Generator().manual_seed(0)).tolist()
    loaded = LoadedModel(model=model, tokenizer=_FixedTokenizer(ids), adapter=adapter_for("qwen2"), device=device,
                         dtype="float32", info={"source": "random Qwen2-0.5B-shaped", "family": "qwen2", "n_layers": L})
    peak = Peak(n=1024 if device == "cpu" else 8192, reps=3, device=device)
    peak.measure()
    run = lambda: consume(loaded, T)  # noqa: E731
    cold = timed(run, device)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    engine_t = min(timed(run, device) for _ in range(1 if quick else 2))
    mem = torch.cuda.max_memory_allocated() / 1e9 if device == "cuda" else float("nan")
    input_ids = torch.tensor([ids], device=device)
    X = trace(model, loaded.adapter, input_ids).block_inputs
    cos_sin, blocks = rotary_cos_sin(model, T, device=device), loaded.adapter.block_list(model)
    ws, out = Workspace(), torch.empty(T, d, d, device=device)
    all_J = lambda: [block_jacobians(b, X[i], cos_sin, cfg, workspace=ws, out=out)  # noqa: E731
                     for i, b in enumerate(blocks)]
    t_J = min(timed(all_J, device) for _ in range(2))
    peak.measure()
    flops = closed_form_flops(cfg) * T * L
    J64 = block_jacobians(blocks[L // 2], X[L // 2], cos_sin, cfg, dtype=torch.float64)
    err = float(per_token_rel_err(block_jacobians(blocks[L // 2], X[L // 2], cos_sin, cfg), J64).max())
    print(f"  fp32 GEMM peak {peak.best:,.0f} GFLOP/s ({peak.describe()}; TF32 allowed: "
          f"{torch.backends.cuda.matmul.allow_tf32})")
    print(f"  closed-form J, {L} layers x {T} tokens: {t_J:.2f} s; {flops / 1e9:,.0f} GFLOP -> "
          f"{flops / t_J / 1e9:,.0f} GFLOP/s = {100 * flops / t_J / 1e9 / peak.best:.0f}% of peak; "
          f"worst-token err vs fp64 (layer {L // 2}) {err:.1e}")
    print(f"  engine J + exact top-{TOP_K} (solver auto: subspace on CUDA), all layers: {engine_t:.2f} s warm "
          f"(first call {cold:.2f} s incl. CUDA/cuSOLVER init); max GPU memory allocated {mem:.2f} GB")
    calls = capture_block_calls(model, loaded.adapter, input_ids)
    try:
        chunk = 128 if device == "cuda" else None
        t_ad = timed(lambda: [block_jacobians_autodiff(model, loaded.adapter, i, c, chunk=chunk, out=out)
                              for i, c in enumerate(calls)], device)
        print(f"  autodiff J (batched-grad, chunk {chunk or 'auto'}), {L} layers: {t_ad:.2f} s "
              f"({t_J and t_ad / t_J:.1f}x the closed form)")
    except (RuntimeError, MemoryError) as exc:   # e.g. out of GPU memory: report it, keep the rest
        print(f"  autodiff J on this device failed: {type(exc).__name__}: {str(exc).splitlines()[0][:160]}")
    try:                                             # the research baseline on the same device, sampled tokens
        mid, n = L // 2, official_chunks(T)
        official_one_token(blocks[mid], calls[mid], T - 1, n)
        per_token = min(timed(lambda: official_one_token(blocks[mid], calls[mid], t, n), device) for t in (0, T - 1))
        print(f"  official per-token method ({n} chunks of VJPs; layer {mid}, tokens [0, {T - 1}]): {per_token:.3f} "
              f"s/token -> {per_token * T * L:.1f} s for {L} layers (extrapolated); engine J + top-{TOP_K} is "
              f"{per_token * T * L / engine_t:,.0f}x vs official")
    except (RuntimeError, MemoryError) as exc:
        print(f"  official per-token method failed: {type(exc).__name__}: {str(exc).splitlines()[0][:160]}")
    target = "MET" if engine_t < 10 else "NOT met"
    print(f"  target (all Jacobians + top-{TOP_K} under 10 s on one H100): {target}"
          + (" (quick shapes)" if quick else ""))


def wait_for_quiet(limit: float, max_wait: float = 600, every: float = 15) -> None:
    """Poll the 1-minute load average until it is below ``limit`` (at most ``max_wait`` s), and report it."""
    start = time.time()
    while os.getloadavg()[0] >= limit and time.time() - start < max_wait:
        time.sleep(every)
    load1 = os.getloadavg()[0]
    print(f"waited {time.time() - start:.0f} s for load < {limit}: load average now {load1:.2f}"
          + ("" if load1 < limit else " (gave up waiting)"))


def main() -> None:
    """Parse options, run the CPU sections for each T, the GPU section, then print the summary and targets."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke test: T = 8, 3 layers, one rep")
    parser.add_argument("--T", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--reps", type=int, default=2, help="timed runs of each fast method (best is kept)")
    parser.add_argument("--naive-64", action="store_true", help="also run naive jacrev at T > 32 (~250 s/layer, 11 GB)")
    parser.add_argument("--ad-mode", default="batched-grad", choices=("batched-grad", "replicate"))
    parser.add_argument("--ad-chunk", type=int, default=None, help="autodiff cotangents per pass (default: library's)")
    parser.add_argument("--gpu", default="auto", choices=("auto", "on", "off", "cpu"),
                        help="GPU section: auto/on = when CUDA is available; cpu = run it on the CPU (code-path test)")
    parser.add_argument("--wait-load", type=float, default=None, help="first wait (<= 10 min) for load below this")
    parser.add_argument("--gpu-only", action="store_true", help="only the GPU section (no SmolLM2 CPU sections)")
    args = parser.parse_args()
    if args.gpu_only:
        return gpu_section(args.gpu, args.quick)
    # torch.func has no batching rule for the CPU sdpa backward (official and naive baselines): it loops instead.
    warnings.filterwarnings("ignore", message="There is a performance drop because we have not yet implemented")
    if args.wait_load is not None:
        wait_for_quiet(args.wait_load)
    Ts, reps = ([8], 1) if args.quick else (sorted(args.T), args.reps)
    t0 = time.perf_counter()
    loaded = load(ModelRequest(device="cpu"))
    if args.quick:                                   # keep the first 3 decoder layers
        layers = loaded.adapter.block_list(loaded.model)
        loaded.model.model.layers = torch.nn.ModuleList(list(layers)[:3])
        loaded.model.config.num_hidden_layers = 3
    L = len(loaded.adapter.block_list(loaded.model))
    check = (1,) if args.quick else (0, L // 2 - 1, L - 1)
    print(f"model: {loaded.info['source']} ({loaded.dtype}, {loaded.device}, {L} layers), loaded in "
          f"{time.perf_counter() - t0:.1f} s; torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f}")
    peak = Peak(n=2048 if args.quick else 4096, reps=2 if args.quick else 3)
    peak.measure()
    print(f"sgemm peak at start: {peak.best:.0f} GFLOP/s; per token-layer: forward "
          f"{forward_flops(loaded.model.config) / 1e6:.2f} MFLOP, closed-form J "
          f"{closed_form_flops(loaded.model.config) / 1e9:.2f} GFLOP; errors: layers {check} vs float64 closed form")
    rows: list[dict] = []
    naive_rate = None
    with torch.no_grad():
        for T in Ts:
            case = prepare(loaded, T, check)
            print(f"\n== T = {T} (full forward {case.fwd * 1e3:.0f} ms; load average {os.getloadavg()[0]:.2f}) ==")
            mine = [bench_closed_form(case, reps, peak), bench_autodiff(case, reps, peak, args.ad_mode, args.ad_chunk),
                    bench_engine(case, 1 if T > 32 else reps, peak)]
            mid = max(0, case.L // 2 - 1)
            official = bench_official(case, mid, [T - 1] if args.quick else [0, T - 1], warm=not args.quick)
            naive = None
            if T <= 32 or args.naive_64:
                naive = bench_naive(case, mid, separate_rss=T <= 32 and not args.quick)
                naive_rate = naive["flops"] / naive["seconds"]
            for row in mine:
                row["x_official"] = official["seconds"] / row["seconds"]
                if naive is not None or naive_rate:
                    row["naive_est"] = naive is None
                    row["x_naive"] = (naive["seconds"] if naive else official["flops"] / naive_rate) / row["seconds"]
            rows += [dict(r, T=T) for r in mine + [official] + ([naive] if naive else [])]
    for r in rows:
        if r.get("flops"):
            r["gflops"] = r["flops"] / r["seconds"] / 1e9
            r["pct"] = 100 * r["gflops"] / peak.best
    print(f"\nsgemm peak of the run: {peak.best:.0f} GFLOP/s (measurements rate@load: {peak.describe()})")
    gpu_section(args.gpu, args.quick)
    print(f"\n== Summary (CPU, {loaded.info['source']}; % of the run's sgemm peak {peak.best:.0f} GFLOP/s) ==\n"
          "official and naive are extrapolated from 1-2 tokens / 1 layer; 'est.' = naive time at that T estimated from "
          "its FLOP rate measured at the smaller T; x vs official/naive divide their J time by the row's time")
    print_table(rows, L)
    report_targets(rows, max(Ts), L)
    print(f"\ntotal benchmark time {time.perf_counter() - t0:.0f} s; load average at the end {os.getloadavg()[0]:.2f}")


def report_targets(rows: list[dict], T: int, L: int) -> None:
    """Print whether the issue's CPU targets are met at the largest T."""
    at = {r["method"]: r for r in rows if r["T"] == T}
    cf, ad = at["closed form (fp32)"], next(r for m, r in at.items() if m.startswith("autodiff"))
    checks = [(f"closed form >= 80% of GEMM peak (T = {T})", cf["pct"] >= 80, f"{cf['pct']:.0f}%, {cf['seconds']:.1f} s"
               f" for {L} layers"),
              (f"autodiff >= 40% of GEMM peak (T = {T})", ad["pct"] >= 40, f"{ad['pct']:.0f}%"),
              ("closed form >= 100x official", cf["x_official"] >= 100, f"{cf['x_official']:,.0f}x"),
              ("autodiff >= 100x official", ad["x_official"] >= 100, f"{ad['x_official']:,.0f}x")]
    print("\nTargets:")
    for what, ok, value in checks:
        print(f"  {'MET    ' if ok else 'NOT MET'} {what}: {value}")


if __name__ == "__main__":
    main()
