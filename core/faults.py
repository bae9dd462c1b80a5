"""Faults that are not the user's input: running out of memory, and being told to stop (Ctrl-C, SIGTERM).

Out of memory, on the CPU or a GPU, becomes one UserError with what the run needed and the flags that shrink it.
SIGTERM is delivered like Ctrl-C (a KeyboardInterrupt subclass), so the same cleanup runs: the run is dropped
between layers, a results file is only ever written whole (core.atomic), and the terminal is given back.
Torch-free: a CUDA out-of-memory error is recognised by its class name.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator

from coupling_tui.core.cost import REDUCE_FLAGS, RunCost, fmt_bytes
from coupling_tui.core.errors import UserError

_OOM_TEXTS = ("out of memory", "not enough memory", "can't allocate memory", "defaultcpuallocator: can't allocate",
              "failed to allocate memory", "cannot allocate memory")
INTERRUPTED_EXIT = 130
TERMINATED_EXIT = 143


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C would be so that the same clean-up runs."""


def interrupt_message(exc: BaseException) -> tuple[str, int]:
    """The one line and exit status for Ctrl-C (130) or SIGTERM (143)."""
    if isinstance(exc, Terminated):
        return "coupling-tui: terminated (SIGTERM); an unfinished run is not saved", TERMINATED_EXIT
    return "coupling-tui: interrupted; nothing was saved", INTERRUPTED_EXIT


@contextlib.contextmanager
def sigterm_as_interrupt():
    """While inside, SIGTERM raises ``Terminated`` in the main thread (elsewhere this does nothing)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def is_out_of_memory(exc: BaseException) -> bool:
    """MemoryError, torch.cuda.OutOfMemoryError (and MPS/XPU alike), or a RuntimeError from an allocator."""
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return True
    if isinstance(exc, RuntimeError):
        text = str(exc).lower()
        return any(t in text for t in _OOM_TEXTS)
    return False


def out_of_memory_error(stage: str, cost: RunCost | None = None, available: str | None = None) -> UserError:
    """The one message for running out of memory while ``stage`` ("computing", "loading …"): what the run
    needed, as estimated before it started, and what makes it smaller."""
    need = f"; this run needs {cost.text()}" if cost is not None else ""
    have = f" ({available} was free)" if available else ""
    return UserError(f"out of memory while {stage}{need}{have}", f"make the run smaller with {REDUCE_FLAGS}")


def memory_guarded(events: Iterator, cost: RunCost | None = None, stage: str = "computing") -> Iterator:
    """``events`` unchanged, except that running out of memory becomes ``out_of_memory_error``. Closing this
    generator closes ``events`` (the engine stops between layers)."""
    try:
        yield from events
    except Exception as exc:
        if is_out_of_memory(exc):
            raise out_of_memory_error(stage, cost) from exc
        raise


def load_out_of_memory_error(source: str, dtype: str, device: str, need_bytes: float) -> UserError:
    """Running out of memory while the weights load: how much they take, and what makes them smaller."""
    smaller = "--dtype bfloat16 (half of float32)" if dtype in ("float32", "float64") else "a smaller model"
    other = ", or --device cpu" if device.startswith("cuda") else ""
    return UserError(f"out of memory while loading {source} as {dtype} on {device}: its weights alone take about "
                     f"{fmt_bytes(need_bytes)}", f"try {smaller}{other}")
