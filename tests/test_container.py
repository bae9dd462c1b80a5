"""The one protocol every container of runs shares (core.results.container): a lone Run, a PromptSet and a
Comparison all satisfy RunContainer, and the one progress loop (cli.common.stream_with_progress) over each leaves the
same state as folding the events one by one."""

from __future__ import annotations

import io

import numpy as np
import pytest
from rich.console import Console

from coupling_tui.core.cli.common import stream_with_progress
from coupling_tui.core.results.comparison import Comparison
from coupling_tui.core.results.container import RunContainer, container_for
from coupling_tui.core.results.events import (BatchFinished, BatchStarted, CompareFinished, CompareStarted,
                                              PromptStarted, SideStarted)
from coupling_tui.core.results.prompt_set import PromptSet
from coupling_tui.core.results.run import Run
from tests.fakes import fake_events


def run_events() -> list:
    return fake_events(n_layers=4, n_tokens=5, k=4, coupling=True)


def set_events() -> list:
    events: list = [BatchStarted(labels=("prose", "code"), texts=("text 0", "text 1"))]
    for i, t in enumerate((5, 7)):
        events += [PromptStarted(index=i, n_prompts=2), *fake_events(n_layers=4, n_tokens=t, k=4, coupling=True,
                                                                     seed=i)]
    return events + [BatchFinished(seconds=2.5)]


def compare_events() -> list:
    return [CompareStarted(labels=("llama", "qwen2")), SideStarted(0), *fake_events(n_layers=4, n_tokens=5, seed=1),
            SideStarted(1), *fake_events(n_layers=6, n_tokens=5, seed=2), CompareFinished(seconds=3.0)]


STREAMS = {"run": (Run, run_events), "set": (PromptSet, set_events), "compare": (Comparison, compare_events)}


def folded(kind: str):
    make, events = STREAMS[kind]
    container = make()
    for event in events():
        container.apply(event)
    return container


def runs_of(container) -> list[Run]:
    return [container] if isinstance(container, Run) else list(container.runs)


@pytest.mark.parametrize("kind", STREAMS)
def test_each_container_satisfies_the_protocol(kind):
    make, _ = STREAMS[kind]
    assert isinstance(make(), RunContainer)
    assert isinstance(folded(kind), RunContainer)


def test_a_container_opens_on_its_first_event_only():
    assert isinstance(container_for(BatchStarted(labels=("a",), texts=("t",))), PromptSet)
    assert isinstance(container_for(CompareStarted(labels=("a", "b"))), Comparison)
    assert all(container_for(event) is None for event in run_events())
    assert container_for(SideStarted(0)) is None and container_for(PromptStarted(index=0, n_prompts=2)) is None


@pytest.mark.parametrize("kind", STREAMS)
def test_a_finished_container_has_counted_every_step_and_shows_its_runs(kind):
    c = folded(kind)
    assert c.finished and c.steps_done == c.n_steps == sum(r.n_steps for r in runs_of(c))
    assert c.seconds == {"run": c.header.get("seconds") if kind == "run" else None, "set": 2.5,
                         "compare": 3.0}[kind]
    for entry, run in enumerate(runs_of(c)):
        assert c.shown(entry) is run
    if kind == "set":
        assert c.shown(c.n_prompts) is c.aggregate


@pytest.mark.parametrize("kind, during, text, label, name", [
    ("run", 3, "layers 2/4", "layers", ""),
    ("set", 5, "prompt 1/2 · layers 2/4", "prompt 1/2 · layers 2/4", "prose"),
    ("compare", 10, "B qwen2 · layers 0/6", "B qwen2 · layers", "B")])
def test_progress_texts_and_names_say_where_the_computation_is(kind, during, text, label, name):
    make, events = STREAMS[kind]
    c = make()
    assert c.progress_label() == {"run": "layers", "set": "prompts", "compare": "A"}[kind]   # before any event
    for event in events()[:during]:
        c.apply(event)
    assert not c.finished and c.progress_text() == text
    assert c.progress_label() == label and c.current_name() == name


@pytest.mark.parametrize("kind", STREAMS)
def test_the_one_progress_loop_gives_the_same_state_as_folding(kind):
    make, events = STREAMS[kind]
    starts: list[int] = []
    container = make()
    out = stream_with_progress(iter(events()), Console(file=io.StringIO()), 8, container=container,
                               on_started=lambda header: starts.append(container.current))
    assert out is container
    reference = folded(kind)
    assert (out.finished, out.steps_done, out.n_steps, out.seconds, out.current) == (
        reference.finished, reference.steps_done, reference.n_steps, reference.seconds, reference.current)
    assert starts == ([0] if kind == "run" else [0, 1])
    for got, want in zip(runs_of(out), runs_of(reference), strict=True):
        assert got.header == want.header and got.arrays.keys() == want.arrays.keys()
        for name in want.arrays:
            np.testing.assert_array_equal(got.arrays[name], want.arrays[name])


def test_the_loop_folds_into_a_new_run_by_default():
    run = stream_with_progress(iter(run_events()), Console(file=io.StringIO()), 4)
    assert isinstance(run, Run) and run.finished and run.layers_done == 4
