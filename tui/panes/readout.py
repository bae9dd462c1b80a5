"""Readouts that are never cut where it matters (issue 20 item 5): a line of " · "-separated segments wraps between
segments, never inside one, so the value under the cursor stays whole at any width; a status line too long for its
place loses its middle (a saved path keeps its file name), not its end. Presentation only."""

from __future__ import annotations

from typing import Sequence

from rich.cells import cell_len
from rich.text import Text
from textual.geometry import Size
from textual.widget import Widget
from textual.widgets import Static

SEPARATOR = " · "
ELLIPSIS = "…"


def middle_cut(text: str, width: int) -> str:
    """``text`` in at most ``width`` cells: whole when it fits, else its start and its end around "…" (the end
    gets the larger half: a path's file name, a value's digits)."""
    if cell_len(text) <= width:
        return text
    if width <= 1:
        return ELLIPSIS[:width]
    keep = width - 1
    head, tail = keep // 2, keep - keep // 2
    return text[:head] + ELLIPSIS + (text[-tail:] if tail else "")


def pack(segments: Sequence[Text], width: int) -> list[Text]:
    """The segments joined by " · " into lines of at most ``width`` cells, a line broken only between segments; a
    segment wider than a line alone is cut at its end with "…"."""
    lines: list[Text] = []
    line: Text | None = None
    for segment in segments:
        if not segment.plain:
            continue
        if line is not None and line.cell_len + len(SEPARATOR) + segment.cell_len <= width:
            line.append(SEPARATOR)
            line.append_text(segment)
            continue
        if line is not None:
            lines.append(line)
        line = segment.copy()
        if line.cell_len > width:
            line.truncate(max(width, 1), overflow="ellipsis")
    if line is not None:
        lines.append(line)
    return lines


class Readout(Widget):
    """Text whose lines are " · "-separated segments (``show``): each line wraps between its segments to the
    widget's width, so the widget grows a row rather than cut a value; a line of one segment (a message) wraps
    between words. ``plain`` is what it says, unwrapped."""

    DEFAULT_CSS = "Readout { height: auto; }"

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's own keyword
        super().__init__(id=id)
        self.text = Text()
        self.plain = ""

    def show(self, text: str | Text) -> None:
        """Show ``text``; repaints only when it changed."""
        text = text if isinstance(text, Text) else Text(text)
        if text.plain == self.plain and text.spans == self.text.spans and text.style == self.text.style:
            return
        self.text, self.plain = text, text.plain
        self.refresh(layout=True)

    def wrapped(self, width: int) -> list[Text]:
        width = max(width, 1)
        out: list[Text] = []
        for line in self.text.split("\n", allow_blank=True) if self.plain else []:
            segments = line.split(SEPARATOR)
            if len(segments) == 1 and self.is_attached:
                out.extend(line.wrap(self.app.console, width))
            else:
                out.extend(pack(list(segments), width))
        return out

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return len(self.wrapped(width))

    def render(self) -> Text:
        text = Text("\n").join(self.wrapped(self.content_size.width))
        text.no_wrap = True
        return text


class MiddleCutStatic(Static):
    """A one-line Static whose text, too long for its width, loses its middle (``middle_cut``)."""

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's own keyword
        super().__init__("", id=id, markup=False)
        self.text = ""

    def show_text(self, text: str) -> None:
        if text != self.text:
            self.text = text
            self.update(text)

    def get_content_width(self, container: Size, viewport: Size) -> int:
        return cell_len(self.text)

    def render(self) -> Text:
        return Text(middle_cut(self.text, self.content_size.width), no_wrap=True)


class FitStatic(Static):
    """A one-line Static shown as the first of its variants (preferred first) that fits its width; when none
    does, the last is cut before its ``tail`` (e.g. " (trained)"), which stays whole."""

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's own keyword
        super().__init__("", id=id, markup=False)
        self.variants: tuple[str, ...] = ("",)
        self.tail = ""

    def show_variants(self, *variants: str, tail: str = "") -> None:
        if (variants, tail) != (self.variants, self.tail):
            self.variants, self.tail = variants, tail
            self.update(variants[0])                       # a layout too: the width follows variants[0]

    def get_content_width(self, container: Size, viewport: Size) -> int:
        """As wide as its preferred variant (``width: auto``); a max-width then picks a shorter one."""
        return cell_len(self.variants[0])

    def render(self) -> Text:
        width = self.content_size.width
        fitting = next((v for v in self.variants if cell_len(v) <= width), None)
        if fitting is None:
            last = self.variants[-1]
            tail = self.tail if last.endswith(self.tail) and cell_len(self.tail) < width else ""
            head = last[:len(last) - len(tail)]
            fitting = head[:max(width - cell_len(tail) - 1, 0)] + ELLIPSIS + tail
        return Text(fitting, no_wrap=True)
