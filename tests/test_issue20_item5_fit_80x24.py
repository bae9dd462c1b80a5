"""Issue 20 items 5 and 8, what was still cut or hidden at 80×24 (and 120×40): the Trajectory legend, the status
line's model, the Coupling subtitle's trained/random-init, the Collapse sensitivity numbers, the percentile end
labels, a sign that a pane scrolls (and the Compare verdict always in view), and a "pending" legend entry on a
complete matrix. Assertions on the characters on screen."""

from __future__ import annotations

import re

import numpy as np

from coupling_tui.tui.app import CouplingApp
from coupling_tui.tui.panes.trajectory import TrajectoryPane
from tests.test_app import finished_run
from tests.test_collapse_pane import collapse_stream, screen_lines  # noqa: F401 - a fixture

SMALL_RUN = dict(n_layers=3, n_tokens=5, k=4, coupling=True)
LONG_RUN = dict(n_layers=30, n_tokens=7, k=4, coupling=True)
"""As deep as SmolLM2-135M (30 blocks)."""


def screen(app) -> str:
    return "\n".join(screen_lines(app))


async def test_item7_pending_is_in_the_heatmap_legend_only_while_a_cell_is_pending():
    for size, scale in (((120, 40), "fixed"), ((160, 40), "auto"), ((80, 24), "auto")):
        app = CouplingApp(run=finished_run(**SMALL_RUN), scale=scale)
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            assert "█ " in screen(app) and "pending" not in screen(app), size  # was "■ pending" on a complete run
            heatmap = app.coupling.heatmap
            values = heatmap.values.copy()
            values[1, 2] = np.nan                                       # one cell not computed yet
            heatmap.set_matrix(values, heatmap.scale, heatmap.cursor, heatmap.axis_label, heatmap.scale_name)
            await pilot.pause()
            if size != (80, 24):                                        # (no room for it in a 38-cell legend)
                assert "■ pending" in screen(app), size


def pane_lines(app, widget) -> list[str]:
    r = widget.region
    return [line[r.x:r.right] for line in screen_lines(app)[r.y:r.bottom]]


async def test_item1_the_trajectory_legend_is_whole_at_80x24_and_120x40():
    for size in ((80, 24), (120, 40)):
        app = CouplingApp(run=finished_run(**LONG_RUN))
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            pane = app.query_one(TrajectoryPane)
            r = pane.region
            box = [line[r.x:r.right] for line in screen_lines(app)[r.y:r.bottom]]
            assert "…" not in box[0], (size, box[0])                      # was "╭─ Trajectory ● token · ─ fit · ┄ p1… ─╮"
            text = "\n".join(box[:2])
            for label in ("token", "fit", "p10", "p50", "p90"):
                assert re.search(rf"[●─┄] ?{label}\b", text), (size, label, text)
            if size == (120, 40):                                        # room in the border: the legend is there
                assert "Trajectory ● token · ─ fit · ┄ p10 · ─ p50 · ┄ p90" in box[0]


async def test_item5_percentile_end_labels_never_hide_each_other():
    run = finished_run(**LONG_RUN)
    norms = run.arrays["trajectory.norms"]
    norms[-1] = norms[-1].max() * (1 + 0.002 * np.arange(norms.shape[1]))   # every token ends at about one norm
    for size in ((80, 24), (120, 40)):
        async with CouplingApp(run=run).run_test(size=size) as pilot:
            await pilot.pause()
            plot = "\n".join(pane_lines(pilot.app, pilot.app.query_one(TrajectoryPane))[2:])
            assert all(label in plot for label in ("p10", "p50", "p90")), (size, plot)  # was only the last written
            assert "p10,p50,p90" in plot, size


def test_item5_end_labels_merge_on_the_same_or_adjacent_rows_only():
    from coupling_tui.tui.panes.logplot import Series, end_label_groups

    def band(y: float, label: str) -> Series:
        return Series(label, ([0, 10], [1.0, y]), end_label=label)

    groups = end_label_groups([band(100, "p90"), band(90, "p50"), band(10, "p10")], rows=11, y_range=(1, 100))
    assert [label for label, _ in groups] == ["p10", "p50,p90"]          # rows 5, 9.5 and 10
    groups = end_label_groups([band(100, "p90"), band(40, "p50"), band(10, "p10")], rows=11, y_range=(1, 100))
    assert [label for label, _ in groups] == ["p10", "p50", "p90"]       # rows 5, 8 and 10: apart


async def test_item2_the_status_line_keeps_the_model_and_its_weights_whole():
    source = "HuggingFaceTB/SmolLM2-135M-Instruct"
    for size in ((80, 24), (120, 40)):
        for baseline in (False, True):
            run = finished_run(**LONG_RUN)
            run.header["model"] = {**run.header["model"], "source": source, "random_init": baseline}
            app = CouplingApp(run=run)
            async with app.run_test(size=size) as pilot:
                await pilot.pause()
                status = screen_lines(app)[0]
                weights = "random-init" if baseline else "trained"
                assert (f"{source} ({weights})" in status if size == (120, 40)  # was "… · 7 tok…", "(traine…"
                        else f" SmolLM2-135M-Instruct ({weights})" in status), (size, status)
                assert "…" not in status, (size, status)              # the rest dropped whole, not cut
                if size == (120, 40):
                    assert "7 tokens · 30 layers" in status, status


async def test_item3_the_coupling_subtitle_never_cuts_trained_or_random_init():
    for size in ((80, 24), (120, 40)):
        app = CouplingApp(run=finished_run(**LONG_RUN, baseline=True))
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            bottom = pane_lines(app, app.coupling)[-1]
            assert "─ trained · depth · " in bottom, (size, bottom)         # was "… · K=4 · tra… ─╯"
            await pilot.press("r")                                       # the random-init twin
            assert "─ random-init · depth · " in pane_lines(app, app.coupling)[-1], size
    app = CouplingApp(run=finished_run(**LONG_RUN, baseline=True), compare=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        b = app.query_one("#coupling-b")
        assert "─ random-init · depth · " in pane_lines(app, b)[-1]
        assert "─ trained · depth · " in pane_lines(app, app.coupling)[-1]


async def test_item6_the_compare_verdict_is_always_in_view_and_a_cut_table_says_so():
    for size in ((80, 24), (120, 40)):
        app = CouplingApp(run=finished_run(**LONG_RUN, baseline=True), compare=True)
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            await pilot.pause()
            pane = app.query_one("#compare")
            r, bar = pane.table.region, "\u0304"          # "m̄" is two characters in one cell: cells, not characters
            text = " ".join(line.replace(bar, "")[r.x:r.right].strip("│ ") for line in screen_lines(app)[r.y:r.bottom])
            verdict = pane.verdict.replace(bar, "")
            assert verdict and " ".join(verdict.split()) in " ".join(text.split()), (size, text)
            bottom = pane_lines(app, pane)[-1]
            if size == (80, 24):                                         # was: no sign of the rows below
                assert pane.hidden_lines > 0 and f"↓ {pane.hidden_lines} more lines · PgUp/PgDn · " in bottom, bottom
            else:
                assert pane.hidden_lines == 0 and "↓" not in bottom, bottom


async def test_item5_the_compare_table_scrolls_with_pgdn_and_pgup_to_its_last_row():
    app = CouplingApp(run=finished_run(**LONG_RUN, baseline=True), compare=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        pane = app.query_one("#compare")
        last = pane.lines[-1][1]                                         # the table's last row: cut before
        shown = lambda: " ".join(" ".join(line.split()) for line in pane_lines(app, pane.scroller))  # noqa: E731
        hidden = pane.hidden_lines
        assert hidden > 0 and last not in shown()
        for _ in range(hidden):
            await pilot.press("pagedown")
            if pane.hidden_lines == 0:
                break
        await pilot.pause()
        assert pane.hidden_lines == 0 and pane.lines_above > 0 and last in shown(), shown()
        bottom = pane_lines(app, pane)[-1]
        assert f"↑ {pane.lines_above} more line" in bottom and "↓" not in bottom, bottom
        for _ in range(hidden):
            await pilot.press("pageup")
        await pilot.pause()
        assert pane.lines_above == 0 and pane.hidden_lines == hidden
    app = CouplingApp(run=finished_run(**LONG_RUN, baseline=True))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("pagedown")                                    # the one-run layout: says why not
        assert any("c shows it" in str(n.message) for n in app._notifications)


async def test_item5_the_compare_status_line_never_cuts_what_tells_a_from_b():
    for size in ((80, 24), (120, 40)):
        run = finished_run(**LONG_RUN, baseline=True)
        run.header["model"] = {**run.header["model"], "source": "HuggingFaceTB/SmolLM2-135M-Instruct"}
        app = CouplingApp(run=run, compare=True)
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            status = pane_lines(app, app.query_one("#run-info"))[0]
            assert "A trained · " in status and "B random-init" in status, (size, status)   # was "· B ra…"
            assert "B random-init…" not in status and not status.rstrip().endswith("B ra…"), status
            if size == (120, 40):                                    # room for the model and the sizes too
                assert "30 layers" in status, status


async def test_item5_the_collapse_sensitivity_numbers_are_whole_at_80x24_and_120x40(collapse_stream):
    from coupling_tui.core.maths.collapse_view import sensitivity_shares
    from coupling_tui.core.results import names
    from coupling_tui.tui.panes.collapse import CollapsePane, percent
    from tests.test_collapse_pane import run_of

    run = run_of(collapse_stream)
    shares = sensitivity_shares(run.arrays[names.COLLAPSE_SENSITIVITY])
    numbers = [percent(shares.first), percent(shares.first_half), percent(shares.last)]
    for size in ((80, 24), (120, 40)):
        app = CouplingApp(run=run)
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            pane = app.query_one(CollapsePane)
            label = pane_lines(app, pane.sens_label)[0]
            assert all(n in label for n in numbers) and "…" not in label, (size, label)   # was "last 3…"
            if size == (120, 40):                                      # the full line: wrapped, not cut
                text = " ".join(line.strip("│ ") for line in pane_lines(app, pane.sens_info))
                assert f"largest at i = {shares.peak}" in text and "…" not in text, text


async def test_item5_the_coupling_subtitle_takes_a_shorter_wording_rather_than_cut():
    for compare in (False, True):
        app = CouplingApp(run=finished_run(**LONG_RUN, baseline=True), compare=compare)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            panes = [app.coupling] + ([app.query_one("#coupling-b")] if compare else [])
            for pane in panes:
                bottom = pane_lines(app, pane)[-1]
                assert "…" not in bottom and "K=4" in bottom, (compare, bottom)   # was "· token 6 '·w6' · …"
                assert pane.subtitle.endswith("K=4 · 1-m²")                       # the full wording is kept
    app = CouplingApp(run=finished_run(**LONG_RUN, baseline=True))
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.pause()
        assert f"─ {app.coupling.subtitle} ─" in pane_lines(app, app.coupling)[-1]   # room: the full wording


async def test_item5_the_tokens_pane_says_which_tokens_it_shows_when_the_prompt_is_longer():
    from coupling_tui.tui.panes.tokens import TokensPane

    app = CouplingApp(run=finished_run(n_layers=3, n_tokens=120, k=4, coupling=True))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        pane = app.query_one(TokensPane)
        bottom = pane_lines(app, pane)[-1]
        match = re.search(r"↑ tokens (\d+)–119 of 120 ─", bottom)           # was "tokens 0–119": not all shown
        assert match and int(match.group(1)) > 0, bottom
        assert f"·w{match.group(1)}" in pane_lines(app, pane)[1]             # the first token shown is that one
        await pilot.press("home")
        await pilot.pause()
        assert re.search(r"tokens 0–\d+ of 120 ↓ ─", pane_lines(app, pane)[-1]), pane_lines(app, pane)[-1]
    app = CouplingApp(run=finished_run(n_layers=3, n_tokens=6, k=4, coupling=True))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert "tokens 0–5 ─" in pane_lines(app, app.query_one(TokensPane))[-1]   # all shown: no arrows
