"""Two models on the same prompt, one after the other, as one stream of events (``--compare MODEL2``): the
events a ``results.comparison.Comparison`` folds."""

from __future__ import annotations

import time
from typing import Callable, Iterator

from coupling_tui.core.engine.stream import stream as engine_stream
from coupling_tui.core.options.run_options import RunOptions
from coupling_tui.core.results.events import CompareEvent, CompareFinished, CompareStarted, SideStarted


def stream_compare(loaded_a, loaded_b, prompt: str, *, labels: tuple[str, str],
                   options: tuple[RunOptions | None, RunOptions | None], stream: Callable | None = None
                   ) -> Iterator[CompareEvent]:
    """CompareStarted, then model A's engine stream after SideStarted(0) (``stream(loaded_a, prompt,
    options[0])``), model B's after SideStarted(1), then CompareFinished. Closing the generator closes the running
    engine stream (the work stops between layers; B does not start)."""
    stream = engine_stream if stream is None else stream
    started = time.perf_counter()
    yield CompareStarted(labels=(labels[0], labels[1]))
    for index, loaded in enumerate((loaded_a, loaded_b)):
        yield SideStarted(index=index)
        yield from stream(loaded, prompt, options[index])
    yield CompareFinished(seconds=time.perf_counter() - started)
