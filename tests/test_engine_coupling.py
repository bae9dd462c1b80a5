"""Coupling, trajectory fits and the random-init baseline as the engine streams them, against a plain float64
reference built here from each layer's dense Jacobians (numpy SVD, the formula written out entry by entry)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from coupling_tui.core.engine import stream as engine
from coupling_tui.core.linalg.coupling import run_scalar
from coupling_tui.core.engine.coupling_stream import coupling_ks, display_k, m_for_ks
from coupling_tui.core.results.events import LayerDone, RunStarted
from coupling_tui.core.load.models import ModelRequest, load
from coupling_tui.core.options.run_options import RunOptions
from coupling_tui.core.results.run import Run
from coupling_tui.core.engine.trace import trace
from coupling_tui.core.maths import trajectory as tm

PROMPT = "Hello world, hello tokens!"


@pytest.fixture(scope="module")
def loaded(tiny_dir):
    return load(ModelRequest(model=str(tiny_dir)))


def _all_J(loaded, prompt):
    """Dense J [L, T, d, d] of every block and token, float64 copies of the verified Jacobian methods' output."""
    from coupling_tui.core.engine.jacobians.layers import LayerJacobians

    ids = torch.tensor([loaded.tokenizer(prompt)["input_ids"]])
    tr = trace(loaded.model, loaded.adapter, ids)
    jac = LayerJacobians(loaded, ids, tr.block_inputs, "auto")
    return np.stack([jac.layer(l, range(ids.shape[1])).double().numpy() for l in range(loaded.info["n_layers"])])


def _m_ref(J1, J2, k, norm="norm"):
    """m_K(J1, J2) written out: bases of J2 and values of J1 from numpy's float64 SVD, element-wise |·|."""
    U2, _, Vh2 = np.linalg.svd(J2)
    s1 = np.linalg.svd(J1, compute_uv=False)[:k]
    M = U2[:, :k].T @ J1 @ Vh2[:k].T
    diff = np.linalg.norm(np.abs(M) - np.diag(s1))
    return diff / (np.linalg.norm(s1) if norm == "norm" else s1.sum())


def _run(loaded, baseline=None, **kw) -> tuple[Run, list]:
    run, events = Run(), []
    for event in engine.stream(loaded, PROMPT, RunOptions(**kw), baseline=baseline):
        run.apply(event)
        events.append(event)
    return run, events


@pytest.fixture(scope="module")
def reference(loaded):
    return _all_J(loaded, PROMPT)


@pytest.fixture(scope="module")
def streamed(loaded):
    return _run(loaded)


def test_ks_and_the_displayed_k():
    assert coupling_ks(50) == [8, 10, 30, 50] and display_k([8, 10, 30, 50]) == 50
    assert coupling_ks(32) == [8, 10, 30] and display_k([8, 10, 30]) == 30
    assert coupling_ks(5) == [5] and coupling_ks(0) == []


def test_m_for_ks_is_the_leading_block_of_one_product():
    rng = np.random.default_rng(0)
    M = torch.as_tensor(rng.standard_normal((3, 12, 12)))
    s = torch.as_tensor(np.sort(rng.random((3, 12)))[:, ::-1].copy())
    norm, trace_ = m_for_ks(M, s, [1, 5, 12])
    for i, k in enumerate([1, 5, 12]):
        diff = np.linalg.norm(np.abs(M[:, :k, :k].numpy()) - np.stack([np.diag(x[:k]) for x in s.numpy()]),
                              axis=(1, 2))
        np.testing.assert_allclose(norm[i], diff / np.linalg.norm(s[:, :k], axis=1), rtol=1e-12)
        np.testing.assert_allclose(trace_[i], diff / s[:, :k].sum(1).numpy(), rtol=1e-12)


def test_depth_coupling_of_every_token_and_k_matches_float64(streamed, reference):
    run, _ = streamed
    ks = list(run.arrays["coupling.ks"])
    L, T = reference.shape[:2]
    assert ks == [8, 10, 30] and run.header["coupling"]["k"] == 30 and run.header["coupling"]["history"]
    depth, trace_ = run.arrays["coupling.depth_k"], run.arrays["coupling.depth_trace_k"]
    assert depth.shape == (3, T, L, L) and np.isfinite(depth).all()
    for a, k in enumerate(ks):
        for t in range(T):
            ref = np.array([[_m_ref(reference[i, t], reference[j, t], k) for j in range(L)] for i in range(L)])
            np.testing.assert_allclose(depth[a, t], ref, atol=3e-4)
        i, j, t = L - 1, 0, T - 1
        assert trace_[a, t, i, j] == pytest.approx(_m_ref(reference[i, t], reference[j, t], k, "trace"), abs=3e-4)
    assert np.abs(np.diagonal(depth, axis1=-2, axis2=-1)).max() < 1e-4   # U_iᵀ J_i V_i = S_i: orientation right
    off = depth[0][:, ~np.eye(L, dtype=bool)]
    assert off.min() > 0.05                                                # and off the diagonal it is not trivial
    assert not np.allclose(depth[0], depth[0].transpose(0, 2, 1), atol=1e-3)  # m is not symmetric
    np.testing.assert_array_equal(run.arrays["coupling.depth"], depth[ks.index(30)])
    np.testing.assert_allclose(run.arrays["coupling.depth_mean_k"], depth.mean(axis=1), rtol=1e-6)


def test_token_coupling_at_each_layer_matches_float64(streamed, reference):
    run, _ = streamed
    tok = run.arrays["coupling.token_k"]
    L, T = reference.shape[:2]
    assert tok.shape == (3, L, T, T)
    for layer in range(L):
        ref = np.array([[_m_ref(reference[layer, t], reference[layer, u], 8) for u in range(T)] for t in range(T)])
        np.testing.assert_allclose(tok[0, layer], ref, atol=3e-4)


def test_second_pass_gives_the_same_matrices_when_the_history_does_not_fit(loaded, streamed):
    run, _ = streamed
    again, events = _run(loaded, history_mb=0)
    L = run.n_layers
    assert not again.header["coupling"]["history"]
    assert [s["name"] for s in again.header["stages"]] == ["layers", "layers · coupling pass"]
    stages = [e.stage for e in events if isinstance(e, LayerDone)]
    assert stages == ["layers"] * L + ["layers · coupling pass"] * L and again.n_steps == 2 * L
    assert again.layers_done == L and again.steps_done == 2 * L
    np.testing.assert_allclose(again.arrays["coupling.depth_k"], run.arrays["coupling.depth_k"], atol=1e-6)


def test_the_matrix_streams_row_and_column_as_each_layer_arrives(loaded):
    run = Run()
    stream = engine.stream(loaded, PROMPT)
    run.apply(next(stream))
    assert np.isnan(run.arrays["coupling.depth"]).all()
    for i in range(loaded.info["n_layers"]):
        run.apply(next(stream))
        d = run.arrays["coupling.depth"]
        assert np.isfinite(d[:, : i + 1, : i + 1]).all()
        assert np.isnan(d[:, i + 1:, :]).all() and np.isnan(d[:, :, i + 1:]).all()
    stream.close()


def test_trajectory_fits_and_linearisation_fidelity(streamed, reference):
    run, _ = streamed
    hidden, norms = run.arrays["trajectory.hidden"].astype(np.float64), run.arrays["trajectory.norms"]
    g = tm.growth_fit(norms)
    np.testing.assert_allclose(run.arrays["trajectory.growth_factor"], g["factor"], rtol=1e-5)
    np.testing.assert_allclose(run.arrays["trajectory.growth_r2"], g["r2"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(run.arrays["trajectory.lss"], tm.lss(hidden), rtol=1e-5)
    e = tm.expodistance(hidden)
    np.testing.assert_allclose(run.arrays["trajectory.expodistance_cv"], e["ratio_cv"], rtol=1e-4, atol=1e-6)
    # fidelity: the chain Π (I + J^l) x^0, written out here in float64, against every state x^l
    x = hidden[0].copy()
    fid = run.arrays["trajectory.fidelity"]
    assert (fid[0] == 1).all()
    for layer in range(len(reference)):
        x = x + np.einsum("tij,tj->ti", reference[layer], x)
        y = hidden[layer + 1]
        cos = (x * y).sum(-1) / np.linalg.norm(x, axis=-1) / np.linalg.norm(y, axis=-1)
        np.testing.assert_allclose(fid[layer + 1], cos, atol=1e-5)
    assert np.isfinite(fid).all() and fid[1].min() > 0.5   # one block is well linearised on a tiny model


def test_sigma1_fit_on_a_deeper_model(tmp_path):
    deep = load(ModelRequest(model=str(_save_deep(tmp_path))))
    run = Run()
    for event in engine.stream(deep, PROMPT, RunOptions(top_k=4)):
        run.apply(event)
    assert run.header["fits"]["sigma1_start"] == 9
    fit = tm.sigma1_depth_fit(run.arrays["jacobian.singular_values"][:, :, 0], start=9)
    np.testing.assert_allclose(run.arrays["jacobian.sigma1_fit_slope"], fit["slope"], rtol=1e-5)
    np.testing.assert_allclose(run.arrays["jacobian.sigma1_fit_r2"], fit["r2"], rtol=1e-5, atol=1e-6)


def _save_deep(tmp_path):
    from transformers import AutoConfig, AutoModelForCausalLM

    from tests.tiny_models import CONFIGS, tiny_tokenizer

    cfg = AutoConfig.for_model("llama", **dict(CONFIGS["llama"], num_hidden_layers=13))
    torch.manual_seed(1)
    AutoModelForCausalLM.from_config(cfg).save_pretrained(tmp_path / "deep")
    tiny_tokenizer().save_pretrained(tmp_path / "deep")
    return tmp_path / "deep"


def test_run_scalar_is_recorded(streamed):
    run, _ = streamed
    k = run.header["coupling"]["k"]
    expected = run_scalar(run.arrays["coupling.depth"], k)
    got = run.header["coupling_scalar"]
    assert got["offdiag"] == pytest.approx(expected["offdiag"]) and got["k"] == k and got["tokens"] == "all"
    assert got["matrices"] == run.n_tokens and got["layers"] == run.n_layers


def test_random_init_baseline_runs_side_by_side(loaded, tiny_dir, streamed):
    trained, _ = streamed
    baseline = load(ModelRequest(model=str(tiny_dir), random_init=True, seed=3))
    run, events = _run(loaded, baseline=baseline)
    L = run.n_layers
    assert [s["name"] for s in run.header["stages"]] == ["layers", "random-init"]
    assert run.header["random_init"]["model"]["random_init"] is True
    assert run.steps_done == 2 * L and run.layers_done == L
    np.testing.assert_array_equal(run.arrays["coupling.depth"], trained.arrays["coupling.depth"])
    rd = run.arrays["random_init.coupling.depth"]
    assert rd.shape == trained.arrays["coupling.depth"].shape and np.isfinite(rd).all()
    assert not np.allclose(rd, trained.arrays["coupling.depth"], atol=1e-3)
    assert "random_init.trajectory.hidden" not in run.arrays and "random_init.jacobian.U" not in run.arrays
    assert np.isfinite(run.arrays["random_init.trajectory.norms"]).all()
    ref = _all_J(baseline, PROMPT)
    t = run.n_tokens - 1
    assert rd[t, L - 1, 0] == pytest.approx(_m_ref(ref[L - 1, t], ref[0, t], run.header["coupling"]["k"]), abs=3e-4)
    assert run.header["random_init"]["coupling_scalar"]["offdiag"] == pytest.approx(
        run_scalar(rd, run.header["coupling"]["k"])["offdiag"])
    assert isinstance(events[0], RunStarted) and "random_init.coupling.depth" in events[0].arrays


def test_saved_run_keeps_coupling_and_reloads(streamed, tmp_path):
    from coupling_tui.core.results import run_file as results

    run, _ = streamed
    back = results.load(results.save(run, tmp_path / "r.safetensors"))
    for name in ("coupling.depth", "coupling.depth_k", "coupling.token_k", "trajectory.fidelity", "coupling.ks"):
        np.testing.assert_array_equal(back.arrays[name], run.arrays[name])
    assert back.steps_done == run.steps_done and back.header["coupling_scalar"] == run.header["coupling_scalar"]
