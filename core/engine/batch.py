"""A run over several prompts (a prompt set): the engine's stream once per prompt on the same loaded model, wrapped
in ``BatchStarted`` / ``PromptStarted`` / ``BatchFinished`` (core.results.events) so a consumer knows which prompt each
``RunStarted … RunFinished`` belongs to and can show progress as prompts × layers. Closing the generator closes the
running prompt's engine stream: the work stops between layers, and no later prompt starts."""

from __future__ import annotations

import time
from typing import Callable, Iterator

from coupling_tui.core.results.events import BatchEvent, BatchFinished, BatchStarted, PromptStarted
from coupling_tui.core.options.prompts import Prompt
from coupling_tui.core.options.run_options import RunOptions


def stream_prompts(loaded, prompts: list[Prompt], options: RunOptions | None = None, *, baseline=None,
                   stream: Callable | None = None) -> Iterator[BatchEvent]:
    """Yield BatchStarted, then for each prompt PromptStarted(i, N) and ``stream(loaded, text, options,
    baseline=baseline)``'s events, then BatchFinished. Each prompt's run header records ``params.prompt_file`` (its
    file) and ``params.prompt_set`` (index, n_prompts, label, source) besides ``options.params``. ``stream`` defaults
    to ``core.engine.stream``."""
    if stream is None:
        from coupling_tui.core.engine.stream import stream
    started = time.perf_counter()
    n = len(prompts)
    yield BatchStarted(labels=tuple(p.label for p in prompts), texts=tuple(p.text for p in prompts))
    for index, prompt in enumerate(prompts):
        yield PromptStarted(index=index, n_prompts=n)
        own = (options or RunOptions()).with_params(
            prompt_file=prompt.file,
            prompt_set={"index": index, "n_prompts": n, "label": prompt.label, "source": prompt.source})
        yield from stream(loaded, prompt.text, own, baseline=baseline)
    yield BatchFinished(seconds=time.perf_counter() - started)
