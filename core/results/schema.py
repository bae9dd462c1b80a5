"""The declared schema of a results file's header, checked when a file is opened (issue 17, defect 3).

So far it declares the run header's progress counters; every row is (key, type, range). A value of the
wrong type or out of range is one ResultsError naming the key and what is wrong. Torch-free, Textual-free.
"""
from __future__ import annotations

from coupling_tui.core.results import names

# key, what it must be, its lowest and highest value as functions of the header's model.n_layers / n_steps.
RUN_COUNTERS = (
    (names.HEADER_LAYERS_DONE, "0..n_layers", lambda n_layers, n_steps: n_layers),
    (names.HEADER_STEPS_DONE, "0..n_steps", lambda n_layers, n_steps: n_steps),
)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_run_counters(header: dict, n_layers: int, n_steps: int | None, fail) -> None:
    """Optional keys stay optional (absent = 0); present ones must be integers in range.
    ``n_steps`` is None when the header's stages cannot be counted (then only the lower bound is checked)."""
    for key, what, high in RUN_COUNTERS:
        if key not in header:
            continue
        value = header[key]
        top = high(n_layers, n_steps)
        if not _is_int(value) or value < 0 or (top is not None and value > top):
            limit = "a non-negative integer" if top is None else f"an integer 0..{top}"
            raise fail(f"header key {key} is {str(repr(value))[:40]}, it must be {limit}")


def count_steps(header: dict, n_layers: int) -> int | None:
    """Steps of every stage the header announces (n_layers when it lists none); None if its stages are malformed."""
    stages = header.get("stages")
    if not stages:
        return n_layers
    try:
        total = 0
        for stage in stages:
            steps = stage["steps"]
            if not _is_int(steps) or steps < 0:
                return None
            total += steps
        return total
    except (TypeError, KeyError):
        return None
