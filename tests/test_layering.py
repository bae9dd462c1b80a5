"""The architecture's one-way arrows (docs/architecture.md): the import contracts in pyproject.toml hold
(``lint-imports``), no import circle anywhere (deferred imports counted), core never imports Textual, and views and
results never need torch, checked by importing them."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("options", "load", "engine", "linalg", "maths", "results", "cli", "figures")
"""core's subpackages, one per stage (each ``__init__`` says what it holds and what it may import)."""


def module_names(folder: Path, package: str) -> list[str]:
    """Every module under ``folder`` (recursively) as a dotted name under ``package``."""
    names = []
    for f in sorted(folder.rglob("*.py")):
        parts = list(f.relative_to(folder).with_suffix("").parts)
        if parts[-1] == "__main__":
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names.append(".".join([package, *parts]))
    return names


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
    mods = module_names(ROOT / "core", "coupling_tui.core")
    assert len(mods) >= 50 and "coupling_tui.core.engine.jacobians.autodiff" in mods
    code = f"import sys, importlib; [importlib.import_module(m) for m in {mods!r}]; " \
           "print(sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'textual_plotext')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_torch_free_modules_stay_torch_free():
    """Every module of results/, maths/, options/ and figures/, the command line's shared helpers and figures command
    and the whole explorer import without torch (or transformers)."""
    mods = [m for stage in ("results", "maths", "options", "figures") for m in module_names(ROOT / "core" / stage,
                                                                                 f"coupling_tui.core.{stage}")]
    mods += ["coupling_tui.core.cli.common", "coupling_tui.core.cli.figures",
             *module_names(ROOT / "tui", "coupling_tui.tui")]
    assert len(mods) >= 30 and "coupling_tui.core.results.run_file" in mods and "coupling_tui.tui.app" in mods
    code = (f"import sys, importlib; [importlib.import_module(m) for m in {mods!r}]; "
            "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_import_contracts_hold():
    """``lint-imports`` keeps the layers declared in pyproject.toml ([tool.importlinter])."""
    lint = Path(sys.executable).with_name("lint-imports")
    assert lint.exists(), "import-linter is a test dependency (pip install -e '.[test]')"
    out = subprocess.run([str(lint)], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "0 broken" in out.stdout and "4 kept" in out.stdout


def import_circles(graph) -> list[list[str]]:
    """Strongly connected components of more than one module in grimp's import graph (every import statement,
    those deferred into function bodies included)."""
    adjacent = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles = []
    for root in sorted(adjacent):          # iterative Tarjan
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            for j in range(i, len(adjacent[node])):
                nxt = adjacent[node][j]
                if nxt not in index:
                    work += [(node, j + 1), (nxt, 0)]
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                if low[node] == index[node]:
                    component = []
                    while True:
                        m = stack.pop()
                        on_stack.discard(m)
                        component.append(m)
                        if m == node:
                            break
                    if len(component) > 1:
                        circles.append(sorted(component))
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
    return circles


def test_no_import_circle_anywhere():
    import grimp

    graph = grimp.build_graph("coupling_tui.core", "coupling_tui.tui", include_external_packages=False)
    assert len(graph.modules) >= 80
    assert import_circles(graph) == []


def test_import_circles_finds_a_circle_through_a_deferred_import(tmp_path, monkeypatch):
    """The circle check itself: a → b at the top, b → a inside a function body."""
    import grimp

    pkg = tmp_path / "circ"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from circ import b\n")
    (pkg / "b.py").write_text("def f():\n    from circ import a\n")
    (pkg / "c.py").write_text("from circ import a\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert import_circles(grimp.build_graph("circ")) == [["circ.a", "circ.b"]]


def test_core_is_laid_out_by_stage():
    """At most six modules at core's top; every stage a subpackage whose docstring says what it may import."""
    top = sorted(f.name for f in (ROOT / "core").glob("*.py") if f.name != "__init__.py")
    assert len(top) <= 6, top
    for stage in STAGES:
        init = ROOT / "core" / stage / "__init__.py"
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc and "import" in doc, f"core/{stage}/__init__.py needs a docstring saying what it may import"


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


def test_results_names_are_spelled_in_one_module():
    """The random-init prefix and the collapse prefix are written only in core/results/names.py; no module of core/
    or tui/ spells an array name as a string literal (they use the names module's constants)."""
    import io
    import re
    import tokenize

    array_name = re.compile(r"^(random_init\.)?(tokens|trajectory|jacobian|coupling|context|collapse)\.[A-Za-z_0-9.]+$")
    offenders = []
    for f in sorted([*(ROOT / "core").rglob("*.py"), *(ROOT / "tui").rglob("*.py")]):
        text = f.read_text()
        if f.name == "names.py" and f.parent.name == "results":
            assert '"random_init."' in text and '"collapse."' in text
            continue
        if "random_init." in text:
            offenders.append(f"{f.relative_to(ROOT)}: random_init.")
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type == tokenize.STRING and tok.string[0] in "\"'" and not tok.string.startswith(('"""', "'''")):
                value = tok.string[1:-1]
                if array_name.match(value) or value == "collapse.":
                    offenders.append(f"{f.relative_to(ROOT)}:{tok.start[0]}: {tok.string}")
    assert offenders == []
