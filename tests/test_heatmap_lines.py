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
