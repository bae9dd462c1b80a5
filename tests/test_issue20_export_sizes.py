"""Issue 20 item 1: ``coupling-tui export`` works at every size ``--size`` allows (it failed below 40 rows: "spectrum
is not on screen", "tokens is not on screen", exit 2 and partial SVGs left), each pane laid out for its own SVG,
and it writes every SVG or none: a failed export leaves the target directory exactly as it was."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from coupling_tui.core.results import run_file as results
from coupling_tui.tui import main as tui_main
from coupling_tui.tui.panes.collapse import CollapsePane
from coupling_tui.tui.panes.compare import ComparePane
from coupling_tui.tui.panes.coupling import CouplingPane
from coupling_tui.tui.panes.spectrum import SpectrumPane
from coupling_tui.tui.panes.tokens import TokensPane
from coupling_tui.tui.panes.trajectory import TrajectoryPane
from tests.test_coupling_pane import svg_text

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "v0.1.0"
RUN = DATA / "run.safetensors"                    # Jacobians, coupling, collapse data and a random-init baseline
PAIR = (DATA / "set" / "01-prompt-1.safetensors", DATA / "set" / "02-prompt-2.safetensors")

SMALLEST = "40x12"
SIZES = [SMALLEST, "80x24", "100x30", "120x39", "120x40", "200x60"]
"""From the smallest size --size allows (checked below) through short screens (< 40 rows) to tall ones."""

TITLES = {"tokens": TokensPane.BORDER_TITLE, "coupling": CouplingPane.BORDER_TITLE,
          "coupling-b": CouplingPane.BORDER_TITLE, "trajectory": TrajectoryPane.BORDER_TITLE,
          "spectrum": SpectrumPane.BORDER_TITLE, "collapse": CollapsePane.BORDER_TITLE,
          "compare": ComparePane.BORDER_TITLE}
ONE_RUN = ("tokens", "coupling", "trajectory", "spectrum", "collapse")
TWO_RUNS = ("tokens", "coupling", "coupling-b", "compare")
COLLAPSE_RUN = ("collapse",)     # no Jacobians, no per-token states of the pairs: the Collapse pane alone (item 3)


@pytest.fixture(scope="module")
def collapse_file(tiny_dir, tmp_path_factory):
    """A ``coupling-tui collapse`` run of the real engine on the tiny model (no Jacobians), saved."""
    from tests.fakes import collapse_events
    from tests.test_collapse_pane import run_of

    return results.save(run_of(collapse_events(tiny_dir)), tmp_path_factory.mktemp("col") / "col.safetensors")


def export(capsys, *args: str) -> tuple[int, list[str], str]:
    """``coupling-tui export ARGS`` in this process: (status, the paths printed, stderr)."""
    code = tui_main.main(["export", *args])
    out, err = capsys.readouterr()
    return code, out.split(), err


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` (hidden ones included) with its bytes (None for a directory)."""
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): (None if p.is_dir() else p.read_bytes()) for p in sorted(root.rglob("*"))}


def check_export(code: int, printed: list[str], err: str, svg: Path, run_name: str, panes: tuple[str, ...]) -> None:
    """Status 0, every pane's SVG and the screen's written (nothing else), each pane whole: its top border with its
    title and its bottom border."""
    assert code == 0, err
    expected = [f"{run_name}-{pane}.svg" for pane in (*panes, "screen")]
    assert sorted(p.name for p in svg.iterdir()) == sorted(expected)           # no staging directory left
    assert sorted(Path(p).name for p in printed) == sorted(expected)
    for pane in panes:
        text = svg_text((svg / f"{run_name}-{pane}.svg").read_text())
        assert f"╭─ {TITLES[pane]}" in text, (pane, text[:300])
        assert "╰" in text, (pane, text[-300:])                              # its bottom edge: laid out whole


def test_issue20_item1_the_sizes_start_at_the_smallest_allowed():
    """SIZES begins at the smallest size --size accepts: one cell less in either direction is refused."""
    size = tui_main._size
    w, h = size(SMALLEST)
    for smaller in (f"{w - 1}x{h}", f"{w}x{h - 1}"):
        with pytest.raises(argparse.ArgumentTypeError):
            size(smaller)


@pytest.mark.parametrize("size", SIZES)
def test_issue20_item1_export_of_one_run_at_every_size(size, tmp_path, capsys):
    code, printed, err = export(capsys, str(RUN), "--svg", str(tmp_path / "svg"), "--size", size)
    check_export(code, printed, err, tmp_path / "svg", "run", ONE_RUN)


@pytest.mark.parametrize("size", SIZES)
def test_issue20_item1_export_of_a_run_and_its_random_init_twin_at_every_size(size, tmp_path, capsys):
    code, printed, err = export(capsys, str(RUN), "random-init", "--svg", str(tmp_path / "svg"), "--size", size)
    check_export(code, printed, err, tmp_path / "svg", "run-vs-random-init", TWO_RUNS)
    assert "Coupling · B" in svg_text((tmp_path / "svg" / "run-vs-random-init-coupling-b.svg").read_text())


@pytest.mark.parametrize("size", SIZES)
def test_issue20_item1_export_of_a_collapse_run_at_every_size(size, collapse_file, tmp_path, capsys):
    code, printed, err = export(capsys, str(collapse_file), "--svg", str(tmp_path / "svg"), "--size", size)
    check_export(code, printed, err, tmp_path / "svg", "col", COLLAPSE_RUN)


@pytest.mark.parametrize("size", [SMALLEST, "80x24"])
def test_issue20_item1_export_of_two_files_and_of_a_prompt_set_when_short(size, tmp_path, capsys):
    code, printed, err = export(capsys, *map(str, PAIR), "--svg", str(tmp_path / "pair"), "--size", size)
    check_export(code, printed, err, tmp_path / "pair", "01-prompt-1-vs-02-prompt-2", TWO_RUNS)
    code, printed, err = export(capsys, str(DATA / "set"), "--svg", str(tmp_path / "set"), "--size", size)
    check_export(code, printed, err, tmp_path / "set", "set", ("coupling",))


@pytest.mark.parametrize("pair", [False, True])
def test_issue20_item1_the_reported_command_at_80x24(pair, tmp_path):
    """The issue's commands, as a user runs them: status 0, nothing on stderr, every SVG written."""
    args = [str(RUN), "random-init"] if pair else [str(RUN)]
    out = subprocess.run([sys.executable, "-m", "coupling_tui.tui.main", "export", *args, "--svg", str(tmp_path / "D"),
                          "--size", "80x24"], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert (out.returncode, out.stderr) == (0, ""), out.stderr[-2000:]
    panes = TWO_RUNS if pair else ONE_RUN
    assert len(out.stdout.split()) == len(panes) + 1 == len(list((tmp_path / "D").iterdir()))


def _user_files(svg: Path) -> None:
    """An export directory the user already has: their own file, an old SVG of one of our names, and a directory
    where the spectrum's SVG would go (so writing it fails after the tokens', coupling's and trajectory's)."""
    svg.mkdir()
    (svg / "notes.txt").write_text("mine")
    (svg / "run-coupling.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'><text>old</text></svg>")
    (svg / "run-spectrum.svg").mkdir()
    (svg / "run-spectrum.svg" / "inside.txt").write_text("also mine")


@pytest.mark.parametrize("size", ["80x24", "200x60"])
def test_issue20_item1_a_failed_write_leaves_the_directory_as_it_was(size, tmp_path, capsys):
    """One SVG cannot be written: exit 2 with one line naming it, and the directory exactly as before (the old SVG
    of the same name kept, no new SVG, no staging directory)."""
    svg = tmp_path / "svg"
    _user_files(svg)
    before = snapshot(svg)
    code, printed, err = export(capsys, str(RUN), "--svg", str(svg), "--size", size)
    assert code == 2 and not printed
    assert err.strip().splitlines() == [err.strip()] and err.startswith("coupling-tui: error: cannot write ")
    assert "run-spectrum.svg" in err and "Traceback" not in err
    assert snapshot(svg) == before


@pytest.mark.parametrize("exists", [True, False])
def test_issue20_item1_a_failed_render_leaves_the_directory_as_it_was(exists, tmp_path, capsys, monkeypatch):
    """A pane that cannot be drawn (here made to fail) stops the export before anything is written: exit 2, one
    line, the directory as it was (an old SVG kept), and a directory that did not exist is not made."""
    from coupling_tui.tui import export as svg_export

    real = svg_export.pane_svg

    def spectrum_fails(app, widget, title):
        if widget.id == "spectrum":
            raise ValueError("spectrum cannot be drawn")
        return real(app, widget, title)

    monkeypatch.setattr(svg_export, "pane_svg", spectrum_fails)
    svg = tmp_path / ("svg" if exists else "new/svg")
    if exists:
        svg.mkdir()
        (svg / "run-coupling.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'><text>old</text></svg>")
    before = snapshot(tmp_path)
    code, printed, err = export(capsys, str(RUN), "--svg", str(svg), "--size", "200x60")
    assert code == 2 and not printed and err.strip() == "coupling-tui: error: ValueError: spectrum cannot be drawn", err
    assert snapshot(tmp_path) == before


async def test_issue20_item1_E_in_the_short_compare_layout_exports_every_pane_and_puts_the_layout_back(tmp_path):
    """E on an 80×24 compare layout (whose tokens strip a short screen hides): every pane's SVG, the tokens strip
    laid out for its own, and the layout on screen afterwards as before."""
    app = tui_main.view_app(str(RUN), str(tmp_path), "random-init")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        regions = {pane.id: pane.region for pane in app.query(".run-pane")}
        assert not regions["tokens"].area
        await pilot.press("E")
        for _ in range(100):
            await pilot.pause(0.05)
            if any(n.message.startswith("exported") for n in app._notifications):
                break
        assert [n.message for n in app._notifications] == [f"exported 5 SVGs to {tmp_path}"]
        await pilot.pause()
        assert {pane.id: pane.region for pane in app.query(".run-pane")} == regions
        assert app.screen.maximized is None
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"run-vs-random-init-{p}.svg"
                                                               for p in (*TWO_RUNS, "screen"))
    assert "╭─ Tokens" in svg_text((tmp_path / "run-vs-random-init-tokens.svg").read_text())


def test_issue20_item1_atomic_write_files_puts_back_what_a_failed_rename_replaced(tmp_path, monkeypatch):
    """The group's third rename fails: the two files already renamed in are undone (an old one put back, a new one
    removed), the user's own file is untouched, no staging directory is left, and the error names the file."""
    from coupling_tui.core import atomic
    from coupling_tui.core.errors import UserError

    (tmp_path / "b").write_bytes(b"old b")
    (tmp_path / "mine").write_bytes(b"mine")
    before = snapshot(tmp_path)
    real, calls = atomic.os.replace, []

    def third_into_place_fails(src, dst):
        if Path(dst).parent == tmp_path:
            calls.append(Path(dst).name)
            if len(calls) == 3:
                raise OSError(28, "No space left on device")
        return real(src, dst)

    monkeypatch.setattr(atomic.os, "replace", third_into_place_fails)
    with pytest.raises(UserError, match=r"cannot write .*/c: No space left on device"):
        atomic.atomic_write_files(tmp_path, {"a": b"new a", "b": b"new b", "c": b"new c"})
    assert calls[:3] == ["a", "b", "c"] and snapshot(tmp_path) == before
    monkeypatch.setattr(atomic.os, "replace", real)
    assert atomic.atomic_write_files(tmp_path / "x", {"a": b"1"}) == [tmp_path / "x" / "a"]
    assert sorted(p.name for p in (tmp_path / "x").iterdir()) == ["a"]


def test_issue20_item12_debug_puts_the_error_line_on_its_own_line(tmp_path):
    """Item 12 (regression guard: already right before item 1's fix): with --debug a failed export prints the
    traceback, a blank line, then the one error line (it ran on as ``…not on screencoupling-tui: error:``)."""
    svg = tmp_path / "svg"
    _user_files(svg)
    out = subprocess.run([sys.executable, "-m", "coupling_tui.tui.main", "export", str(RUN), "--svg", str(svg),
                          "--debug"], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 2, out.stderr[-2000:]
    lines = out.stderr.splitlines()
    assert "Traceback" in out.stderr and lines[-2] == "" and lines[-1].startswith("coupling-tui: error: cannot write")
    assert out.stderr.count("coupling-tui: error:") == 1 and "--svg" in lines[-1]
