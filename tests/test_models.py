"""Model resolution and loading: local directories, random init, dtype/device choices and their clear errors."""

from __future__ import annotations

import json

import pytest
import torch

from coupling_tui.core.errors import UserError
from coupling_tui.core.load.models import ModelRequest, load, resolve_device, resolve_dtype


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


@pytest.mark.parametrize("family", ["bert", "t5", "bart"])
def test_encoders_and_seq2seq_are_refused_before_weights_load(tmp_path, family):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": family, "hidden_size": 32}))
    with pytest.raises(UserError) as info:
        load(ModelRequest(model=str(tmp_path)))
    assert str(info.value).startswith(f"unsupported architecture: {family} (supported: llama, mistral")
    assert "encoder-decoder" in info.value.hint


def _hub_error(cls_name: str, status: int, text: str):
    import sys

    from huggingface_hub import errors

    http = sys.modules[errors.Response.__module__]                    # httpx or httpx2, as the hub uses
    response = errors.Response(status, request=http.Request("GET", "https://huggingface.co/acme/secret-lm"))
    return getattr(errors, cls_name)(text, response=response)


@pytest.mark.parametrize("error, message, hint", [
    # what transformers 5 raises for a gated repo without a token: an OSError from the hub's GatedRepoError
    (("GatedRepoError", 401, "Cannot access gated repo for url https://huggingface.co/meta/x/config.json"),
     "acme/secret-lm is gated or private and no access token with access to it was found", "hf auth login"),
    # a 401/403 that the hub did not classify
    (("HfHubHTTPError", 403, "403 Forbidden: please log in"),
     "acme/secret-lm is gated or private", "huggingface-cli login"),
    # a private (or missing) repository looks the same as a missing one to the hub
    (("RepositoryNotFoundError", 404, "404 Repository Not Found"),
     "model not found: acme/secret-lm (no such model on the hub, or a private one)", "HF_TOKEN"),
])
def test_gated_and_private_models_point_to_login(monkeypatch, error, message, hint):
    import transformers

    def refuse(src, **kwargs):
        try:
            raise _hub_error(*error)
        except Exception as exc:
            raise OSError(f"You are trying to access {src}.\n{exc}") from exc

    monkeypatch.setattr(transformers.AutoConfig, "from_pretrained", refuse)
    with pytest.raises(UserError) as info:
        load(ModelRequest(model="acme/secret-lm"))
    assert info.value.message.startswith(message) and hint in info.value.hint


def test_running_out_of_memory_while_loading_says_how_much_the_weights_need(tiny_dir, monkeypatch):
    import transformers

    def oom(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 MiB")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", oom)
    with pytest.raises(UserError) as info:
        load(ModelRequest(model=str(tiny_dir)))
    assert info.value.message.startswith(f"out of memory while loading {tiny_dir} as float32 on cpu: its weights "
                                         "alone take about ")
    assert "--dtype bfloat16" in info.value.hint
    # the count from the config is the real parameter count, near enough
    from transformers import AutoConfig

    from coupling_tui.core.cost import weights_bytes
    from tests.tiny_models import tiny_model

    real = sum(p.numel() * 4 for p in tiny_model("llama").parameters())
    assert 0.7 < weights_bytes(AutoConfig.from_pretrained(tiny_dir), "float32") / real < 1.3


@pytest.mark.parametrize("native, noted", [(False, True), (True, False), (None, False)])
def test_bfloat16_on_a_cpu_without_it_is_a_stated_fallback(tiny_dir, monkeypatch, native, noted):
    from coupling_tui.core.load import models

    monkeypatch.setattr(models, "cpu_has_native_half", lambda dtype: native)
    loaded = load(ModelRequest(model=str(tiny_dir), dtype="bfloat16"))
    assert loaded.dtype == "bfloat16"                                     # it still loads and runs
    assert [n.startswith("note: this CPU has no native bfloat16") for n in loaded.notes] == ([True] if noted else [])
    assert load(ModelRequest(model=str(tiny_dir))).notes == []            # float32 needs no note


def test_native_half_check_runs_on_this_machine():
    from coupling_tui.core.load.models import cpu_has_native_half

    assert cpu_has_native_half("bfloat16") in (True, False, None)
    assert cpu_has_native_half("float16") in (True, False, None)


def test_remote_code_is_never_enabled_silently(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(
        {"model_type": "my_custom_lm", "auto_map": {"AutoConfig": "configuration_custom.CustomConfig"}}))
    (tmp_path / "configuration_custom.py").write_text("raise SystemExit('remote code ran')\n")
    with pytest.raises(UserError, match="(?s)needs custom code.*--trust-remote-code"):
        load(ModelRequest(model=str(tmp_path)))
