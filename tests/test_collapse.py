"""Collapse and over-squashing measures (core.engine.collapse) against independent implementations on tiny random models:
pair differences in numpy float64, bit identity from the raw bits, states from a hook on the final norm's input,
the low precision from a model loaded in it, sensitivity from float64 autograd Jacobians; then the stage's events
and its place in engine.stream."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from coupling_tui.core.engine import stream as engine
from coupling_tui.core.engine.collapse import (CollapsePass, CollapseSpec, bit_identical_fraction, cast_copy, last_state, pair_differences, sensitivity)
from coupling_tui.core.errors import UserError
from coupling_tui.core.results.events import LayerDone, RunFinished, RunStarted
from coupling_tui.core.load.models import ModelRequest, load
from coupling_tui.core.results.run import Run
from tests.tiny_models import tiny_model
from coupling_tui.core.options.run_options import RunOptions

FINAL_NORM = {"llama": "model.norm", "gpt2": "transformer.ln_f", "gpt_neox": "gpt_neox.final_layer_norm",
              "gemma2": "model.norm"}


@pytest.fixture(scope="module")
def loaded(tiny_dir):
    return load(ModelRequest(model=str(tiny_dir)))


@pytest.fixture(scope="module")
def loaded_bf16(tiny_dir):
    return load(ModelRequest(model=str(tiny_dir), dtype="bfloat16"))


@pytest.fixture(scope="module")
def bf16_eager(tiny_dir):
    """The tiny model loaded by transformers itself in bfloat16 with eager attention: the low stage's default."""
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(tiny_dir), dtype=torch.bfloat16, attn_implementation="eager").eval()


def reference_state(model, family: str, ids: list[int], embeds: torch.Tensor | None = None) -> tuple:
    """(pre-norm last state, post-norm last state, greedy id), read from the final norm's input and output."""
    norm = model.get_submodule(FINAL_NORM[family])
    seen = {}
    handle = norm.register_forward_hook(lambda m, args, out: seen.update(x=args[0], y=out))
    try:
        if embeds is None:
            with torch.no_grad():
                logits = model(input_ids=torch.tensor([ids])).logits
        else:
            logits = model(inputs_embeds=embeds).logits
    finally:
        handle.remove()
    return seen["x"][0, -1], seen["y"][0, -1], int(logits[0, -1].argmax())


# -- the measures --

def test_pair_differences_match_numpy():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(50), rng.standard_normal(50)
    delta = b - a
    expected = [np.abs(delta).mean(), np.abs(delta).max(), np.linalg.norm(delta) / np.linalg.norm(a)]
    np.testing.assert_allclose(pair_differences(a, b), expected, rtol=1e-12)
    np.testing.assert_allclose(pair_differences(torch.tensor(a, dtype=torch.bfloat16), torch.tensor(b).bfloat16()),
                               _np_diff(torch.tensor(a).bfloat16().double().numpy(),
                                        torch.tensor(b).bfloat16().double().numpy()), rtol=1e-12)
    assert pair_differences(a, a).tolist() == [0.0, 0.0, 0.0]


def _np_diff(a, b):
    d = b - a
    return [np.abs(d).sum() / d.size, np.abs(d).max(), np.sqrt((d * d).sum()) / np.sqrt((a * a).sum())]


def test_bit_identity_compares_the_stored_bits():
    a = torch.tensor([1.0, 2.0, 3.0, 0.0, float("nan")], dtype=torch.bfloat16)
    b = a.clone()
    b[1] = torch.nextafter(b[1:2].float(), torch.tensor([9.0]))[0]     # 2 + 2^-22 rounds back to 2 in bf16
    b[2] = 3.015625                                                      # the next bf16 above 3
    b[3] = -0.0                                                          # equal as numbers, not as bits
    raw_a, raw_b = a.view(torch.int16).numpy(), b.view(torch.int16).numpy()
    assert bit_identical_fraction(a, b) == (raw_a == raw_b).mean() == 3 / 5
    assert bit_identical_fraction(a.float(), a.float()) == 1.0
    with pytest.raises(ValueError):
        bit_identical_fraction(a, a.float())


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_cast_copy_is_the_model_loaded_in_that_dtype(tmp_path, family):
    from tests.tiny_models import save_tiny

    path = save_tiny(family, tmp_path / family)
    f32, bf16 = (load(ModelRequest(model=str(path), dtype=dt)) for dt in ("float32", "bfloat16"))
    before = {k: v.clone() for k, v in f32.model.state_dict().items()}
    twin = cast_copy(f32.model, torch.bfloat16)
    for (name, a), (_, b) in zip(twin.state_dict().items(), bf16.model.state_dict().items()):
        assert a.dtype == b.dtype and torch.equal(a, b), name
    for name, value in f32.model.state_dict().items():                 # the original is untouched
        assert value.dtype == torch.float32 and torch.equal(value, before[name]), name
    if family == "gpt2":                                               # tied weights stay tied
        assert twin.get_output_embeddings().weight is twin.get_input_embeddings().weight
    ids = [5, 17, 257, 257, 16]
    np.testing.assert_array_equal(last_state(twin, f32.adapter, ids)[0].view(torch.int16).numpy(),
                                  last_state(bf16.model, bf16.adapter, ids)[0].view(torch.int16).numpy())


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_last_state_is_the_final_norm_input(family):
    from coupling_tui.core.load.adapters import adapter_for

    model = tiny_model(family)
    ids = [3, 17, 257, 257, 257, 16]
    h, normed, nxt = last_state(model, adapter_for(family), ids)
    x, y, greedy = reference_state(model, family, ids)
    torch.testing.assert_close(h, x, rtol=0, atol=0)
    torch.testing.assert_close(normed, y, rtol=1e-6, atol=1e-6)
    assert nxt == greedy


def autograd_sensitivity(model, family: str, ids: list[int]) -> np.ndarray:
    """‖∂h/∂e_i‖_F from the full Jacobian (torch.autograd.functional.jacobian), h read at the final norm's input."""
    e = model.get_input_embeddings()(torch.tensor([ids])).detach()
    J = torch.autograd.functional.jacobian(lambda emb: reference_state(model, family, ids, emb)[0], e)  # [d,1,T,d]
    return J[:, 0].pow(2).sum(dim=(0, 2)).sqrt().numpy()


@pytest.mark.parametrize("family", ["llama", "gpt2", "gpt_neox", "gemma2"])
def test_exact_sensitivity_matches_the_autograd_jacobian(family):
    from coupling_tui.core.load.adapters import adapter_for

    model = tiny_model(family, dtype=torch.float64)
    ids = [3, 17, 257, 257, 257, 16, 40, 41]
    expected = autograd_sensitivity(model, family, ids)
    got = sensitivity(model, adapter_for(family), ids, method="exact", chunk=7)
    np.testing.assert_allclose(got, expected, rtol=1e-10)
    # Hutchinson with d orthogonal probes spans the output space: exact too (to float32 rounding: HF's norms cast
    # to float32 inside, so a rotated cotangent is rounded there, where one-hot rows are not)
    full = sensitivity(model, adapter_for(family), ids, method="hutchinson", probes=32, seed=3)
    np.testing.assert_allclose(full, expected, rtol=1e-6)


def test_hutchinson_estimate_is_close_and_unbiased():
    from coupling_tui.core.load.adapters import adapter_for

    model = tiny_model("llama", dtype=torch.float64)
    ids = list(range(20, 44))
    exact = sensitivity(model, adapter_for("llama"), ids, method="exact")
    estimates = np.stack([sensitivity(model, adapter_for("llama"), ids, method="hutchinson", probes=8, seed=s)
                          for s in range(40)])
    single = np.abs(estimates[0] / exact - 1)
    assert single.max() < 0.5 and np.median(single) < 0.2                   # 8 of 32 probes: a rough profile
    mean_square = (estimates ** 2).mean(0)                                   # E[Ŝ²] = S²: unbiased in S²
    np.testing.assert_allclose(mean_square, exact ** 2, rtol=0.1)
    assert np.abs(mean_square / exact ** 2 - 1).mean() < 0.04


# -- the stage --

SPEC = CollapseSpec(families=("ones", "digits", "commas", "bernoulli", "template"), lengths=(2, 5, 9),
                    template="Copy: {seq}", seed=1)


@pytest.fixture(scope="module")
def stage(loaded):
    cp = CollapsePass(loaded, SPEC)
    arrays = cp.arrays()
    started = {k: v.copy() for k, v in arrays.items()}
    events = list(cp.events())
    for event in events:
        for name, (index, values) in event.rows.items():
            arrays[name][index] = values
    return cp, started, events, arrays


def test_stage_announces_its_steps_and_streams_one_event_per_pair(stage):
    cp, started, events, arrays = stage
    F, N = 5, 3
    assert cp.stages() == [{"name": "collapse", "steps": F * N + 1}]
    assert [e.layer for e in events] == list(range(F * N + 1))
    assert all(isinstance(e, LayerDone) and e.stage == "collapse" and e.n_layers == F * N + 1 for e in events)
    assert np.isnan(started["collapse.final"]).all() and (started["collapse.next_ids"] == -1).all()
    assert np.isnan(started["collapse.sensitivity"]).all()
    assert set(events[4].rows) == {"collapse.final", "collapse.final_normed", "collapse.diff", "collapse.diff_low",
                                   "collapse.identical_low", "collapse.next_ids", "collapse.next_ids_low"}
    assert events[4].rows["collapse.final"][0] == (1, 1)                 # family 1 (digits), length 1 (n = 5)
    for name, a in arrays.items():
        assert (np.isfinite(a).all() if a.dtype.kind == "f" else (a >= 0).all()), name
    h = cp.header()
    assert h["families"] == list(SPEC.families) and h["lengths"] == [2, 5, 9] and h["warnings"] == []
    assert h["low_dtype"] == "bfloat16" and h["reference_dtype"] == "float32" and h["template"] == "Copy: {seq}"
    assert arrays["collapse.final"].shape == (F, N, 2, 32) and arrays["collapse.lengths"].tolist() == [2, 5, 9]
    assert set(h["next_text"]) >= {str(i) for i in arrays["collapse.next_ids"].ravel()}


def test_every_pair_measure_matches_an_independent_run(stage, loaded, bf16_eager):
    cp, _, _, arrays = stage
    tok = loaded.tokenizer
    for f, fam in enumerate(cp.families):
        for j, pair in enumerate(fam.pairs):
            seqs = [list(tok(s.text)["input_ids"]) for s in (pair.short, pair.long)]   # tokenised whole
            assert seqs == [pair.short.ids, pair.long.ids]
            assert arrays["collapse.n_tokens"][f, j].tolist() == [len(s) for s in seqs]
            ref = [reference_state(loaded.model, "llama", s) for s in seqs]
            low = [reference_state(bf16_eager, "llama", s) for s in seqs]   # eager: the low stage's default
            for k in range(2):
                np.testing.assert_array_equal(arrays["collapse.final"][f, j, k], ref[k][0].numpy())
                np.testing.assert_allclose(arrays["collapse.final_normed"][f, j, k], ref[k][1].numpy(), rtol=1e-6)
            a, b = (r[0].double().numpy() for r in ref)
            np.testing.assert_allclose(arrays["collapse.diff"][f, j], _np_diff(a, b), rtol=1e-6)
            la, lb = (r[0].float().double().numpy() for r in low)
            np.testing.assert_allclose(arrays["collapse.diff_low"][f, j], _np_diff(la, lb), rtol=1e-6)
            bits = [r[0].view(torch.int16).numpy() for r in low]
            assert arrays["collapse.identical_low"][f, j] == pytest.approx((bits[0] == bits[1]).mean())
            assert arrays["collapse.next_ids"][f, j].tolist() == [r[2] for r in ref]
            assert arrays["collapse.next_ids_low"][f, j].tolist() == [r[2] for r in low]


def test_sensitivity_is_normalised_over_the_chosen_sequence(stage, loaded):
    cp, _, _, arrays = stage
    s = cp.header()["sensitivity"]
    pair = cp.families[0].pairs[-1]                        # ones, the longest n (its tokens fit the default cap)
    assert (s["family"], s["n"], s["n_tokens"], s["method"]) == ("ones", 9, len(pair.short.ids), "exact")
    raw = arrays["collapse.sensitivity_raw"]
    np.testing.assert_allclose(raw, autograd_sensitivity(loaded.model, "llama", pair.short.ids), rtol=1e-4)
    np.testing.assert_allclose(arrays["collapse.sensitivity"], raw / raw.sum(), rtol=1e-6)
    assert arrays["collapse.sensitivity"].sum() == pytest.approx(1.0)


def test_sensitivity_sequence_respects_the_token_cap_and_method(loaded):
    cp = CollapsePass(loaded, CollapseSpec(families=("digits", "ones"), lengths=(2, 5, 9), sensitivity_tokens=6,
                                           probes=4))
    s = cp.header()["sensitivity"]
    assert (s["family"], s["n"], s["method"], s["probes"]) == ("ones", 5, "hutchinson", 4)
    assert cp.arrays()["collapse.sensitivity"].shape == (5,)
    off = CollapsePass(loaded, CollapseSpec(families=("digits",), lengths=(2,), sensitivity=False))
    assert off.header()["sensitivity"] is None and off.arrays()["collapse.sensitivity"].shape == (0,)
    assert off.stages() == [{"name": "collapse", "steps": 1}]


def test_a_model_already_in_the_low_dtype_is_the_low_run(loaded, loaded_bf16):
    cp = CollapsePass(loaded_bf16, CollapseSpec(families=("ones",), lengths=(3,), sensitivity=False))
    reference, low = cp._models()
    assert low is loaded_bf16.model and next(reference.parameters()).dtype == torch.float32
    arrays = cp.arrays()
    for e in cp.events():
        for name, (index, values) in e.rows.items():
            arrays[name][index] = values
    ids = cp.families[0].pairs[0].short.ids
    np.testing.assert_array_equal(arrays["collapse.final"][0, 0, 0],
                                  reference_state(reference, "llama", ids)[0].numpy())
    assert cp.header()["reference_dtype"] == "float32"


def test_lengths_beyond_the_context_are_refused_or_dropped(loaded, monkeypatch):
    with pytest.raises(UserError, match="collapse length 300 is beyond the model's context: the ones sequence with "
                                        "301 repeats has 301 tokens, the model takes 256"):
        CollapsePass(loaded, CollapseSpec(families=("ones",), lengths=(8, 300)))
    monkeypatch.setattr(loaded.model.config, "max_position_embeddings", 40)
    cp = CollapsePass(loaded, CollapseSpec(families=("ones", "commas")))
    assert cp.lengths == (4, 8, 16)                    # 32 ones and their twin need 33 tokens, 32 commas 45
    with pytest.raises(UserError, match="even the shortest"):
        CollapsePass(loaded, CollapseSpec(families=("template",)))


# -- in the engine --

def test_engine_streams_the_collapse_stage_after_the_layers(loaded, tmp_path):
    from coupling_tui.core.results import run_file as results

    spec = CollapseSpec(families=("ones", "commas"), lengths=(2, 4), sensitivity_tokens=4)
    events = list(engine.stream(loaded, "Hello world", RunOptions(top_k=0, collapse=spec)))
    started, finished = events[0], events[-1]
    assert isinstance(started, RunStarted) and isinstance(finished, RunFinished)
    assert started.header["stages"] == [{"name": "layers", "steps": 3}, {"name": "collapse", "steps": 5}]
    assert started.header["collapse"]["families"] == ["ones", "commas"]
    assert started.arrays["collapse.diff"].shape == (2, 2, 3) and np.isnan(started.arrays["collapse.diff"]).all()
    assert [e.stage for e in events[1:-1]] == ["layers"] * 3 + ["collapse"] * 5
    run = Run()
    for event in events:
        run.apply(event)
    assert run.steps_done == run.n_steps == 8 and run.layers_done == 3
    texts = run.header["collapse"]["next_text"]
    assert texts and all(texts[str(i)] == loaded.tokenizer.decode([int(i)])
                         for i in run.arrays["collapse.next_ids"].ravel())
    assert run.header["collapse"]["seconds"] > 0
    back = results.load(results.save(run, tmp_path / "c.safetensors"))
    for name, a in run.arrays.items():
        np.testing.assert_array_equal(back.arrays[name], a)
        assert back.arrays[name].dtype == a.dtype
    assert back.header["collapse"] == run.header["collapse"]


def test_engine_checks_the_collapse_spec_before_any_work(loaded):
    stream = engine.stream(loaded, "Hello", RunOptions(top_k=0, collapse=CollapseSpec(families=("ones",),
                                                                                   lengths=(999,))))
    with pytest.raises(UserError, match="beyond the model's context"):
        next(stream)


def test_without_collapse_nothing_changes(loaded):
    started = next(engine.stream(loaded, "Hello", RunOptions(top_k=0)))
    assert "collapse" not in started.header and not [n for n in started.arrays if n.startswith("collapse.")]


# -- the low stage's attention implementation (--collapse-attn) --

def _spy_attention(monkeypatch) -> list[tuple[str, torch.dtype]]:
    """Record (implementation, query dtype) of every attention call of the tiny Llama: eager_attention_forward and
    the registered "sdpa" function are wrapped."""
    from transformers.models.llama import modeling_llama
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    calls: list[tuple[str, torch.dtype]] = []

    def spy(name, fn):
        def wrapped(module, query, *args, **kwargs):
            calls.append((name, query.dtype))
            return fn(module, query, *args, **kwargs)
        return wrapped

    monkeypatch.setattr(modeling_llama, "eager_attention_forward",
                        spy("eager", modeling_llama.eager_attention_forward))
    monkeypatch.setitem(ALL_ATTENTION_FUNCTIONS._global_mapping, "sdpa",
                        spy("sdpa", ALL_ATTENTION_FUNCTIONS._global_mapping["sdpa"]))
    return calls


@pytest.mark.parametrize("attention", ["eager", "sdpa"])
def test_the_low_stage_runs_the_chosen_attention_and_the_header_records_both(loaded, monkeypatch, attention):
    assert loaded.model.config._attn_implementation == "sdpa"           # what the tiny model loads with
    calls = _spy_attention(monkeypatch)
    spec = CollapseSpec(families=("ones",), lengths=(3,), sensitivity=False, attention=attention)
    cp = CollapsePass(loaded, spec)
    list(cp.events())
    n_layers = loaded.model.config.num_hidden_layers
    low = [name for name, dtype in calls if dtype == torch.bfloat16]
    ref = [name for name, dtype in calls if dtype == torch.float32]
    assert low == [attention] * (2 * n_layers)                          # two sequences, every block
    assert ref == ["sdpa"] * (2 * n_layers)                              # the reference keeps the model's own
    assert cp.header()["attention"] == {"reference": "sdpa", "low": attention}
    assert loaded.model.config._attn_implementation == "sdpa"           # the loaded model is left as it was


def test_eager_is_the_default_and_a_bad_attention_is_a_user_error():
    assert CollapseSpec().attention == "eager"
    with pytest.raises(UserError, match="unknown collapse attention: flash"):
        CollapseSpec(attention="flash")


def test_a_model_already_in_bf16_runs_eager_for_the_stage_and_is_restored(loaded_bf16, monkeypatch):
    calls = _spy_attention(monkeypatch)
    cp = CollapsePass(loaded_bf16, CollapseSpec(families=("ones",), lengths=(3,), sensitivity=False))
    list(cp.events())
    assert {name for name, dtype in calls if dtype == torch.bfloat16} == {"eager"}
    assert loaded_bf16.model.config._attn_implementation == "sdpa"
