"""``--layers``: the engine bounded to some blocks gives exactly the full run's numbers at those blocks and NaN
elsewhere, in one pass or two, and the command line runs it end to end."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from coupling_tui.core.engine import stream as engine
from coupling_tui.core.results import run_file as results
from coupling_tui.core.errors import UserError
from coupling_tui.core.load.models import ModelRequest, load
from coupling_tui.core.results.run import Run
from coupling_tui.core.options.run_options import RunOptions

PROMPT = "The capital of France is Paris."


@pytest.fixture(scope="module")
def loaded(tiny_dir):
    return load(ModelRequest(model=str(tiny_dir)))


def run_of(loaded, **kw) -> Run:
    run = Run()
    for event in engine.stream(loaded, PROMPT, RunOptions(top_k=10, **kw)):
        run.apply(event)
    return run


@pytest.mark.parametrize("history_mb", [4096.0, 0.0])                 # history kept, or a second pass
def test_selected_blocks_match_the_full_run_and_the_others_stay_empty(loaded, history_mb, tmp_path):
    full, part = run_of(loaded, history_mb=history_mb), run_of(loaded, history_mb=history_mb, layers=[0, 2])
    sel, other = [0, 2], 1
    assert part.finished and part.layers_done == 3 and part.header["params"]["layers"] == sel
    a, b = full.arrays, part.arrays
    np.testing.assert_array_equal(a["trajectory.hidden"], b["trajectory.hidden"])      # every block's stream
    np.testing.assert_allclose(b["jacobian.singular_values"][sel], a["jacobian.singular_values"][sel], rtol=1e-5)
    assert np.isnan(b["jacobian.singular_values"][other]).all()
    for name in ("coupling.depth_k", "coupling.depth_trace_k"):
        np.testing.assert_allclose(b[name][:, :, sel][:, :, :, sel], a[name][:, :, sel][:, :, :, sel], atol=1e-5)
        assert np.isnan(b[name][:, :, other]).all() and np.isnan(b[name][:, :, :, other]).all()
    np.testing.assert_allclose(b["coupling.token_k"][:, sel], a["coupling.token_k"][:, sel], atol=1e-5)
    assert np.isnan(b["coupling.token_k"][:, other]).all()
    assert np.isnan(b["trajectory.fidelity"][1:]).all()                # Π (I + J) x needs every block
    assert part.header["coupling_scalar"]["layers"] == 2
    back = results.load(results.save(part, tmp_path / "layers.safetensors"))
    np.testing.assert_array_equal(back.arrays["coupling.depth_k"], b["coupling.depth_k"])


def test_all_blocks_is_the_same_as_no_selection(loaded):
    full, same = run_of(loaded), run_of(loaded, layers=[0, 1, 2])
    assert same.header["params"]["layers"] is None
    np.testing.assert_array_equal(full.arrays["coupling.depth_k"], same.arrays["coupling.depth_k"])


def test_blocks_outside_the_model_are_refused(loaded):
    with pytest.raises(UserError, match="outside the model's blocks 0..2"):
        run_of(loaded, layers=[1, 3])


def test_compute_with_layers(tiny_dir, tmp_path):
    out = tmp_path / "r.safetensors"
    done = subprocess.run([sys.executable, "-m", "coupling_tui.tui.main", "compute", "--model", str(tiny_dir), "-p",
                           PROMPT, "--layers", "1:", "-o", str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    run = results.load(out)
    assert run.header["params"]["layers"] == [1, 2]
    assert np.isnan(run.arrays["jacobian.singular_values"][0]).all()
    assert np.isfinite(run.arrays["jacobian.singular_values"][1:]).all()
