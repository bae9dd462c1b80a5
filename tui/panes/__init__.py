"""The app's panes. Each pane carries the CSS class ``run-pane``, a ``HELP`` markdown string and a
``show(run, token, layer)`` method the app calls after every event or selection change; adding a pane means writing
one such widget and yielding it in ``CouplingApp.compose``."""

from typing import Any

from rich.text import Text

RUN_PANE_CLASS = "run-pane"
WAITING = "waiting for the engine…"
"""What a pane says before the engine has announced the run."""


def set_subtitle(pane: Any, text: str) -> None:
    """Show ``text`` literally as the pane's border subtitle (a token like "[INST]" is not markup), kept as plain
    text in ``pane.subtitle``; only when it changed, since setting it repaints the widget."""
    if text != pane.subtitle:
        pane.subtitle = text
        pane.border_subtitle = Text(text)
