"""The estimate before a run (against the measured default run), the ask/refuse/--yes logic, and --layers parsing."""

from __future__ import annotations

import io

import pytest

from coupling_tui.core import cost
from coupling_tui.core.cli import cost_check
from coupling_tui.core.cost import estimate
from coupling_tui.core.cli.cost_check import confirm, verdict
from coupling_tui.core.errors import UserError
from coupling_tui.core.options.layers import parse_layers, select_layers

GB = 1e9
DEFAULT_RUN = dict(n_layers=30, d=576, tokens=52, top_k=50, history_mb=4096.0, dtype="float32", token_coupling=True,
                   weights_bytes=134.5e6 * 4, family="llama", device="cpu", threads=2)
"""SmolLM2-135M on the built-in prompt, as measured on the reference CPU (core/cost.py): 114 s, 2.07 GB of dense-J
history."""


def test_the_default_run_matches_its_measured_cost():
    c = estimate(**DEFAULT_RUN)
    assert 90 < c.total_seconds < 140                                   # measured 114 s
    assert c.seconds["Jacobians"] == pytest.approx(21.7, rel=0.05)
    assert c.seconds["top-K"] == pytest.approx(33.9, rel=0.05)
    assert c.seconds["depth coupling"] == pytest.approx(21.5, rel=0.15)
    assert c.seconds["token coupling"] == pytest.approx(33.7, rel=0.15)
    assert c.memory["dense-J history"] == pytest.approx(2.07 * GB, rel=0.01)
    assert c.memory["singular bases"] == pytest.approx(0.36 * GB, rel=0.05)
    assert 2.5 * GB < c.total_bytes < 5 * GB
    assert c.text().startswith("about 3.") and "2.1 GB dense-J history" in c.text() and "about 2 min" in c.text()


def test_what_the_flags_save():
    base = estimate(**DEFAULT_RUN)
    no_token = estimate(**{**DEFAULT_RUN, "token_coupling": False})
    assert base.total_seconds - no_token.total_seconds == pytest.approx(33.7, rel=0.15)
    small_k = estimate(**{**DEFAULT_RUN, "top_k": 10})
    ratio = (base.seconds["depth coupling"] + base.seconds["token coupling"]) / (
        small_k.seconds["depth coupling"] + small_k.seconds["token coupling"])
    assert 4 < ratio < 6                                                # "shrinks both coupling terms about 5×"
    second_pass = estimate(**{**DEFAULT_RUN, "history_mb": 1000})
    assert "dense-J history" not in second_pass.memory
    assert second_pass.seconds["Jacobians"] == pytest.approx(2 * base.seconds["Jacobians"])
    twelve = estimate(**{**DEFAULT_RUN, "layers": list(range(12))})
    assert twelve.memory["dense-J history"] == pytest.approx(base.memory["dense-J history"] * 12 / 30)
    assert twelve.seconds["depth coupling"] == pytest.approx(base.seconds["depth coupling"] * (12 / 30) ** 2)
    longer = estimate(**{**DEFAULT_RUN, "tokens": 104})
    assert longer.seconds["token coupling"] == pytest.approx(4 * base.seconds["token coupling"])
    assert list(estimate(**{**DEFAULT_RUN, "top_k": 0}).seconds) == ["forward trace"]   # only the forward pass
    baseline = estimate(**{**DEFAULT_RUN, "baseline": True})
    assert baseline.memory["dense-J history"] == 2 * base.memory["dense-J history"]   # both passes are built first
    assert estimate(**{**DEFAULT_RUN, "family": "gpt2"}).seconds["Jacobians"] > 2 * base.seconds["Jacobians"]


def test_defect6_a_long_top_k_0_run_is_estimated_with_its_forward_pass():
    """The --top-k 0 run over 8,192 tokens that took 214 s (issue 17) was estimated "about 1 s": the forward trace
    is estimated now, so its estimate is near 214 s, and longer prompts (attention is O(T²)) reach the ask and
    refuse thresholds, for one prompt and for a prompt set."""
    run = {**DEFAULT_RUN, "top_k": 0, "tokens": 8192}
    assert 214 / 2 < estimate(**run).total_seconds < 214 * 2
    assert cost_check.verdict(estimate(**{**run, "tokens": 32768}), None)[0] == "ask"
    assert estimate(**{**run, "tokens": 32768}).total_seconds > cost_check.ASK_SECONDS
    assert cost_check.verdict(estimate(**{**run, "tokens": 131072}), None)[0] == "refuse"
    four = cost_check.set_cost([estimate(**{**run, "tokens": 16384})] * 4)
    assert cost_check.verdict(four, None)[0] == "ask"
    assert estimate(**{**run, "baseline": True}).total_seconds == pytest.approx(2 * estimate(**run).total_seconds)


@pytest.mark.parametrize("extra", [{}, {"vju": True, "token_pairs": 2, "context_layers": 2},
                                   {"history_mb": 1.0}, {"family": "gpt2", "baseline": True}, {"top_k": 0}])
def test_defect6_every_stage_is_estimated_and_grows_with_the_tokens(extra):
    """Every stage the run has (forward trace, Jacobians, top-K, depth/token coupling, vju, token pairs, context)
    has an estimate, and each grows with T; the forward pass's attention makes it superlinear in T."""
    short, long = (estimate(**{**DEFAULT_RUN, **extra, "tokens": t}) for t in (52, 208))
    assert "forward trace" in short.seconds and short.seconds.keys() == long.seconds.keys()
    for stage, seconds in short.seconds.items():
        assert 0 < seconds < long.seconds[stage], stage
    if extra.get("context_layers"):
        assert {"vju coupling", "token pairs", "context coupling"} <= short.seconds.keys()
    f = [estimate(**{**DEFAULT_RUN, **extra, "tokens": t}).seconds["forward trace"] for t in (1024, 2048, 4096)]
    assert f[2] - f[1] > 2 * (f[1] - f[0]) * 0.99                      # the O(T²) attention term


def test_more_threads_and_a_gpu_are_faster():
    base = estimate(**DEFAULT_RUN).total_seconds
    assert estimate(**{**DEFAULT_RUN, "threads": 8}).total_seconds == pytest.approx(base / 4)
    assert estimate(**{**DEFAULT_RUN, "device": "cuda"}).total_seconds < base / 10
    assert "GPU (rough)" in estimate(**{**DEFAULT_RUN, "device": "cuda"}).text()


def test_copied_constants_match_the_engine():
    from coupling_tui.core.engine.coupling_stream import COUPLING_KS, coupling_ks
    from coupling_tui.core.engine.jacobians.closed_form import FAMILIES
    from coupling_tui.core.engine.jacobians.layers import DENSE_BUDGET_BYTES

    assert cost.COUPLING_KS == COUPLING_KS and cost.CLOSED_FORM_FAMILIES == FAMILIES
    assert cost.DENSE_BUDGET_BYTES == DENSE_BUDGET_BYTES
    for k in (0, 1, 7, 8, 9, 10, 29, 30, 49, 50, 64, 200):
        assert cost.coupling_ks(k) == coupling_ks(k)


def test_cost_modules_import_no_torch():
    import subprocess
    import sys

    code = ("import sys; from coupling_tui.core import cost, faults; "
            "from coupling_tui.core.cli import cost_check, run_bounds; "
            "from coupling_tui.core.options import run_options; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def _cost(gb: float, seconds: float) -> cost.RunCost:
    return cost.RunCost(memory={"dense-J history": gb * GB}, seconds={"Jacobians": seconds})


@pytest.mark.parametrize("gb, seconds, available, level", [
    (1, 60, 16, "ok"),
    (9, 60, 16, "ask"),                 # over half the free memory
    (1, 1200, 16, "ask"),               # over 10 minutes
    (15, 60, 16, "refuse"),             # over 90% of the free memory
    (1, 5 * 3600, 16, "refuse"),        # over 4 hours
    (100, 60, None, "ok"),              # free memory unknown: time alone decides
])
def test_verdict_thresholds(gb, seconds, available, level):
    assert verdict(_cost(gb, seconds), None if available is None else available * GB)[0] == level


class Asked:
    def __init__(self, answer: str | None):
        self.answer, self.questions, self.said = answer, [], []

    def ask(self, question: str) -> str:
        self.questions.append(question)
        if self.answer is None:
            raise EOFError
        return self.answer

    def run(self, c, available=16 * GB, **kw):
        return confirm(c, available, ask=self.ask, say=self.said.append, **kw)


def test_a_small_run_starts_without_a_question():
    a = Asked("n")
    a.run(_cost(1, 60), yes=False, interactive=True)
    assert a.questions == [] and a.said == ["estimate: about 1.0 GB (1.0 GB dense-J history) and about 60 s on the CPU"]


@pytest.mark.parametrize("answer, starts", [("y", True), ("yes", True), ("n", False), ("", False), (None, False)])
def test_an_interactive_large_run_asks_first(answer, starts):
    a = Asked(answer)
    if starts:
        a.run(_cost(9, 60), yes=False, interactive=True)
    else:
        with pytest.raises(UserError, match="^not started") as info:
            a.run(_cost(9, 60), yes=False, interactive=True)
        assert "--max-tokens" in info.value.hint and "--layers" in info.value.hint
    assert len(a.questions) == 1 and "[y/N]" in a.questions[0] and "9.0 GB of the 16.0 GB free" in a.questions[0]


def test_a_run_that_cannot_fit_is_asked_about_interactively_and_refused_otherwise():
    a = Asked("y")
    a.run(_cost(15, 60), yes=False, interactive=True)
    assert len(a.questions) == 1
    with pytest.raises(UserError) as info:
        Asked("y").run(_cost(15, 60), yes=False, interactive=False)
    assert str(info.value).startswith("refusing a run this large without --yes: it needs 15.0 GB and 16.0 GB is free")
    for flag in ("--max-tokens", "--top-k", "--layers", "--dtype", "--yes"):
        assert flag in info.value.hint


def test_a_large_run_without_a_terminal_is_only_announced():
    a = Asked(None)
    a.run(_cost(9, 1200), yes=False, interactive=False)
    assert a.questions == [] and a.said[0].startswith("estimate: about 9.0 GB")


def test_yes_starts_anything_without_asking():
    for interactive in (True, False):
        a = Asked("n")
        a.run(_cost(100, 10 * 3600), yes=True, interactive=interactive)
        assert a.questions == [] and len(a.said) == 1


def test_free_memory_is_read():
    free = cost_check.available_memory("cpu")
    assert free is None or 1e7 < free < 1e14


# -- through the command line (in process, on the tiny model) --

def _compute(argv, tiny_dir, tmp_path, monkeypatch, capsys, free=None, stdin=None, ask_above_s=None):
    from coupling_tui.core.cli import compute

    if ask_above_s is not None:
        monkeypatch.setattr(cost_check, "ASK_SECONDS", ask_above_s)
    if free is not None:
        monkeypatch.setattr(cost_check, "available_memory", lambda device="cpu": free)
    if stdin is not None:
        monkeypatch.setattr("sys.stdin", stdin)
    out = tmp_path / "run.safetensors"
    status = compute.main(["--model", str(tiny_dir), "-p", "The capital of France is", "-o", str(out), *argv])
    return status, capsys.readouterr(), out


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_compute_prints_the_estimate_and_refuses_when_it_cannot_fit(tiny_dir, tmp_path, monkeypatch, capsys):
    from coupling_tui.core.engine import stream as engine

    started = []
    monkeypatch.setattr(engine, "stream", lambda *a, **k: started.append(1) or iter(()))
    status, out, path = _compute([], tiny_dir, tmp_path, monkeypatch, capsys, free=1e5)
    assert status == 2 and not started and not path.exists()
    assert "estimate: about " in out.err
    assert "coupling-tui: error: refusing a run this large without --yes: it needs " in out.err
    assert "Traceback" not in out.err


@pytest.mark.parametrize("k,noted", [(33, True), (10_000, True), (32, False), (8, False)])
def test_smaller_top_k_above_d_is_announced(tiny_dir, tmp_path, monkeypatch, capsys, k, noted):
    """--top-k above the model's width (d = 32 here) says, on one stderr line, that K = d is used; K ≤ d says
    nothing. The run itself is not started (stopped at the estimate)."""
    def stop(*a, **kw):
        raise UserError("stopped by the test")

    monkeypatch.setattr(cost_check, "confirm", stop)
    _status, out, _path = _compute(["--top-k", str(k)], tiny_dir, tmp_path, monkeypatch, capsys)
    lines = [line for line in out.err.splitlines() if "--top-k" in line and "width" in line]
    assert lines == ([f"note: --top-k {k} is more than the model's width d = 32: using K = 32"] if noted else []), out.err


def test_compute_with_yes_runs_what_it_would_refuse(tiny_dir, tmp_path, monkeypatch, capsys):
    status, out, path = _compute(["--yes"], tiny_dir, tmp_path, monkeypatch, capsys, free=1e5)
    assert status == 0 and path.exists() and "estimate: about " in out.err


@pytest.mark.parametrize("answer, status", [("y\n", 0), ("n\n", 2)])
def test_compute_asks_on_a_terminal(tiny_dir, tmp_path, monkeypatch, capsys, answer, status):
    got, out, path = _compute([], tiny_dir, tmp_path, monkeypatch, capsys, stdin=FakeTTY(answer), ask_above_s=0)
    assert got == status and path.exists() == (status == 0)
    assert "Start it? [y/N]" in out.err + out.out
    if status:
        assert "coupling-tui: error: not started" in out.err


# -- --layers --

@pytest.mark.parametrize("text, n_layers, expected", [
    ("0:12", 30, list(range(12))),
    ("3,7,12", 30, [3, 7, 12]),
    ("20:", 30, list(range(20, 30))),
    (":3", 30, [0, 1, 2]),
    ("0:4, 10, 28:", 30, [0, 1, 2, 3, 10, 28, 29]),
    ("7,3,7", 30, [3, 7]),
    ("0:30", 30, None),                 # every block: the same as no --layers
    (":", 30, None),
    (None, 30, None),
])
def test_layers_select_blocks(text, n_layers, expected):
    assert select_layers(parse_layers(text), n_layers) == expected


@pytest.mark.parametrize("text, message", [
    ("x", "--layers x: cannot read 'x'"),
    ("3,,4", "--layers 3,,4: cannot read ''"),
    ("-1", "--layers -1: cannot read '-1'"),
    ("5:5", "--layers 5:5: the range 5:5 is empty"),
    ("1:2:3", "--layers 1:2:3: cannot read '1:2:3'"),
])
def test_bad_layers_syntax_is_refused_before_loading(text, message):
    with pytest.raises(UserError, match=f"^{message}"):
        parse_layers(text)


@pytest.mark.parametrize("text, block", [("30", 30), ("28:31", 30), ("40:", 40), ("2,31", 31)])
def test_layers_past_the_last_block_name_the_depth(text, block):
    with pytest.raises(UserError, match=f"names block {block}, and the model has 30 blocks \\(0..29\\)"):
        select_layers(parse_layers(text), 30)


def test_layers_flag_is_checked_before_the_model_loads():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "coupling_tui.tui.main", "compute", "--model", "/no/such/model",
                          "--layers", "3-7"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and out.stderr.startswith("coupling-tui: error: --layers 3-7: cannot read '3-7'")


def test_the_coupling_extras_add_their_stages():
    base = estimate(**DEFAULT_RUN)
    extra = estimate(**DEFAULT_RUN, vju=True, token_pairs=58, context_layers=3)
    assert extra.seconds["vju coupling"] == pytest.approx(base.seconds["depth coupling"])     # the same product
    assert extra.seconds["token pairs"] == pytest.approx(base.seconds["token coupling"] * 58 / 30)
    one = estimate(**DEFAULT_RUN, context_layers=1).seconds["context coupling"]
    assert 3 < one < 30 and extra.seconds["context coupling"] > 3 * one         # cross-layer pairs cost more
    assert extra.memory["context Jacobians"] == pytest.approx(2 * 3 * 52 * 576 ** 2 * 4)
    small = estimate(**{**DEFAULT_RUN, "history_mb": 0.0}, context_layers=3)
    assert small.memory["context Jacobians"] == pytest.approx(2 * 52 * 576 ** 2 * 4)      # same-layer only
    assert extra.total_seconds > base.total_seconds + 21


# -- the collapse stage (issue 18 item 3) --

def test_the_collapse_estimate_counts_every_forward_pass_in_both_precisions():
    from coupling_tui.core.cost import (COLLAPSE_CALL_SECONDS, COLLAPSE_FLOPS, COLLAPSE_LOW_FLOPS, FORWARD_LINEAR,
                                        CollapseWork, collapse_seconds)

    tokens = (7, 9, 15, 17)
    flops = [30 * t * (FORWARD_LINEAR * 576 ** 2 + 4 * t * 576) for t in tokens]      # the forward model, by hand
    sec = collapse_seconds(CollapseWork(sequences=tokens, low_dtype="bfloat16"), n_layers=30, d=576)
    assert sec == {"collapse pairs": pytest.approx(sum(f / COLLAPSE_FLOPS + COLLAPSE_CALL_SECONDS for f in flops)),
                   "collapse low precision": pytest.approx(sum(f / COLLAPSE_LOW_FLOPS + COLLAPSE_CALL_SECONDS
                                                               for f in flops))}
    same = collapse_seconds(CollapseWork(sequences=tokens, low_dtype="float32"), n_layers=30, d=576)
    assert same["collapse low precision"] == pytest.approx(same["collapse pairs"])
    bf16 = estimate(**{**DEFAULT_RUN, "weights_bytes": 540e6}, collapse=CollapseWork(sequences=tokens))
    f32 = estimate(**{**DEFAULT_RUN, "weights_bytes": 540e6}, collapse=CollapseWork(tokens, low_dtype="float32"))
    assert bf16.memory["collapse low copy"] == pytest.approx(270e6)                # the bfloat16 copy
    assert f32.memory["collapse low copy"] == 0


def test_the_collapse_estimate_grows_quadratically_at_long_lengths_and_adds_the_sensitivity():
    from coupling_tui.core.cost import CollapseWork, collapse_seconds

    def seconds(n, **kw):
        return sum(collapse_seconds(CollapseWork(sequences=(2 * n - 1, 2 * n + 1), **kw), n_layers=30,
                                    d=576).values())

    assert seconds(1024) > 2 * seconds(512) > 4 * seconds(256)                     # attention's T² term shows
    with_sens = collapse_seconds(CollapseWork(sequences=(127, 129), sensitivity_tokens=127, sensitivity_probes=32),
                                 n_layers=30, d=576)
    assert with_sens["collapse sensitivity"] > 0 and sum(with_sens.values()) > seconds(64)


def test_the_collapse_command_prints_the_estimate_first(tiny_dir, tmp_path, capsys):
    from coupling_tui.core.cli.collapse import build_collapse_parser, collapse_command

    args = build_collapse_parser().parse_args(["--model", str(tiny_dir), "--families", "ones", "--lengths", "2,4",
                                               "--no-sensitivity", "-o", str(tmp_path / "c.safetensors")])
    assert collapse_command(args) == 0
    err = capsys.readouterr().err
    assert "estimate: about" in err
    assert err.index("estimate:") < err.index("attention: float32")


def test_the_explorer_estimate_includes_the_collapse_stage_and_refuses_a_length_beyond_the_context(tiny_dir):
    from coupling_tui.core.cli.cost_check import estimate_for
    from coupling_tui.core.errors import UserError
    from coupling_tui.core.load.models import ModelRequest, load
    from coupling_tui.core.options.collapse import CollapseSpec
    from coupling_tui.core.options.run_options import RunOptions

    loaded = load(ModelRequest(model=str(tiny_dir)))
    plain = estimate_for(RunOptions(top_k=0), loaded, "1 1 1")
    cost = estimate_for(RunOptions(top_k=0, collapse=CollapseSpec(lengths=(2, 4))), loaded, "1 1 1")
    assert "collapse pairs" in cost.seconds and "collapse sensitivity" in cost.seconds
    assert cost.total_seconds > plain.total_seconds
    context = loaded.model.config.max_position_embeddings
    with pytest.raises(UserError, match="beyond the model's context"):
        estimate_for(RunOptions(top_k=0, collapse=CollapseSpec(lengths=(context,))), loaded, "1 1 1")
