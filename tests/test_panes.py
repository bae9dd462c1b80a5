"""Render tests of the panes on their own, inside a minimal app: what text they draw for a given run and token."""

from __future__ import annotations

import numpy as np
import pytest
from textual.app import App, ComposeResult

from coupling_tui.core.results.run import Run
from coupling_tui.tui.panes.spectrum import NO_JACOBIANS, WAITING, SpectrumPane, number, sigma
from coupling_tui.tui.panes.tokens import TokensPane, visible
from coupling_tui.tui.panes.logplot import integer_ticks
from coupling_tui.tui.panes.trajectory import TrajectoryPane
from tests.fakes import fake_events


def make_run(n_layers: int = 4, n_tokens: int = 5, layers: int | None = None, k: int = 0) -> Run:
    """A run with the first ``layers`` blocks applied (all of them by default); Jacobians when ``k`` > 0."""
    events = fake_events(n_layers=n_layers, n_tokens=n_tokens, k=k)
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
        assert pane.border_subtitle == "token 3 '·w3' · tokens 0–5"
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
        pane.show(run, 1, 4)
        await pilot.pause()
        depths, values = pane.plotted
        assert depths == [0, 1, 2]
        np.testing.assert_allclose(values, run.arrays["trajectory.norms"][:3, 1])
        assert pane.n_layers == 6
        plain = pane.render().plain
        assert "depth (0 = embeddings)" in plain and "‖x‖" in plain
        assert plain.count("●") == 3 and "◆" not in plain  # block 4's output (depth 5) is not computed yet


async def test_trajectory_pane_marks_the_selected_layers_output():
    run = make_run(n_layers=6)
    pane = TrajectoryPane()
    async with PaneApp(pane).run_test(size=(60, 20)) as pilot:
        pane.show(run, 1, 0)
        await pilot.pause()
        first = pane.render().plain
        assert pane.marker == 1 and first.count("◆") == 1 and first.count("●") == 6
        pane.show(run, 1, 5)
        await pilot.pause()
        last = pane.render().plain
        assert pane.marker == 6 and last.count("◆") == 1 and last != first
        assert pane.plotted[0] == list(range(7))  # the marker does not change the data


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
        assert pane.border_subtitle == "token 4 '·w4' · trained"


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
        assert refreshes and pane.plotted[0] == [0, 1, 2, 3, 4]        # the data (and the legend: a fit)


async def test_trajectory_pane_without_data_draws_an_empty_plot():
    pane = TrajectoryPane()
    async with PaneApp(pane).run_test(size=(40, 12)) as pilot:
        pane.show(Run(), 0)
        await pilot.pause()
        assert pane.plotted == ([], []) and pane.subtitle == ""
        assert "depth (0 = embeddings)" in pane.render().plain


def test_depth_ticks_are_round_integers():
    assert integer_ticks(0, 4, 10) == [0, 1, 2, 3, 4]
    assert integer_ticks(0, 30, 8) == [0, 5, 10, 15, 20, 25, 30]
    assert integer_ticks(0, 24, 6) == [0, 5, 10, 15, 20]


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
        assert trajectory.subtitle == "token 1 '·[b]x' · trained"
        assert trajectory.border_subtitle == "token 1 '·\\[b]x' · trained"  # the markup form of the literal text


def test_sigma_labels_and_numbers():
    assert sigma(1) == "σ₁" and sigma(50) == "σ₅₀"
    assert number(3.9000001) == "3.9" and number(0.000123456) == "0.0001235" and number(float("nan")) == "?"


async def test_spectrum_pane_plots_the_stored_singular_values_of_the_selection():
    run = make_run(n_layers=6, n_tokens=5, k=8)
    pane = SpectrumPane()
    async with PaneApp(pane).run_test(size=(60, 30)) as pilot:
        pane.show(run, 3, 2)
        await pilot.pause()
        S, F = run.arrays["jacobian.singular_values"], run.arrays["jacobian.frobenius"]
        xs, ys = pane.by_index.plotted
        assert xs == list(range(1, 9))
        np.testing.assert_array_equal(np.float32(ys), S[2, 3])
        assert ys[0] == pytest.approx(3 * 1.3) and ys[1] == pytest.approx(3 * 1.3 * 0.9)  # the fake's σ formula
        depths, sigma1 = pane.by_depth.plotted
        assert depths == list(range(6)) and pane.by_depth.marker == 2
        np.testing.assert_array_equal(np.float32(sigma1), S[:, 3, 0])
        assert pane.message == f"σ₁ 3.9 · σ₈ {S[2, 3, 7]:.4g} · ‖J‖_F {F[2, 3]:.4g} · top 8 · closed-form"
        assert pane.subtitle == "layer 2 · token 3 '·w3' · trained"
        plain = pane.by_index.render().plain
        assert "σ_i" in plain and plain.count("●") == 8 and plain == pane.by_index.render().plain  # no re-logging
        depth_plain = pane.by_depth.render().plain
        assert depth_plain.count("◆") == 1 and depth_plain.count("●") == 5
        pane.show(run, 0, 5)
        await pilot.pause()
        np.testing.assert_array_equal(np.float32(pane.by_index.plotted[1]), S[5, 0])
        np.testing.assert_array_equal(np.float32(pane.by_depth.plotted[1]), S[:, 0, 0])
        assert pane.by_depth.marker == 5 and pane.message.startswith("σ₁ 6 · σ₈ ")


async def test_spectrum_pane_says_when_the_selected_layer_is_not_computed_yet():
    run = make_run(n_layers=6, k=4, layers=2)
    pane = SpectrumPane()
    async with PaneApp(pane).run_test(size=(60, 30)) as pilot:
        pane.show(run, 1, 4)
        await pilot.pause()
        assert pane.message == "layer 4 not computed yet"
        assert pane.by_index.plotted == ([], []) and "σ_i" in pane.by_index.render().plain  # empty log axis: no crash
        assert pane.by_depth.plotted[0] == [0, 1] and pane.by_depth.marker == 4
        S = run.arrays["jacobian.singular_values"]
        np.testing.assert_array_equal(np.float32(pane.by_depth.plotted[1]), S[:2, 1, 0])
        assert pane.by_depth.x_range == (0, 5)
        pane.show(run, 1, 1)
        assert pane.message.startswith("σ₁ 2.2 · σ₄ ") and pane.by_index.plotted[0] == [1, 2, 3, 4]


async def test_spectrum_pane_without_jacobians_says_so_and_hides_the_plots():
    pane = SpectrumPane()
    async with PaneApp(pane).run_test(size=(60, 30)) as pilot:
        pane.show(Run(), 0, 0)
        await pilot.pause()
        assert pane.message == WAITING
        pane.show(make_run(n_layers=3), 2, 1)
        await pilot.pause()
        assert pane.message == NO_JACOBIANS == "no Jacobians in this run (computed with --top-k 0)"
        assert not pane.plots.display and pane.by_index.plotted == ([], []) and pane.by_depth.plotted == ([], [])
        assert pane.has_class("-message-only")
        assert NO_JACOBIANS in str(pane.info.render())
        pane.show(make_run(n_layers=3, k=2), 2, 1)
        await pilot.pause()
        assert pane.plots.display and pane.by_index.plotted[0] == [1, 2] and not pane.has_class("-message-only")


async def test_spectrum_subtitle_shows_token_text_literally():
    run = make_run(n_tokens=3, k=2)
    run.header["tokens"]["text"] = ["[INST]", " [b]x", "\n"]
    pane = SpectrumPane()
    async with PaneApp(pane).run_test(size=(60, 30)) as pilot:
        pane.show(run, 1, 3)
        await pilot.pause()
        assert pane.subtitle == "layer 3 · token 1 '·[b]x' · trained"
        assert pane.border_subtitle == "layer 3 · token 1 '·\\[b]x' · trained"
