"""Write docs/metrics.md's measured sections from runs of the engine on SmolLM2:

- ``cost``: the default run (the default prompt and options) timed per stage, against the estimate ``compute``
  prints for it on this machine (benchmarks/estimates.py's ``measure``: the engine's own stage functions timed);
- ``extras``: the default prompt cut to 32 tokens with ``--vju --token-pairs adjacent --context-layers 0,14,29``
  (top-K 50), timed the same way, and the token, vju and context coupling read off its stored arrays;
- ``trained``: trained against random-init at K = 8, read off the pair benchmarks/docs_compare.py saved (run
  first when missing).

    .venv/bin/python benchmarks/docs_metrics.py --write docs/metrics.md         # runs both (~5 min idle)
    .venv/bin/python benchmarks/docs_metrics.py --from benchmarks/out/docs/metrics --write docs/metrics.md

The runs are kept in ``--save`` (default benchmarks/out/docs/metrics): ``cost.json``, ``extras.json`` (seconds per
stage, estimates, load average, machine) and ``extras.safetensors``, which ``--from`` renders again without torch."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _doc_sections import ROOT, load_meta, machine, machine_text, save_meta, wrap  # noqa: E402
from _doc_sections import main as run_main  # noqa: E402

SCRIPT = "docs_metrics"
SECTIONS = ("cost", "extras", "trained")
"""The marked sections of its page, as ``render`` returns them."""
DEFAULT_SAVE = ROOT / "benchmarks" / "out" / "docs" / "metrics"
COMPARE_SAVE = ROOT / "benchmarks" / "out" / "docs" / "compare"
EXTRAS = {"max_tokens": 32, "top_k": 50, "vju": True, "token_pairs": "adjacent", "context_layers": "0,14,29"}
EXTRAS_FLAGS = "--max-tokens 32 --top-k 50 --vju --token-pairs adjacent --context-layers 0,14,29"
K_SMALL, K_VJU = 8, 50
MERGED = {"vju coupling": "depth coupling", "token pairs": "token coupling", "context coupling": "rest"}
"""Estimate stages timed inside another: vju inside the depth coupling's calls, the layer pairs inside the token
coupling's; the context stage is not hooked, so it is in the rest of the wall time."""


def timed_run(name: str, loaded, options, rates) -> tuple[dict, object]:
    """Run the default prompt with ``options`` under the stage timers; (its record, the finished Run)."""
    from estimates import measure as measure_stages
    from coupling_tui.core.options.prompts import DEFAULT_PROMPT, Prompt

    m = measure_stages(name, loaded, options, [Prompt(DEFAULT_PROMPT, "default")], rates)
    estimate: dict[str, float] = {}
    for stage, seconds in m.estimate.seconds.items():
        estimate[MERGED.get(stage, stage)] = estimate.get(MERGED.get(stage, stage), 0.0) + seconds
    stages = dict(m.stages)
    stages["rest"] = m.wall - sum(stages.values())
    return {"stages": stages, "estimate": estimate, "wall": m.wall, "load": m.load, "machine": machine(),
            "date": time.strftime("%Y-%m-%d"), "tokens": m.result.n_tokens, "layers": m.result.n_layers}, m.result


def measure(save: Path) -> None:
    from coupling_tui.core.cli.calibration import RatesCache
    from coupling_tui.core.load.models import ModelRequest, load
    from coupling_tui.core.options.run_options import RunOptions
    from coupling_tui.core.results import run_file

    if not (COMPARE_SAVE / "compare.json").exists():
        import docs_compare

        docs_compare.measure(COMPARE_SAVE)
    loaded = load(ModelRequest())
    rates = RatesCache().rates(loaded.device)
    record, _ = timed_run("default run", loaded, RunOptions(), rates)
    save_meta(save, "cost", record)
    record, run = timed_run("extras", loaded, RunOptions(**EXTRAS), rates)
    run_file.save(run, save / "extras.safetensors")
    save_meta(save, "extras", record)


def stage_table(record: dict) -> list[str]:
    """| stage | estimate s | measured s |, the estimate's stages first (largest first), then a total row."""
    est, got = record["estimate"], record["stages"]
    order = sorted(set(est) | set(got), key=lambda s: (s == "rest", -est.get(s, 0.0)))
    fmt = lambda v: "—" if v is None else f"{v:.1f}"                                     # noqa: E731
    lines = ["| stage | estimate (s) | measured (s) |", "|---|---:|---:|"]
    lines += [f"| {s} | {fmt(est.get(s))} | {fmt(got.get(s))} |" for s in order]
    lines.append(f"| **total** | {sum(est.values()):.1f} | {record['wall']:.1f} |")
    return lines


def cost_section(record: dict) -> str:
    head = (f"**Measured cost** by `benchmarks/{SCRIPT}.py`: the default run (SmolLM2, the default prompt's "
            f"{record['tokens']} tokens, {record['layers']} layers, K_max = 50, token coupling on) on a "
            f"{machine_text(record)}, each stage timed around the engine's own functions, against the estimate "
            f"`compute` prints for it here (`core/cost.py` scaled by this machine's probed rates). \"rest\" is the "
            f"wall time outside the timed stages (host copies, norms, fidelity, fits, events).")
    return "\n".join([wrap(head), ""] + stage_table(record))


def offdiag_mean(m: np.ndarray) -> float:
    """The mean over finite entries off the diagonal of the last two axes, pooled over the leading ones."""
    m = np.asarray(m, dtype=np.float64)
    mask = ~np.eye(m.shape[-1], dtype=bool)
    values = m[..., mask]
    return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")


def extras_facts(run) -> list[str]:
    """The token, layer-pair, vju and context coupling of the extras run, each read off its arrays."""
    a, ks = run.arrays, [int(k) for k in run.arrays["coupling.ks"]]
    k8, k50 = ks.index(K_SMALL), ks.index(K_VJU)
    L, T = run.n_layers, run.n_tokens
    token = a["coupling.token_k"][k8]                                                    # [L, T, T]
    per_layer = [offdiag_mean(token[l]) for l in range(L)]
    pairs = [tuple(int(x) for x in p) for p in a["coupling.token_pairs"]]
    pair_m = {p: offdiag_mean(a["coupling.token_pair_k"][k8, i]) for i, p in enumerate(pairs)}
    up = [v for (r, c), v in pair_m.items() if c == r + 1]
    down = [v for (r, c), v in pair_m.items() if r == c + 1]
    best = min(pair_m, key=pair_m.get)
    vju, ujv = a["coupling.depth_vju_k"][k50, -1], a["coupling.depth_k"][k50, -1]
    layers = [int(x) for x in a["context.layers"]]
    out_k, in_k = a["context.out_k"][k8], a["context.in_k"][k8]
    lc = len(layers)
    same_out = [offdiag_mean(out_k[p, p]) for p in range(lc)]
    same_in = [offdiag_mean(in_k[p, p]) for p in range(lc)]
    cross = [offdiag_mean(side[p, q]) for side in (out_k, in_k) for p in range(lc) for q in range(lc) if p != q]
    mid = lc // 2
    fro = a["context.out_frobenius"][mid].astype(np.float64)
    lines = [f"- **Same-layer token coupling** (`coupling.token_k`, K = {K_SMALL}, t ≠ t'): {np.mean(per_layer):.3f} "
             f"averaged over the {L} layers; lowest at layer {int(np.argmin(per_layer))} "
             f"({min(per_layer):.3f}), highest at layer {int(np.argmax(per_layer))} ({max(per_layer):.3f}).",
             f"- **Between adjacent layers** (`coupling.token_pair_k`, K = {K_SMALL}, t ≠ t'): {np.mean(up):.3f} "
             f"(l → l+1) and {np.mean(down):.3f} (l+1 → l); the lowest pair {best[0]} → {best[1]} "
             f"({pair_m[best]:.3f}).",
             f"- **vju** (last token, K = {K_VJU}): off-diagonal {offdiag_mean(vju):.3f} against the usual "
             f"(ujv) {offdiag_mean(ujv):.3f}; its diagonal {float(np.nanmean(np.diag(vju))):.3f} (not 0: it tests "
             f"whether J_i's output directions line up with its input directions).",
             f"- **Context coupling** (K = {K_SMALL}, off-diagonal means), same output token (t_o = "
             f"{int(a['context.tokens'][1]) % T}) at layers {' / '.join(map(str, layers))}: "
             f"{' / '.join(f'{v:.3f}' for v in same_out)}; same input token (t_i = {int(a['context.tokens'][0])}): "
             f"{' / '.join(f'{v:.3f}' for v in same_in)}"
             + (f"; across chosen layers (p ≠ q) {np.nanmean(cross):.3f}." if cross and np.isfinite(cross).any()
                else "; across chosen layers: not stored (they did not fit `--history-mb`)."),
             f"- ‖J_{{t1, t_o}}‖_F at layer {layers[mid]} (`context.out_frobenius`): {fro[0]:.3g} from the first "
             f"token, {fro[T // 2]:.3g} from the middle one (t1 = {T // 2}), {fro[-1]:.3g} on the diagonal "
             f"(t1 = t_o)."]
    return lines


def extras_section(record: dict, run) -> str:
    head = (f"**Measured on SmolLM2** by `benchmarks/{SCRIPT}.py`: the default prompt cut to {record['tokens']} "
            f"tokens, `{EXTRAS_FLAGS}`, on a {machine_text(record)}.")
    timing = ("Its stages, timed as above (vju is timed inside the depth coupling, the layer pairs inside the token "
              "coupling, the context stage in \"rest\"; the estimate's stages are merged the same way):")
    return "\n".join([wrap(head), ""] + [wrap(x) for x in extras_facts(run)] + ["", wrap(timing), ""]
                     + stage_table(record))


def trained_table(command: str, depths: dict[str, np.ndarray]) -> str:
    """Trained against random-init at K = K_SMALL: ``depths`` = {"trained" | "random-init": m [T, L, L]}."""
    from coupling_tui.core.maths.run_scalar import all_tokens_scalar, last_token_scalar

    rows = {}
    for label, depth in depths.items():
        depth = np.asarray(depth, dtype=np.float64)
        last, every = last_token_scalar(depth, K_SMALL), all_tokens_scalar(depth, K_SMALL)
        adjacent = np.array([depth[-1, l, l + 1] for l in range(depth.shape[1] - 1)])
        low = int(np.argmin(adjacent))
        rows[label] = (f"{last['adjacent']:.3f}", f"{adjacent[low]:.3f} (blocks {low} → {low + 1})",
                       f"{last['offdiag']:.3f}", f"{every['offdiag']:.3f}", f"{every['adjacent']:.3f}")
    T = depths["trained"].shape[0]
    what = [f"last token of {T}, adjacent mean", f"last token of {T}, strongest adjacent entry m[l, l+1]",
            f"last token of {T}, off-diagonal mean", f"all {T} tokens, off-diagonal mean",
            f"all {T} tokens, adjacent mean"]
    head = (f"Measured by `benchmarks/{SCRIPT}.py` from the pair `benchmarks/docs_compare.py` computed "
            f"(`{command}`; random-init seed 0), at K = {K_SMALL}:")
    lines = [wrap(head), "", "| what | trained | random-init |", "|---|---|---|"]
    lines += [f"| {w} | {rows['trained'][i]} | {rows['random-init'][i]} |" for i, w in enumerate(what)]
    return "\n".join(lines)


def trained_section(compare: Path) -> str:
    """``trained_table`` of the pair docs_compare.py saved in ``compare``."""
    from coupling_tui.core.results import run_file
    from coupling_tui.core.results.compare import random_init_run

    meta = load_meta(compare, "compare")
    run = run_file.load(compare / meta["results"])
    depths = {label: side.arrays["coupling.depth_k"][side.coupling_ks.index(K_SMALL)]
              for label, side in (("trained", run), ("random-init", random_init_run(run)))}
    return trained_table(meta["command"], depths)


def render(save: Path) -> dict[str, str]:
    from coupling_tui.core.results import run_file

    extras = run_file.load(save / "extras.safetensors")
    return {"cost": cost_section(load_meta(save, "cost")), "extras": extras_section(load_meta(save, "extras"), extras),
            "trained": trained_section(COMPARE_SAVE)}


def main(argv: list[str] | None = None) -> None:
    run_main(SCRIPT, __doc__.split("\n\n")[0], DEFAULT_SAVE, measure, render, argv)


if __name__ == "__main__":
    main()
