"""Issue 20 item 7: while run B is still computing, the Compare table gives no verdict ("A is more coupled at K=…"
ranked A's whole matrices against B's first blocks); it says what is missing ("B: 2/4 layers") until both runs
have every entry it compares. Synthetic streams (tests/fakes.py), both runs of 4 blocks."""

from __future__ import annotations

from coupling_tui.core.results import compare
from coupling_tui.core.results.comparison import Comparison
from coupling_tui.core.results.events import CompareFinished, CompareStarted, SideStarted
from coupling_tui.tui.app import CouplingApp
from coupling_tui.tui.panes.compare import ComparePane
from tests.fakes import fake_events

WAITING = "no verdict until both runs are complete (B: 2/4 layers)"


def comparison(b_layers: int | None) -> Comparison:
    """A finished and B after ``b_layers`` blocks (None: B finished too)."""
    a, b = fake_events(k=4, coupling=True), fake_events(k=4, coupling=True, seed=5)
    events = [CompareStarted(labels=("a", "b")), SideStarted(0), *a, SideStarted(1)]
    events += b[:1 + b_layers] if b_layers is not None else [*b, CompareFinished(seconds=1.0)]
    pair = Comparison()
    for event in events:
        pair.apply(event)
    return pair


def test_the_verdict_waits_for_both_runs():
    a, b = comparison(2).runs
    sa, sb = compare.sides(a, b)
    assert sb.scalar_all is not None                      # B's first blocks already give a mean …
    assert compare.verdict(sa, sb) == WAITING             # … but no ranking yet
    a, b = comparison(None).runs
    assert compare.verdict(*compare.sides(a, b)).startswith(("A is more coupled at K=4", "B is more coupled at K=4"))


async def test_the_compare_pane_gives_no_verdict_while_b_computes():
    app = CouplingApp(run=comparison(2))
    async with app.run_test(size=(120, 40)):
        pane = app.query_one(ComparePane)
        assert pane.verdict == WAITING
    app = CouplingApp(run=comparison(None))
    async with app.run_test(size=(120, 40)):
        assert app.query_one(ComparePane).verdict.startswith(("A is more coupled", "B is more coupled"))
