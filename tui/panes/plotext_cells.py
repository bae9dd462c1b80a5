"""Plotext's plots as rich segments, read from plotext's cell matrix (marker, foreground, style and background of
every cell) instead of the ANSI canvas plotext would write from it: writing that canvas and decoding it again with
rich's general decoder was three quarters of a plot's repaint (about 60 ms of the adjacent-coupling plot at
200×60, benchmarks/key_latency.py). Each distinct run of plotext's escapes is decoded once, by rich itself (so the
styles are rich's), and cached. Presentation only."""

from __future__ import annotations

from functools import lru_cache

from rich.segment import Segment
from rich.style import Style
from rich.text import Text


@lru_cache(maxsize=4096)
def escapes_style(escapes: str) -> Style | None:
    """The style rich's own decoder gives a character after ``escapes`` (SGR sequences since the last reset)."""
    decoded = Text.from_ansi(escapes + "x")
    styles = [span.style for span in decoded.spans if span.start == 0]
    parsed = [Style.parse(s) if isinstance(s, str) else s for s in styles]
    return Style.chain(*parsed) if parsed else None


def matrix_segments(matrix) -> list[list[Segment]]:
    """The canvas plotext's ``matrix_class.set_canvas`` would write for ``matrix`` (its marker, foreground, style
    and background grids, bottom row first), one list of segments per row, without writing and parsing it: each run
    of cells drawn alike is one segment, its style ``escapes_style`` of plotext's own escapes (``colors_to_ansi``).
    A blank cell's foreground is not drawn, so blanks differing only in it join one run."""
    from plotext._utility import colors_to_ansi, no_color

    rows = []
    for row in reversed(range(matrix.rows)):
        markers, fore, styles, back = (matrix.marker[row], matrix.fullground[row], matrix.style[row],
                                       matrix.background[row])
        segments: list[Segment] = []
        run_chars: list[str] = []
        run_key = None
        for col in range(matrix.cols):
            marker, style = markers[col], styles[col]
            key = (no_color if marker == " " and style == no_color else fore[col], style, back[col])
            if key != run_key and run_chars:
                segments.append(Segment("".join(run_chars), _style_of(colors_to_ansi(*run_key))))
                run_chars = []
            run_key = key
            run_chars.append(marker)
        if run_chars:
            segments.append(Segment("".join(run_chars), _style_of(colors_to_ansi(*run_key))))
        rows.append(segments)
    return rows


def _style_of(escapes: str) -> Style | None:
    return escapes_style(escapes) if escapes else None


def matrix_text(matrix) -> Text:
    """``matrix_segments`` as rich Text, a newline after every row (as plotext's canvas)."""
    out = Text()
    for segments in matrix_segments(matrix):
        for segment in segments:
            out.append(segment.text, style=segment.style)
        out.append("\n")
    return out
