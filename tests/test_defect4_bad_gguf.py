"""Defect 4 (#17): a bad .gguf (random bytes, empty, truncated header) must be one UserError naming the file,
not a traceback from the GGUF reader."""
import os

import pytest

from coupling_tui.core.errors import UserError
from coupling_tui.core.load import default_model

_CASES = {
    "empty": b"",
    "random": os.urandom(4096),
    "magic_only": b"GGUF",
    "truncated_header": b"GGUF" + (3).to_bytes(4, "little") + (5).to_bytes(8, "little"),
    "text": b"hello, not a model\n" * 50,
}


@pytest.mark.parametrize("kind", sorted(_CASES))
def test_defect4_bad_gguf_is_one_user_error_naming_the_file(kind, tmp_path, monkeypatch):
    monkeypatch.setenv("COUPLING_TUI_CACHE_DIR", str(tmp_path / "cache"))
    gguf = tmp_path / f"bad-{kind}.gguf"
    gguf.write_bytes(_CASES[kind])
    with pytest.raises(UserError) as e:
        default_model.converted_dir(gguf)
    assert str(gguf) in str(e.value)
    assert not any((tmp_path / "cache").rglob("model.safetensors"))
