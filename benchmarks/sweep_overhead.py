"""What a sweep adds to its models' runs (issue 19, "Performance"): the same models and options three ways, in one
run of this script, printed as ratios against the baseline measured here.

1. **alone**: ``coupling-tui compute`` of each model (in process), one after another — the baseline: the sum of the
   engine seconds of the runs (the results header's ``seconds``; loading aside).
2. **local sweep**: ``coupling-tui sweep`` of the same models — its wall time less each model's loading (a row's
   ``seconds`` less its run's engine ``seconds``), against the baseline. Target: at most 1.05.
3. **Ray sweep** on this machine (``--executor ray``, a local Ray started before the clock and kept for the run):
   its whole wall time against the local sweep's whole wall time (loading included on both sides). Target: at most
   1.10. Ray's own start-up is printed apart.

    .venv/bin/python benchmarks/sweep_overhead.py                       # SmolLM2, two random-init twins
    .venv/bin/python benchmarks/sweep_overhead.py --layers 0:30 --max-tokens 8 --write docs/sweep.md

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
    p.add_argument("--layers", default="0:8")
    p.add_argument("--max-tokens", default="6")
    p.add_argument("--top-k", default="10")
    p.add_argument("--cpus-per-model", default=str(os.cpu_count() or 1),
                   help="each Ray task's CPUs (default: all, so that tasks run one at a time as locally)")
    p.add_argument("--rounds", type=int, default=2, help="interleaved rounds; the best of each counts (default 2)")
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
    alone, local, ray_wall = [], [], []
    for r in range(args.rounds):                         # interleaved, the best of each: a shared machine drifts
        total = 0.0
        for i, name in enumerate(MODELS):
            extra = ["--random-init", "--seed", name.split("seed=")[1].split(":")[0]] if name.startswith("random") \
                else []
            out = work / f"alone-{r}-{i}.safetensors"
            assert compute([*extra, *flags, "-o", str(out)]) == 0              # the offline default model
            total += run_file.load(out).header["seconds"]
        alone.append(total)
        local.append(_sweep(sweep, flags, work / f"local-{r}", []))
        ray_wall.append(_sweep(sweep, flags, work / f"ray-{r}", ["--executor", "ray", "--cpus-per-model",
                                                                args.cpus_per_model])[0])
    ray.shutdown()
    alone, (local_wall, local_load), ray_wall = min(alone), min(local), min(ray_wall)
    local_runs = local_wall - local_load
    lines = ["```", f"{len(MODELS)} models: {', '.join(MODELS)}; {' '.join(flags[:-3])}; {os.cpu_count()} CPU cores, "
             f"load average {load0:.2f} at the start, {os.getloadavg()[0]:.2f} at the end",
             f"best of {args.rounds} interleaved rounds each",
             f"alone (baseline): {alone:.2f} s of engine time for {len(MODELS)} runs",
             f"local sweep: {local_wall:.2f} s wall, {local_load:.2f} s of it loading → runs {local_runs:.2f} s = "
             f"{local_runs / alone:.3f} × alone (target ≤ 1.05)",
             f"Ray sweep: {ray_wall:.2f} s wall = {ray_wall / local_wall:.3f} × the local sweep's wall (target ≤ 1.10); "
             f"Ray's own start-up {ray_start:.1f} s, not counted", "```"]
    print("\n".join(lines))
    if args.write:
        from _markers import write_section

        write_section(Path(args.write), "sweep_overhead", lines)
    return 0


def _sweep(sweep, flags: list[str], out: Path, extra: list[str]) -> tuple[float, float]:
    """Wall seconds of one sweep of MODELS into ``out``, and the seconds its models spent loading."""
    from coupling_tui.core.results import run_file

    t0 = time.perf_counter()
    assert sweep([arg for m in MODELS for arg in ("-m", m)] + flags + extra + ["-o", str(out)]) == 0
    wall = time.perf_counter() - t0
    rows = json.loads((out / "sweep.json").read_text())["rows"]
    load = sum(r["seconds"] - run_file.load(out / r["results"]).header["seconds"] for r in rows)
    return wall, load


if __name__ == "__main__":
    sys.exit(main())
