"""The heatmap's lines (rendered once per matrix, cursor and size: issue 20 item 11) are plain screen rows: no
newline character inside (a terminal would move the cursor down mid-row and tear the pane's right border off, as
at 80×24 in the compare layout), each exactly the widget's width."""

from __future__ import annotations

from pathlib import Path

from coupling_tui.tui.main import view_app
from coupling_tui.tui.panes.heatmap import Heatmap

RUN = Path(__file__).parent / "data" / "v0.1.0" / "run.safetensors"


async def test_heatmap_rows_hold_no_newline_and_fill_the_width(tmp_path):
    for size, compare in (((80, 24), "random-init"), ((120, 40), None)):
        app = view_app(str(RUN), str(tmp_path), compare)
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            maps = list(app.query(Heatmap))
            assert maps
            for heatmap in maps:
                for y in range(heatmap.size.height):
                    strip = heatmap.render_line(y)
                    assert "\n" not in "".join(s.text for s in strip), (size, heatmap.id, y)
                    assert strip.cell_length == heatmap.size.width
            rows = ["".join(s.text for s in strip) for strip in app.screen._compositor.render_strips()]  # noqa: SLF001
            assert all("\n" not in row for row in rows)


def test_the_vectorised_colours_are_colour_of_every_entry():
    import math

    import numpy as np

    from coupling_tui.tui.panes.heatmap import MISSING, colour, colour_grid

    rng = np.random.default_rng(0)
    values = rng.uniform(-0.2, 1.2, (17, 13))
    values[3, 4], values[0, 0], values[5, 5] = np.nan, np.inf, 0.5
    for lo, hi in ((0.0, 1.0), (0.31, 0.97), (0.5, 0.5), (math.nan, math.nan)):
        grid = colour_grid(values, lo, hi)
        assert grid == [[colour(float(v), lo, hi) for v in row] for row in values], (lo, hi)
    assert colour_grid(values, 0.0, 1.0)[3][4] == MISSING


async def test_the_strips_are_the_rendered_text_of_the_heatmap():
    from rich.segment import Segment

    from coupling_tui.tui.app import CouplingApp
    from tests.test_coupling_pane import coupled_run

    app = CouplingApp(run=coupled_run())
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        heatmap = app.coupling.heatmap
        w, h = heatmap.size.width, heatmap.size.height
        text = heatmap.render_at(w, h)
        lines = Segment.split_and_crop_lines(text.render(app.console), w, pad=True, style=heatmap.rich_style,
                                             include_new_lines=False)
        expected = [[(s.text, heatmap.rich_style + s.style if s.style else heatmap.rich_style) for s in line]
                    for line in lines]
        for y, line in enumerate(expected):
            got = [(s.text, s.style) for s in heatmap.render_line(y)]
            assert "".join(t for t, _ in got) == "".join(t for t, _ in line), y
            cells = [(ch, style) for t, style in got for ch in t]
            want = [(ch, style) for t, style in line for ch in t]
            assert cells == want, y
