"""What a sweep adds to its models' runs (issue 19, "Performance"): the same models and options three ways,
interleaved over a few rounds in one run of this script, printed as ratios against the baseline measured here.

1. **alone**: ``coupling-tui compute`` of each model (in process), one after another: each run's engine seconds
   (the results header's ``seconds``; loading aside) — the baseline.
2. **local sweep**: ``coupling-tui sweep`` of the same models: the models' engine seconds inside it against alone
   (the same code path), and the sweep's own work outside its models' rows (planning, the cost estimate, saving
   each model's results, rewriting the table) as a share of its wall. Target: at most 5 %.
3. **Ray sweep** on this machine (``--executor ray``, a local Ray started before the clock and kept for the run):
   its wall time against the local sweep's (loading included on both sides). Target: at most 1.10. Ray's own
   start-up is printed apart.

A busy machine slows single runs at random, so each figure takes the best round (per model where it sums models).

    .venv/bin/python benchmarks/sweep_overhead.py --write docs/sweep.md     # SmolLM2 and two random-init twins
    .venv/bin/python benchmarks/sweep_overhead.py --layers 0:8 --max-tokens 6 --rounds 2   # a quick look

Timings on a shared machine are only comparable within one run: the load average is printed with them."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

MODELS = ("default", "random-init:seed=1:default", "random-init:seed=2:default")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--layers", default="0:30")
    p.add_argument("--max-tokens", default="8")
    p.add_argument("--top-k", default="10")
    p.add_argument("--cpus-per-model", default=str(os.cpu_count() or 1),
                   help="each Ray task's CPUs (default: all, so that tasks run one at a time as locally)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the best of each counts (default 3)")
    p.add_argument("--write", default=None, metavar="MD", help="also write the result into this page's marked section")
    args = p.parse_args()
    flags = ["--layers", args.layers, "--max-tokens", args.max_tokens, "--top-k", args.top_k, "--no-token-coupling",
             "-p", "The capital of France is Paris.", "--yes"]
    from coupling_tui.core.cli.compute import main as compute
    from coupling_tui.core.cli.sweep import main as sweep
    from coupling_tui.core.results import run_file

    work = Path(tempfile.mkdtemp(prefix="sweep-bench-"))
    load0 = os.getloadavg()[0]
    print(f"load average at start: {load0:.2f} on {os.cpu_count()} cores; models: {', '.join(MODELS)}; "
          f"flags: {' '.join(flags[:-3])}", flush=True)
    sweep(["-m", MODELS[0], *flags, "-o", str(work / "warm")])            # the GGUF conversion, once, untimed
    import ray

    t0 = time.perf_counter()
    ray.init(include_dashboard=False, log_to_driver=False)
    ray_start = time.perf_counter() - t0
    alone: list[list[float]] = []
    local, remote = [], []
    for r in range(args.rounds):                         # interleaved: a shared machine drifts between rounds
        engine = []
        for i, name in enumerate(MODELS):
            extra = ["--random-init", "--seed", name.split("seed=")[1].split(":")[0]] if name.startswith("random") \
                else []
            out = work / f"alone-{r}-{i}.safetensors"
            assert compute([*extra, *flags, "-o", str(out)]) == 0              # the offline default model
            engine.append(run_file.load(out).header["seconds"])
        alone.append(engine)
        local.append(_sweep(sweep, flags, work / f"local-{r}", []))
        remote.append(_sweep(sweep, flags, work / f"ray-{r}", ["--executor", "ray", "--cpus-per-model",
                                                               args.cpus_per_model]))
    ray.shutdown()
    lines = report(alone, local, remote, ray_start)
    lines = ["```", f"{len(MODELS)} models: {', '.join(MODELS)}; {' '.join(flags[:-3])}; {args.rounds} interleaved "
             f"rounds; {os.cpu_count()} CPU cores, load average {load0:.2f} at the start, {os.getloadavg()[0]:.2f} "
             "at the end", *lines, "```"]
    print("\n".join(lines))
    if args.write:
        from _doc_sections import write_sections

        write_sections(Path(args.write), "sweep_overhead", {"main": "\n".join(lines)})
    return 0


def report(alone: list[list[float]], local: list[dict], remote: list[dict], ray_start: float) -> list[str]:
    """The ratios. Per model the best of the rounds (a busy machine slows single runs at random): the models' own
    engine seconds alone and inside the local sweep (the same code, so ≈ 1 on a quiet machine); the sweep's own
    work outside its models' rows (planning, the estimate, saving, the table) as a share of its wall; the Ray
    sweep's wall against the local one's, best round each."""
    best_alone = sum(min(r[i] for r in alone) for i in range(len(MODELS)))
    best_in_sweep = sum(min(r["engine"][i] for r in local) for i in range(len(MODELS)))
    outside = min(r["wall"] - sum(r["rows"]) for r in local)
    local_wall, ray_wall = min(r["wall"] for r in local), min(r["wall"] for r in remote)
    ray_outside = min(r["wall"] - sum(r["rows"]) for r in remote)
    ray_inside = min(sum(r["rows"]) - sum(r["engine"]) for r in remote)
    local_inside = min(sum(r["rows"]) - sum(r["engine"]) for r in local)
    return [f"models' engine time, best round per model: alone {best_alone:.2f} s, inside the local sweep "
            f"{best_in_sweep:.2f} s = {best_in_sweep / best_alone:.3f} × alone",
            f"local sweep: best wall {local_wall:.2f} s; its own work outside the models' rows (loading and "
            f"running): {outside:.2f} s = {100 * outside / local_wall:.1f} % of the wall (target ≤ 5 %)",
            f"Ray sweep: best wall {ray_wall:.2f} s = {ray_wall / local_wall:.3f} × the local sweep's (target ≤ 1.10); "
            f"in its tasks besides the models' runs (a fresh worker's imports, loading) {ray_inside:.2f} s against "
            f"{local_inside:.2f} s of loading in process; outside the tasks (scheduling, results through the object "
            f"store, the table) {ray_outside:.2f} s; Ray's own start-up {ray_start:.1f} s, not counted"]


def _sweep(sweep, flags: list[str], out: Path, extra: list[str]) -> dict:
    """One sweep of MODELS into ``out``: its wall seconds, each row's seconds (loading included) and each model's
    engine seconds."""
    from coupling_tui.core.results import run_file

    t0 = time.perf_counter()
    assert sweep([arg for m in MODELS for arg in ("-m", m)] + flags + extra + ["-o", str(out)]) == 0
    wall = time.perf_counter() - t0
    rows = json.loads((out / "sweep.json").read_text())["rows"]
    return {"wall": wall, "rows": [r["seconds"] for r in rows],
            "engine": [run_file.load(out / r["results"]).header["seconds"] for r in rows]}


if __name__ == "__main__":
    sys.exit(main())
