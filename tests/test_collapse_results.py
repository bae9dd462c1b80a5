"""Results files with a collapse stage: round trip, and malformed collapse arrays refused with a reason."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from coupling_tui.core.engine import stream as engine
from coupling_tui.core.results import run_file as results
from coupling_tui.core.engine.collapse import CollapseSpec
from coupling_tui.core.errors import ResultsError
from coupling_tui.core.load.models import ModelRequest, load
from coupling_tui.core.results.run import Run
from coupling_tui.core.options.run_options import RunOptions


@pytest.fixture(scope="module")
def collapse_run(tiny_dir):
    loaded = load(ModelRequest(model=str(tiny_dir)))
    run = Run()
    spec = CollapseSpec(families=("ones", "digits", "bernoulli"), lengths=(2, 3, 5), sensitivity_tokens=5)
    for event in engine.stream(loaded, "1 1 1", RunOptions(top_k=0, collapse=spec)):
        run.apply(event)
    return run


def test_round_trip_keeps_the_collapse_arrays_and_header(collapse_run, tmp_path):
    back = results.load(results.save(collapse_run, tmp_path / "c.safetensors"))
    names = [n for n in collapse_run.arrays if n.startswith("collapse.")]
    assert sorted(names) == sorted(results.COLLAPSE_ARRAYS + ("collapse.next_ids_low",))
    for name in names:
        np.testing.assert_array_equal(back.arrays[name], collapse_run.arrays[name])
        assert back.arrays[name].dtype == collapse_run.arrays[name].dtype
    assert back.header["collapse"]["families"] == ["ones", "digits", "bernoulli"] and back.finished
    assert back.arrays["collapse.final"].shape == (3, 3, 2, 32)


def test_a_run_without_sensitivity_round_trips_its_empty_arrays(tiny_dir, tmp_path):
    loaded = load(ModelRequest(model=str(tiny_dir)))
    run = Run()
    spec = CollapseSpec(families=("ones",), lengths=(2,), sensitivity=False)
    for event in engine.stream(loaded, "1 1", RunOptions(top_k=0, collapse=spec)):
        run.apply(event)
    back = results.load(results.save(run, tmp_path / "s.safetensors"))
    assert back.arrays["collapse.sensitivity"].shape == (0,) and back.header["collapse"]["sensitivity"] is None


def _drop_header(run):
    run.header.pop("collapse")


@pytest.mark.parametrize("change, reason", [
    (lambda r: r.arrays.pop("collapse.diff_low"), "missing arrays collapse.diff_low"),
    (lambda r: r.arrays.update({"collapse.final": r.arrays["collapse.final"][..., :-1]}),
     r"collapse.final has shape \(3, 3, 2, 31\), expected \(3, 3, 2, 32\)"),
    (lambda r: r.arrays.update({"collapse.diff": r.arrays["collapse.diff"][:2]}), "collapse.diff has shape"),
    (lambda r: r.arrays.update({"collapse.lengths": r.arrays["collapse.lengths"][:2]}), "collapse.n_tokens has shape"),
    (lambda r: r.arrays.update({"collapse.lengths": np.zeros((0,), np.int64)}), "collapse.lengths has shape"),
    (lambda r: r.header["collapse"]["families"].pop(), "has shape .* expected \\(2, 3"),
    (lambda r: r.arrays.update({"collapse.next_ids_low": r.arrays["collapse.next_ids_low"][:, :1]}),
     "collapse.next_ids_low has shape"),
    (lambda r: r.arrays.update({"collapse.sensitivity_raw": r.arrays["collapse.sensitivity_raw"][:-1]}),
     "collapse.sensitivity has shape .* expected the same"),
    (_drop_header, "it has collapse arrays but its header lacks collapse.families"),
])
def test_malformed_collapse_arrays_are_refused(collapse_run, tmp_path, change, reason):
    run = Run(header=copy.deepcopy(collapse_run.header), arrays=dict(collapse_run.arrays),
              layers_done=collapse_run.layers_done, steps_done=collapse_run.steps_done, finished=True)
    change(run)
    path = results.save(run, tmp_path / "bad.safetensors")
    with pytest.raises(ResultsError, match=reason) as info:
        results.load(path)
    assert str(info.value).startswith(f"cannot open {path}: ")
