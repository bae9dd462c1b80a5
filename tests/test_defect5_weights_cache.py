"""Defect 5 (#17): the converted-weights cache. A read-only or full cache dir is refused before the ~30 s of
dequantising, naming the dir and COUPLING_TUI_CACHE_DIR; a cache entry is verified when it is opened (a completeness
marker written last), and an entry that is incomplete or fails to load is discarded and converted again, saying so.

The GGUF's dequantisation is replaced by a tiny Llama (``dequantise``), so each conversion takes milliseconds; the
writing, checking and loading of the cache entry are the real code."""
from __future__ import annotations

import errno

import pytest

from coupling_tui.core.errors import UserError
from coupling_tui.core.load import default_model
from coupling_tui.core.load.models import ModelRequest, load
from tests.tiny_models import tiny_model, tiny_tokenizer


@pytest.fixture
def fake_gguf(tmp_path, monkeypatch):
    """A .gguf path whose conversion yields a tiny Llama; ``calls`` counts the conversions."""
    monkeypatch.setenv("COUPLING_TUI_CACHE_DIR", str(tmp_path / "cache"))
    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(b"GGUF" + bytes(2048))
    calls = []

    def fake(path):
        calls.append(path)
        return tiny_model("llama"), tiny_tokenizer()

    monkeypatch.setattr(default_model, "dequantise", fake)
    return gguf, calls


def entry_of(tmp_path):
    entries = [p for p in (tmp_path / "cache" / "models").iterdir() if not p.name.startswith(".")]
    assert len(entries) == 1
    return entries[0]


def test_defect5_a_complete_entry_is_converted_once(fake_gguf, tmp_path):
    gguf, calls = fake_gguf
    load(ModelRequest(model=str(gguf)))
    loaded = load(ModelRequest(model=str(gguf)))
    assert len(calls) == 1 and not any("unusable" in s for s in loaded.notes)
    assert loaded.info["n_layers"] == 3
    assert (entry_of(tmp_path) / default_model.COMPLETE_MARKER).is_file()


@pytest.mark.parametrize("damage", ["truncate_weights", "truncate_tokenizer", "delete_config", "no_marker"])
def test_defect5_an_incomplete_entry_is_discarded_and_converted_again(fake_gguf, tmp_path, damage):
    gguf, calls = fake_gguf
    load(ModelRequest(model=str(gguf)))
    entry = entry_of(tmp_path)
    if damage == "truncate_weights":
        data = (entry / "model.safetensors").read_bytes()
        (entry / "model.safetensors").write_bytes(data[: len(data) // 2])
    elif damage == "truncate_tokenizer":
        data = (entry / "tokenizer.json").read_bytes()
        (entry / "tokenizer.json").write_bytes(data[:100])
    elif damage == "delete_config":
        (entry / "config.json").unlink()
    else:                                    # an entry written before the marker existed, or a copy cut short
        (entry / default_model.COMPLETE_MARKER).unlink()
    loaded = load(ModelRequest(model=str(gguf)))
    assert len(calls) == 2
    assert any("unusable" in s and "converted again" in s and str(entry) in s for s in loaded.notes), loaded.notes
    assert loaded.info["n_layers"] == 3
    assert default_model.entry_problem(entry_of(tmp_path)) is None


@pytest.mark.parametrize("part", ["model.safetensors", "tokenizer.json", "config.json"])
def test_defect5_an_entry_that_fails_to_open_is_converted_again(fake_gguf, tmp_path, part):
    """Damage the marker cannot see (same size): the failed open discards the entry and converts again, once."""
    gguf, calls = fake_gguf
    load(ModelRequest(model=str(gguf)))
    entry = entry_of(tmp_path)
    size = (entry / part).stat().st_size
    (entry / part).write_bytes(b"\xff" * size)
    loaded = load(ModelRequest(model=str(gguf)))
    assert len(calls) == 2
    assert any("unusable" in s and part.split(".")[0] in s for s in loaded.notes), loaded.notes
    assert loaded.info["n_layers"] == 3


def test_defect5_cache_dir_not_writable_is_refused_before_dequantising(fake_gguf, tmp_path, monkeypatch):
    gguf, calls = fake_gguf
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("COUPLING_TUI_CACHE_DIR", str(blocker / "cache"))
    with pytest.raises(UserError) as e:
        load(ModelRequest(model=str(gguf)))
    assert str(blocker / "cache" / "models") in e.value.message and "not writable" in e.value.message
    assert "COUPLING_TUI_CACHE_DIR" in e.value.hint
    assert calls == []


def test_defect5_read_only_cache_is_refused_before_dequantising(fake_gguf, tmp_path, monkeypatch):
    """Root ignores permission bits, so the read-only file system is simulated where the probe file is made."""
    gguf, calls = fake_gguf
    real = default_model.tempfile.mkstemp

    def read_only(*args, **kwargs):
        if kwargs.get("prefix") == ".write-check.":
            raise OSError(errno.EROFS, "Read-only file system")
        return real(*args, **kwargs)

    monkeypatch.setattr(default_model.tempfile, "mkstemp", read_only)
    with pytest.raises(UserError) as e:
        load(ModelRequest(model=str(gguf)))
    assert "not writable (Read-only file system)" in e.value.message and "COUPLING_TUI_CACHE_DIR" in e.value.hint
    assert calls == []


def test_defect5_full_cache_is_refused_before_dequantising(fake_gguf, tmp_path, monkeypatch):
    gguf, calls = fake_gguf
    monkeypatch.setattr(default_model, "gguf_fp32_bytes", lambda path: 540 << 20)
    real = default_model.shutil.disk_usage
    monkeypatch.setattr(default_model.shutil, "disk_usage", lambda p: real(p)._replace(free=100 << 20))
    with pytest.raises(UserError) as e:
        load(ModelRequest(model=str(gguf)))
    assert "100 MiB free" in e.value.message and "about 540 MiB" in e.value.message
    assert calls == []


def test_defect5_disk_filling_up_during_the_write_is_one_error_and_leaves_nothing(fake_gguf, tmp_path, monkeypatch):
    import safetensors.torch

    gguf, calls = fake_gguf

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(safetensors.torch, "save_file", full)
    with pytest.raises(UserError) as e:
        load(ModelRequest(model=str(gguf)))
    assert "cannot write the converted model into the cache" in e.value.message
    assert "No space left on device" in e.value.message and "COUPLING_TUI_CACHE_DIR" in e.value.hint
    assert list((tmp_path / "cache" / "models").iterdir()) == []


def test_defect5_real_gguf_size_is_what_its_fp32_weights_take(smollm2):
    """The room check's estimate on the real SmolLM2 GGUF equals 4 bytes × the loaded model's weights."""
    need = default_model.gguf_fp32_bytes(default_model.locate_default_gguf())
    assert need == 4 * sum(p.numel() for p in smollm2.model.parameters())
