"""The command line with several prompts: compute a set headless (per-prompt scalars and the aggregate printed),
reopen it with view, and refuse bad prompt files and outputs before any model loads."""

from __future__ import annotations

import pytest

from coupling_tui.core.results import run_file as results
from coupling_tui.core.results import set_file as set_results
from tests.test_cli import cli


def test_compute_a_prompt_set_prints_each_prompt_and_the_aggregate(tiny_dir, tmp_path):
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"text": "The capital of France is", "label": "capital"}\n{"text": "1 1 1 1 1 1"}\n')
    out_dir = tmp_path / "set"
    out = cli("compute", "--model", str(tiny_dir), "--prompt-file", str(prompts), "--top-k", "8",
              "--no-token-coupling", "-o", str(out_dir))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(out_dir)
    assert "2 prompts: capital, p:2" in out.stderr and "computed 2 prompts × 3 layers" in out.stderr
    pset = set_results.load(out_dir)
    lines = out.stderr.splitlines()
    row = next(line for line in lines if line.startswith("1 capital"))
    offdiag = pset.aggregate.header["aggregate"]["scalar"]["all_tokens"]["offdiag"]
    assert f"{offdiag['values'][0]:.3f}" in row
    mean_row = next(line for line in lines if line.startswith("mean (2 prompts)"))
    std_row = next(line for line in lines if line.startswith("std (ddof 1)"))
    assert f"{offdiag['mean']:.3f}" in mean_row and f"{offdiag['std']:.3f}" in std_row
    assert "off-diagonal m_8: last token " in out.stderr                    # the papers' first (issue 18)
    assert f", all-token mean {offdiag['mean']:.3f} ± {offdiag['std']:.3f}; adjacent" in out.stderr
    first = results.load(out_dir / "01-capital.safetensors")
    assert "".join(first.token_texts) == "The capital of France is"
    assert first.header["params"]["prompt_set"]["label"] == "capital"


def test_repeated_prompt_flags_make_a_set(tiny_dir, tmp_path):
    out = cli("compute", "--model", str(tiny_dir), "-p", "Hello world", "-p", "1 1 1", "--top-k", "0",
              "-o", str(tmp_path / "s"))
    assert out.returncode == 0, out.stderr
    assert "nothing to aggregate" in out.stderr
    assert set_results.load(tmp_path / "s").labels == ["prompt 1", "prompt 2"]


@pytest.mark.parametrize("make, extra, message", [
    (lambda d: d.joinpath("b.jsonl").write_text('{"text": "ok"}\n{"text": \n'), [], "line 2 is not valid JSON"),
    (lambda d: d.joinpath("b.jsonl").write_bytes(b'{"text": "caf\xe9"}\n'), [], "is not UTF-8 text"),
    (lambda d: d.joinpath("b.jsonl").write_text("\n"), [], "holds no prompts"),
    (lambda d: d.joinpath("b.jsonl").write_text('{"text": "a"}\n{"text": "b"}\n'), ["-o", "x.safetensors"],
     "a run of 2 prompts is saved as a directory"),
    (lambda d: d.joinpath("b.jsonl").write_text('{"text": "a"}\n{"text": "b"}\n'), ["--collapse"],
     "--collapse measures fixed sequence families"),
])
def test_bad_prompt_sets_fail_before_the_model_loads(tmp_path, make, extra, message):
    make(tmp_path)
    out = cli("compute", "--model", "/no/such/model", "--prompt-file", str(tmp_path / "b.jsonl"), *extra,
              cwd=tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.startswith(f"coupling-tui: error: {message}") or message in out.stderr.splitlines()[0], \
        out.stderr
    assert "model not found" not in out.stderr
