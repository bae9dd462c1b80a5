"""The command line as a user runs it: compute headless on a local model, view without torch, and clear errors."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from coupling_tui.core.results import run_file as results

CLI = [sys.executable, "-m", "coupling_tui.tui.main"]


def cli(*args, **kw):
    env = dict(os.environ, **kw.pop("env", {}))
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, timeout=300, **kw)


def test_help_documents_every_flag():
    out = cli("--help")
    assert out.returncode == 0
    for flag in ("--model", "--revision", "--dtype", "--device", "--trust-remote-code", "--random-init", "--seed",
                 "--prompt", "--prompt-file", "--max-tokens", "--output", "compute", "view"):
        assert flag in out.stdout, flag
    assert "--output" in cli("compute", "--help").stdout


def test_compute_writes_a_results_file(tiny_dir, tmp_path):
    out_path = tmp_path / "run.safetensors"
    out = cli("compute", "--model", str(tiny_dir), "--prompt", "The capital of France is", "-o", str(out_path))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(out_path)
    run = results.load(out_path)
    assert run.finished and run.n_layers == 3 and "".join(run.token_texts) == "The capital of France is"
    assert run.header["params"]["model"] == str(tiny_dir)


def test_truncation_is_announced(tiny_dir, tmp_path):
    out = cli("compute", "--model", str(tiny_dir), "-p", "1 1 1 1 1 1 1 1 1 1", "--max-tokens", "3",
              "-o", str(tmp_path / "r.safetensors"))
    assert out.returncode == 0, out.stderr
    assert "analysing the first 3" in out.stderr


@pytest.mark.parametrize("args, message", [
    (["compute", "--prompt", "   "], "--prompt is empty"),
    (["compute", "--prompt-file", "/no/such/prompt.txt"], "cannot read prompt file"),
    (["compute", "--model", "/no/such/model"], "model not found: /no/such/model"),
    (["compute", "--max-tokens", "0"], "--max-tokens must be at least 1"),
    (["view", "/no/such/run.safetensors"], "cannot open /no/such/run.safetensors: no such file"),
])
def test_errors_are_one_message_without_traceback(args, message):
    out = cli(*args)
    assert out.returncode == 2
    assert out.stderr.startswith(f"coupling-tui: error: {message}"), out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.splitlines()) <= 3


def test_non_utf8_prompt_file(tmp_path):
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("caf\xe9".encode("latin-1"))
    out = cli("compute", "--prompt-file", str(bad))
    assert out.returncode == 2 and "is not UTF-8" in out.stderr and "Traceback" not in out.stderr


def test_prompt_file_comment_lines_are_dropped(tmp_path):
    from coupling_tui.core.options.prompts import read_prompt

    f = tmp_path / "p.txt"
    f.write_text("# shows something\nThe capital of France is\n")
    assert read_prompt(None, str(f)) == "The capital of France is"
    f.write_text("# only a comment\n\n")
    from coupling_tui.core.errors import UserError
    with pytest.raises(UserError, match="is empty"):
        read_prompt(None, str(f))
