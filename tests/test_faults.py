"""Faults: out of memory (CLI and explorer) and many writers racing for one results file, each ending in one message,
a clean exit and no half-written file; and prompts cut to --max-tokens or the model's context, announced. Ctrl-C and
SIGTERM mid-compute: tests/test_faults_signals.py."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from coupling_tui.core import faults
from coupling_tui.core.results import run_file as results
from coupling_tui.core.atomic import atomic_write_bytes
from coupling_tui.core.errors import UserError
from coupling_tui.core.engine.jacobians.layers import LayerJacobians
from coupling_tui.core.results.run import Run
from tests.fakes import fake_events

OOM_ERRORS = {
    "cuda": lambda: torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 7.79 GiB "
                                                "total capacity)"),
    "memory-error": lambda: MemoryError(),
    "cpu-allocator": lambda: RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't "
                                          "allocate memory: you tried to allocate 8589934592 bytes. Error code 12"),
    "not-enough": lambda: RuntimeError("[enforce fail at CPUAllocator.cpp:71] . DefaultCPUAllocator: not enough "
                                       "memory: you tried to allocate 8589934592 bytes."),
}


@pytest.mark.parametrize("kind", list(OOM_ERRORS))
def test_out_of_memory_is_recognised(kind):
    assert faults.is_out_of_memory(OOM_ERRORS[kind]())


@pytest.mark.parametrize("exc", [RuntimeError("shape mismatch"), ValueError("out of memory"), OSError("x")])
def test_other_errors_are_not_out_of_memory(exc):
    assert not faults.is_out_of_memory(exc)


def _oom_at_layer(monkeypatch, kind: str, layer: int = 1) -> None:
    """Make the Jacobian of block ``layer`` run out of memory, as a real allocation would."""
    original = LayerJacobians.layer

    def layer_or_oom(self, index, tokens):
        if index == layer:
            raise OOM_ERRORS[kind]()
        return original(self, index, tokens)

    monkeypatch.setattr(LayerJacobians, "layer", layer_or_oom)


@pytest.mark.parametrize("kind", list(OOM_ERRORS))
def test_compute_out_of_memory_is_one_message_with_the_estimate(tiny_dir, tmp_path, monkeypatch, capsys, kind):
    from coupling_tui.core.cli import compute

    _oom_at_layer(monkeypatch, kind)
    out = tmp_path / "run.safetensors"
    out.write_bytes(b"the previous results")
    status = compute.main(["--model", str(tiny_dir), "-p", "The capital of France is", "-o", str(out)])
    err = capsys.readouterr().err
    assert status == 2 and "Traceback" not in err
    estimate = next(line for line in err.splitlines() if line.startswith("estimate: "))[len("estimate: "):]
    lines = err[err.index("coupling-tui: error:"):].splitlines()
    assert lines == [f"coupling-tui: error: out of memory while computing; this run needs {estimate}",
                     "  make the run smaller with --max-tokens, --top-k, --layers, --history-mb, --no-token-coupling "
                     "or --dtype"]
    assert out.read_bytes() == b"the previous results" and sorted(os.listdir(tmp_path)) == ["run.safetensors"]


def test_out_of_memory_outside_the_engine_is_still_one_message(capsys):
    from coupling_tui.core.cli.common import guarded

    def boom():
        raise OOM_ERRORS["cpu-allocator"]()

    assert guarded(boom) == 2
    err = capsys.readouterr().err
    assert err.startswith("coupling-tui: error: out of memory while running\n  make the run smaller with")
    with pytest.raises(RuntimeError):                                   # --debug shows the traceback
        guarded(boom, debug=True)
    with pytest.raises(RuntimeError, match="shape"):                    # other bugs are not disguised
        guarded(lambda: (_ for _ in ()).throw(RuntimeError("shape mismatch")))


def test_the_memory_guard_closes_the_engine_when_closed():
    closed = []

    def engine():
        try:
            yield 1
            yield 2
        finally:
            closed.append(True)

    events = faults.memory_guarded(engine())
    assert next(events) == 1
    events.close()
    assert closed == [True]


# -- the explorer --

async def _run_app_until_error(app, save_path: Path) -> str:
    from tests.test_app import wait_until

    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: app.state_text.startswith("error"), timeout=60)
        assert app.is_running and app._exception is None
        text = app.state_text
    assert not save_path.exists()
    return text


async def test_explorer_out_of_memory_shows_the_estimate(tiny_dir, tmp_path, monkeypatch):
    from rich.console import Console

    from coupling_tui.core.cli import common as core_cli
    from coupling_tui.core.cli import run_job
    from coupling_tui.tui.app import CouplingApp
    from coupling_tui.tui.main import build_explore_parser

    args = build_explore_parser().parse_args(["--model", str(tiny_dir), "-p", "The capital of France is"])
    console = Console(file=open(os.devnull, "w"))
    loaded, baseline = core_cli.load_with_status(args, console)
    job = run_job.prepare(core_cli.run_options(args), loaded, baseline, "The capital of France is", console,
                          yes=args.yes)
    _oom_at_layer(monkeypatch, "cuda")
    save_path = tmp_path / "run.safetensors"
    shown = await _run_app_until_error(CouplingApp(job=job, save_path=save_path), save_path)
    assert shown.startswith("error: out of memory while computing; this run needs about ")
    assert shown.endswith(" — make the run smaller with --max-tokens, --top-k, --layers, --history-mb, "
                          "--no-token-coupling or --dtype")


async def test_explorer_names_out_of_memory_from_any_job(tmp_path):
    from coupling_tui.tui.app import CouplingApp

    events = fake_events(n_layers=4, n_tokens=5)

    def job():
        yield events[0]
        raise MemoryError()

    save_path = tmp_path / "run.safetensors"
    shown = await _run_app_until_error(CouplingApp(job=job, save_path=save_path), save_path)
    assert shown == ("error: out of memory while computing — make the run smaller with --max-tokens, --top-k, "
                     "--layers, --history-mb, --no-token-coupling or --dtype")


# -- many writers, one path --

def test_concurrent_atomic_writes_never_mix(tmp_path):
    path = tmp_path / "out.bin"
    payloads = [bytes([i]) * (3 << 20) + f"writer {i}".encode() for i in range(4)]   # 3 MB each, all different
    atomic_write_bytes(path, payloads[0])
    seen, stop, errors = set(), threading.Event(), []

    def writer(i):
        try:
            for _ in range(12):
                atomic_write_bytes(path, payloads[i])
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    def reader():
        while not stop.is_set():
            data = path.read_bytes()
            seen.add(payloads.index(data) if data in payloads else -1)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    watch = threading.Thread(target=reader)
    watch.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    watch.join()
    assert errors == [] and -1 not in seen and seen
    assert path.read_bytes() in payloads
    assert os.listdir(tmp_path) == ["out.bin"]


WRITER = """
import sys
from coupling_tui.core.results import run_file as results
from coupling_tui.core.results.run import Run
from tests.fakes import fake_events
run = Run()
for event in fake_events(n_layers=int(sys.argv[2]), n_tokens=int(sys.argv[3]), seed=int(sys.argv[4])):
    run.apply(event)
open(sys.argv[6], "wb").write(results.to_bytes(run))   # this writer's run, to compare with
for _ in range(int(sys.argv[5])):
    results.save(run, sys.argv[1])
"""


def test_concurrent_processes_saving_one_results_file_leave_one_whole_run(tmp_path):
    target_dir, ref_dir = tmp_path / "runs", tmp_path / "refs"
    target_dir.mkdir()
    ref_dir.mkdir()
    path = target_dir / "run.safetensors"
    sizes = [(6, 40, 1), (8, 30, 2), (5, 50, 3)]                     # different shapes: a mix would not load
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(L), str(T), str(seed), "15",
                               str(ref_dir / f"{seed}.bin")],
                              cwd=Path(__file__).resolve().parents[1], stderr=subprocess.PIPE, text=True)
             for L, T, seed in sizes]
    for p in procs:
        _, err = p.communicate(timeout=240)
        assert p.returncode == 0, err
    back = results.load(path)
    # exactly one writer's whole run (compared by content: safetensors orders its JSON keys anew on each save)
    assert sum(_same_run(back, results.load(ref_dir / f"{seed}.bin")) for _, _, seed in sizes) == 1
    assert back.finished and (back.n_layers, back.n_tokens) in [(L, T) for L, T, _ in sizes]
    assert os.listdir(target_dir) == ["run.safetensors"]              # no temp file left behind


def _same_run(a: Run, b: Run) -> bool:
    return (a.header == b.header and a.arrays.keys() == b.arrays.keys()
            and all(np.array_equal(a.arrays[n], b.arrays[n], equal_nan=True) for n in a.arrays))


def test_a_user_error_is_not_an_oom():
    assert not faults.is_out_of_memory(UserError("out of memory while computing"))


# -- a prompt longer than --max-tokens or the model's context --

@pytest.mark.parametrize("tokens, max_tokens, note", [
    ({"ids": [1, 2, 3], "truncated_from": None}, 128, None),
    ({"ids": [1, 2, 3], "truncated_from": 9}, 3, "the prompt has 9 tokens; analysing the first 3 (raise --max-tokens "
                                                 "to analyse more)"),
    ({"ids": [1, 2, 3], "truncated_from": 9}, 128, "the prompt has 9 tokens; analysing the first 3 (the model's "
                                                   "context is 3 tokens)"),
])
def test_truncation_note(tokens, max_tokens, note):
    from coupling_tui.core.options.prompts import truncation_note

    assert truncation_note({"tokens": tokens, "params": {"max_tokens": max_tokens}}) == note


def test_a_prompt_longer_than_the_context_is_announced(tiny_dir, tmp_path):
    out = subprocess.run([sys.executable, "-m", "coupling_tui.tui.main", "compute", "--model", str(tiny_dir), "-p",
                          "1 1 1 1 " * 100, "--max-tokens", "1000", "--top-k", "0", "-o", str(tmp_path / "r.st")],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "analysing the first 256 (the model's context is 256 tokens)" in out.stderr.replace("\n", " ")


async def test_the_explorer_announces_a_cut_prompt():
    from coupling_tui.tui.app import CouplingApp
    from tests.test_app import spy_notifications, wait_until

    events = fake_events(n_layers=3, n_tokens=5)
    events[0].header["tokens"]["truncated_from"] = 40
    events[0].header["params"]["max_tokens"] = 5
    app = CouplingApp(job=lambda: iter(events))
    notes = spy_notifications(app)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: app.results.finished)
    assert ("the prompt has 40 tokens; analysing the first 5 (raise --max-tokens to analyse more)", "warning") in notes
