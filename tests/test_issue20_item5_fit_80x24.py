"""Issue 20 items 5 and 8, what was still cut or hidden at 80×24 (and 120×40): the Trajectory legend, the status
line's model, the Coupling subtitle's trained/random-init, the Collapse sensitivity numbers, the percentile end
labels, a sign that a pane scrolls (and the Compare verdict always in view), and a "pending" legend entry on a
complete matrix. Assertions on the characters on screen."""

from __future__ import annotations

import numpy as np

from coupling_tui.tui.app import CouplingApp
from tests.test_app import finished_run
from tests.test_collapse_pane import screen_lines

SMALL_RUN = dict(n_layers=3, n_tokens=5, k=4, coupling=True)


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
