"""Issue 20 item 9: tokens are counted from 0 everywhere (the Tokens pane said "6/6" where the others said
"token 5") and quoted one way, ``token 5 '·w5'``, in every pane that names the selected token."""

from __future__ import annotations

from coupling_tui.core.results.comparison import Comparison
from coupling_tui.core.results.events import CompareFinished, CompareStarted, SideStarted
from coupling_tui.tui.app import CouplingApp
from coupling_tui.tui.panes.compare import ComparePane
from coupling_tui.tui.panes.coupling import CouplingPane
from coupling_tui.tui.panes.spectrum import SpectrumPane
from coupling_tui.tui.panes.tokens import TokensPane
from coupling_tui.tui.panes.trajectory import TrajectoryPane
from tests.fakes import fake_events
from tests.test_app import finished_run


async def test_every_pane_counts_tokens_from_0_and_quotes_them_alike():
    app = CouplingApp(run=finished_run(n_layers=3, n_tokens=6, k=4, coupling=True))
    async with app.run_test(size=(120, 50)) as pilot:
        for keys, token in (((), 5), (("home",), 0), (("right", "right"), 2)):
            await pilot.press(*keys)
            quoted = f"token {token} '·w{token}'"
            assert str(app.query_one(TokensPane).border_subtitle) == f"{quoted} · tokens 0–5"   # was "6/6"
            for pane in (TrajectoryPane, SpectrumPane, CouplingPane):
                assert quoted in app.query_one(pane).subtitle, (pane, app.query_one(pane).subtitle)


async def test_the_compare_pane_quotes_both_sides_tokens():
    pair = Comparison()
    for event in (CompareStarted(labels=("a", "b")), SideStarted(0), *fake_events(k=4, coupling=True),
                  SideStarted(1), *fake_events(k=4, coupling=True, seed=5), CompareFinished(seconds=1.0)):
        pair.apply(event)
    app = CouplingApp(run=pair)
    async with app.run_test(size=(120, 40)):
        assert app.query_one(ComparePane).subtitle.startswith("A token 4 '·w4' · B token 4 '·w4' · K=4")
