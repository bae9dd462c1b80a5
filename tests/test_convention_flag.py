"""Issue 18 item 1, the flag: ``--convention {paper,official}`` is read by compute, the explorer and prompt sets into
RunOptions (default paper), a bad value is one line and exit status 2 before any model loads, the header records
it (a file without it reads as paper), the status line shows it, and the pieces the official convention changes
(the K values, the 1-based σ₁ fit, the last block through the final norm) do what they say on small inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from textual.widgets import Static

from coupling_tui.core.cli import common as cli
from coupling_tui.core.cli import compute
from coupling_tui.core.engine.coupling_stream import coupling_ks
from coupling_tui.core.engine.jacobians.final_norm import PostNormLastBlock
from coupling_tui.core.errors import UserError
from coupling_tui.core.load.adapters import adapter_for
from coupling_tui.core.maths.trajectory import sigma1_depth_fit
from coupling_tui.core.options.run_options import RunOptions
from coupling_tui.core.results import run_file as results
from coupling_tui.core.results.aggregate import as_run
from coupling_tui.core.results.run import Run
from coupling_tui.tui.app import CouplingApp
from coupling_tui.tui.main import build_explore_parser, main
from tests.fakes import fake_events
from tests.tiny_models import FAMILIES, tiny_model

DATA = Path(__file__).resolve().parent / "data" / "v0.1.0"


@pytest.mark.parametrize("build", [compute.build_compute_parser, build_explore_parser])
def test_the_flag_reaches_the_run_options_and_the_header(build):
    parser = build()
    assert cli.run_options(parser.parse_args([])).convention == "paper"
    for convention in ("paper", "official"):
        options = cli.run_options(parser.parse_args(["--convention", convention]))
        assert options.convention == convention
        assert options.header_params(4, top_k=8, baseline=False)["convention"] == convention
    assert "--convention" in parser.format_help()
    with pytest.raises(UserError, match="unknown --convention 'both'"):
        cli.run_options(parser.parse_args(["--convention", "both"]))
    with pytest.raises(UserError, match="use paper or official"):
        RunOptions(convention="Official")


@pytest.mark.parametrize("argv", [["compute", "-p", "hi", "--convention", "both"],
                                  ["-p", "hi", "--convention", "both"],
                                  ["compute", "-p", "one", "-p", "two", "--convention", "both"]])
def test_a_bad_value_is_one_line_and_status_2(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["coupling-tui: error: unknown --convention 'both': use paper or official"], err


def test_an_old_file_reads_as_paper_and_a_saved_official_run_keeps_its_convention(tmp_path: Path):
    old = results.load(DATA / "run.safetensors")
    assert "convention" not in (old.header.get("params") or {}) and old.convention == "paper"
    run = Run()
    for event in fake_events(n_layers=3, n_tokens=4):
        run.apply(event)
    run.header.setdefault("params", {})["convention"] = "official"
    back = results.load(results.save(run, tmp_path / "official.safetensors"))
    assert back.convention == "official" and back.header["params"]["convention"] == "official"
    aggregate = as_run(back.header, {"n_prompts": 1, "ks": []}, {}, 1)
    assert aggregate.convention == "official"                          # a prompt set's aggregate says it too


@pytest.mark.parametrize("convention", [None, "paper", "official"])
async def test_the_status_line_shows_the_convention(convention):
    run = Run()
    for event in fake_events(n_layers=3, n_tokens=4):
        run.apply(event)
    if convention is not None:
        run.header.setdefault("params", {})["convention"] = convention
    app = CouplingApp(run=run)
    async with app.run_test(size=(160, 24)):
        info = str(app.query_one("#run-info", Static).render())
        assert info.startswith("fake/model (trained) · cpu · float32 · 4 tokens · 3 layers · ")
        assert f"· {convention or 'paper'} convention" in info, info


def test_official_ks_are_the_official_codes():
    assert coupling_ks(50, "official") == [10, 30, 50] and coupling_ks(50) == [8, 10, 30, 50]
    assert coupling_ks(32, "official") == [10, 30] and coupling_ks(5, "official") == [5]


def test_the_one_based_sigma1_fit_is_the_official_line():
    rng = np.random.default_rng(0)
    sigma1 = 1 / (0.3 + 0.05 * np.arange(14) + 0.01 * rng.standard_normal(14))
    depth = np.arange(1, 15)[9:]                                    # the official code: d = 1..L, d[9:]
    slope, intercept = np.polyfit(depth, 1 / sigma1[9:], 1)
    fit = sigma1_depth_fit(sigma1, start=9, first_depth=1)
    np.testing.assert_allclose([fit["slope"], fit["intercept"]], [slope, intercept], rtol=1e-10)
    zero = sigma1_depth_fit(sigma1, start=9)
    np.testing.assert_allclose([zero["slope"], zero["r2"]], [fit["slope"], fit["r2"]], rtol=1e-12)
    assert abs(zero["intercept"] - fit["intercept"] - fit["slope"]) < 1e-12 and abs(fit["slope"]) > 1e-3


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_the_last_block_through_the_final_norm_is_the_derivative_of_the_normed_output(family):
    """N(I + J) − I against jacrev of x ↦ norm(x + f(x)) for a known f (float64): the chain rule, per token."""
    model = tiny_model(family, dtype=torch.float64)
    adapter = adapter_for(family)
    torch.manual_seed(1)
    T, d = 3, model.config.hidden_size if family != "gpt2" else model.config.n_embd
    W = 0.3 * torch.randn(d, d, dtype=torch.float64)
    x_in = torch.randn(T, d, dtype=torch.float64)
    f = lambda x: torch.tanh(x @ W.T)                                           # noqa: E731
    norm = adapter.final_norm_module(model)
    expected = torch.stack([torch.func.jacrev(lambda v: norm((v + f(v))[None])[0])(x_in[t]) for t in range(T)])
    expected -= torch.eye(d, dtype=torch.float64)
    J = torch.stack([torch.func.jacrev(f)(x_in[t]) for t in range(T)])         # the residual branch's
    got = PostNormLastBlock(model, adapter, x_in + f(x_in), torch.float64).apply(J, range(T))
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)            # HF norms upcast to float32 only
    assert (got - J).abs().max() > 0.1                                           # the norm does change it


@pytest.mark.parametrize("family", FAMILIES)
def test_hf_last_hidden_state_is_the_final_norm_of_the_last_block(family):
    """What the official code differentiates as its last "block output": HF's hidden_states[L] = norm(x^L)."""
    model = tiny_model(family)
    adapter = adapter_for(family)
    outputs = []
    hook = adapter.block_list(model)[-1].register_forward_hook(
        lambda module, args, out: outputs.append(out[0] if isinstance(out, tuple) else out))
    with torch.no_grad():
        hs = model(torch.tensor([[5, 17, 33, 2, 9]]), output_hidden_states=True).hidden_states
        hook.remove()
        normed = adapter.final_norm_module(model)(outputs[0])
    assert len(hs) == len(adapter.block_list(model)) + 1
    torch.testing.assert_close(hs[-1], normed, rtol=0, atol=0)
    assert (hs[-1] - outputs[0]).abs().max() > 0.1


def test_eleven_blocks_fit_from_row_9_as_the_official_code_does(tmp_path: Path):
    """The official fit uses d[9:] whenever it has two points (L ≥ 11); the paper convention only from L = 12."""
    from coupling_tui.core.engine import stream as engine
    from coupling_tui.core.load.models import ModelRequest, load
    from tests.tiny_models import save_tiny

    loaded = load(ModelRequest(model=str(save_tiny("llama", tmp_path / "m", num_hidden_layers=11))))
    starts = {}
    for convention in ("paper", "official"):
        run = Run()
        for event in engine.stream(loaded, "Hello world", RunOptions(top_k=4, token_coupling=False,
                                                                     convention=convention)):
            run.apply(event)
        starts[convention] = run.header["fits"]["sigma1_start"]
        assert np.isfinite(run.arrays["jacobian.sigma1_fit_slope"]).all()
    assert starts == {"paper": 0, "official": 9}
    inv = 1 / run.arrays["jacobian.singular_values"][9:, -1, 0].astype(np.float64)    # the official run: 2 points
    slope = inv[1] - inv[0]                                                            # depths 10 and 11
    np.testing.assert_allclose(run.arrays["jacobian.sigma1_fit_slope"][-1], slope, rtol=1e-5)
    np.testing.assert_allclose(run.arrays["jacobian.sigma1_fit_intercept"][-1], inv[0] - 10 * slope, rtol=1e-5,
                               atol=1e-6)
