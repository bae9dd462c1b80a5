"""Faults: out of memory (CLI and explorer), Ctrl-C and SIGTERM mid-compute (a real process, and the explorer),
and many writers racing for one results file. Each ends in one message, a clean exit and no half-written file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from coupling_tui.core import faults, results
from coupling_tui.core.atomic import atomic_write_bytes
from coupling_tui.core.errors import UserError
from coupling_tui.core.jacobians.layers import LayerJacobians
from coupling_tui.core.run import Run
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
    from coupling_tui.core import cli

    _oom_at_layer(monkeypatch, kind)
    out = tmp_path / "run.safetensors"
    out.write_bytes(b"the previous results")
    status = cli.main(["--model", str(tiny_dir), "-p", "The capital of France is", "-o", str(out)])
    err = capsys.readouterr().err
    assert status == 2 and "Traceback" not in err
    estimate = next(line for line in err.splitlines() if line.startswith("estimate: "))[len("estimate: "):]
    lines = err[err.index("coupling-tui: error:"):].splitlines()
    assert lines == [f"coupling-tui: error: out of memory while computing; this run needs {estimate}",
                     "  make the run smaller with --max-tokens, --top-k, --layers, --history-mb, --no-token-coupling "
                     "or --dtype"]
    assert out.read_bytes() == b"the previous results" and sorted(os.listdir(tmp_path)) == ["run.safetensors"]


def test_out_of_memory_outside_the_engine_is_still_one_message(capsys):
    from coupling_tui.core.cli import guarded

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

    from coupling_tui.core import cli as core_cli
    from coupling_tui.core import run_job
    from coupling_tui.tui.app import CouplingApp
    from coupling_tui.tui.main import build_explore_parser

    args = build_explore_parser().parse_args(["--model", str(tiny_dir), "-p", "The capital of France is"])
    console = Console(file=open(os.devnull, "w"))
    loaded, baseline = core_cli.load_with_status(args, console)
    job = run_job.prepare(args, loaded, baseline, "The capital of France is", core_cli.engine_options(args), console)
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


@pytest.mark.parametrize("how, status", [("SIGTERM", 143), ("SIGINT", 130), ("ctrl+c", 130)])
async def test_explorer_stops_on_a_signal_or_ctrl_c_and_saves_nothing(tmp_path, how, status):
    from coupling_tui.tui.app import CouplingApp
    from tests.test_app import GatedJob, wait_until

    save_path = tmp_path / "run.safetensors"
    save_path.write_bytes(b"the previous results")
    job = GatedJob(fake_events(n_layers=4, n_tokens=5))
    caught = []
    sig = signal.SIGINT if how == "ctrl+c" else getattr(signal, how)
    outside = signal.signal(sig, lambda *a: caught.append(a))          # what runs if the app did not catch it
    try:
        app = CouplingApp(job=job, save_path=save_path)
        async with app.run_test(size=(80, 24)) as pilot:
            job.release(1)
            await wait_until(pilot, lambda: app.results.layers_done == 1)
            if how == "ctrl+c":
                await pilot.press("ctrl+c")
            else:
                os.kill(os.getpid(), sig)
            await wait_until(pilot, lambda: app.return_code is not None)
            job.release(3)
            await wait_until(pilot, lambda: job.closed)
        assert caught == [] and app.return_code == status
        assert signal.getsignal(sig) is not None and signal.getsignal(sig).__name__ == "<lambda>"   # given back
        with pytest.raises(KeyboardInterrupt) as info:
            app.raise_signal_exit()
        assert faults.interrupt_message(info.value)[1] == status
        assert not app.results.finished
        assert save_path.read_bytes() == b"the previous results" and os.listdir(tmp_path) == ["run.safetensors"]
    finally:
        job.stop.set()
        signal.signal(sig, outside)


# -- Ctrl-C and SIGTERM to a real `coupling-tui compute` --

LONG_PROMPT = "Hello world, hello tokens! " * 40


@pytest.fixture(scope="module")
def slow_dir(tmp_path_factory):
    """A tiny Llama wide and deep enough that 200 tokens take tens of seconds: time to be interrupted."""
    from transformers import AutoConfig, AutoModelForCausalLM

    from tests.tiny_models import COMMON, tiny_tokenizer

    directory = tmp_path_factory.mktemp("slow-llama")
    cfg = AutoConfig.for_model("llama", **dict(COMMON, hidden_size=128, intermediate_size=256, num_hidden_layers=12,
                                               max_position_embeddings=512))
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(cfg).save_pretrained(directory)
    tiny_tokenizer().save_pretrained(directory)
    return directory


@pytest.mark.parametrize("sig, status, message", [
    (signal.SIGINT, 130, "coupling-tui: interrupted; nothing was saved"),
    (signal.SIGTERM, 143, "coupling-tui: terminated (SIGTERM); an unfinished run is not saved"),
])
def test_a_signal_mid_compute_exits_cleanly_and_keeps_the_previous_file(slow_dir, tmp_path, sig, status, message):
    out_dir = tmp_path / "runs"
    out_dir.mkdir()
    out = out_dir / "run.safetensors"
    previous = results.to_bytes(_finished_run())
    out.write_bytes(previous)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "coupling_tui.tui.main", "compute", "--model", str(slow_dir),
                             "-p", LONG_PROMPT, "--max-tokens", "200", "-o", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        err_lines = []
        for line in proc.stderr:                                       # wait until the run is about to stream
            err_lines.append(line)
            if line.startswith("estimate: "):
                break
        assert err_lines and err_lines[-1].startswith("estimate: "), "".join(err_lines)
        time.sleep(2.0)                                                # inside the layers by now
        assert proc.poll() is None, "the run ended before it could be interrupted"
        proc.send_signal(sig)
        rest, rest_err = proc.communicate(timeout=60)
        err = "".join(err_lines) + rest_err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == status
    assert "Traceback" not in err
    assert err.rstrip("\n").splitlines()[-1] == message
    assert sum("coupling-tui:" in line for line in err.splitlines()) == 1
    assert rest == ""                                                  # no path printed: nothing was written
    assert out.read_bytes() == previous and os.listdir(out_dir) == ["run.safetensors"]


def _finished_run(**kwargs) -> Run:
    run = Run()
    for event in fake_events(**kwargs):
        run.apply(event)
    return run


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
from coupling_tui.core import results
from coupling_tui.core.run import Run
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


def _explore_in_a_terminal(slow_dir, out: Path, stop) -> tuple[int, bytes, int]:
    """Run the explorer in a pseudo-terminal until it is computing, ``stop(pid, fd)`` it, and read to the end:
    (exit status, everything it wrote, where the stop happened in that)."""
    import fcntl
    import pty
    import select
    import struct
    import termios

    pid, fd = pty.fork()
    if pid == 0:                                                       # the child: the explorer, as a user runs it
        os.environ["TERM"] = "xterm-256color"
        os.execv(sys.executable, [sys.executable, "-m", "coupling_tui.tui.main", "--model", str(slow_dir), "-p",
                                  LONG_PROMPT, "--max-tokens", "200", "--yes", "-o", str(out)])
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    screen, stopped_at, started = b"", None, time.monotonic()
    try:
        while time.monotonic() - started < 180:
            if select.select([fd], [], [], 0.2)[0]:
                try:
                    chunk = os.read(fd, 1 << 16)
                except OSError:                                        # the child closed the terminal
                    break
                if not chunk:
                    break
                screen += chunk
            if stopped_at is None and b"computing" in screen:
                time.sleep(2.0)                                        # inside the layers by now
                stopped_at = len(screen)
                stop(pid, fd)
    finally:
        if stopped_at is None or time.monotonic() - started >= 180:
            os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    return os.waitstatus_to_exitcode(status), screen, stopped_at


@pytest.mark.parametrize("how, status, message", [
    ("SIGTERM", 143, b"coupling-tui: terminated (SIGTERM); an unfinished run is not saved"),
    ("SIGINT", 130, b"coupling-tui: interrupted; nothing was saved"),
    ("ctrl+c", 130, b"coupling-tui: interrupted; nothing was saved"),
])
def test_the_explorer_stopped_mid_compute_gives_the_terminal_back(slow_dir, tmp_path, how, status, message):
    out = tmp_path / "run.safetensors"
    out.write_bytes(b"the previous results")
    if how == "ctrl+c":
        stop = lambda pid, fd: os.write(fd, b"\x03")                   # noqa: E731 - the key, not a signal
    else:
        stop = lambda pid, fd: os.kill(pid, getattr(signal, how))      # noqa: E731
    code, screen, stopped_at = _explore_in_a_terminal(slow_dir, out, stop)
    assert stopped_at is not None, screen[-2000:]
    after = screen[stopped_at:]
    assert code == status, after[-2000:]
    assert b"\x1b[?1049l" in after and b"\x1b[?25h" in after            # alternate screen left, cursor shown
    assert after.rstrip().endswith(message) and b"Traceback" not in screen
    assert out.read_bytes() == b"the previous results" and os.listdir(tmp_path) == ["run.safetensors"]


# -- a prompt longer than --max-tokens or the model's context --

@pytest.mark.parametrize("tokens, max_tokens, note", [
    ({"ids": [1, 2, 3], "truncated_from": None}, 128, None),
    ({"ids": [1, 2, 3], "truncated_from": 9}, 3, "the prompt has 9 tokens; analysing the first 3 (raise --max-tokens "
                                                 "to analyse more)"),
    ({"ids": [1, 2, 3], "truncated_from": 9}, 128, "the prompt has 9 tokens; analysing the first 3 (the model's "
                                                   "context is 3 tokens)"),
])
def test_truncation_note(tokens, max_tokens, note):
    from coupling_tui.core.prompts import truncation_note

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
