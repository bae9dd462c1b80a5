"""Results files written before the redesign (coupling-tui 0.1.0, commit 3c58ce7; tests/data/v0.1.0/README.md)
still open, every pane draws them, and today's engine recomputes them number for number: the redesign moved code,
not results."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from coupling_tui.core.results import run_file as results
from coupling_tui.core.results import set_file
from tests.tiny_models import save_tiny

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "v0.1.0"
RUN_FLAGS = ["-p", "The capital of France is Paris.", "--top-k", "4", "--random-baseline", "--vju", "--token-pairs",
             "adjacent", "--context-layers", "0,-1", "--collapse", "--families", "ones,digits", "--lengths", "2,4"]
SET_FLAGS = ["-p", "Hello world, hello tokens!", "-p", "1 1 1 1 1 1 1 1", "--top-k", "4", "--random-baseline"]
VARYING = {"created", "seconds", "versions"}
"""Header entries that differ between any two runs (when, how long, which library versions)."""
ADDED = {"coupling_scalar_last_token"}
"""Header entries today's engine writes and 0.1.0 did not (issue 18): checked against the arrays instead."""


def comparable(header: dict, model_dir: str) -> dict:
    """The header without what varies between runs, the model directory written as MODEL."""
    out = {}
    for key, value in header.items():
        if key in VARYING or key in ADDED:
            continue
        if isinstance(value, dict):
            value = comparable(value, model_dir)
        elif isinstance(value, str):
            value = value.replace(model_dir, "MODEL")
        out[key] = value
    return out


def assert_same_run(old, new, old_dir: str, new_dir: str) -> None:
    assert sorted(old.arrays) == sorted(new.arrays)
    for name, a in old.arrays.items():
        b = new.arrays[name]
        assert a.shape == b.shape and a.dtype == b.dtype, name
        if a.dtype.kind == "f":
            np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6, equal_nan=True, err_msg=name)
        else:
            np.testing.assert_array_equal(b, a, err_msg=name)
    assert comparable(new.header, new_dir) == comparable(old.header, old_dir)
    for header, prefix in ((new.header, ""), (new.header.get("random_init") or {}, "random_init.")):
        if "coupling_scalar_last_token" in header:             # the last token's matrix, mean over i ≠ j
            last = new.arrays[prefix + "coupling.depth"][-1].astype(np.float64)
            expected = last[~np.eye(last.shape[0], dtype=bool)].mean()
            assert header["coupling_scalar_last_token"]["offdiag"] == pytest.approx(expected, rel=1e-9)


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory) -> Path:
    return save_tiny("llama", tmp_path_factory.mktemp("compat") / "tiny-llama", seed=0)


def compute(args: list[str], cwd: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "coupling_tui.core", *args, "--yes"], capture_output=True,
                         text=True, timeout=300, cwd=cwd)
    assert out.returncode == 0, out.stderr[-3000:]


def test_the_old_files_open_with_every_array():
    run = results.load(DATA / "run.safetensors")
    assert run.finished and run.n_layers == 3 and run.n_tokens == 11
    assert run.header["tool"]["version"] == "0.1.0" and run.header["params"]["baseline"] == "random-init"
    assert {"coupling.depth_k", "random_init.coupling.depth_k", "coupling.depth_vju_k", "coupling.token_pair_k",
            "context.out_k", "collapse.diff", "jacobian.U"} <= set(run.arrays)
    view = run.coupling_view(layer=0)
    assert view is not None and np.isfinite(view.m[1, 0])
    pset = set_file.load(DATA / "set")
    assert pset.n_prompts == 2 and len(pset.complete_runs()) == 2
    assert pset.aggregate.header["aggregate"]["n_prompts"] == 2


def test_todays_engine_recomputes_the_old_run_number_for_number(tiny_llama, tmp_path):
    old = results.load(DATA / "run.safetensors")
    compute(["--model", str(tiny_llama), *RUN_FLAGS, "-o", str(tmp_path / "run.safetensors")], tmp_path)
    new = results.load(tmp_path / "run.safetensors")
    assert_same_run(old, new, old.header["model"]["source"], str(tiny_llama))


def test_todays_engine_recomputes_the_old_prompt_set(tiny_llama, tmp_path):
    old = set_file.load(DATA / "set")
    compute(["--model", str(tiny_llama), *SET_FLAGS, "-o", str(tmp_path / "set")], tmp_path)
    new = set_file.load(tmp_path / "set")
    old_dir = old.runs[0].header["model"]["source"]
    for a, b in zip(old.runs, new.runs):
        assert_same_run(a, b, old_dir, str(tiny_llama))
    assert_same_run(old.aggregate, new.aggregate, old_dir, str(tiny_llama))


def test_every_pane_draws_the_old_run_headless(tmp_path):
    """``coupling-tui export`` of the 0.1.0 file writes every pane's SVG (its collapse pane too), without torch."""
    code = f"""
import sys
from coupling_tui.tui.main import main
code = main(["export", {str(DATA / 'run.safetensors')!r}, "--svg", {str(tmp_path)!r}])
print(code, 'torch' in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split()[-2:] == ["0", "False"]
    written = sorted(p.name for p in tmp_path.iterdir())
    for pane in ("coupling", "trajectory", "spectrum", "collapse", "tokens", "screen"):
        assert f"run-{pane}.svg" in written, written
