"""The help modal: every key from the action registry, then the focused pane's own help."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import DataTable, Markdown

from .actions import help_rows


class HelpScreen(ModalScreen[None]):
    """A dismissable modal with the bindings table and the markdown help of the pane that had focus."""

    BINDINGS = [Binding("escape,q,question_mark,f1", "dismiss", "close", key_display="esc")]

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 90%; max-width: 100; height: 90%;
        border: round $primary; background: $surface; padding: 0 1;
    }
    HelpScreen DataTable { height: auto; margin-bottom: 1; }
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
            table: DataTable[str] = DataTable(show_cursor=False, zebra_stripes=True)
            table.add_columns("Keys", "Action")
            table.add_rows(self.rows)
            yield table
            yield Markdown(self.pane_help)
