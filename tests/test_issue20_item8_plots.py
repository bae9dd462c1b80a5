"""Issue 20 item 8: the plots. Log axes tick at decades (1, 10, 100, 1000), not at powers of e; the Trajectory
pane's p10/p50/p90 are told apart (p50 solid, p10 and p90 dotted) and each named; several series sharing a plot
have a legend; a series drawn with dots has its line at the dots' resolution, so it runs through them (Spectrum);
every plot has its axis titles (the Collapse pane's difference-vs-n plot had none on a short screen) and its low
precision curve is drawn over float32 (it hid behind it). Assertions on the characters on screen."""

from __future__ import annotations

import math
import re

import pytest

from coupling_tui.tui.app import CouplingApp
from coupling_tui.tui.panes.collapse import CollapsePane
from coupling_tui.tui.panes import logplot
from coupling_tui.tui.panes.spectrum import SpectrumPane
from coupling_tui.tui.panes.trajectory import TrajectoryPane
from tests.fakes import collapse_events
from tests.test_app import finished_run
from tests.test_collapse_pane import run_of, screen_lines

BRAILLE = re.compile("[\u2801-\u28ff]")


def region_lines(app, widget) -> list[str]:
    r = widget.region
    return [line[r.x:r.right] for line in screen_lines(app)[r.y:r.bottom]]


def y_tick_labels(lines: list[str]) -> list[str]:
    """The numbers written left of the y axis ("1000┤")."""
    return [m.group(1) for line in lines if (m := re.search(r"([0-9.e+-]+)[┤┼]", line))]


def test_log_ticks_are_decades_then_1_2_5_then_the_ends():
    assert logplot.log_ticks(2.1, 9345.7) == ([10.0, 100.0, 1000.0], ["10", "100", "1000"])
    assert logplot.log_ticks(0.8, 12) == ([1.0, 10.0], ["1", "10"])
    assert logplot.log_ticks(12.4, 70.5) == ([20.0, 50.0], ["20", "50"])
    assert logplot.log_ticks(3e5, 4e7) == ([1e6, 1e7], ["1e6", "1e7"])
    assert logplot.log_ticks(3.1, 3.9) == ([3.1, 3.9], ["3.1", "3.9"])


async def test_the_trajectory_ticks_at_decades_and_names_its_percentiles():
    app = CouplingApp(run=finished_run(n_layers=30, n_tokens=7, k=4, coupling=True))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        pane = app.query_one(TrajectoryPane)
        lines = region_lines(app, pane)
        labels = y_tick_labels(lines)
        assert len(labels) >= 2 and all(math.log10(float(x)).is_integer() for x in labels), labels
        assert [(s.label, s.dotted) for s in pane.series[2:]] == [("p10", True), ("p50", False), ("p90", True)]
        text = "\n".join(lines)
        assert "┄ p10 · ─ p50 · ┄ p90" in text                           # the legend, in the border title
        assert [s.end_label for s in pane.series[2:]] == ["p10", "p50", "p90"]   # each named at its end on the plot
        body = text.split("\n", 1)[1]
        assert re.search(r"p[159]0│", body)                                 # (labels of coinciding lines overlap)


async def test_spectrum_lines_run_through_their_dots_and_tick_at_round_numbers():
    app = CouplingApp(run=finished_run(n_layers=30, n_tokens=7, k=8, d=16, coupling=True))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        spectrum = app.query_one(SpectrumPane)
        by_index = "\n".join(region_lines(app, spectrum.by_index))
        assert "●" in by_index and not BRAILLE.search(by_index)          # no braille line beside the dots
        for plot in (spectrum.by_index, spectrum.by_depth):
            labels = y_tick_labels(region_lines(app, plot))
            ys = [y for series in plot.series for y in series.points[1]]
            assert labels[::-1] == logplot.log_ticks(min(ys), max(ys))[1], labels  # top first: decades, 1-2-5 or the ends


@pytest.fixture(scope="module")
def collapse_run(tiny_dir):
    return run_of(collapse_events(tiny_dir, families=("ones",), lengths=(2, 4, 8), sensitivity=False))


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_the_collapse_plot_has_axis_titles_a_whole_legend_and_bf16_over_float32(collapse_run, size):
    app = CouplingApp(run=collapse_run)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        pane = app.query_one(CollapsePane)
        plot = "\n".join(region_lines(app, pane.plot))
        assert "n (repeats)" in plot and "L∞" in plot                    # both axis titles
        low = next(s for s in pane.plot.series if s.dot == "○")
        assert low.on_top and "○" in plot                                # bf16 drawn over float32
        legend = "\n".join(region_lines(app, pane.legend))
        assert all(part in legend for part in pane.legend.plain.split(" · "))   # never cut
