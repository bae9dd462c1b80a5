"""Issue 20 item 3: a collapse run (``coupling-tui collapse``: collapse data, no Jacobians) showed, beside the
selected pair (``n = 8 vs 9``), the Tokens and Trajectory panes of the run's short placeholder prompt, unrelated to
the pair, and squeezed the Trajectory plot to one row. The pairs' per-token states are not stored, so those panes
are gone, the Collapse pane has the screen, the keys that would show them say why, and the pair's line shows the
family's sequences by the example the file keeps."""

from __future__ import annotations

import pytest

from coupling_tui.tui.app import CouplingApp
from coupling_tui.tui.panes import collapse as collapse_pane
from coupling_tui.tui.panes.collapse import CollapsePane
from coupling_tui.tui.panes.spectrum import SpectrumPane
from coupling_tui.tui.panes.tokens import TokensPane
from coupling_tui.tui.panes.trajectory import TrajectoryPane
from tests.fakes import collapse_events
from tests.test_app import spy_notifications
from tests.test_collapse_pane import run_of, screen_lines


@pytest.fixture(scope="module")
def collapse_run(tiny_dir):
    """``coupling-tui collapse`` on the tiny model (placeholder prompt "1 1 1"): ones and digits at n = 2, 4, 8."""
    return run_of(collapse_events(tiny_dir, families=("ones", "digits"), lengths=(2, 4, 8), sensitivity=False))


@pytest.mark.parametrize("size", [(120, 40), (80, 24)])
async def test_a_collapse_run_shows_the_collapse_pane_alone(collapse_run, size):
    app = CouplingApp(run=collapse_run)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        pane = app.query_one(CollapsePane)
        for other in (TokensPane, TrajectoryPane, SpectrumPane):
            assert not app.query_one(other).region.area, other        # the placeholder prompt's panes are gone
        screen = "\n".join(screen_lines(app))
        assert "Tokens" not in screen and "Trajectory" not in screen and "Spectrum" not in screen
        assert "3 tokens" not in screen_lines(app)[0]                    # the status line names no placeholder
        assert pane.region.height == size[1] - 2                         # all but the status line and the footer
        assert pane.message.startswith("n = 8 vs 9 repeats")
        assert pane.plot.region.height >= (15 if size[1] >= 40 else 4)


async def test_the_pair_line_shows_the_family_example_the_file_keeps(collapse_run):
    app = CouplingApp(run=collapse_run)
    example = collapse_run.header["collapse"]["tokenizer"]["digits"]["example"]
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f")                                           # digits: 11…10
        pane = app.query_one(CollapsePane)
        shown = f"like '{example['short']}' / '{example['long']}' (n = {example['n']})"
        assert shown in pane.message and shown in "\n".join(screen_lines(app)), pane.message


@pytest.mark.parametrize("key", ["2", "3", "5"])
async def test_keys_of_the_missing_panes_say_why(collapse_run, key):
    app = CouplingApp(run=collapse_run)
    async with app.run_test(size=(120, 40)) as pilot:
        notes = spy_notifications(app)
        await pilot.press(key)
        assert notes and notes[-1][0] == getattr(collapse_pane, "NO_PAIR_STATES", None), notes
        assert "no tokens, trajectories or Jacobians of the pairs" in notes[-1][0]
        assert app.focused is app.query_one(CollapsePane)
