"""Issue 17 defect 7: a single run's -o target is checked before the model loads."""

from __future__ import annotations

import os

import pytest

from coupling_tui.core.cli import compute


@pytest.mark.parametrize("case", ["existing_dir", "parent_is_file", "read_only_dir"])
def test_defect7_output_checked_before_model_loads(tmp_path, monkeypatch, capsys, case):
    def no_load(*a, **k):
        raise AssertionError("the model loader was called")

    monkeypatch.setattr(compute, "load_announced", no_load)
    if case == "existing_dir":
        out = tmp_path / "d"
        out.mkdir()
    elif case == "parent_is_file":
        (tmp_path / "afile").write_text("x")
        out = tmp_path / "afile" / "r.safetensors"
    else:
        if os.geteuid() == 0:
            pytest.skip("root can write a read-only directory")
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        out = ro / "r.safetensors"
    assert compute.main(["-p", "hello", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "coupling-tui: error: cannot write" in err and "Traceback" not in err
