"""SVG export of the whole screen or of one pane, written atomically (a failed write leaves no partial file; a
group of SVGs is written whole or not at all: ``write_svgs``).

A pane's SVG is the screen as rendered, cropped to the pane's region: exactly the cells the user sees, numbers
included. Textual exposes a whole-screen export only (``App.export_screenshot``, which renders through the
screen's compositor); the crop below uses that same compositor.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

from rich.console import Console
from rich.segment import Segment, Segments
from textual.app import App
from textual.widget import Widget

from coupling_tui.core.atomic import atomic_write_bytes, atomic_write_files, file_slug


def _console(width: int, height: int) -> Console:
    return Console(width=width, height=height, file=io.StringIO(), force_terminal=True, color_system="truecolor",
                   record=True, legacy_windows=False, safe_box=False)


def pane_svg(app: App, widget: Widget, title: str) -> str:
    """SVG of ``widget`` as it is on screen now (its border included; a part past the screen's edge left out)."""
    region = widget.region.intersection(app.screen.region)
    if region.width <= 0 or region.height <= 0:
        raise ValueError(f"{widget.id or widget} is not on screen")
    strips = app.screen._compositor.render_strips()  # noqa: SLF001 - the compositor App.export_screenshot uses
    console = _console(region.width, region.height)
    for y in range(region.y, min(region.bottom, len(strips))):
        console.print(Segments([*strips[y].crop(region.x, region.right), Segment.line()]), end="")
    return console.export_svg(title=title)


def screen_svg(app: App, title: str) -> str:
    return app.export_screenshot(title=title)


_UNSAFE_TEXT = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
"""Characters that may not appear in exported text: C0 controls but tab and newline (also CR, which a terminal
cell never holds), DEL and C1, lone surrogates, and the XML non-characters U+FFFE/U+FFFF."""


def _visible(match: re.Match) -> str:
    code = ord(match.group())
    if code < 0x20:
        return chr(0x2400 + code)                  # the control picture: NUL -> "␀", ESC -> "␛"
    return "\u2421" if code == 0x7F else "\ufffd"  # DEL -> "␡"; C1, surrogates, non-characters -> "�"


def safe_text(text: str) -> str:
    """``text`` with every control character, lone surrogate and XML non-character replaced by a visible stand-in,
    so an SVG that holds it is well-formed XML and encodes as UTF-8 (a prompt may hold any of them)."""
    return _UNSAFE_TEXT.sub(_visible, text)


def svg_name(run_name: str, part: str) -> str:
    """``<run>-<part>.svg`` with anything unsafe in a file name replaced."""
    return f"{file_slug(f'{run_name}-{part}', 'coupling-tui')}.svg"


SVG_HINT = "choose a writable directory with --svg"


def write_svg(directory: Path, run_name: str, part: str, svg: str) -> Path:
    """Write one SVG atomically into ``directory`` (its text made XML-safe: ``safe_text``); an unwritable place
    raises UserError("cannot write …")."""
    return atomic_write_bytes(Path(directory).expanduser() / svg_name(run_name, part), safe_text(svg).encode("utf-8"),
                              hint=SVG_HINT)


def write_svgs(directory: Path, run_name: str, svgs: dict[str, str]) -> list[Path]:
    """Write every ``part → svg`` into ``directory`` as ``<run>-<part>.svg``, all or none (``atomic_write_files``):
    a failure leaves the directory as it was. Returns the paths in the order of ``svgs``."""
    files = {svg_name(run_name, part): safe_text(svg).encode("utf-8") for part, svg in svgs.items()}
    return atomic_write_files(Path(directory).expanduser(), files, hint=SVG_HINT)
