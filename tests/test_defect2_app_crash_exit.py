"""Defect 2 (#17): an exception escaping the Textual app (a pane that crashes while drawing) ends as one
``coupling-tui: error:`` line on stderr and status 1 (a bug) or 2 (bad data), for view and export; --debug adds
the traceback, ending with a newline before that line."""
from __future__ import annotations

import pytest

from coupling_tui.core.errors import ResultsError
from coupling_tui.core.results import run_file as results
from coupling_tui.tui import main as tui_main
from coupling_tui.tui.app import CouplingApp
from coupling_tui.tui.panes.tokens import TokensPane
from tests.test_coupling_pane import coupled_run


def boom_bug(self):
    raise RuntimeError("pane exploded")


def boom_data(self):
    raise ResultsError("bad array in file")


@pytest.mark.parametrize("command", ["view", "export"])
@pytest.mark.parametrize("raiser,status", [(boom_bug, 1), (boom_data, 2)])
@pytest.mark.parametrize("debug", [False, True])
def test_defect2_pane_crash_gives_one_line_and_nonzero_status(tmp_path, monkeypatch, capsys, command, raiser,
                                                              status, debug):
    saved = results.save(coupled_run(), tmp_path / "r.safetensors")
    monkeypatch.setattr(TokensPane, "render", raiser)
    if command == "view":                     # no terminal in the test: the same app, headless
        real_run = CouplingApp.run
        monkeypatch.setattr(CouplingApp, "run", lambda self, **kw: real_run(self, headless=True, size=(120, 40)))
    argv = [command, str(saved), "--svg" if command == "export" else "--svg-dir", str(tmp_path / "svg")]
    code = tui_main.main(argv + (["--debug"] if debug else []))
    err = capsys.readouterr().err
    assert code == status
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines[-1].startswith("coupling-tui: error: ")
    assert "Traceback" not in err if not debug else "\ncoupling-tui: error: " in err
    if not debug:
        assert len(lines) == 1, err
