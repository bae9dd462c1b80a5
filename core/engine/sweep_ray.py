"""A sweep on Ray (``coupling-tui sweep --executor ray``): one Ray task per model, on an existing cluster
(``address``) or on a local Ray started for the sweep and stopped after it. Each task loads its model and runs
core.engine.sweep.model_stream where Ray placed it (``num_gpus`` / ``num_cpus`` per model), telling its progress
to a small actor, and hands the whole container (a Run or a PromptSet: numpy arrays and a header) back; only the
driver writes the sweep directory. A task that raises, or whose worker dies, is that model's ``ModelFailed``; the
other tasks go on.

Yields the same events as core.engine.sweep.stream_sweep, with ``ModelProgress`` and ``ModelComputed`` in place of a
model's own stream. Closing the generator cancels the tasks still running."""

from __future__ import annotations

import time
from typing import Iterator

from coupling_tui.core.engine.sweep import ModelJob, failure_reason
from coupling_tui.core.errors import UserError
from coupling_tui.core.options.prompts import Prompt
from coupling_tui.core.results.events import (ModelComputed, ModelFailed, ModelProgress, ModelSkipped, SweepEvent,
                                              SweepFinished, SweepStarted)

EXTRA = "pip install 'coupling-tui[ray]'"
POLL_SECONDS = 0.25


def import_ray():
    """Ray, or one UserError naming the extra that installs it."""
    try:
        import ray
    except ImportError:
        raise UserError("--executor ray needs Ray, which is not installed", f"install the extra: {EXTRA}") from None
    return ray


class Progress:
    """The Ray actor the tasks tell their progress to, without waiting (a task blocked in ``ray.get`` gives its CPUs
    back to Ray, which would start another task on them); the driver takes the newest per model at each poll."""

    def __init__(self) -> None:
        self.latest: dict[int, tuple[int, int]] = {}

    def put(self, index: int, done: int, total: int) -> None:
        self.latest[index] = (done, total)

    def take(self) -> dict[int, tuple[int, int]]:
        latest, self.latest = self.latest, {}
        return latest


def compute_model(index: int, job: ModelJob, prompts: list[Prompt], progress) -> tuple:
    """The body of one model's Ray task: torch gets the task's CPUs as its threads; fold ``model_stream``'s events
    into the model's container, telling ``progress`` (a ``Progress`` actor) after every event; returns (container,
    seconds)."""
    import ray
    import torch

    from coupling_tui.core.engine.sweep import model_stream
    from coupling_tui.core.results.container import container_for
    from coupling_tui.core.results.run import Run

    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU")
    if cpus:
        torch.set_num_threads(max(1, int(cpus)))
    started = time.perf_counter()
    container = None
    for event in model_stream(job, prompts):
        if container is None:
            container = container_for(event) or Run()
        container.apply(event)
        progress.put.remote(index, container.steps_done, container.n_steps)
    return container, time.perf_counter() - started


def stream_sweep_ray(jobs: list[ModelJob], prompts: list[Prompt], *, skip: dict[int, str] | None = None,
                     address: str | None = None, gpus_per_model: float = 0.0, cpus_per_model: float = 1.0,
                     init_kwargs: dict | None = None, body=compute_model) -> Iterator[SweepEvent]:
    """The sweep's events with every model not in ``skip`` as its own Ray task (module docstring). ``address``:
    a running cluster's (None: Ray's own default — RAY_ADDRESS, else a local Ray for this sweep); ``body``: the
    task's function (``compute_model``; tests pass one whose worker dies)."""
    ray = import_ray()
    skip = skip or {}
    started = time.perf_counter()
    ours = not ray.is_initialized()
    if ours:
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False, **(init_kwargs or {}))
        except Exception as exc:  # noqa: BLE001 - a cluster that cannot be reached is one line
            raise UserError(f"cannot start or reach Ray{f' at {address}' if address else ''}: "
                            f"{failure_reason(exc)}", "check --ray-address / RAY_ADDRESS") from exc
    progress = ray.remote(Progress).options(num_cpus=0).remote()
    task = ray.remote(body).options(num_gpus=gpus_per_model, num_cpus=cpus_per_model, max_retries=0)
    pending: dict = {}
    try:
        yield SweepStarted(models=tuple(job.name for job in jobs))
        for index, job in enumerate(jobs):
            if index in skip:
                yield ModelSkipped(index=index, reason=skip[index])
            else:
                pending[task.remote(index, job, prompts, progress)] = (index, time.perf_counter())
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=POLL_SECONDS)
            for index, (done, total) in ray.get(progress.take.remote()).items():
                yield ModelProgress(index=index, steps_done=done, n_steps=total)
            for ref in ready:
                index, t0 = pending.pop(ref)
                try:
                    container, seconds = ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - the task's error, or its worker's death, is its row
                    yield ModelFailed(index=index, reason=_task_reason(ray, exc), seconds=time.perf_counter() - t0)
                else:
                    yield ModelComputed(index=index, container=container, seconds=seconds)
        yield SweepFinished(seconds=time.perf_counter() - started)
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)
        if ours:
            ray.shutdown()


def _task_reason(ray, exc: BaseException) -> str:
    """One line for a failed task: the model's own error (a UserError's message) when the task raised, else what
    Ray says happened to its worker."""
    cause = getattr(exc, "cause", None)
    if isinstance(exc, ray.exceptions.RayTaskError) and cause is not None:
        return failure_reason(cause)
    if isinstance(exc, (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError)):
        return f"the Ray worker died ({type(exc).__name__})"
    if isinstance(exc, ray.exceptions.OutOfMemoryError):
        return "out of memory (Ray killed the worker)"
    return failure_reason(exc)
