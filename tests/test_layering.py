"""The architecture's one-way arrows: core never imports Textual; views and results never need torch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_no_textual_or_tui_import_anywhere_in_core():
    files = sorted((ROOT / "core").rglob("*.py"))
    assert len(files) >= 8
    for f in files:
        bad = {m for m in imported_modules(f) if m.split(".")[0] in ("textual", "textual_plotext")
               or m.startswith("coupling_tui.tui")}
        assert not bad, f"{f.name} imports {bad}"


def test_importing_every_core_module_loads_no_textual():
    mods = [f"coupling_tui.core.{f.stem}" for f in sorted((ROOT / "core").glob("*.py"))
            if f.stem not in ("__init__", "__main__")]
    code = f"import sys, importlib; [importlib.import_module(m) for m in {mods!r}]; " \
           "print(sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'textual_plotext')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_torch_free_modules_stay_torch_free():
    code = ("import sys; import coupling_tui.core.results.run_file, coupling_tui.core.results.run, coupling_tui.core.results.events, "
            "coupling_tui.core.cli.common, coupling_tui.core.options.prompts, coupling_tui.tui.main; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_view_opens_a_saved_run_without_torch(tmp_path):
    """`coupling-tui view` path: load the file and show every pane in a headless app; torch never imported."""
    from coupling_tui.core.results import run_file as results
    from coupling_tui.core.results.run import Run
    from tests.fakes import fake_events

    run = Run()
    for event in fake_events(n_layers=6, n_tokens=4):
        run.apply(event)
    path = results.save(run, tmp_path / "run.safetensors")
    code = f"""
import asyncio, sys
from coupling_tui.tui.main import view_app
app = view_app({str(path)!r})
async def main():
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        xs, ys = app.query_one('#trajectory').plotted
        print(len(xs), round(ys[-1], 3))
asyncio.run(main())
print('torch' in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    lines = out.stdout.split()
    assert lines[0] == "7" and float(lines[1]) == round(float(run.arrays["trajectory.norms"][6, -1]), 3)
    assert lines[-1] == "False"
