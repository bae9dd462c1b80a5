"""A sweep in one process (``coupling-tui sweep``, the local executor): many models, each loaded once, run on the
same prompts with the same options, one after another. A generator of events (core.results.events):
``SweepStarted``, then per model ``ModelSkipped``, or ``ModelStarted``, the model's own stream (a run's events for
one prompt, a prompt set's for several: core.engine.stream / core.engine.batch) and ``ModelFinished`` — or
``ModelFailed`` with one line when it cannot load or run (the sweep goes on) — and ``SweepFinished``.

Closing the generator (Ctrl-C in the front end) closes the running model's stream: the work stops between layers and
no later model starts. ``core.engine.sweep_ray`` runs the same ``ModelJob`` as one Ray task per model."""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass
from typing import Iterator

from coupling_tui.core.errors import UserError
from coupling_tui.core.faults import is_out_of_memory
from coupling_tui.core.load.models import ModelRequest
from coupling_tui.core.options.prompts import Prompt
from coupling_tui.core.options.run_options import RunOptions
from coupling_tui.core.results.events import (ModelFailed, ModelFinished, ModelSkipped, ModelStarted, SweepEvent,
                                              SweepFinished, SweepStarted)


@dataclass(frozen=True)
class ModelJob:
    """One model of a sweep: its name as the user gave it, what to load, what to run (its header records it)."""

    name: str
    request: ModelRequest
    options: RunOptions
    baseline: bool = False
    """Also run its random-init twin beside it (``--random-baseline``)."""


def model_stream(job: ModelJob, prompts: list[Prompt]) -> Iterator:
    """Load ``job``'s model and yield its run's events (one prompt) or its prompt set's (several). The model is
    released when the stream ends or is closed."""
    from dataclasses import replace

    from coupling_tui.core.engine import batch
    from coupling_tui.core.engine.stream import stream
    from coupling_tui.core.load.models import load

    started = time.perf_counter()
    loaded = load(job.request)
    baseline = load(replace(job.request, random_init=True)) if job.baseline else None
    loaded.load_seconds = time.perf_counter() - started
    try:
        if len(prompts) == 1:
            yield from stream(loaded, prompts[0].text, job.options, baseline=baseline)
        else:
            yield from batch.stream_prompts(loaded, prompts, job.options, baseline=baseline)
    finally:
        del loaded, baseline
        release_memory()


def release_memory() -> None:
    """Give a finished model's memory back before the next loads (the CUDA cache too)."""
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception:  # noqa: BLE001 - freeing memory must never fail a sweep
        pass


def failure_reason(exc: BaseException) -> str:
    """One line for a model that failed: a UserError's message as ``compute`` would print it, running out of
    memory as such, anything else as its type and message (a bug, or a library's refusal)."""
    if isinstance(exc, UserError):
        return f"{exc.message}; {exc.hint}" if exc.hint else exc.message
    if is_out_of_memory(exc):
        return "out of memory"
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__


def stream_sweep(jobs: list[ModelJob], prompts: list[Prompt], *, skip: dict[int, str] | None = None,
                 model_events=None) -> Iterator[SweepEvent]:
    """The sweep's events (module docstring). ``skip`` = {job index: why} for models whose results exist;
    ``model_events(job, prompts)`` is one model's stream (default ``model_stream``)."""
    skip = skip or {}
    model_events = model_events or model_stream
    started = time.perf_counter()
    yield SweepStarted(models=tuple(job.name for job in jobs))
    for index, job in enumerate(jobs):
        if index in skip:
            yield ModelSkipped(index=index, reason=skip[index])
            continue
        yield ModelStarted(index=index)
        t0 = time.perf_counter()
        try:
            yield from model_events(job, prompts)
        except Exception as exc:  # noqa: BLE001 - one model's failure is its row; the sweep goes on
            yield ModelFailed(index=index, reason=failure_reason(exc), seconds=time.perf_counter() - t0)
            continue
        yield ModelFinished(index=index, seconds=time.perf_counter() - t0)
    yield SweepFinished(seconds=time.perf_counter() - started)
