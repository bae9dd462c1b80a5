"""Defects 4 and 9 (#17): a local model directory with a broken part. Random, empty or truncated weights were a
SafetensorError traceback ("internal error", status 1); a corrupt tokenizer, an invalid config.json or a directory
without weights all said "model not found … offline". Now each is one message naming the part (and the file) that
is wrong, status 2 — also as --compare's second model, refused before the first model loads."""
from __future__ import annotations

import json
import os
import shutil

import pytest

from coupling_tui.core.errors import UserError
from coupling_tui.core.load.models import ModelRequest, load
from tests.test_cli import cli


def _truncate(path, keep):
    data = path.read_bytes()
    path.write_bytes(data[:keep(len(data))])


def _shard(d):
    """Split into an index naming two shards, the second one missing."""
    (d / "model.safetensors").rename(d / "model-00001-of-00002.safetensors")
    (d / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": {
        "a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}))


DAMAGE = {   # name: (how, what the message says)
    "weights_random": (lambda d: (d / "model.safetensors").write_bytes(os.urandom(4096)),
                       "model.safetensors is not a readable safetensors file"),
    "weights_empty": (lambda d: (d / "model.safetensors").write_bytes(b""),
                      "model.safetensors is not a readable safetensors file"),
    "weights_truncated_header": (lambda d: _truncate(d / "model.safetensors", lambda n: 200),
                                 "model.safetensors is not a readable safetensors file"),
    "weights_truncated_data": (lambda d: _truncate(d / "model.safetensors", lambda n: n * 9 // 10),
                               "model.safetensors is not a readable safetensors file"),
    "weights_missing": (lambda d: (d / "model.safetensors").unlink(), "has no weights"),
    "shard_missing": (_shard, "names 2 shard(s) and 1 are missing (model-00002-of-00002.safetensors)"),
    "config_not_json": (lambda d: (d / "config.json").write_text("{not json"),
                        "the config.json of {d} cannot be read as a model config"),
    "config_unknown_type": (lambda d: (d / "config.json").write_text(json.dumps({"model_type": 5})),
                            "unsupported architecture: {d}: transformers does not know its model type"),
    "tokenizer_corrupt": (lambda d: (d / "tokenizer.json").write_text("{trunc"),
                          "the tokenizer of {d} cannot be loaded"),
    "tokenizer_missing": (lambda d: [p.unlink() for p in list(d.iterdir()) if p.name.startswith("tokenizer")],
                          "the tokenizer of {d} cannot be loaded"),
}


@pytest.fixture
def damaged(tiny_dir, tmp_path, request):
    d = tmp_path / request.param
    shutil.copytree(tiny_dir, d)
    how, says = DAMAGE[request.param]
    how(d)
    return d, says.format(d=d)


@pytest.mark.parametrize("damaged", sorted(DAMAGE), indirect=True)
def test_defect4_9_broken_model_dir_is_one_message_naming_the_part(damaged):
    d, says = damaged
    with pytest.raises(UserError) as e:
        load(ModelRequest(model=str(d)))
    assert says in e.value.message
    assert "not found" not in e.value.message and "offline" not in e.value.message


@pytest.mark.parametrize("damaged", ["weights_random", "weights_truncated_data", "tokenizer_corrupt",
                                     "config_not_json"], indirect=True)
@pytest.mark.parametrize("as_compare", [False, True])
def test_defect4_9_broken_model_dir_on_the_command_line(damaged, tiny_dir, tmp_path, as_compare):
    d, says = damaged
    model = ["--model", str(tiny_dir), "--compare", str(d)] if as_compare else ["--model", str(d)]
    done = cli("compute", *model, "-p", "1 2 3", "--yes", "-o", str(tmp_path / "r.safetensors"))
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr
    assert any(line.startswith("coupling-tui: error: ") and says in line for line in lines), done.stderr
    if as_compare and says.endswith("not a readable safetensors file"):
        assert f"loaded {tiny_dir}" not in done.stderr     # refused by the cheap check, before model A loads
    assert not (tmp_path / "r.safetensors").exists()


def test_defect4_random_init_needs_no_weights(tiny_dir, tmp_path):
    d = tmp_path / "config-only"
    shutil.copytree(tiny_dir, d)
    (d / "model.safetensors").unlink()
    loaded = load(ModelRequest(model=str(d), random_init=True))
    assert loaded.info["random_init"] and loaded.info["n_layers"] == 3
