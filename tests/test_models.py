"""Model resolution and loading: local directories, random init, dtype/device choices and their clear errors."""

from __future__ import annotations

import json

import pytest
import torch

from coupling_tui.core.errors import UserError
from coupling_tui.core.models import ModelRequest, load, resolve_device, resolve_dtype


def test_local_directory_loads_with_its_adapter(tiny_dir):
    loaded = load(ModelRequest(model=str(tiny_dir)))
    assert loaded.info["family"] == "llama" and loaded.info["n_layers"] == 3 and loaded.info["d_model"] == 32
    assert loaded.device == "cpu" and loaded.dtype == "float32"
    assert not loaded.model.training
    assert all(not p.requires_grad for p in loaded.model.parameters())


def test_random_init_is_seeded_and_differs_from_trained(tiny_dir):
    trained = load(ModelRequest(model=str(tiny_dir))).model
    r0 = load(ModelRequest(model=str(tiny_dir), random_init=True, seed=0)).model
    r0b = load(ModelRequest(model=str(tiny_dir), random_init=True, seed=0)).model
    r1 = load(ModelRequest(model=str(tiny_dir), random_init=True, seed=1)).model
    w = lambda m: m.model.layers[1].self_attn.q_proj.weight  # noqa: E731
    assert torch.equal(w(r0), w(r0b))
    assert not torch.equal(w(r0), w(r1))
    assert not torch.allclose(w(r0), w(trained))
    assert type(r0) is type(trained) and r0.config.num_hidden_layers == trained.config.num_hidden_layers


@pytest.mark.parametrize("dtype", ["float64", "bfloat16"])
def test_explicit_dtype_is_applied(tiny_dir, dtype):
    loaded = load(ModelRequest(model=str(tiny_dir), dtype=dtype))
    assert loaded.dtype == dtype
    assert next(loaded.model.parameters()).dtype == getattr(torch, dtype)


def test_auto_dtype_is_float32_on_cpu_and_half_on_gpu():
    class Cfg:
        dtype = "bfloat16"
    assert resolve_dtype("auto", "cpu", Cfg()) == "float32"
    assert resolve_dtype("auto", "cuda", Cfg()) == "bfloat16"
    assert resolve_dtype("float16", "cpu", Cfg()) == "float16"
    with pytest.raises(UserError, match="unknown dtype: int8"):
        resolve_dtype("int8", "cpu", Cfg())


def test_cuda_without_gpu_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(UserError, match="no CUDA GPU"):
        resolve_device("cuda")
    with pytest.raises(UserError, match="unknown device: tpu"):
        resolve_device("tpu")
    assert resolve_device("auto") == "cpu"


@pytest.mark.parametrize("spec, message", [
    ("/no/such/dir", "model not found: /no/such/dir"),
    ("./missing.gguf", "model not found: ./missing.gguf"),
    ("nobody/no-such-model-xyz", "model not found: nobody/no-such-model-xyz; offline (HF_HUB_OFFLINE"),
])
def test_missing_models_are_reported_offline(spec, message):
    with pytest.raises(UserError) as info:
        load(ModelRequest(model=spec))
    assert str(info.value).startswith(message)


def test_directory_without_config(tmp_path):
    with pytest.raises(UserError, match="without config.json"):
        load(ModelRequest(model=str(tmp_path)))


def test_encoder_is_refused_before_weights_load(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 32}))
    with pytest.raises(UserError, match=r"^unsupported architecture: bert \(supported: llama"):
        load(ModelRequest(model=str(tmp_path)))


def test_remote_code_is_never_enabled_silently(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(
        {"model_type": "my_custom_lm", "auto_map": {"AutoConfig": "configuration_custom.CustomConfig"}}))
    (tmp_path / "configuration_custom.py").write_text("raise SystemExit('remote code ran')\n")
    with pytest.raises(UserError, match="(?s)needs custom code.*--trust-remote-code"):
        load(ModelRequest(model=str(tmp_path)))
