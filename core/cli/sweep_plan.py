"""Before a sweep computes anything: every model's job (its flags as ``compute`` would read them, its results'
name under the sweep directory, the key that makes them reusable), which models a re-run can skip, and the cost of
the rest added up (each model's config and tokenizer read, no weights). The flags stop here and in core.cli.sweep."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, fields
from pathlib import Path

from coupling_tui.core.cost import RunCost
from coupling_tui.core.engine.sweep import ModelJob
from coupling_tui.core.errors import UserError
from coupling_tui.core.options.prompts import Prompt
from coupling_tui.core.options.run_options import RunOptions
from coupling_tui.core.options.sweep import ModelEntry, sweep_key
from coupling_tui.core.results.names import SWEEP_JSON

SAME_OPTIONS = "results exist with the same options (--force computes it again)"


@dataclass(frozen=True)
class Planned:
    """One model of the sweep as planned: what to run, where its results go (relative to the sweep directory)."""

    entry: ModelEntry
    job: ModelJob
    key: str
    results: str
    """``<slug>.safetensors`` for one prompt, ``<slug>/`` (a prompt-set directory) for several."""


def entry_args(args: argparse.Namespace, entry: ModelEntry) -> argparse.Namespace:
    """The flags as ``compute --model …`` of this one model would have them."""
    own = argparse.Namespace(**vars(args))
    own.model, own.revision, own.random_init = entry.model, entry.revision, entry.random_init
    own.seed = args.seed if entry.seed is None else entry.seed
    own.collapse = False
    return own


def recorded_options(options: RunOptions) -> dict:
    """What ``options`` asks the engine to run, without what it records besides (``params``): the part of a
    model's key and of the table's ``options`` that every model of the sweep shares."""
    return {f.name: getattr(options, f.name) for f in fields(options) if f.name != "params"}


def plan(args: argparse.Namespace, entries: list[ModelEntry], prompts: list[Prompt]) -> list[Planned]:
    """Every model's job: the sweep's run options recorded with the model's own flags and, under ``params.sweep``,
    the model's name and key (a re-run reads them back from the results)."""
    from coupling_tui.core.cli.common import model_request, run_options

    out = []
    for entry in entries:
        own = entry_args(args, entry)
        options, request = run_options(own), model_request(own)
        model = {f.name: getattr(request, f.name) for f in fields(request)}
        key = sweep_key(entry, {"run": recorded_options(options), "model": model,
                                "baseline": bool(args.random_baseline)}, [p.text for p in prompts])
        options = options.with_params(sweep={"model": entry.given, "key": key})
        results = f"{entry.slug}.safetensors" if len(prompts) == 1 else f"{entry.slug}"
        out.append(Planned(entry, ModelJob(entry.given, request, options, baseline=bool(args.random_baseline)),
                           key, results))
    return out


def check_directory(path: str) -> Path:
    """The sweep directory ``-o DIR``: new, empty, or an earlier sweep's (then reused); refused before any model
    loads when it is a file or holds something else."""
    target = Path(path).expanduser()
    if target.exists() and not target.is_dir():
        raise UserError(f"-o {path} is a file; a sweep writes a directory", "give -o a new directory")
    if target.is_dir() and any(target.iterdir()) and not (target / SWEEP_JSON).is_file():
        raise UserError(f"{path} exists and is not a coupling-tui sweep (no {SWEEP_JSON})", "give -o a new directory")
    return target


def stored(directory: Path, planned: Planned):
    """The model's saved results when they hold a finished run of the same key (None otherwise: missing, unreadable,
    incomplete, or computed with other options)."""
    from coupling_tui.core.results import set_file
    from coupling_tui.core.results.sweep_table import runs_of

    path = directory / planned.results
    if not path.exists():
        return None
    try:
        container = set_file.open_results(path)
    except UserError:
        return None
    runs = runs_of(container)
    expected = 1 if planned.results.endswith(".safetensors") else None
    if not runs or (expected is not None and len(runs) != expected) or \
            (expected is None and len(runs) != container.n_prompts):
        return None
    keys = {((r.header.get("params") or {}).get("sweep") or {}).get("key") for r in runs}
    return container if keys == {planned.key} else None


def model_cost(planned: Planned, prompts: list[Prompt]) -> RunCost | None:
    """The estimate of one model's runs from its config and tokenizer (no weights), at this machine's rates on the
    device the model would load on; None when they cannot be read (the model will then fail as its own row)."""
    from types import SimpleNamespace

    from coupling_tui.core.cli.cost_check import estimate_sized, machine_rates, set_cost
    from coupling_tui.core.cost import config_width, weights_bytes
    from coupling_tui.core.engine.stream import tokenize
    from coupling_tui.core.load.depth import config_depth
    from coupling_tui.core.load.models import inspect

    try:
        config, tokenizer, dtype, device = inspect(planned.job.request)
    except UserError:
        return None
    n_layers, d = config_depth(config), config_width(config)
    if not n_layers or not d:
        return None
    rates = machine_rates(device)
    light = SimpleNamespace(tokenizer=tokenizer, model=SimpleNamespace(config=config))
    costs = [estimate_sized(planned.job.options, n_layers=n_layers, d=d,
                            tokens=len(tokenize(light, p.text, planned.job.options.max_tokens)[0]),
                            weights=weights_bytes(config, dtype), dtype=dtype, device=device,
                            family=getattr(config, "model_type", None), baseline=planned.job.baseline, rates=rates)
             for p in prompts]
    return costs[0] if len(costs) == 1 else set_cost(costs)


def sweep_cost(costs: list[RunCost]) -> RunCost:
    """Models one after another: the times add up, the memory is the largest model's (each is released before the
    next loads)."""
    from coupling_tui.core.cli.cost_check import added_seconds

    peak = max(costs, key=lambda c: c.total_bytes)
    return RunCost(memory=dict(peak.memory), seconds=added_seconds(costs), device=peak.device,
                   measured=all(c.measured for c in costs))
