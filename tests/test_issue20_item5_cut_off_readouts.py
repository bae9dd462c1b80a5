"""Issue 20 item 5: readouts cut off at 80×24 and 120×40. The value under the cursor and what tells A from B are
never cut (they wrap between values); the saved path keeps its file name; help lines wrap between words; a heatmap
larger than its pane shows that it scrolls. Assertions on the characters on screen."""

from __future__ import annotations

from coupling_tui.tui.app import CouplingApp
from coupling_tui.tui.help_screen import HelpScreen
from coupling_tui.tui.panes.coupling_text import value_text
from coupling_tui.tui.panes.spectrum import SpectrumPane
from tests.test_app import finished_run
from tests.test_collapse_pane import screen_lines

LONG_RUN = dict(n_layers=30, n_tokens=7, k=4, coupling=True)
"""A run as deep as SmolLM2-135M (30 blocks): its 30×30 matrix does not fit an 80×24 screen."""


def screen(app) -> str:
    return "\n".join(screen_lines(app))


async def test_the_cursor_value_and_the_haar_null_are_whole_at_80x24():
    app = CouplingApp(run=finished_run(**LONG_RUN))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("down", "L", "L", "L")
        pane = app.coupling
        m, c = pane.current.cell(1, 3)
        text = screen(app)
        assert f"layer 1 → 3: m = {value_text(m)}" in text
        assert f"1−m² = {value_text(c)}" in text                          # was "1−m² = 0.…"
        null = pane.message.split("Haar null m ≈ ")[1]
        assert f"Haar null m ≈ {null}" in text                            # was "Haar null m ≈…"


async def test_the_heatmap_shows_that_it_scrolls_at_80x24():
    app = CouplingApp(run=finished_run(**LONG_RUN))
    async with app.run_test(size=(80, 24)):
        heatmap = app.coupling.heatmap
        r0, nr, _, _ = heatmap.shown
        assert r0 == 0 and nr < 30                                         # layers 0..nr-1 of 30
        gutter = [line[1] for line in screen_lines(app) if line.startswith("│") and "▀" in line]
        assert gutter[-1] == "↓" and "↑" not in gutter                     # more rows below, none above
        assert heatmap.window_note() == f"rows 0–{nr - 1} of 30 ↕"
    async with CouplingApp(run=finished_run(**LONG_RUN)).run_test(size=(80, 24)) as pilot:
        await pilot.press("end", *["down"] * 29)
        gutter = [line[1] for line in screen_lines(pilot.app) if line.startswith("│") and "▀" in line]
        assert gutter[0] == "↑" and "↓" not in gutter


async def test_the_spectrum_readout_wraps_whole_at_80x24():
    app = CouplingApp(run=finished_run(**LONG_RUN))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("3")
        message = app.query_one(SpectrumPane).message
        assert message.endswith("· closed-form")
        text = screen(app)
        assert all(part in text for part in message.split(" · ")), message  # was "… · top 4 · closed-fo…"


async def test_the_compare_heads_say_trained_and_random_init_whole():
    for size in ((120, 40), (80, 24)):
        app = CouplingApp(run=finished_run(**LONG_RUN, baseline=True), compare=True)
        async with app.run_test(size=size):
            text = screen(app)
            assert "A trained" in text and "B random-init" in text, size  # was "B fake/model (random-…"


async def test_the_saved_path_keeps_its_file_name():
    app = CouplingApp(run=finished_run(**LONG_RUN))
    path = "/home/someone/.local/share/coupling-tui/runs/20250101-120000-SmolLM2-135M-Instruct.safetensors"
    async with app.run_test(size=(120, 40)) as pilot:
        app.set_state(f"done in 12.3 s · saved to {path}")
        await pilot.pause()
        status = screen_lines(app)[0]
        assert status.rstrip().endswith("-SmolLM2-135M-Instruct.safetensors") and "done in 12.3 s" in status


async def test_help_lines_wrap_between_words_at_80x24():
    app = CouplingApp(run=finished_run(**LONG_RUN))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        words = " ".join(screen_lines(app)).split()
        help_text = "Move the coupling cursor's column back (a layer, or a token in the token view)."
        assert all(word in words for word in help_text.split()), help_text  # was cut at the screen's edge
