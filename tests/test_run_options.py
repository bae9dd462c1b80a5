"""RunOptions: built once from the flags, checked there, frozen, run by the engine and recorded in the header."""

from __future__ import annotations

import dataclasses

import pytest

from coupling_tui.core.cli import common as cli
from coupling_tui.core.cli import compute
from coupling_tui.core.errors import UserError
from coupling_tui.core.options.collapse import CollapseSpec
from coupling_tui.core.options.layers import LayerSpec
from coupling_tui.core.options.prompts import DEFAULT_MAX_TOKENS
from coupling_tui.core.options.run_options import (DEFAULT_HISTORY_MB, DEFAULT_TOP_K, DEFAULT_VECTOR_BUDGET_MB,
                                                   RunOptions)


def options_of(*argv: str) -> RunOptions:
    return cli.run_options(compute.build_compute_parser().parse_args(list(argv)))


def test_the_defaults_are_the_flags_defaults():
    assert options_of() == RunOptions(params=options_of().params)
    o = RunOptions()
    assert (o.max_tokens, o.top_k, o.vector_budget_mb, o.history_mb) == (DEFAULT_MAX_TOKENS, DEFAULT_TOP_K,
                                                                         DEFAULT_VECTOR_BUDGET_MB, DEFAULT_HISTORY_MB)
    assert (o.jacobian_method, o.topk_solver, o.token_coupling, o.vju) == ("auto", "auto", True, False)
    assert (o.token_pairs, o.context_layers, o.context_tokens, o.collapse, o.layers) == (None, None, (0, -1), None,
                                                                                         None)
    assert dict(o.params) == {}


def test_the_builder_reads_every_flag():
    o = options_of("--model", "some/model", "--max-tokens", "20", "--top-k", "7", "--jacobian-method", "autodiff",
                   "--vector-budget-mb", "3", "--history-mb", "12", "--no-token-coupling", "--vju",
                   "--token-pairs", "adjacent", "--context-layers", "0,2", "--context-tokens", "1,-2",
                   "--layers", "0:2", "--topk-solver", "torch", "--collapse", "--lengths", "8,16",
                   "--prompt-file", "p.txt", "--seed", "5")
    assert (o.max_tokens, o.top_k, o.jacobian_method, o.vector_budget_mb, o.history_mb) == (20, 7, "autodiff", 3.0,
                                                                                            12.0)
    assert (o.token_coupling, o.vju, o.token_pairs, o.context_layers, o.context_tokens) == (False, True, "adjacent",
                                                                                            "0,2", (1, -2))
    assert o.layers == LayerSpec(text="0:2", parts=((0, 2),)) and o.topk_solver == "torch"
    assert o.collapse == CollapseSpec(lengths=(8, 16))
    assert dict(o.params) == {"model": "some/model", "revision": None, "dtype": "auto", "device": "auto",
                              "trust_remote_code": False, "random_init": False, "seed": 5, "prompt_file": "p.txt",
                              "device_map": None, "max_memory": None}


@pytest.mark.parametrize("argv, message", [
    (["--max-tokens", "0"], "--max-tokens must be at least 1 (got 0)"),
    (["--layers", "3:1"], "--layers 3:1: the range 3:1 is empty"),
    (["--lengths", "8"], "--lengths tunes the collapse stage, which is off"),
])
def test_bad_flags_are_one_line_user_errors(argv, message):
    with pytest.raises(UserError) as err:
        options_of(*argv)
    assert message in err.value.message and "\n" not in err.value.message


def test_a_negative_top_k_is_refused_by_the_parser_in_one_line(capsys):
    with pytest.raises(SystemExit) as stop:
        options_of("--top-k", "-1")
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.endswith("argument --top-k: -1 is out of range: use 0 or more"), err


@pytest.mark.parametrize("kw, message", [
    ({"top_k": -2}, "--top-k must be 0 or more (got -2)"),
    ({"max_tokens": 0}, "--max-tokens must be at least 1 (got 0)"),
    ({"topk_solver": "lobpcg"}, "unknown --topk-solver 'lobpcg'"),
    ({"jacobian_method": "guess"}, "unknown Jacobian method 'guess'"),
    ({"token_pairs": "1"}, "--token-pairs: '1' is not ROW:COL"),
    ({"context_layers": "x"}, "--context-layers: 'x' is not a layer number"),
    ({"layers": "a"}, "--layers a: cannot read 'a'"),
])
def test_bad_values_are_refused_where_the_options_are_built(kw, message):
    with pytest.raises(UserError) as err:
        RunOptions(**kw)
    assert message in err.value.message and "\n" not in err.value.message


def test_the_options_are_frozen():
    o = RunOptions(token_pairs=[(0, 1)], layers=[2, 0, 2], params={"model": "m"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        o.top_k = 3
    with pytest.raises(TypeError):
        o.params["model"] = "other"
    assert o.token_pairs == ((0, 1),) and o.layers == (0, 2)
    assert dict(o.with_params(seed=1).params) == {"model": "m", "seed": 1} and dict(o.params) == {"model": "m"}


def test_the_blocks_are_checked_against_the_model():
    assert RunOptions(layers="1:").blocks(3) == [1, 2] and RunOptions(layers=[0, 1, 2]).blocks(3) is None
    with pytest.raises(UserError, match="names block 5, and the model has 3 blocks"):
        RunOptions(layers="5").blocks(3)
    with pytest.raises(UserError, match=r"layers \[0, 3\] outside the model's blocks 0..2"):
        RunOptions(layers=[0, 3]).blocks(3)
    assert RunOptions(token_pairs="adjacent", layers=[0, 1]).pairs(3) == [(0, 1), (1, 0)]


def test_the_header_records_the_options_it_ran(tiny_dir):
    from coupling_tui.core.engine import stream as engine
    from coupling_tui.core.load.models import ModelRequest, load

    loaded = load(ModelRequest(model=str(tiny_dir)))
    n_layers = loaded.info["n_layers"]
    args = compute.build_compute_parser().parse_args(["--model", str(tiny_dir), "--max-tokens", "6", "--top-k", "4",
                                                      "--token-pairs", "adjacent", "--layers", "0:2",
                                                      "--context-layers", "1", "--history-mb", "64"])
    options = cli.run_options(args)
    started = next(engine.stream(loaded, "The capital of France is Paris.", options))
    params = started.header["params"]
    assert params == options.header_params(n_layers, top_k=4, baseline=False)
    assert params == {"max_tokens": 6, "top_k": 4, "jacobian_method": "auto",
                      "vector_budget_mb": DEFAULT_VECTOR_BUDGET_MB, "history_mb": 64.0, "token_coupling": True,
                      "vju": False, "token_pairs": [[0, 1], [1, 0]], "context_layers": [1], "baseline": None,
                      "layers": [0, 1], "convention": "paper", **cli.run_params(args)}
