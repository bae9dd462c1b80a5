"""The app's panes. Each pane carries the CSS class ``run-pane``, a ``HELP`` markdown string and a
``show(run, token, layer)`` method the app calls after every event or selection change; adding a pane means writing
one such widget and yielding it in ``CouplingApp.compose``."""

from typing import Any

from rich.cells import cell_len
from rich.text import Text

RUN_PANE_CLASS = "run-pane"
WAITING = "waiting for the engine…"
"""What a pane says before the engine has announced the run."""


BORDER_ROOM = 6
"""Cells of a border line a subtitle cannot use: the corners and the rule and space each side."""


def set_subtitle(pane: Any, text: str, *shorter: str) -> None:
    """Show ``text`` literally as the pane's border subtitle (a token like "[INST]" is not markup), kept as plain
    text in ``pane.subtitle``; where the border is too short for it, the first of the ``shorter`` wordings (most
    preferred first) that fits, so the border cuts nothing that matters (``fit_subtitle`` again on a resize).
    Repaints only when what is shown changed."""
    pane.subtitle = text
    pane.subtitle_variants = (text, *shorter)
    fit_subtitle(pane)


def fit_subtitle(pane: Any) -> None:
    """The border subtitle: the first of ``pane.subtitle_variants`` that fits the pane's width (the last when
    none does; the first before the pane has a size)."""
    variants = getattr(pane, "subtitle_variants", None) or (pane.subtitle,)
    width = pane.outer_size.width
    room = width - BORDER_ROOM
    shown = next((v for v in variants if cell_len(v) <= room), variants[-1]) if width else variants[0]
    if str(pane.border_subtitle or "") != shown:
        pane.border_subtitle = Text(shown)
