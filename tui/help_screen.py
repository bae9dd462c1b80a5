"""The help modal: every key from the action registry, then the focused pane's own help (rich's markdown in one
widget: Textual's Markdown widget builds a widget per block and took about 300 ms to open at 200×60)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from rich.markdown import Markdown
from rich.table import Table
from textual.widgets import Static

from .actions import help_rows


class HelpScreen(ModalScreen[None]):
    """A dismissable modal with the bindings table and the markdown help of the pane that had focus."""

    BINDINGS = [Binding("escape,q,question_mark,f1", "dismiss", "close", key_display="esc")]

    DEFAULT_CSS = """
    HelpScreen { align: center middle; background: $background; }  /* opaque: the screen below is not redrawn tinted */
    HelpScreen > VerticalScroll {
        width: 90%; max-width: 100; height: 90%;
        border: round $primary; background: $surface; padding: 0 1;
    }
    HelpScreen #help-keys { height: auto; margin-bottom: 1; }
    """

    def __init__(self, pane_help: str | None, rows: list[tuple[str, str]] | None = None) -> None:
        super().__init__()
        self.pane_help = pane_help or ""
        """Markdown help of the pane that had focus."""
        self.rows = help_rows() if rows is None else rows
        """(keys, action) of the app's registry (the explorer's by default)."""

    def compose(self) -> ComposeResult:
        with VerticalScroll() as scroll:
            scroll.border_title = "Help"
            scroll.border_subtitle = "esc or q closes"
            table = Table("Keys", "Action", expand=True, box=None, row_styles=("", "on #303030"),
                          header_style="bold")
            table.columns[0].no_wrap = True
            for keys, action in self.rows:             # an action's text wraps between words, never cut
                table.add_row(keys, action)
            yield Static(table, id="help-keys")
            yield Static(Markdown(self.pane_help), id="help-pane")   # one widget: opens in a few ms (rich's markdown)
