"""Render tests of the panes on their own, inside a minimal app: what text they draw for a given run and token."""

from __future__ import annotations

import numpy as np
from textual.app import App, ComposeResult

from coupling_tui.core.run import Run
from coupling_tui.tui.panes.tokens import TokensPane, visible
from coupling_tui.tui.panes.trajectory import TrajectoryPane, depth_ticks
from tests.fakes import fake_events


def make_run(n_layers: int = 4, n_tokens: int = 5, layers: int | None = None) -> Run:
    """A run with the first ``layers`` blocks applied (all of them by default)."""
    events = fake_events(n_layers=n_layers, n_tokens=n_tokens)
    upto = len(events) if layers is None else layers + 1
    run = Run()
    for event in events[:upto]:
        run.apply(event)
    return run


class PaneApp(App[None]):
    """Hosts one pane at a fixed size."""

    def __init__(self, pane) -> None:
        super().__init__()
        self.pane = pane

    def compose(self) -> ComposeResult:
        yield self.pane


def selected_text(text) -> list[str]:
    """The substrings of a rich Text drawn reversed (the highlight)."""
    return [text.plain[s.start : s.end] for s in text.spans if "reverse" in str(s.style)]


def test_visible_whitespace():
    assert visible(" w0") == "·w0"
    assert visible("a\n\tb") == "a⏎⇥b"
    assert visible("") == "∅"


async def test_tokens_pane_shows_all_tokens_and_highlights_the_selected_one():
    run = make_run(n_tokens=6)
    pane = TokensPane()
    async with PaneApp(pane).run_test(size=(60, 10)) as pilot:
        pane.show(run, 3)
        await pilot.pause()
        text = pane.render()
        assert text.plain == "·w0 ·w1 ·w2 ·w3 ·w4 ·w5"
        assert selected_text(text) == ["·w3"]
        assert pane.border_subtitle == "4/6"
        pane.show(run, 0)
        assert selected_text(pane.render()) == ["·w0"]


async def test_tokens_pane_wraps_and_keeps_the_selected_token_in_view():
    run = make_run(n_tokens=60)
    pane = TokensPane()
    async with PaneApp(pane).run_test(size=(30, 12)) as pilot:
        pane.show(run, 0)
        await pilot.pause()
        lines = pane.render().plain.splitlines()
        assert len(lines) == TokensPane.MAX_LINES and all(len(line) <= pane.content_size.width for line in lines)
        assert lines[0].startswith("·w0 ·w1") and "·w59" not in pane.render().plain
        pane.show(run, 59)
        await pilot.pause()
        text = pane.render()
        assert selected_text(text) == ["·w59"] and "·w0 " not in text.plain
        assert pane.size.height == TokensPane.MAX_LINES


async def test_trajectory_pane_plots_only_computed_layers():
    run = make_run(n_layers=6, layers=2)
    pane = TrajectoryPane()
    async with PaneApp(pane).run_test(size=(60, 20)) as pilot:
        pane.show(run, 1)
        await pilot.pause()
        depths, values = pane.plotted
        assert depths == [0, 1, 2]
        np.testing.assert_allclose(values, run.arrays["trajectory.norms"][:3, 1])
        assert pane.n_layers == 6
        plain = pane.render().plain
        assert "depth (0 = embeddings)" in plain and "‖x‖" in plain
        assert plain.count("●") == 3


async def test_trajectory_render_changes_with_the_token_and_is_repeatable():
    run = make_run(n_layers=4, n_tokens=5)
    pane = TrajectoryPane()
    async with PaneApp(pane).run_test(size=(60, 20)) as pilot:
        pane.show(run, 0)
        await pilot.pause()
        first = pane.render().plain
        assert first.strip() and first == pane.render().plain  # plotext's log scale must not compound
        pane.show(run, 4)
        await pilot.pause()
        assert pane.render().plain != first
        assert pane.border_subtitle == "token 4 · ·w4"


async def test_trajectory_pane_refreshes_only_when_its_data_changes(monkeypatch):
    run = make_run(n_layers=4, layers=1)
    pane = TrajectoryPane()
    async with PaneApp(pane).run_test(size=(60, 20)) as pilot:
        pane.show(run, 0)
        await pilot.pause()
        refreshes: list[bool] = []
        monkeypatch.setattr(pane, "refresh", lambda *a, **k: refreshes.append(True))
        pane.show(run, 0)
        assert refreshes == []
        full = make_run(n_layers=4)
        pane.show(full, 0)
        assert refreshes == [True] and pane.plotted[0] == [0, 1, 2, 3, 4]


async def test_trajectory_pane_without_data_draws_an_empty_plot():
    pane = TrajectoryPane()
    async with PaneApp(pane).run_test(size=(40, 12)) as pilot:
        pane.show(Run(), 0)
        await pilot.pause()
        assert pane.plotted == ([], []) and pane.subtitle == ""
        assert "depth (0 = embeddings)" in pane.render().plain


def test_depth_ticks_are_round_integers():
    assert depth_ticks(4, 10) == [0, 1, 2, 3, 4]
    assert depth_ticks(30, 8) == [0, 5, 10, 15, 20, 25, 30]
    assert depth_ticks(24, 6) == [0, 5, 10, 15, 20]


async def test_token_text_is_shown_literally_never_as_markup():
    run = make_run(n_tokens=3)
    run.header["tokens"]["text"] = ["[INST]", " [b]x", "\n"]
    tokens, trajectory = TokensPane(), TrajectoryPane()
    async with PaneApp(tokens).run_test(size=(60, 20)) as pilot:
        tokens.show(run, 1)
        await pilot.pause()
        assert tokens.render().plain == "[INST] ·[b]x ⏎"
        assert selected_text(tokens.render()) == ["·[b]x"]
    async with PaneApp(trajectory).run_test(size=(60, 20)) as pilot:
        trajectory.show(run, 1)
        await pilot.pause()
        assert trajectory.subtitle == "token 1 · ·[b]x"
        assert trajectory.border_subtitle == "token 1 · ·\\[b]x"  # the markup form of the literal text
