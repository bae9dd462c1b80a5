"""`coupling-tui collapse` (core.cli.collapse) and the --collapse flags of compute/explore (core.cli): the spec the
flags make, clear errors, and headless runs on a tiny model into a results file."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from coupling_tui.core.cli import common as cli

from coupling_tui.core.cli import compute
from coupling_tui.core.results import run_file as results
from coupling_tui.core.cli.collapse import build_collapse_parser, collapse_output
from coupling_tui.core.options.collapse import DEFAULT_FAMILIES, FAMILIES, CollapseSpec
from coupling_tui.core.errors import UserError


def run_module(module: str, *args: str):
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ))


def spec_of(*argv: str) -> CollapseSpec:
    return cli.collapse_spec(build_collapse_parser().parse_args(list(argv)))


def test_help_lists_the_collapse_flags():
    text = build_collapse_parser().format_help()
    assert text.startswith("usage: coupling-tui collapse")
    for flag in ("--model", "--families", "--lengths", "--template", "--low-dtype", "--no-sensitivity", "--probes",
                 "--sensitivity-method", "--output", "8:256:x2"):
        assert flag in text, flag
    assert "--collapse " in compute.build_compute_parser().format_help()


def test_flags_make_the_spec():
    assert spec_of() == CollapseSpec()
    assert spec_of("--families", "all").families == FAMILIES
    spec = spec_of("--families", "ones, commas", "--lengths", "4:32:x2", "--low-dtype", "float16", "--no-sensitivity",
                   "--collapse-seed", "7", "--probes", "8")
    assert spec == CollapseSpec(families=("ones", "commas"), lengths=(4, 8, 16, 32), low_dtype="float16",
                                sensitivity=False, seed=7, probes=8)
    spec = spec_of("--template", "Say the last digit: {seq}")
    assert spec.families == DEFAULT_FAMILIES + ("template",) and spec.template == "Say the last digit: {seq}"


def test_collapse_attn_picks_the_low_stages_attention_eager_by_default():
    assert spec_of().attention == "eager"
    assert spec_of("--collapse-attn", "sdpa") == CollapseSpec(attention="sdpa")
    assert "--collapse-attn" in build_collapse_parser().format_help()
    with pytest.raises(UserError, match="--collapse-attn tunes the collapse stage, which is off"):
        cli.validated_prompt(compute.build_compute_parser().parse_args(["--collapse-attn", "sdpa"]))


def test_compute_takes_collapse_only_when_asked():
    parser = compute.build_compute_parser()
    assert cli.run_options(parser.parse_args([])).collapse is None
    options = cli.run_options(parser.parse_args(["--collapse", "--lengths", "8,16"]))
    assert options.collapse == CollapseSpec(lengths=(8, 16))
    with pytest.raises(UserError, match="--lengths tunes the collapse stage, which is off"):
        cli.validated_prompt(parser.parse_args(["--lengths", "8,16"]))
    with pytest.raises(UserError, match="unknown collapse family: twos"):
        cli.validated_prompt(parser.parse_args(["--collapse", "--families", "twos"]))


@pytest.mark.parametrize("argv, message", [
    (["--families", "ones,twos"], "unknown collapse family: twos"),
    (["--template", "no slot"], "the template must hold exactly one {seq} slot"),
    (["--low-dtype", "int4"], "unknown low dtype: int4"),
    (["--collapse-attn", "flash"], "unknown collapse attention: flash"),
    (["--lengths", "8:4:x2"], "bad --lengths range"),
])
def test_bad_flags_are_user_errors(argv, message):
    with pytest.raises(UserError, match=message):
        spec_of(*argv)


def test_default_output_is_marked_collapse():
    path = collapse_output(build_collapse_parser().parse_args(["--model", "/x/my-model"]))
    assert path.name.endswith("-my-model-collapse.safetensors") and path.parent.name == "runs"


def test_collapse_command_writes_a_results_file(tiny_dir, tmp_path):
    out_path = tmp_path / "collapse.safetensors"
    out = run_module("coupling_tui.core.cli.collapse", "--model", str(tiny_dir), "--families", "ones,commas",
                     "--lengths", "2:8:x2", "--sensitivity-tokens", "6", "-o", str(out_path))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(out_path)
    run = results.load(out_path)
    assert run.finished and run.header["collapse"]["families"] == ["ones", "commas"]
    assert run.arrays["collapse.lengths"].tolist() == [2, 4, 8] and run.arrays["collapse.sensitivity"].shape == (4,)
    assert run.header["params"]["model"] == str(tiny_dir)
    for word in ("ones", "commas", "bit-identical", "sensitivity", "first token"):
        assert word in out.stderr, word


def test_collapse_command_errors_are_one_message(tiny_dir):
    out = run_module("coupling_tui.core.cli.collapse", "--families", "twos", "--model", "/no/such/model")
    assert out.returncode == 2                                      # the flags are checked before any model loads
    assert out.stderr.startswith("coupling-tui: error: unknown collapse family: twos"), out.stderr
    out = run_module("coupling_tui.core.cli.collapse", "--lengths", "500", "--model", str(tiny_dir))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert ("coupling-tui: error: collapse length 500 is beyond the model's context: the commas sequence with 501 "
            "repeats has 669 tokens, the model takes 256") in out.stderr


def test_compute_with_collapse_stores_both(tiny_dir, tmp_path):
    out_path = tmp_path / "both.safetensors"
    out = run_module("coupling_tui.core", "--model", str(tiny_dir), "-p", "1 1 1", "--top-k", "2", "--collapse",
                     "--families", "digits", "--lengths", "3", "--no-sensitivity", "-o", str(out_path))
    assert out.returncode == 0, out.stderr
    run = results.load(out_path)
    assert run.arrays["jacobian.singular_values"].shape == (3, 3, 2)
    assert run.arrays["collapse.diff"].shape == (1, 1, 3) and run.header["stages"][-1]["name"] == "collapse"


def test_collapse_cli_and_spec_import_no_torch():
    code = ("import sys; import coupling_tui.core.cli.collapse, coupling_tui.core.options.collapse, "
            "coupling_tui.core.engine.collapse_pairs, coupling_tui.core.cli.common; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_coupling_tui_collapse_is_the_same_command(tiny_dir, tmp_path, capsys):
    from coupling_tui.tui.main import build_explore_parser, main

    assert "coupling-tui collapse " in build_explore_parser().format_help()
    out_path = tmp_path / "c.safetensors"
    assert main(["collapse", "--model", str(tiny_dir), "--families", "digits", "--lengths", "2,3",
                 "--no-sensitivity", "-o", str(out_path)]) == 0
    assert capsys.readouterr().out.strip() == str(out_path)
    run = results.load(out_path)
    assert run.header["collapse"]["families"] == ["digits"] and run.arrays["collapse.lengths"].tolist() == [2, 3]


def test_the_explorer_takes_the_collapse_flags(tiny_dir, tmp_path, monkeypatch, capsys):
    """``coupling-tui --collapse …`` streams the collapse stage into the app after the layers."""
    from coupling_tui.tui import app as app_module
    from coupling_tui.tui.main import main

    streamed: list = []
    monkeypatch.setattr(app_module.CouplingApp, "run", lambda self: streamed.extend(self._job()))
    assert main(["--model", str(tiny_dir), "-p", "1 1", "--top-k", "0", "--collapse", "--families", "ones",
                 "--lengths", "2,4", "--no-sensitivity", "-o", str(tmp_path / "x.safetensors")]) == 0
    stages = [e.stage for e in streamed if hasattr(e, "stage")]
    assert stages == ["layers"] * 3 + ["collapse"] * 2
    assert streamed[0].header["collapse"]["lengths"] == [2, 4]
    assert main(["--lengths", "4", "--model", "/no/such/model"]) == 2      # checked before any model loads
    assert "--lengths tunes the collapse stage, which is off" in capsys.readouterr().err


def test_the_summary_table_leads_with_linf_and_shows_shares_with_one_decimal():
    """The table `coupling-tui collapse` prints: L∞ of the stored float32 pair (recomputed here with numpy) and the
    bit-identical share with one decimal, or "0 of d"."""
    from types import SimpleNamespace

    from rich.console import Console

    from coupling_tui.core.cli.collapse import summary_table

    rng = np.random.default_rng(0)
    d = 576
    final = rng.normal(size=(2, 2, 2, d)).astype(np.float32)
    linf = np.abs(final[..., 1, :].astype(np.float64) - final[..., 0, :]).max(-1)
    diff = np.zeros((2, 2, 3), np.float32)
    diff[..., 1] = linf
    run = SimpleNamespace(header={"collapse": {"families": ["ones", "commas"], "reference_dtype": "float32",
                                               "low_dtype": "bfloat16"}},
                          arrays={"collapse.lengths": np.array([8, 16]), "collapse.final": final,
                                  "collapse.diff": diff,
                                  "collapse.identical_low": np.float32([[4 / d, 0], [1 / d, 35 / d]])})
    console = Console(width=200, record=True)
    console.print(summary_table(run))
    text = console.export_text()
    assert "‖y(n+1) − y(n)‖_∞" in text and "pre-final-norm" in text
    cells = {line.split()[1]: line for line in text.splitlines() if line.split()[1:2] in (["8"], ["16"])}
    assert f"{linf[0, 0]:.3g} (0.7 %)" in cells["8"] and f"{linf[1, 0]:.3g} (0.2 %)" in cells["8"]
    assert f"{linf[0, 1]:.3g} (0 of 576)" in cells["16"] and f"{linf[1, 1]:.3g} (6.1 %)" in cells["16"]
