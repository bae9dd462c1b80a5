"""The compute job a front end runs (``coupling-tui compute``, the explorer): its cost estimated and confirmed
first (core.cli.cost_check), then ``engine.stream`` (or, for several prompts, ``batch.stream_prompts``) with running
out of memory turned into one message that repeats the estimate (core.faults). The run is the one ``RunOptions``
the flags built (``core.cli.common.run_options``)."""

from __future__ import annotations

from typing import Callable, Iterator

from coupling_tui.core.cli.cost_check import check_run_cost
from coupling_tui.core.faults import memory_guarded
from coupling_tui.core.options.run_options import RunOptions


def prepare(options: RunOptions, loaded, baseline, prompt: str, console, *,
            yes: bool = False) -> Callable[[], Iterator]:
    """Check the run's cost (may ask, or refuse with a UserError; ``yes`` = --yes), then return the job: a callable
    giving the engine's events. Nothing is computed before the job is called."""
    from coupling_tui.core.engine import stream as engine

    cost = check_run_cost(options, loaded, prompt, console, baseline=baseline is not None, yes=yes)

    def job() -> Iterator:
        return memory_guarded(engine.stream(loaded, prompt, options, baseline=baseline), cost)

    return job


def prepare_prompts(options: RunOptions, loaded, baseline, prompts: list, console, *,
                    yes: bool = False) -> Callable[[], Iterator]:
    """``prepare`` for a prompt set (core.options.prompts.Prompt, two or more): the estimate adds up every prompt's
    run, and the job yields core.engine.batch.stream_prompts' events."""
    from coupling_tui.core.engine import batch

    cost = check_run_cost(options, loaded, [p.text for p in prompts], console, baseline=baseline is not None,
                          yes=yes)

    def job() -> Iterator:
        return memory_guarded(batch.stream_prompts(loaded, prompts, options, baseline=baseline), cost)

    return job
