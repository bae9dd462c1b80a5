"""``--topk-solver``: the flag of compute, the explorer and prompt sets reaches ``engine.stream``, and a real run on a
tiny model with the subspace solver gives the default solver's singular values and says so in its header."""

from __future__ import annotations

import numpy as np
import pytest

from coupling_tui.core.cli import common as cli

from coupling_tui.core.cli import compute
from coupling_tui.core.engine import stream as engine
from coupling_tui.core.errors import UserError
from coupling_tui.core.load.models import ModelRequest, load
from coupling_tui.core.results.run import Run
from coupling_tui.core.linalg.spectra import SOLVERS
from coupling_tui.tui.main import build_explore_parser
from coupling_tui.core.options.run_options import RunOptions


@pytest.mark.parametrize("build", [compute.build_compute_parser, build_explore_parser])
def test_the_flag_reaches_the_engine_options(build):
    parser = build()
    assert cli.run_options(parser.parse_args([])).topk_solver == "auto"
    for solver in SOLVERS:
        assert cli.run_options(parser.parse_args(["--topk-solver", solver])).topk_solver == solver
    with pytest.raises(SystemExit):
        parser.parse_args(["--topk-solver", "lobpcg"])
    assert "--topk-solver" in parser.format_help()


def test_subspace_run_matches_the_default_solver(tiny_dir):
    loaded = load(ModelRequest(model=str(tiny_dir)))
    runs = {}
    for argv in ([], ["--topk-solver", "subspace"]):
        args = compute.build_compute_parser().parse_args(["--model", str(tiny_dir), "-p", "Hello world, hello tokens!",
                                                      "--top-k", "8", *argv])
        run = Run()
        for event in engine.stream(loaded, args.prompt[0], cli.run_options(args)):
            run.apply(event)
        runs[tuple(argv)] = run
    default, subspace = runs[()], runs[("--topk-solver", "subspace")]
    assert default.finished and subspace.finished
    assert default.header["jacobian"]["topk_solver"] == "scipy"            # auto on a CPU
    assert subspace.header["jacobian"]["topk_solver"] == "subspace"
    a, b = default.arrays["jacobian.singular_values"], subspace.arrays["jacobian.singular_values"]
    assert np.isfinite(a).all() and a.shape == b.shape
    np.testing.assert_allclose(b, a, rtol=1e-4, atol=2e-5)


def test_unknown_solver_is_a_user_error(tiny_dir):
    loaded = load(ModelRequest(model=str(tiny_dir)))
    with pytest.raises(UserError, match="unknown --topk-solver 'lobpcg'"):
        next(engine.stream(loaded, "Hello", RunOptions(top_k=4, topk_solver="lobpcg")))
    with pytest.raises(UserError, match="scipy runs on the CPU only"):
        engine._check_solver("scipy", "cuda:0")                   # LAPACK on numpy arrays: not a GPU model
