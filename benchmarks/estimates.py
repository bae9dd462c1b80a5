"""The cost estimate against the measured run (issue 18 item 4): the default run (the offline SmolLM2 model, the
default prompt), a collapse run and a small prompt set, each estimated as ``compute`` estimates it (this machine's
probed rates, ``core.cli.calibration``) and then run by the engine in this process, timed per stage.

    python benchmarks/estimates.py [--runs default,collapse,set,forward] [--fresh-cache] [--threads N]
    python benchmarks/estimates.py --threads 1 --clock cpu --max-tokens 26     # calibrating core/cost.py

Prints one table (estimate, measured wall, measured CPU time, ratio, load average during the run) and a per-stage
table. ``--fresh-cache`` points COUPLING_TUI_CACHE_DIR at a new temporary folder first, so the model is dequantised
and the machine probed as on a first launch. The 1-minute load average is sampled every second while each run works:
a ratio measured with the load above the core count says as much about the neighbours as about the estimate.
``--clock cpu`` times the probe and every stage in CPU seconds instead (time.process_time): at one thread that is
what the run would take on an idle core, whatever the neighbours do, which is how core/cost.py's reference seconds
and REFERENCE_RATES are calibrated (the probe's rates then are not cached). Not a test: nothing here asserts."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _doc_sections import LoadSampler  # noqa: E402

SET_FILES = ("capital.txt", "code.txt", "counting.txt")
"""The prompt set: three short sample prompts."""
ROOT = Path(__file__).resolve().parents[1]
FORWARD_TOKENS = 1024
"""The forward-only run (--top-k 0): long enough for the attention's O(T²) term to count."""


@dataclass
class Measured:
    """One run: its estimate (RunCost), measured wall and CPU seconds, per-stage seconds, load average."""

    name: str
    estimate: object
    wall: float = 0.0
    cpu: float = 0.0
    stages: dict[str, float] = field(default_factory=dict)
    load: str = ""
    result: object = None
    """The finished Run (one prompt) or PromptSet."""


class StageClock:
    """Seconds per stage of a run: the engine's stage functions timed by benchmarks/_suite_e2e's hooks, and the
    collapse stage's steps timed by the arrival of its events (the last one is the sensitivity)."""

    def __init__(self, clock=time.perf_counter) -> None:
        from _suite_e2e import StageTimers

        self.clock = clock
        self.timers = StageTimers("cpu", clock=clock)
        self.collapse: list[float] = []

    def fold(self, events, container):
        from coupling_tui.core.results.events import LayerDone
        from _suite_e2e import timing

        last = self.clock()
        with timing(self.timers):
            for event in events:
                now = self.clock()
                if isinstance(event, LayerDone) and event.stage == "collapse":
                    self.collapse.append(now - last)
                last = now
                container.apply(event)
        return container

    def seconds(self, sensitivity: bool) -> dict[str, float]:
        names = {"trace": "forward trace", "jacobians": "Jacobians", "top-K": "top-K",
                 "depth coupling": "depth coupling", "token coupling": "token coupling"}
        out = {names[k]: v for k, v in self.timers.seconds.items() if k in names and v > 0}
        if self.collapse:
            pairs = self.collapse[:-1] if sensitivity else self.collapse
            out["collapse pairs + low precision"] = sum(pairs)
            if sensitivity:
                out["collapse sensitivity"] = self.collapse[-1]
        return out


def measure(name: str, loaded, options, prompts: list, rates, clock=time.perf_counter) -> Measured:
    """Estimate the run as ``compute`` does, then run it here: wall, CPU time, stages, load average."""
    from coupling_tui.core.cli.cost_check import estimate_for, set_cost
    from coupling_tui.core.engine import batch, stream as engine
    from coupling_tui.core.results.prompt_set import PromptSet
    from coupling_tui.core.results.run import Run

    costs = [estimate_for(options, loaded, p.text, rates=rates) for p in prompts]
    cost = costs[0] if len(costs) == 1 else set_cost(costs)
    stages = StageClock(clock)
    with LoadSampler() as load:
        wall0, cpu0 = time.perf_counter(), time.process_time()
        if len(prompts) == 1:
            result = stages.fold(engine.stream(loaded, prompts[0].text, options), Run())
        else:
            result = stages.fold(batch.stream_prompts(loaded, prompts, options), PromptSet())
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    sens = options.collapse is not None and options.collapse.sensitivity
    return Measured(name, cost, wall, cpu, stages.seconds(sens), load.text(), result)


def estimated_stages(cost) -> dict[str, float]:
    out = dict(cost.seconds)
    pairs = out.pop("collapse pairs", None)
    low = out.pop("collapse low precision", None)
    if pairs is not None:
        out["collapse pairs + low precision"] = pairs + (low or 0.0)
    return out


def report(rows: list[Measured], load_s: float, probe: dict, cores: int) -> None:
    print(f"\nmodel load {load_s:.1f} s; probe {probe['seconds']:.2f} s ({probe['how']}); rates: "
          + ", ".join(f"{k} {v:.3g}" for k, v in probe["rates"].items()) + f"; {cores} cores, "
          f"torch threads {probe['threads']}")
    print(f"\nstages timed in {'CPU' if probe['how'].startswith('CPU') else 'wall'} seconds")
    print("\n| run | estimate s | measured wall s | measured CPU s | wall / estimate | load average (1 min) |")
    print("|---|---:|---:|---:|---:|---|")
    for r in rows:
        est = r.estimate.total_seconds
        print(f"| {r.name} | {est:.1f} | {r.wall:.1f} | {r.cpu:.1f} | {r.wall / est:.2f} | {r.load} |")
    print("\n| run | stage | estimate s | measured s | measured / estimate |")
    print("|---|---|---:|---:|---:|")
    for r in rows:
        est = estimated_stages(r.estimate)
        for stage in sorted(set(est) | set(r.stages), key=lambda s: -est.get(s, 0.0)):
            e, m = est.get(stage), r.stages.get(stage)
            ratio = f"{m / e:.2f}" if e and m is not None else "—"
            print(f"| {r.name} | {stage} | {'—' if e is None else f'{e:.2f}'} | "
                  f"{'—' if m is None else f'{m:.2f}'} | {ratio} |")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", default="default,collapse,set", help="which runs, comma-separated")
    p.add_argument("--fresh-cache", action="store_true", help="a new empty cache dir: dequantise and probe again")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--collapse-lengths", default=None, help="the collapse run's lengths (default: the command's)")
    p.add_argument("--max-tokens", type=int, default=None, help="cut the default run's and the set's prompts")
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="time the probe and the stages in wall or CPU seconds (cpu: calibrate at --threads 1)")
    args = p.parse_args(argv)
    if args.fresh_cache:
        os.environ["COUPLING_TUI_CACHE_DIR"] = tempfile.mkdtemp(prefix="coupling-tui-estimates-")
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from coupling_tui.core.cli.calibration import RatesCache
    from coupling_tui.core.cost import Rates
    from coupling_tui.core.cli.collapse import COLLAPSE_PROMPT
    from coupling_tui.core.load.models import ModelRequest, load
    from coupling_tui.core.options.collapse import CollapseSpec, parse_lengths
    from coupling_tui.core.options.prompts import DEFAULT_PROMPT, Prompt, read_prompts
    from coupling_tui.core.options.run_options import RunOptions

    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; cache "
          f"{os.environ.get('COUPLING_TUI_CACHE_DIR', '(user cache dir)')}")
    t0 = time.perf_counter()
    loaded = load(ModelRequest())
    load_s = time.perf_counter() - t0
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    t1 = time.perf_counter()
    if args.clock == "cpu":
        from coupling_tui.core.linalg import probe as machine_probe

        rates, how = Rates.from_dict(machine_probe.measure(loaded.device, clock=clock)), "CPU clock, not cached"
    else:
        cache = RatesCache()
        rates = cache.rates(loaded.device)
        how = "probed now" if cache.probed else "cached"
    probe = {"seconds": time.perf_counter() - t1, "how": how, "rates": vars(rates), "threads": torch.get_num_threads()}
    sized = RunOptions() if args.max_tokens is None else RunOptions(max_tokens=args.max_tokens)
    runs = {"default": lambda: measure("default run", loaded, sized, [Prompt(DEFAULT_PROMPT, "default")], rates,
                                       clock),
            "collapse": lambda: measure(
                "collapse run", loaded,
                RunOptions(top_k=0, collapse=CollapseSpec(
                    lengths=parse_lengths(args.collapse_lengths) if args.collapse_lengths else None)),
                [Prompt(COLLAPSE_PROMPT, "collapse")], rates, clock),
            "set": lambda: measure(f"prompt set ({len(SET_FILES)})", loaded, sized,
                                   read_prompts(None, [str(ROOT / "sample_prompts" / f) for f in SET_FILES]),
                                   rates, clock),
            "forward": lambda: measure(f"forward only ({FORWARD_TOKENS} tokens)", loaded,
                                       RunOptions(top_k=0, max_tokens=FORWARD_TOKENS),
                                       [Prompt(" ".join([DEFAULT_PROMPT] * 40), "long")], rates, clock)}
    rows = []
    for name in args.runs.split(","):
        rows.append(runs[name.strip()]())
        r = rows[-1]
        print(f"{r.name}: estimate {r.estimate.total_seconds:.1f} s, wall {r.wall:.1f} s, CPU {r.cpu:.1f} s, "
              f"load {r.load}", flush=True)
    report(rows, load_s, probe, os.cpu_count() or 0)
    print(f"\nload average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
