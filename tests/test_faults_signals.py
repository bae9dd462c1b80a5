"""Faults: Ctrl-C and SIGTERM mid-compute, in the explorer (in process, and a real one in a pseudo-terminal) and in a
real `coupling-tui compute`. Each ends in one line, the right exit status, the terminal given back and the previous
results file untouched. Out of memory and racing writers: tests/test_faults.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from coupling_tui.core import faults
from coupling_tui.core.results import run_file as results
from coupling_tui.core.results.run import Run
from tests.fakes import fake_events


def _signals_as_in_a_terminal() -> None:
    """In a child: SIGINT and SIGTERM back to their defaults. A suite started in the background (`nohup pytest &`)
    inherits SIGINT as ignored, and an ignored signal stays ignored across exec; a user's terminal does not."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


# -- the explorer, in process --

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
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=_signals_as_in_a_terminal)
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


# -- a real explorer in a pseudo-terminal --

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
        _signals_as_in_a_terminal()
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
