"""Command palette (ctrl+p) entries of the explorer, all from the action registry (``UserAction.commands`` in
actions.py): fixed commands fuzzy-matched on their titles, and numbered ones (``layer 12``, ``t40``, ``n=16``) parsed
from what is typed; only those whose action applies to what is on screen (``app.applies``). Each calls an app
method; the palette itself is Textual's."""

from __future__ import annotations

import re
from functools import partial
from typing import Callable

from textual.command import DiscoveryHit, Hit, Hits, Provider

from .actions import PaletteEntry, palette_entries

_ENTRIES = palette_entries()
_FIXED = [e for e in _ENTRIES if not e.words]
_NUMBERED = {word: e for e in _ENTRIES for word in e.words}
"""Each word typed before a number → its numbered command."""
_NUMBER_QUERY = re.compile(r"\s*(" + "|".join(sorted(map(re.escape, _NUMBERED), key=len, reverse=True))
                           + r")\s*=?\s*(\d+)\s*", flags=re.IGNORECASE)


class ExplorerCommands(Provider):
    """The registry's fixed commands (fuzzy-matched) plus its numbered ones ("layer N", "token N", …)."""

    def _callback(self, entry: PaletteEntry, *more: object) -> Callable[[], object]:
        method = getattr(self.app, entry.method)
        args = entry.args + more
        return partial(method, *args) if args else method

    def _applies(self, entry: PaletteEntry) -> bool:
        return self.app.applies(entry.needs)  # type: ignore[attr-defined]

    async def discover(self) -> Hits:
        for entry in filter(self._applies, _FIXED):
            yield DiscoveryHit(entry.title, self._callback(entry), help=entry.help)

    async def search(self, query: str) -> Hits:
        match = _NUMBER_QUERY.fullmatch(query)
        if match and self._applies(entry := _NUMBERED[match.group(1).lower()]):
            n = int(match.group(2))
            title = entry.title.format(n=n)
            yield Hit(1.0, title, self._callback(entry, n), text=title)
        matcher = self.matcher(query)
        for entry in filter(self._applies, _FIXED):
            score = matcher.match(entry.title)
            if score > 0:
                yield Hit(score, matcher.highlight(entry.title), self._callback(entry), help=entry.help)
