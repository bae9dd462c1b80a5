"""Each pane laid out for its own SVG (issue 20): a pane the layout shows whole, with room for its content inside its
border, is exported as it is on screen; any other (a side pane a short screen hides, the tokens strip the short
compare layout hides, a pane squeezed or pushed past the edge of a small screen) is maximised for its SVG, then the
layout is put back as it was. So every pane of the run is exported at every size, and the screen's SVG shows the
layout the user had."""

from __future__ import annotations

import asyncio
from time import monotonic
from typing import Callable

from textual.app import App
from textual.errors import NoWidget
from textual.widget import Widget

from . import export

SETTLE_S = 2.0
"""How long a layout change may take to be laid out before the pane is exported as it then is."""


class PaneLayout:
    """Lays ``app``'s panes out one at a time for their SVGs. Needs the app's message loop free (call it from a
    worker or a test, never from a callback the app itself awaits): a layout change is applied there."""

    def __init__(self, app: App) -> None:
        self.app = app

    def fits(self, pane: Widget) -> bool:
        """Whether ``pane`` is wholly on screen, none of it under another widget (the footer), with room for its
        content inside its border and padding."""
        region = pane.region
        if not pane.content_region.area or not self.app.screen.region.contains_region(region):
            return False
        corners = ((region.x, region.y), (region.right - 1, region.y), (region.x, region.bottom - 1),
                   (region.right - 1, region.bottom - 1))
        return all(self._shows(pane, x, y) for x, y in corners)

    def _shows(self, pane: Widget, x: int, y: int) -> bool:
        """Whether the cell at (x, y) is drawn by ``pane`` (or a widget inside it)."""
        try:
            widget, _ = self.app.screen.get_widget_at(x, y)
        except NoWidget:
            return False
        return widget is pane or pane in widget.ancestors

    async def pane_svg(self, pane: Widget, title: str) -> str:
        """The SVG of ``pane``: as it is on screen when it fits there, else maximised for it (the layout is put
        back before this returns)."""
        if self.fits(pane):
            return export.pane_svg(self.app, pane, title)
        screen = self.app.screen
        before, region = screen.maximized, pane.region
        screen.maximized = pane
        try:
            await self.settle(lambda: self.fits(pane) or (bool(pane.region.area) and pane.region != region))
            return export.pane_svg(self.app, pane, title)
        finally:
            screen.maximized = before
            await self.settle(lambda: pane.region == region)

    async def settle(self, done: Callable[[], bool] = lambda: True, timeout: float = SETTLE_S) -> None:
        """Let a layout change be laid out until ``done()`` (at most ``timeout`` seconds), then let the panes react
        to their new sizes and repaint."""
        self.app.screen.refresh(layout=True)
        deadline = monotonic() + timeout
        while True:
            await self.drain()
            if done() or monotonic() > deadline:
                break
            await asyncio.sleep(0.02)
        await self.drain()
        await asyncio.sleep(0.02)
        await self.drain()

    async def drain(self, timeout: float = 1.0) -> None:
        """Wait until the app and every widget of the screen have handled the messages they hold now."""
        loop = asyncio.get_running_loop()
        waits = []
        for node in (self.app, *self.app.screen.walk_children(with_self=True)):
            handled = loop.create_future()
            if node.call_later(lambda f=handled: f.done() or f.set_result(None)):
                waits.append(handled)
        if waits:
            await asyncio.wait(waits, timeout=timeout)
