"""The optional coupling matrices against float64 references written out entry by entry: the "vju" variant of
depth coupling, token coupling between two different layers (history and second-pass modes, filled when the later
layer arrives), and the flags that choose them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from coupling_tui.core.options import coupling as coupling_options
from coupling_tui.core.errors import UserError
from coupling_tui.core.results.events import LayerDone
from coupling_tui.core.load.models import ModelRequest, load
from coupling_tui.core.results.run import Run
from tests.test_engine_coupling import PROMPT, _all_J, _run
from coupling_tui.core.options.run_options import RunOptions


@pytest.fixture(scope="module")
def loaded(tiny_dir):
    return load(ModelRequest(model=str(tiny_dir)))


@pytest.fixture(scope="module")
def reference(loaded):
    return _all_J(loaded, PROMPT)


def _m(J1, J2, k, variant="ujv"):
    """m_K written out with numpy's float64 SVD; "vju" puts V₂ on the left and U₂ on the right."""
    U2, _, Vh2 = np.linalg.svd(J2)
    left, right = (U2[:, :k], Vh2[:k].T) if variant == "ujv" else (Vh2[:k].T, U2[:, :k])
    s1 = np.linalg.svd(J1, compute_uv=False)[:k]
    diff = np.linalg.norm(np.abs(left.T @ J1 @ right) - np.diag(s1))
    return diff / np.linalg.norm(s1), diff / s1.sum()


PAIRS = [(0, 2), (2, 1), (1, 2)]


@pytest.fixture(scope="module", params=[4096.0, 0.0], ids=["history", "second-pass"])
def extras(loaded, request):
    return _run(loaded, vju=True, token_pairs=PAIRS, history_mb=request.param)


def test_vju_variant_matches_float64(extras, reference):
    run, _ = extras
    L, T = reference.shape[:2]
    ks = [int(k) for k in run.arrays["coupling.ks"]]
    assert run.header["coupling"]["variants"] == ["ujv", "vju"]
    vju, vju_trace = run.arrays["coupling.depth_vju_k"], run.arrays["coupling.depth_vju_trace_k"]
    for t in (0, T // 2, T - 1):
        for i in range(L):
            for j in range(L):
                norm, trace = _m(reference[i, t], reference[j, t], ks[0], "vju")
                assert vju[0, t, i, j] == pytest.approx(norm, abs=3e-4)
                assert vju_trace[0, t, i, j] == pytest.approx(trace, abs=3e-4)
    # vju is a different quantity: its diagonal is not 0 (U_i and V_i differ), unlike ujv's
    assert np.abs(np.diagonal(run.arrays["coupling.depth_k"], axis1=-2, axis2=-1)).max() < 1e-4
    assert np.diagonal(vju[0], axis1=-2, axis2=-1).min() > 0.05


def test_token_coupling_between_two_layers_matches_float64(extras, reference):
    run, _ = extras
    L, T = reference.shape[:2]
    assert run.arrays["coupling.token_pairs"].tolist() == [list(p) for p in sorted(PAIRS)]
    tp = run.arrays["coupling.token_pair_k"]
    assert tp.shape == (3, len(PAIRS), T, T) and run.header["coupling"]["token_pairs"] == len(PAIRS)
    for p, (r, c) in enumerate(sorted(PAIRS)):
        ref = np.array([[_m(reference[r, t], reference[c, u], 8)[0] for u in range(T)] for t in range(T)])
        np.testing.assert_allclose(tp[0, p], ref, atol=3e-4)
        assert np.abs(np.diagonal(tp[0, p])).min() > 0.02    # different layers: not 0 even at t = t'


def test_a_pair_fills_when_its_later_layer_arrives(loaded):
    for history_mb in (4096.0, 0.0):
        run, events = Run(), []
        for event in __import__("coupling_tui.core.engine.stream", fromlist=["stream"]).stream(
                loaded, PROMPT, RunOptions(token_pairs=PAIRS, history_mb=history_mb)):
            run.apply(event)
            if isinstance(event, LayerDone):
                done = ~np.isnan(run.arrays["coupling.token_pair_k"][0, :, 0, 0])
                events.append((event.stage, event.layer, done.tolist()))
        order = sorted(PAIRS)          # (0, 2), (1, 2), (2, 1)
        layers = [e for e in events if e[0] == "layers"]
        assert layers[1][2] == [False, False, False]
        if history_mb:                  # r < c fill when c arrives, from the history
            assert layers[2][2] == [True, True, True]
        else:                           # r > c at r; r < c only in the second pass, at r
            assert layers[2][2] == [False, False, True]
            second = [e for e in events if e[0] != "layers"]
            assert second[0][2] == [True, False, True] and second[1][2] == [True, True, True]
        assert order == [(0, 2), (1, 2), (2, 1)]


def test_pair_and_layer_flags():
    assert coupling_options.token_pairs("adjacent", 3) == [(0, 1), (1, 0), (1, 2), (2, 1)]
    assert coupling_options.token_pairs("12:13, -1:0, 5:5", 30) == [(12, 13), (29, 0)]
    assert coupling_options.token_pairs(None, 30) == [] and coupling_options.token_pairs("none", 30) == []
    assert coupling_options.context_layers("all", 3) == [0, 1, 2]
    assert coupling_options.context_layers("0,14,-1,14", 30) == [0, 14, 29]
    assert coupling_options.context_layers("10:13", 30) == [10, 11, 12]
    assert coupling_options.context_layers("-2:", 30) == [28, 29]
    for bad, flag in (("12", "--token-pairs"), ("1:x", "--token-pairs"), ("30:1", "--token-pairs"),
                      ("x", "--context-layers"), ("5:2", "--context-layers"), ("40", "--context-layers")):
        with pytest.raises(UserError):
            (coupling_options.token_pairs if flag == "--token-pairs" else coupling_options.context_layers)(bad, 30)


def test_flags_are_checked_before_any_model_loads(capsys):
    from coupling_tui.core.cli.compute import build_compute_parser

    with pytest.raises(SystemExit) as exit_:
        build_compute_parser().parse_args(["--token-pairs", "3-4"])
    assert exit_.value.code == 2 and "ROW:COL" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        build_compute_parser().parse_args(["--context-tokens", "0"])
    args = build_compute_parser().parse_args(["--token-pairs", "adjacent", "--vju", "--context-layers", "0,-1",
                                              "--context-tokens", "2,-1"])
    assert (args.token_pairs, args.vju, args.context_layers, args.context_tokens) == ("adjacent", True, "0,-1",
                                                                                      (2, -1))


def test_context_tokens_out_of_range_is_a_user_error(loaded):
    from coupling_tui.core.engine import stream as engine

    with pytest.raises(UserError, match="outside the prompt"):
        next(engine.stream(loaded, PROMPT, RunOptions(context_layers="0", context_tokens=(0, 99))))
    torch.manual_seed(0)


def test_keywords_belong_to_their_flag(capsys):
    from coupling_tui.core.cli.compute import build_compute_parser

    for flag, bad in (("--token-pairs", "all"), ("--context-layers", "adjacent")):
        with pytest.raises(SystemExit):
            build_compute_parser().parse_args([flag, bad])


@pytest.fixture(scope="module")
def everything(loaded):
    run, _ = _run(loaded, vju=True, token_pairs="adjacent", context_layers="all")
    return run


def test_the_extras_round_trip_through_a_results_file(everything, tmp_path):
    from coupling_tui.core.results import run_file as results

    back = results.load(results.save(everything, tmp_path / "x.safetensors"))
    names = [n for n in everything.arrays if n.startswith(("coupling.", "context."))]
    assert {"coupling.depth_vju_k", "coupling.token_pair_k", "context.out_k", "context.in_k"} <= set(names)
    for name in names:
        np.testing.assert_array_equal(back.arrays[name], everything.arrays[name])
    assert back.header["context"] == everything.header["context"]


@pytest.mark.parametrize("name, change, reason", [
    ("coupling.depth_k", lambda a: a[:, :, :-1], "coupling.depth_k has shape"),
    ("coupling.token_k", lambda a: a[:, :-1], "coupling.token_k has shape"),
    ("coupling.token_pairs", lambda a: a + 10, "token_pairs is not"),
    ("coupling.token_pair_k", lambda a: a[:, :-1], "coupling.token_pair_k has shape"),
    ("coupling.depth_vju_k", lambda a: a[0], "coupling.depth_vju_k has shape"),
    ("context.layers", lambda a: a + 10, "context.layers is not"),
    ("context.tokens", lambda a: a[:1], "context.tokens is not"),
    ("context.out_k", lambda a: a[:, :, :, :-1], "context.out_k has shape"),
    ("context.in_frobenius", lambda a: a[:-1], "context.in_frobenius has shape"),
])
def test_malformed_coupling_and_context_arrays_are_refused(everything, tmp_path, name, change, reason):
    from coupling_tui.core.results import run_file as results
    from coupling_tui.core.errors import ResultsError

    run = Run()
    run.header, run.arrays = dict(everything.header), dict(everything.arrays)
    run.arrays[name] = np.ascontiguousarray(change(run.arrays[name]))
    path = results.save(run, tmp_path / "bad.safetensors")
    with pytest.raises(ResultsError, match=reason):
        results.load(path)


def test_layers_bound_the_extras_to_the_selected_blocks(loaded, extras):
    full, _ = extras
    part, _ = _run(loaded, vju=True, token_pairs=[(0, 2), (2, 0), (1, 2)], layers=[0, 2],
                   history_mb=4096.0 if full.header["coupling"]["history"] else 0.0)
    assert part.arrays["coupling.token_pairs"].tolist() == [[0, 2], [2, 0]]    # (1, 2) needs block 1
    vju, ref = part.arrays["coupling.depth_vju_k"], full.arrays["coupling.depth_vju_k"]
    sel = np.ix_(range(vju.shape[0]), range(vju.shape[1]), [0, 2], [0, 2])
    np.testing.assert_allclose(vju[sel], ref[sel], atol=1e-5)
    assert np.isnan(vju[:, :, 1]).all() and np.isnan(vju[:, :, :, 1]).all()
    full_pairs = [tuple(p) for p in full.arrays["coupling.token_pairs"].tolist()]
    np.testing.assert_allclose(part.arrays["coupling.token_pair_k"][:, 0],
                               full.arrays["coupling.token_pair_k"][:, full_pairs.index((0, 2))], atol=1e-5)
