"""Defect 7, explorer part (#17): a save that fails after the explorer finished computing (a full disk, a bug), or a
compute that fails, was a 10-second toast and status 0. Now the reason is printed as one line once the terminal is
restored, and the command exits 2 (the user's environment) or 1 (a bug) — the statuses ``compute`` uses."""
from __future__ import annotations

import asyncio

import pytest

from coupling_tui.core.errors import UserError
from coupling_tui.tui import app_save
from coupling_tui.tui import main as tui_main
from coupling_tui.tui.app import CouplingApp


def headless_until_settled(monkeypatch):
    """Run the explorer headless; quit once the compute and the save worker are both over, as a user pressing q."""
    real_run = CouplingApp.run

    async def pilot(p):
        for _ in range(600):
            app = p.app
            saving = any(w.group == "save" and not w.is_finished for w in app.workers)
            if not app.computing and not saving and "computing" not in app.state_text:
                break
            await asyncio.sleep(0.05)
        await p.pause()
        await p.press("q")

    monkeypatch.setattr(CouplingApp, "run", lambda self, **kw: real_run(self, headless=True, size=(120, 40),
                                                                          auto_pilot=pilot))


def explore(tiny_dir, tmp_path, *extra):
    return tui_main.main(["--model", str(tiny_dir), "-p", "1 2 3 4", "--top-k", "4", "--yes",
                          "-o", str(tmp_path / "run.safetensors"), *extra])


def disk_full(*args, **kwargs):
    raise UserError("cannot write run.safetensors: No space left on device", "check free space and permissions")


def save_bug(*args, **kwargs):
    raise RuntimeError("writer exploded")


@pytest.mark.parametrize("raiser,status,text", [(disk_full, 2, "No space left on device"),
                                                (save_bug, 1, "RuntimeError: writer exploded")])
def test_defect7_explorer_failed_save_prints_the_reason_and_exits_nonzero(tiny_dir, tmp_path, monkeypatch, capsys,
                                                                          raiser, status, text):
    headless_until_settled(monkeypatch)
    monkeypatch.setattr(app_save, "save_container", raiser)
    code = explore(tiny_dir, tmp_path)
    err = capsys.readouterr().err
    assert code == status
    last = [ln for ln in err.splitlines() if ln.strip()][-1]
    assert last.startswith("coupling-tui: error: not saved: ") and text in last, err
    assert "Traceback" not in err
    assert not (tmp_path / "run.safetensors").exists()


def test_defect7_explorer_failed_compute_exits_nonzero(tiny_dir, tmp_path, monkeypatch, capsys):
    from coupling_tui.core.cli import run_job

    real_prepare = run_job.prepare

    def failing_prepare(*args, **kwargs):
        real_prepare(*args, **kwargs)                  # the real estimate and checks run; their job is replaced

        def broken():
            yield from ()
            raise UserError("out of memory while computing (simulated)")
        return broken

    monkeypatch.setattr(run_job, "prepare", failing_prepare)
    headless_until_settled(monkeypatch)
    code = explore(tiny_dir, tmp_path)
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip().splitlines()[-1] == "coupling-tui: error: out of memory while computing (simulated)"


def test_defect7_explorer_saved_run_still_exits_0(tiny_dir, tmp_path, monkeypatch, capsys):
    headless_until_settled(monkeypatch)
    assert explore(tiny_dir, tmp_path) == 0
    assert (tmp_path / "run.safetensors").is_file()
    assert "error" not in capsys.readouterr().err
