"""The command palette's entries come from the action registry (``UserAction.commands``): the palette lists the
registry's commands that apply to the run (issue 20 item 6), each calling its app method, and they are the palette's
entries from before the registry held them (titles, help lines, effects)."""

from __future__ import annotations

from functools import partial

import pytest

from coupling_tui.tui.actions import ACTIONS, palette_entries
from coupling_tui.tui.app import CouplingApp
from coupling_tui.tui.commands import ExplorerCommands
from tests.test_app import finished_run

BEFORE = {
    "Export all panes to SVG": ("every pane and the whole screen", "action_export_all", ()),
    "Export the focused pane to SVG": ("into the export directory", "action_export_pane", ()),
    "Coupling metric: 1−m²": ("the official notebook's plot", "set_metric", ("1-m²",)),
    "Coupling metric: m": ("0 = coupled, ≈1 = unrelated", "set_metric", ("m",)),
    "Cycle coupling K": ("among the K values computed", "action_cycle_k", ()),
    "Toggle token / average": ("depth coupling of one token or all", "action_toggle_average", ()),
    "Toggle trained / random-init": ("needs --random-baseline", "action_toggle_baseline", ()),
    "Next coupling view": ("depth, token, context, adjacent m(l, l+1), m against |i − j|", "action_toggle_view",
                           ()),
    "Toggle coupling variant ujv / vju": ("needs --vju", "action_toggle_variant", ()),
    "Next prompt": ("runs of several prompts (p)", "action_step_prompt", (1,)),
    "Previous prompt": ("runs of several prompts (P)", "action_step_prompt", (-1,)),
    "Show the aggregate over prompts": ("mean ± std of the depth coupling", "show_aggregate", ()),
    "Compare: toggle the side-by-side layout": ("two models (--compare, view A B) or trained vs random-init (c)",
                                                "action_toggle_compare", ()),
    "Compare: swap A and B": ("B on the left (x)", "action_swap_sides", ()),
    "Collapse: next family": ("ones, digits, commas, …", "action_cycle_family", ()),
    "Collapse: pre-/post-norm states": ("the last states before or after the final norm", "action_toggle_normed", ()),
    "Collapse: next difference measure": ("L∞ (the paper's), L1/d, relative L2", "action_cycle_measure", ()),
}
"""The 17 fixed palette entries commands.py listed by hand before the registry held them: title → (help, the app
method called, its arguments)."""

ADDED = {
    "Colour scale: fixed 0–1": ("the same for every run, to compare runs by eye", "set_scale", ("fixed",)),
    "Colour scale: auto": ("the matrix's off-diagonal range", "set_scale", ("auto",)),
    "Coupling view: adjacent m(l, l+1) against depth": ("a plot of the depth matrix", "set_view", ("adjacent",)),
    "Coupling view: m against |i − j|": ("a plot of the depth matrix", "set_view", ("distance",)),
    "Coupling view: depth heatmap": ("layer × layer", "set_view", ("depth",)),
}
"""Fixed entries added since (issue 20 item 4: the colour scale)."""

NUMBERED_BEFORE = {
    "layer 12": ("Jump to layer 12", "jump_to_layer", (12,)), "l=3": ("Jump to layer 3", "jump_to_layer", (3,)),
    " Token 40 ": ("Jump to token 40", "jump_to_token", (40,)), "t4": ("Jump to token 4", "jump_to_token", (4,)),
    "length 16": ("Collapse: jump to length n = 16", "jump_to_length", (16,)),
    "N = 16": ("Collapse: jump to length n = 16", "jump_to_length", (16,)),
    "prompt 2": ("Show prompt 2", "jump_to_prompt", (2,)), "p2": ("Show prompt 2", "jump_to_prompt", (2,)),
}
"""Numbered queries the palette answered before, and the one hit each got: title, method, arguments."""


def called(callback) -> tuple[str, tuple[object, ...]]:
    """(method name, arguments) of a palette hit's callback."""
    if isinstance(callback, partial):
        return callback.func.__name__, callback.args
    return callback.__name__, ()


async def hits(provider: ExplorerCommands, query: str | None = None) -> list:
    found = provider.discover() if query is None else provider.search(query)
    return [hit async for hit in found]


async def test_the_palette_lists_the_registry_commands_that_apply():
    fixed = [e for e in palette_entries() if not e.words]
    app = CouplingApp(run=finished_run(k=4, coupling=True))
    async with app.run_test(size=(80, 24)):
        provider = ExplorerCommands(app.screen)
        discovered = await hits(provider)
        applying = [e for e in fixed if app.applies(e.needs)]
        assert [(h.display, h.help, called(h.command)) for h in discovered] == [
            (e.title, e.help, (e.method, e.args)) for e in applying]
        assert {e.needs for e in applying} == {"", "coupling", "views"}
        app.applies = lambda needs: True                         # type: ignore[method-assign]
        assert [h.display for h in await hits(provider)] == [e.title for e in fixed]
        for hit in discovered:                                   # each one calls the app's own method
            callback = hit.command.func if isinstance(hit.command, partial) else hit.command
            assert callback.__self__ is app
        for entry in fixed:                                      # typing a title finds it
            assert entry.title in [h.text for h in await hits(provider, entry.title)]


async def test_the_palette_entries_are_the_ones_from_before_the_registry():
    app = CouplingApp(run=finished_run(k=4))
    async with app.run_test(size=(80, 24)):
        app.applies = lambda needs: True                         # every entry, as if every one applied
        provider = ExplorerCommands(app.screen)
        assert {h.display: (h.help, *called(h.command)) for h in await hits(provider)} == BEFORE | ADDED
        for query, (title, method, args) in NUMBERED_BEFORE.items():
            found = await hits(provider, query)
            assert [(h.text, called(h.command), h.score) for h in found] == [(title, (method, args), 1.0)], query
        assert await hits(provider, "x 3") == []


def test_every_registered_command_resolves_to_an_app_method():
    entries = palette_entries()
    assert len(entries) == sum(len(a.commands) for a in ACTIONS) == len(BEFORE) + len(ADDED) + 4
    for entry in entries:
        assert callable(getattr(CouplingApp, entry.method)), entry
    words = [w for e in entries for w in e.words]
    assert sorted(words) == sorted(["layer", "l", "token", "t", "length", "n", "prompt", "p"])


async def run_command(pilot, query: str) -> None:
    """Open the palette, type ``query``, wait for its hits and run the first, as a user does."""
    await pilot.press("ctrl+p")
    await pilot.pause()
    await pilot.press(*query)
    await pilot.pause(0.5)
    await pilot.press("enter")
    await pilot.pause()


@pytest.mark.parametrize("query, layer", [("layer 2", 2), ("l3", 3)])
async def test_typing_a_numbered_command_in_the_palette_runs_it(query, layer):
    app = CouplingApp(run=finished_run(n_layers=5, n_tokens=6, k=4))
    async with app.run_test(size=(100, 30)) as pilot:
        await run_command(pilot, query)
        assert app.selected_layer == layer
