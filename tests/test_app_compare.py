"""Pilot tests of the explorer's compare layout (tui/app_compare.py): two saved runs opened side by side, a --compare
job streamed live and saved as two files, a run and its random-init baseline, and the compute CLI's --compare. The
runs come from the real engine on a tiny Llama (3 blocks) and a tiny Qwen2 (5 blocks)."""

from __future__ import annotations

import html

import numpy as np
import pytest
from textual.widgets import Static

from coupling_tui.core.results import compare
from coupling_tui.core.results import run_file as results
from coupling_tui.core.engine.compare import stream_compare
from coupling_tui.core.results.comparison import save_pair
from coupling_tui.core.results.run import Run
from coupling_tui.tui.app import CouplingApp
from coupling_tui.tui.notices import NO_PAIR
from coupling_tui.tui.main import view_app
from coupling_tui.tui.panes.compare import ComparePane
from coupling_tui.tui.panes.coupling import CouplingPane
from tests.test_app import wait_until
from tests.test_cli import cli
from tests.test_compare import OPTIONS, PROMPT, folded, loaded, other, other_dir, streamed  # noqa: F401 (fixtures)


def stored_m(run: Run, k: int, token: int, row: int, col: int) -> float:
    """m_K of run's depth-coupling matrix at (row block, column block) of ``token``, read from the arrays."""
    return float(run.arrays["coupling.depth_k"][run.coupling_ks.index(k), token, row, col])


@pytest.fixture
def saved_pair(streamed, tmp_path):
    comparison, _ = streamed
    a, b = tmp_path / "llama.safetensors", tmp_path / "qwen2.safetensors"
    save_pair(comparison, a, b)
    return a, b


def shown(app, pane_id: str) -> bool:
    pane = app.query_one(f"#{pane_id}")
    return bool(pane.display and pane.region.area)


async def test_view_a_b_shows_both_heatmaps_and_b_follows_at_its_stand_ins(saved_pair, tmp_path):
    a_path, b_path = saved_pair
    app = view_app(str(a_path), str(tmp_path / "svg"), str(b_path))
    a, b = app.comparison.runs
    assert (a.n_layers, b.n_layers) == (3, 5)
    async with app.run_test(size=(120, 40)) as pilot:
        assert app.screen.has_class("-compare")
        assert shown(app, "coupling") and shown(app, "coupling-b") and shown(app, "compare")
        assert not shown(app, "trajectory") and not shown(app, "spectrum")
        lead, other_pane = app.coupling, app.query_one("#coupling-b", CouplingPane)
        assert lead.border_title.startswith("Coupling · A ") and other_pane.border_title.startswith("Coupling · B ")
        info = str(app.query_one("#run-info", Static).render())
        assert "3 / 5 layers" in info and f"{a.n_tokens} tokens" in info
        k = a.header["coupling"]["k"]
        t = app.selected_token
        assert t == a.n_tokens - 1
        for presses in (["down", "down"], ["shift+left"], ["up"], ["shift+left"]):
            for key in presses:
                await pilot.press(key)
            row, col = app.selected_layer, lead.column["depth"]
            assert lead.cursor_value == pytest.approx(stored_m(a, k, t, row, col))
            rb, cb = compare.map_layer(row, 3, 5), compare.map_layer(col, 3, 5)
            assert other_pane.cursor_value == pytest.approx(stored_m(b, k, compare.map_token(t, a, b), rb, cb))
        scales = [pane.current.scale for pane in (lead, other_pane)]           # one colour scale for both
        assert lead.heatmap.scale == other_pane.heatmap.scale == (min(s[0] for s in scales), max(s[1] for s in scales))
        assert scales[0] != scales[1]
        assert (app.selected_layer, lead.column["depth"]) == (1, 0)
        assert other_pane.column["depth"] == 0 and compare.map_layer(1, 3, 5) == 2   # row: block 1 of 3 ↔ 2 of 5
        await pilot.press("K")                                                  # a smaller K: both panes follow
        assert lead.current.k == other_pane.current.k < k
        assert other_pane.cursor_value == pytest.approx(stored_m(b, other_pane.current.k, t, 2, 0))
        table = dict((what.strip(), (va, vb)) for what, va, vb in app.query_one(ComparePane).lines)
        sa, sb = compare.sides(a, b, t, other_pane.current.k)
        assert table[f"m_{sa.k} off-diag (all)"] == (f"{sa.scalar_all['offdiag']:.3f}",
                                                           f"{sb.scalar_all['offdiag']:.3f}")

        await pilot.press("x")                                                  # B on the left
        assert app.results is b and lead.border_title.endswith(compare.run_name(b))
        assert lead.cursor_value == pytest.approx(stored_m(b, lead.current.k, app.selected_token,
                                                           app.selected_layer, lead.column["depth"]))
        await pilot.press("x")
        assert app.results is a

        await pilot.press("c")                                                  # back to the one-run layout
        assert not app.screen.has_class("-compare") and not shown(app, "coupling-b")
        assert shown(app, "trajectory") and not shown(app, "compare")
        await pilot.press("c")
        assert app.screen.has_class("-compare") and shown(app, "coupling-b")

        written = await app.export_all()
        names = {p.name for p in written}
        assert {"llama-vs-qwen2-coupling.svg", "llama-vs-qwen2-coupling-b.svg", "llama-vs-qwen2-compare.svg",
                "llama-vs-qwen2-screen.svg"} <= names, names
        compare_svg = html.unescape((tmp_path / "svg" / "llama-vs-qwen2-compare.svg").read_text()).replace("\xa0", " ")
        assert "off-diag" in compare_svg and "Haar null" in compare_svg
        assert app.screen.has_class("-compare")                                 # the export left the layout as is


async def test_a_compare_job_streams_a_then_b_and_saves_both(loaded, other, tmp_path):  # noqa: F811
    a_path, b_path = tmp_path / "a.safetensors", tmp_path / "a.vs-qwen2.safetensors"
    app = CouplingApp(job=lambda: stream_compare(loaded, other, PROMPT, labels=("llama", "qwen2"),
                                                 options=(OPTIONS, OPTIONS)),
                      save_path=a_path, compare_save_path=b_path, compare=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: "saved to" in app.state_text, timeout=120)
        assert app.screen.has_class("-compare") and app.comparison.finished
        assert a_path.exists() and b_path.exists()
        assert results.load(a_path).n_layers == 3 and results.load(b_path).n_layers == 5
        pane = app.query_one(ComparePane)
        assert pane.verdict.startswith(("A is more coupled", "B is more coupled"))
        assert dict((w.strip(), (va, vb)) for w, va, vb in pane.lines)["model"] == ("llama 3×32", "qwen2 5×32")
        other_pane = app.query_one("#coupling-b", CouplingPane)
        k, t = other_pane.current.k, app.selected_token
        b = results.load(b_path)
        assert other_pane.cursor_value == pytest.approx(stored_m(b, k, t, compare.map_layer(app.selected_layer, 3, 5),
                                                                 other_pane.column["depth"]))


async def test_a_run_with_its_random_init_baseline_opens_compared_and_one_without_refuses(loaded, tiny_dir):  # noqa: F811
    from coupling_tui.core.engine import stream as engine
    from coupling_tui.core.load.models import ModelRequest, load

    baseline = load(ModelRequest(model=str(tiny_dir), random_init=True, seed=3))
    run = folded(engine.stream(loaded, PROMPT, OPTIONS, baseline=baseline))
    base = compare.random_init_run(run)
    app = CouplingApp(run=run, compare=True)
    async with app.run_test(size=(120, 40)) as pilot:
        assert app.screen.has_class("-compare") and shown(app, "coupling-b")
        other_pane = app.query_one("#coupling-b", CouplingPane)
        assert other_pane.border_title.startswith("Coupling · B random-init · ")
        k = other_pane.current.k
        assert other_pane.cursor_value == pytest.approx(stored_m(base, k, app.selected_token, app.selected_layer,
                                                                 app.coupling.column["depth"]))
        table = dict((w.strip(), (va, vb)) for w, va, vb in app.query_one(ComparePane).lines)
        assert table[f"m_{k} off-diag (all)"][1] == \
            f"{run.header['random_init']['coupling_scalar']['offdiag']:.3f}"

    alone = folded(engine.stream(loaded, PROMPT, OPTIONS))
    app = CouplingApp(run=alone)
    async with app.run_test(size=(120, 40)) as pilot:
        notes = []
        app.notify = lambda message, **kw: notes.append(message)       # type: ignore[method-assign]
        assert app.check_action("toggle_compare", ()) is False                 # c is off the footer
        await pilot.press("c")                                                 # and says why (issue 20 item 6)
        assert notes == [NO_PAIR] and not app.screen.has_class("-compare") and not shown(app, "coupling-b")
        app.action_toggle_compare()                                            # as the palette did
        assert notes == [NO_PAIR] * 2 and not app.screen.has_class("-compare")


def test_compute_compare_prints_the_table_and_writes_two_files(tiny_dir, other_dir, tmp_path):  # noqa: F811
    out = tmp_path / "run.safetensors"
    done = cli("compute", "--model", str(tiny_dir), "--compare", str(other_dir), "-p", PROMPT, "--top-k", "6",
               "-o", str(out))
    assert done.returncode == 0, done.stderr
    b_path = tmp_path / f"run.vs-{other_dir.name}.safetensors"
    a, b = results.load(out), results.load(b_path)
    assert (a.n_layers, b.n_layers) == (3, 5)
    assert b.header["params"]["compared_with"] == {"side": "B", "model": str(tiny_dir)}
    lines = compare.table_lines(a, b)
    assert done.stdout.split() == [str(out), str(b_path)]                   # stdout: the files, for scripts
    assert all(line in done.stderr for line in lines), done.stderr          # the table and the hint: the console
    assert f"coupling-tui view {out} {b_path}" in done.stderr


@pytest.mark.parametrize("args, message", [
    (["--compare", "random-init", "--random-init"], "--random-init with --compare random-init"),
    (["--compare", "random-init", "--compare-output", "b.safetensors"], "--compare random-init keeps both runs"),
    (["--compare-output", "b.safetensors"], "--compare-output needs --compare MODEL2"),
    (["--compare", "/no/such/model", "--random-baseline"], "--random-baseline with --compare MODEL2"),
    (["--compare", "x", "-p", "one", "-p", "two"], "--compare takes one prompt"),
    (["--compare", "/no/such/model"], "model not found: /no/such/model"),
])
def test_compare_refusals_are_one_message(tiny_dir, tmp_path, args, message):
    done = cli("compute", "--model", str(tiny_dir), "-o", str(tmp_path / "r.safetensors"), *args)
    assert done.returncode == 2, done.stdout
    assert done.stderr.startswith(f"coupling-tui: error: {message}"), done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "r.safetensors").exists()


def test_export_a_b_writes_the_compare_svgs(saved_pair, tmp_path):
    a, b = saved_pair
    done = cli("export", str(a), str(b), "--svg", str(tmp_path / "figs"), "--size", "120x40")
    assert done.returncode == 0, done.stderr
    names = {line.rsplit("/", 1)[-1] for line in done.stdout.split()}
    assert {"llama-vs-qwen2-coupling-b.svg", "llama-vs-qwen2-compare.svg", "llama-vs-qwen2-screen.svg"} <= names


async def test_view_run_random_init_opens_the_pair_and_a_run_without_a_baseline_is_refused(loaded, tiny_dir,  # noqa: F811
                                                                                          tmp_path):
    from coupling_tui.core.engine import stream as engine
    from coupling_tui.core.load.models import ModelRequest, load

    baseline = load(ModelRequest(model=str(tiny_dir), random_init=True, seed=3))
    with_base, alone = tmp_path / "with.safetensors", tmp_path / "alone.safetensors"
    results.save(folded(engine.stream(loaded, PROMPT, OPTIONS, baseline=baseline)), with_base)
    results.save(folded(engine.stream(loaded, PROMPT, OPTIONS)), alone)
    app = view_app(str(with_base), str(tmp_path), "random-init")
    async with app.run_test(size=(120, 40)):
        assert app.screen.has_class("-compare") and shown(app, "coupling-b")
        assert app.query_one("#coupling-b", CouplingPane).border_title.startswith("Coupling · B random-init · ")
    done = cli("view", str(alone), "random-init")
    assert done.returncode == 2 and done.stderr.startswith(
        f"coupling-tui: error: {alone} has no random-init baseline to compare with"), done.stderr


def failing_b(events):
    """The streamed comparison's events until B's first block, then B runs out of memory."""
    from coupling_tui.core.errors import UserError
    from coupling_tui.core.results.events import LayerDone, SideStarted

    def job():
        b_started = False
        for event in events:
            b_started = b_started or (isinstance(event, SideStarted) and event.index == 1)
            if b_started and isinstance(event, LayerDone):
                raise UserError("out of memory on cuda:0 while computing B")
            yield event
    return job


async def test_when_b_fails_a_finished_run_is_saved_alone(streamed, tmp_path):
    comparison, events = streamed
    a_path, b_path = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    app = CouplingApp(job=failing_b(events), save_path=a_path, compare_save_path=b_path, compare=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: app.state_text.startswith("error"), timeout=30)
        assert app.state_text == f"error: out of memory on cuda:0 while computing B · A saved to {a_path}"
    assert not b_path.exists()
    np.testing.assert_array_equal(results.load(a_path).arrays["coupling.depth_k"],
                                  comparison.runs[0].arrays["coupling.depth_k"])


def test_compute_compare_keeps_a_when_b_fails(streamed, tmp_path, monkeypatch):
    import argparse

    from rich.console import Console

    from coupling_tui.core.cli import common as core_cli
    from coupling_tui.core.cli import compute_compare as compare_cli
    from coupling_tui.core.errors import UserError

    comparison, events = streamed
    n_layers = comparison.runs[0].n_layers
    monkeypatch.setattr(core_cli, "load_announced", lambda args, console: (type("A", (), {
        "info": {"n_layers": n_layers}})(), None))
    monkeypatch.setattr(compare_cli, "load_b", lambda args, console: None)
    monkeypatch.setattr(compare_cli, "prepare", lambda *a, **k: failing_b(events))
    monkeypatch.setattr(core_cli, "run_options", lambda args: None)
    a_path = tmp_path / "a.safetensors"
    args = argparse.Namespace(compare="other", compare_output=str(tmp_path / "b.safetensors"))
    console = Console(file=open(tmp_path / "console.txt", "w"), width=200)
    with pytest.raises(UserError, match="out of memory"):
        compare_cli.compute_compare(args, PROMPT, a_path, console)
    console.file.close()
    assert a_path.exists() and not (tmp_path / "b.safetensors").exists()
    assert f"model A had finished: its run is saved to {a_path}" in (tmp_path / "console.txt").read_text()
