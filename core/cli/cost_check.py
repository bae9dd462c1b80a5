"""Before a run starts: say what it will cost, ask before a large one when someone is there to answer, and refuse
one that cannot fit when no one is (``--yes`` starts it anyway). The times are scaled by this machine's measured
rates (core.cli.calibration), and a busy machine's load average is told under them. Torch is only imported by
``estimate_for`` and the probe."""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from typing import Callable

from coupling_tui.core.cli.calibration import RatesCache, load_average
from coupling_tui.core.cost import (REDUCE_FLAGS, CollapseWork, Rates, RunCost, busy_note, estimate, fmt_bytes,
                                    fmt_seconds)
from coupling_tui.core.errors import UserError
from coupling_tui.core.options import coupling as coupling_options
from coupling_tui.core.options.run_options import RunOptions

ASK_SECONDS = 600.0
"""Above 10 minutes an interactive run asks first."""
ASK_MEMORY_FRACTION = 0.5
"""… and above half of the free memory."""
REFUSE_SECONDS = 4 * 3600.0
"""Without --yes, a run that nobody can confirm is refused above 4 hours …"""
REFUSE_MEMORY_FRACTION = 0.9
"""… or above 90% of the free memory."""


def available_memory(device: str = "cpu") -> float | None:
    """Free bytes where the run's tensors live: MemAvailable on Linux, the GPU's free memory on CUDA."""
    if device.startswith("cuda"):
        try:
            import torch

            return float(torch.cuda.mem_get_info(torch.device(device))[0])
        except Exception:  # noqa: BLE001 - no estimate is better than a crash here
            return None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return float(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def verdict(cost: RunCost, available: float | None) -> tuple[str, str]:
    """("ok" | "ask" | "refuse", why) for a run of ``cost`` with ``available`` free bytes (None = unknown)."""
    need, secs = cost.total_bytes, cost.total_seconds
    if available is not None and need > REFUSE_MEMORY_FRACTION * available:
        return "refuse", f"it needs {fmt_bytes(need)} and {fmt_bytes(available)} is free"
    if secs > REFUSE_SECONDS:
        return "refuse", f"it would take {fmt_seconds(secs)}"
    if available is not None and need > ASK_MEMORY_FRACTION * available:
        return "ask", f"it needs {fmt_bytes(need)} of the {fmt_bytes(available)} free"
    if secs > ASK_SECONDS:
        return "ask", f"it would take {fmt_seconds(secs)}"
    return "ok", ""


def confirm(cost: RunCost, available: float | None, *, yes: bool, interactive: bool,
            ask: Callable[[str], str] = input, say: Callable[[str], None] = print, note: str = "") -> None:
    """Print the estimate (and ``note`` on the line under it: a busy machine's load); ask (interactive) or refuse
    (not) above the thresholds, unless ``yes``. Declining or refusing raises UserError, before anything is
    computed. The estimate line is ``cost.text()`` alone, as an out-of-memory message repeats it."""
    say(f"estimate: {cost.text()}")
    if note:
        say(f"  {note}")
    level, why = verdict(cost, available)
    if level == "ok" or yes:
        return
    if interactive:
        try:
            answer = ask(f"this is a large run ({why}). Start it? [y/N] ")
        except EOFError:
            answer = ""
        if answer.strip().lower() in ("y", "yes"):
            return
        raise UserError("not started", f"make the run smaller with {REDUCE_FLAGS}")
    if level == "refuse":
        raise UserError(f"refusing a run this large without --yes: {why}",
                        f"make it smaller with {REDUCE_FLAGS}, or add --yes to start it anyway")


def estimate_for(options: RunOptions, loaded, prompt: str, *, baseline: bool = False,
                 rates: Rates | None = None) -> RunCost:
    """The estimate of the run ``options`` asks for on ``loaded`` (its real token count, depth, width, weights; its
    collapse stage's sequences), at ``rates`` (None: the reference CPU's, scaled by torch's threads). Blocks that
    ``options.layers`` names outside the model are a UserError here, before anything runs."""
    from coupling_tui.core.engine.stream import tokenize

    ids, _ = tokenize(loaded, prompt, options.max_tokens)
    return estimate_sized(options, n_layers=loaded.info["n_layers"], d=loaded.info["d_model"], tokens=len(ids),
                          weights=resident_weights(loaded), dtype=loaded.dtype, device=loaded.device,
                          family=loaded.info.get("family"), collapse=collapse_work(loaded, options.collapse),
                          baseline=baseline, rates=rates)


def estimate_sized(options: RunOptions, *, n_layers: int, d: int, tokens: int, weights: float, dtype: str,
                   device: str, family: str | None, collapse: CollapseWork | None = None, baseline: bool = False,
                   rates: Rates | None = None) -> RunCost:
    """``estimate_for`` from the model's sizes alone (a sweep estimates every model before any loads)."""
    import torch

    return estimate(n_layers=n_layers, d=d, tokens=tokens, top_k=options.top_k,
                    history_mb=options.history_mb, dtype=dtype, token_coupling=options.token_coupling,
                    weights_bytes=weights, family=family, jacobian_method=options.jacobian_method,
                    layers=options.blocks(n_layers), baseline=baseline, vector_budget_mb=options.vector_budget_mb,
                    device=device, threads=torch.get_num_threads(), vju=options.vju,
                    token_pairs=len(coupling_options.token_pairs(options.token_pairs, n_layers)),
                    context_layers=len(options.context_blocks(n_layers)), collapse=collapse, rates=rates)


def collapse_work(loaded, spec) -> CollapseWork | None:
    """The collapse stage's passes for ``spec`` (core.options.collapse.CollapseSpec; None: no stage) on ``loaded``:
    its sequences, tokenised as the stage will (which also checks them against the model's context)."""
    if spec is None:
        return None
    from coupling_tui.core.engine.collapse import CollapsePass

    stage = CollapsePass(loaded, spec)
    sens = stage.sens or {}
    return CollapseWork(sequences=tuple(len(s.ids) for f in stage.families for p in f.pairs for s in (p.short, p.long)),
                        low_dtype=spec.low_dtype, sensitivity_tokens=sens.get("n_tokens", 0),
                        sensitivity_probes=sens.get("probes", 0),
                        heads=int(getattr(loaded.model.config, "num_attention_heads", 1) or 1))


def machine_rates(device: str, cache: RatesCache | None = None) -> Rates | None:
    """This machine's measured rates on ``device`` (probed once, cached); None when the probe fails, so that the
    estimate falls back to the reference CPU's."""
    try:
        return (cache or RatesCache()).rates(device)
    except Exception:  # noqa: BLE001 - an estimate from the reference rates is better than no run
        return None


def machine_note() -> str:
    """``core.cost.busy_note`` for this machine now ("" when it is not busy)."""
    return busy_note(load_average(), os.cpu_count())


def resident_weights(loaded) -> float:
    """Bytes of the weights on the run's device: every parameter, or, for a sharded model, those on its coupling
    device (``loaded.device``), since the free memory compared with is that device's (the other devices hold the
    rest; offloaded blocks sit on meta)."""
    params = loaded.model.parameters()
    if getattr(loaded, "placement", None) is not None:
        params = (p for p in params if str(p.device) == loaded.device)
    return float(sum(p.numel() * p.element_size() for p in params))


def added_seconds(costs: list[RunCost]) -> dict[str, float]:
    """Runs one after another: each stage's seconds added up."""
    seconds: dict[str, float] = {}
    for cost in costs:
        for name, value in cost.seconds.items():
            seconds[name] = seconds.get(name, 0.0) + value
    return seconds


def set_cost(costs: list[RunCost]) -> RunCost:
    """The cost of a prompt set's runs, one after another on the same model: the times add up; the peak is the
    largest run's, plus the results of the other prompts, which stay in memory until the set is saved."""
    seconds = added_seconds(costs)
    peak = max(costs, key=lambda c: c.total_bytes)
    memory = dict(peak.memory)
    kept = sum(c.memory.get("results file", 0.0) for c in costs) - peak.memory.get("results file", 0.0)
    if kept > 0:
        memory["other prompts' results"] = kept
    return RunCost(memory=memory, seconds=seconds, device=peak.device, measured=all(c.measured for c in costs))


def check_run_cost(options: RunOptions, loaded, prompt: str | list[str], console, *, baseline: bool = False,
                   yes: bool = False) -> RunCost:
    """``confirm`` for the CLI and the explorer: the estimate goes to ``console`` (stderr), the question to the
    terminal when stdin is one. ``prompt`` may be a prompt set's texts (``set_cost``). Returns the estimate (for an
    out-of-memory message later). ``yes`` (--yes) starts a large run without asking."""
    from rich.text import Text

    d = loaded.info["d_model"]
    if options.top_k > d:                       # the engine takes at most d triplets: say so instead of silently
        console.print(f"note: --top-k {options.top_k} is more than the model's width d = {d}: using K = {d}",
                      markup=False, highlight=False, soft_wrap=True)
    rates = machine_rates(loaded.device)
    if isinstance(prompt, str):
        cost = estimate_for(options, loaded, prompt, baseline=baseline, rates=rates)
    else:
        cost = set_cost([estimate_for(options, loaded, text, baseline=baseline, rates=rates) for text in prompt])
    cost = replace(cost, done_seconds=getattr(loaded, "load_seconds", 0.0))
    interactive = sys.stdin is not None and sys.stdin.isatty()
    confirm(cost, available_memory(loaded.device), yes=yes, interactive=interactive,
            ask=lambda q: console.input(Text(q)),
            say=lambda line: console.print(line, markup=False, highlight=False, soft_wrap=True), note=machine_note())
    return cost
