"""The explorer's layout: the Coupling pane beside a side column that stacks its panes on a tall screen and shows
one at a time on a short one; Tab cycles the visible panes."""

from __future__ import annotations

import pytest

from coupling_tui.tui.app import CouplingApp
from coupling_tui.tui.panes.coupling import CouplingPane
from coupling_tui.tui.panes.spectrum import SpectrumPane
from coupling_tui.tui.panes.tokens import TokensPane
from coupling_tui.tui.panes.trajectory import TrajectoryPane
from tests.test_app import finished_run


@pytest.mark.parametrize("size, tall", [((80, 24), False), ((119, 39), False), ((119, 40), True),
                                       ((80, 50), True), ((120, 30), False), ((200, 60), True)])
async def test_layout_coupling_beside_the_side_panes_and_tab_cycles_the_visible_ones(size, tall):
    app = CouplingApp(run=finished_run(k=4))
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        tokens, coupling = app.query_one(TokensPane).region, app.query_one(CouplingPane).region
        trajectory, spectrum = app.query_one(TrajectoryPane).region, app.query_one(SpectrumPane).region
        assert coupling.y >= tokens.bottom and trajectory.x >= coupling.right and trajectory.y == coupling.y
        assert coupling.width >= 38 and coupling.height >= 12 and trajectory.height >= 8
        if tall:                                   # every side pane, stacked
            assert spectrum.y >= trajectory.bottom and spectrum.x == trajectory.x and spectrum.height >= 8
        else:                                      # one side pane at a time; 3 swaps in the Spectrum pane
            assert spectrum.area == 0
            await pilot.press("3")
            await pilot.pause()
            spectrum = app.query_one(SpectrumPane).region
            assert app.query_one(TrajectoryPane).region.area == 0 and spectrum.height >= 8
            assert isinstance(app.focused, SpectrumPane)
            await pilot.press("1")
        assert app.query_one("Footer").region.bottom == size[1]
        side = [TrajectoryPane, SpectrumPane] if tall else [SpectrumPane]   # the shown one stays shown
        order = [CouplingPane, *side, TokensPane, CouplingPane]
        for expected in order:
            assert isinstance(app.focused, expected)
            await pilot.press("tab")
