"""The compute job a front end runs (``coupling-tui compute``, the explorer): its cost estimated and confirmed
first (core.cli.cost_check), then ``engine.stream`` (or, for several prompts, ``batch.stream_prompts``) with running out of memory turned into one message that repeats
the estimate (core.faults)."""

from __future__ import annotations

import argparse
from typing import Callable, Iterator

from coupling_tui.core.cli.cost_check import check_run_cost
from coupling_tui.core.faults import memory_guarded
from coupling_tui.core.cli.run_bounds import layers_option


def prepare(args: argparse.Namespace, loaded, baseline, prompt: str, options: dict, console) -> Callable[[], Iterator]:
    """Check the run's cost (may ask, or refuse with a UserError), then return the job: a callable giving the
    engine's events. Nothing is computed before the job is called."""
    from coupling_tui.core.engine import stream as engine

    options = {**options, **layers_option(args, loaded.info["n_layers"], engine.stream)}
    cost = check_run_cost(args, loaded, prompt, console, baseline=baseline is not None)

    def job() -> Iterator:
        return memory_guarded(engine.stream(loaded, prompt, baseline=baseline, **options), cost)

    return job


def prepare_prompts(args: argparse.Namespace, loaded, baseline, prompts: list, options: dict,
                    console) -> Callable[[], Iterator]:
    """``prepare`` for a prompt set (core.options.prompts.Prompt, two or more): the estimate adds up every prompt's run,
    and the job yields core.engine.batch.stream_prompts' events."""
    from coupling_tui.core.engine import batch
    from coupling_tui.core.engine import stream as engine

    options = {**options, **layers_option(args, loaded.info["n_layers"], engine.stream)}
    cost = check_run_cost(args, loaded, [p.text for p in prompts], console, baseline=baseline is not None)

    def job() -> Iterator:
        return memory_guarded(batch.stream_prompts(loaded, prompts, baseline=baseline, **options), cost)

    return job
