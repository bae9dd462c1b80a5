"""The plots read from plotext's cell matrix (tui/panes/plotext_cells.py) show the characters and styles rich's own
``Text.from_ansi`` gives plotext's ANSI canvas of the same matrix, on every plot of the explorer, and a plot's strips
are its rendered Text."""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

from coupling_tui.tui.app import CouplingApp
from coupling_tui.tui.panes.plotext_cells import matrix_text
from coupling_tui.tui.panes.logplot import LogPlot
from tests.test_coupling_pane import coupled_run

CONSOLE = Console(width=400, color_system="truecolor", force_terminal=True)


def cells(text: Text) -> list[tuple[str, object]]:
    """Every character with the style it is drawn in."""
    return [(ch, seg.style) for seg in text.render(CONSOLE) for ch in seg.text]


def drawn(text: Text) -> list[tuple[str, object]]:
    """What the screen shows of each cell: a blank cell's foreground colour is not drawn."""
    return [(ch, style.without_color + style.from_color(None, style.bgcolor) if ch == " " and style else style)
            for ch, style in cells(text)]


async def test_every_plot_of_the_explorer_reads_as_its_ansi_canvas_does():
    app = CouplingApp(run=coupled_run(baseline=True))
    async with app.run_test(size=(160, 50)) as pilot:
        for view in ("depth", "adjacent", "distance"):
            app.set_view(view)
            await pilot.pause()
            plots = [p for p in app.query(LogPlot) if p.display and p.size.area]
            assert plots
            for plot in plots:
                plot.render()                                        # builds the matrix
                matrix = plot.plt.monitor.matrix
                canvas = matrix.set_canvas()                         # plotext's own ANSI canvas of it
                assert "\x1b[" in canvas
                fast, slow = matrix_text(matrix), Text.from_ansi(canvas)
                assert fast.plain == slow.plain
                assert drawn(fast) == drawn(slow), (view, plot.id)


async def test_a_plots_strips_are_its_rendered_text():
    from rich.segment import Segment

    app = CouplingApp(run=coupled_run(baseline=True))
    async with app.run_test(size=(160, 50)) as pilot:
        for view in ("depth", "adjacent"):
            app.set_view(view)
            await pilot.pause()
            for plot in [p for p in app.query(LogPlot) if p.display and p.size.area]:
                w, h = plot.size.width, plot.size.height
                text = plot.render()
                lines = Segment.split_and_crop_lines(text.render(app.console), w, pad=True, style=plot.rich_style,
                                                     include_new_lines=False)
                for y, line in enumerate(list(lines)[:h]):
                    want = drawn_cells([(s.text, plot.rich_style + s.style if s.style else plot.rich_style)
                                        for s in line])
                    got = drawn_cells([(s.text, s.style) for s in plot.render_line(y)])
                    assert got == want, (view, plot.id, y)


def drawn_cells(runs) -> list[tuple[str, object]]:
    out = []
    for text, style in runs:
        for ch in text:
            out.append((ch, style.bgcolor if ch == " " else style))
    return out
