"""Issue 20 item 6: in a plain run (one prompt, no collapse data, no pair to compare, no baseline) every key that
does not apply says why instead of doing nothing; the command palette offers only the commands that apply; a
layer or token number out of range is refused, not clamped."""

from __future__ import annotations

import pytest

from tests.test_app import finished_run
from tests.test_palette import hits, run_command
from tests.test_collapse_pane import collapse_stream  # noqa: F401 - a fixture

from coupling_tui.tui.app import CouplingApp
from coupling_tui.tui.commands import ExplorerCommands

WHY = {
    "c": "nothing to compare with", "x": "nothing to compare with",
    "p": "this run has one prompt", "P": "this run has one prompt",
    "f": "no collapse data in this run", "n": "no collapse data in this run", "d": "no collapse data in this run",
    "comma": "no collapse data in this run", "full_stop": "no collapse data in this run",
    "r": "this run has no random-init baseline", "u": "this run has only the ujv variant",
}
"""Each key a plain run has nothing for, and how its warning starts."""


def plain_app() -> CouplingApp:
    return CouplingApp(run=finished_run(n_layers=4, n_tokens=6, k=4, coupling=True))


@pytest.mark.parametrize("key", list(WHY))
async def test_every_key_that_does_not_apply_says_why(key):
    app = plain_app()
    async with app.run_test(size=(120, 40)) as pilot:
        before = (app.selected_token, app.selected_layer, app.screen.has_class("-compare"))
        await pilot.press(key)
        await pilot.pause()
        messages = [n.message for n in app._notifications]
        assert len(messages) == 1 and messages[0].startswith(WHY[key]), (key, messages)
        assert (app.selected_token, app.selected_layer, app.screen.has_class("-compare")) == before


async def test_the_palette_offers_only_the_commands_that_apply():
    app = plain_app()
    async with app.run_test(size=(120, 40)):
        provider = ExplorerCommands(app.screen)
        titles = [h.display for h in await hits(provider)]
        for absent in ("Collapse: next family", "Collapse: pre-/post-norm states", "Collapse: next difference measure",
                       "Next prompt", "Previous prompt", "Show the aggregate over prompts",
                       "Compare: toggle the side-by-side layout", "Compare: swap A and B",
                       "Toggle trained / random-init", "Toggle coupling variant ujv / vju"):
            assert absent not in titles
        assert "Cycle coupling K" in titles and "Export the focused pane to SVG" in titles
        assert await hits(provider, "length 16") == []                 # no "Collapse: jump to length n = 16"
        assert await hits(provider, "prompt 2") == []
        assert [h.text for h in await hits(provider, "layer 3")] == ["Jump to layer 3"]


@pytest.mark.parametrize("query, message", [("layer 99", "no layer 99 in this run (it has layers 0–3)"),
                                            ("token 40", "no token 40 in this run (it has tokens 0–5)")])
async def test_a_number_out_of_range_is_refused_not_clamped(query, message):
    app = plain_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("home")
        before = (app.selected_token, app.selected_layer)
        await run_command(pilot, query)
        assert (app.selected_token, app.selected_layer) == before          # was: clamped to the last
        assert [n.message for n in app._notifications] == [message]


async def test_item6_token_and_layer_keys_in_a_collapse_run_or_an_aggregate_say_why(collapse_stream):
    from coupling_tui.tui.app_keys import AGGREGATE_TOKENS, COLLAPSE_RUN
    from tests.test_collapse_pane import run_of, screen_lines
    from tests.test_set_results import filled

    app = CouplingApp(run=run_of(collapse_stream))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert "←/h →/l" not in screen_lines(app)[-1]                   # the footer does not offer them
        for key in ("left", "up", "end", "K"):
            await pilot.press(key)
        assert [str(n.message) for n in app._notifications] == [COLLAPSE_RUN]    # was: nothing
    app = CouplingApp(run=filled())                                           # opens on the aggregate
    async with app.run_test(size=(100, 30)) as pilot:
        layer = app.selected_layer
        await pilot.press("left", "down")
        assert any(str(n.message) == AGGREGATE_TOKENS for n in app._notifications)
        assert app.selected_layer == layer + 1                                # layers still move
