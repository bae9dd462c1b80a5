"""The tokens pane: the prompt's tokens in a wrapped strip, the selected one highlighted."""

from __future__ import annotations

from rich.cells import cell_len
from rich.text import Text
from textual.app import RenderResult
from textual.geometry import Size
from textual.widget import Widget

from coupling_tui.core.results.run import Run

from . import RUN_PANE_CLASS

_VISIBLE_WHITESPACE = str.maketrans({" ": "·", "\n": "⏎", "\t": "⇥", "\r": "␍"})


def visible(token_text: str) -> str:
    """The token text with whitespace made visible (space → ·, newline → ⏎, tab → ⇥); never empty."""
    return token_text.translate(_VISIBLE_WHITESPACE) or "∅"


def quoted(run: Run, token: int) -> str:
    """The one way every pane names a token: its index counted from 0 and its visible text, ``token 51 '.'``."""
    return f"token {token} '{visible(run.token_texts[token])}'"


class TokensPane(Widget):
    """Shows every token of the prompt, wrapped to the pane width, scrolled so the selected one is in view."""

    DEFAULT_CLASSES = RUN_PANE_CLASS
    DEFAULT_CSS = "TokensPane { height: auto; }"
    BORDER_TITLE = "Tokens"
    MAX_LINES = 4
    """At most this many lines are shown; longer prompts show the lines around the selected token."""
    can_focus = True

    HELP = """\
## Tokens

The prompt as the model's tokenizer split it, one cell per token. Whitespace is made visible:
`·` is a space, `⏎` a newline, `⇥` a tab. The highlighted token is the one the other panes show.
"""

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's own keyword
        super().__init__(id=id)
        self.cells: list[str] = []
        """Each token's visible text."""
        self.selected = 0
        """Index of the highlighted token."""
        self._quoted = ""

    def show(self, run: Run, token: int, layer: int = 0) -> None:
        """Show ``run``'s tokens with ``token`` highlighted (the selected ``layer`` does not change them)."""
        cells = [visible(t) for t in run.token_texts]
        if cells != self.cells:
            self.cells = cells
            self.refresh(layout=True)
        if token != self.selected:
            self.selected = token
            self.refresh()
        self._quoted = quoted(run, token) if cells else ""
        self._set_subtitle()

    def on_resize(self) -> None:
        self._set_subtitle()

    def _set_subtitle(self) -> None:
        """"token 51 '.' · tokens 0–51"; when the pane shows only some lines of the prompt, which tokens it shows
        and arrows where more are: "token 51 '.' · ↑ tokens 9–51 of 52"."""
        n, width = len(self.cells), self.content_size.width
        subtitle = f"{self._quoted} · tokens 0–{n - 1}" if n else ""
        shown = self._visible_lines(width) if n and width > 0 else []
        if shown and shown[0] and (shown[0][0] > 0 or shown[-1][-1] < n - 1):
            first, last = shown[0][0], shown[-1][-1]
            subtitle = (f"{self._quoted} · {'↑ ' if first > 0 else ''}tokens {first}–{last} of {n}"
                        f"{' ↓' if last < n - 1 else ''}")
        if subtitle != self.border_subtitle:
            self.border_subtitle = subtitle

    def _lines(self, width: int) -> list[list[int]]:
        """Token indices per line, wrapping greedily at ``width`` cells (one space between tokens)."""
        lines: list[list[int]] = [[]]
        used = 0
        for index, cell in enumerate(self.cells):
            need = cell_len(cell) + (1 if lines[-1] else 0)
            if lines[-1] and used + need > width:
                lines.append([])
                used, need = 0, cell_len(cell)
            lines[-1].append(index)
            used += need
        return lines

    def _visible_lines(self, width: int) -> list[list[int]]:
        lines = self._lines(max(width, 1))
        current = next((n for n, line in enumerate(lines) if self.selected in line), 0)
        start = min(max(current - self.MAX_LINES // 2, 0), max(len(lines) - self.MAX_LINES, 0))
        return lines[start : start + self.MAX_LINES]

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return max(len(self._visible_lines(width)), 1)

    def render(self) -> RenderResult:
        if not self.cells:
            return Text("waiting for the tokenizer…", style="dim")
        text = Text(no_wrap=True, overflow="crop")
        for n, line in enumerate(self._visible_lines(self.content_size.width)):
            if n:
                text.append("\n")
            for k, index in enumerate(line):
                if k:
                    text.append(" ")
                style = "bold reverse" if index == self.selected else ""
                text.append(self.cells[index], style=style)
        return text
