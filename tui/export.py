"""SVG export of the whole screen or of one pane, written atomically (a failed write leaves no partial file; a
group of SVGs is written whole or not at all: ``write_svgs``). The explorer never replaces an earlier export: a
name that exists is numbered (``-2``, ``-3`` …); the headless ``coupling-tui export --svg DIR`` replaces (it names its
directory explicitly).

A pane's SVG is the screen as rendered, cropped to the pane's region: exactly the cells the user sees, numbers
included. Textual exposes a whole-screen export only (``App.export_screenshot``, which renders through the
screen's compositor); the crop below uses that same compositor.
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

from rich.console import Console
from rich.segment import Segment, Segments
from textual.app import App
from textual.widget import Widget

from coupling_tui.core.atomic import atomic_write_bytes, atomic_write_files, file_slug
from coupling_tui.core.errors import UserError


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


def numbered(name: str, n: int) -> str:
    """``name`` with ``-n`` before its extension (``n`` ≤ 1: ``name`` itself)."""
    if n <= 1:
        return name
    stem, dot, ext = name.rpartition(".")
    return f"{stem}-{n}{dot}{ext}" if dot else f"{name}-{n}"


def free_number(directory: Path, file_names: list[str]) -> int:
    """The smallest n ≥ 1 for which none of ``file_names`` numbered n (``numbered``) exists in ``directory``: an
    export never replaces an earlier one, and a group keeps one number (``-2`` on every file of the second)."""
    directory = Path(directory).expanduser()
    n = 1
    while any(os.path.lexists(directory / numbered(name, n)) for name in file_names):
        n += 1
    return n


def write_svg(directory: Path, run_name: str, part: str, svg: str, *, replace: bool = False) -> Path:
    """Write one SVG atomically into ``directory`` as ``<run>-<part>.svg`` (its text made XML-safe: ``safe_text``),
    or ``<run>-<part>-2.svg`` … when that exists, unless ``replace``; an unwritable place raises
    UserError("cannot write …")."""
    directory = Path(directory).expanduser()
    name = svg_name(run_name, part)
    name = name if replace else numbered(name, free_number(directory, [name]))
    return atomic_write_bytes(directory / name, safe_text(svg).encode("utf-8"), hint=SVG_HINT)


def write_pane(app: App, pane: Widget, *, replace: bool = False) -> Path:
    """``pane`` as it is on screen, titled "<run> · <pane id>", to ``<app.export_dir>/<app.run_name>-<pane id>.svg``
    (``write_svg``)."""
    return write_svg(app.export_dir, app.run_name, pane.id or "pane",
                     pane_svg(app, pane, f"{app.run_name} · {pane.id}"), replace=replace)


def export_pane(app: App, pane: Widget, *, replace: bool = False) -> None:
    """``e``: ``pane`` written (``write_pane``), and a notification saying where, or why not."""
    try:
        path = write_pane(app, pane, replace=replace)
    except (UserError, ValueError) as exc:
        notify_failed(app, exc)
        return
    app.notify(f"exported {pane.id} to {path}", markup=False)


def notify_failed(app: App, exc: Exception) -> None:
    """An export that failed, in one line (the directory unwritable, a pane not on screen)."""
    from .messages import one_line

    app.notify(one_line(exc), title="export failed", severity="error", timeout=10, markup=False)


def write_svgs(directory: Path, run_name: str, svgs: dict[str, str], *, replace: bool = False) -> list[Path]:
    """Write every ``part → svg`` into ``directory`` as ``<run>-<part>.svg``, all or none (``atomic_write_files``):
    a failure leaves the directory as it was. Unless ``replace``, a group whose names exist already is written as
    ``<run>-<part>-n.svg`` with the first n free for all of them. Returns the paths in the order of ``svgs``."""
    directory = Path(directory).expanduser()
    names = [svg_name(run_name, part) for part in svgs]
    n = 1 if replace else free_number(directory, names)
    files = {numbered(name, n): safe_text(svg).encode("utf-8") for name, svg in zip(names, svgs.values())}
    return atomic_write_files(directory, files, hint=SVG_HINT)


def default_svg_dir() -> Path:
    """Where e / E write when no --svg-dir is given: ``<user data dir>/svg``."""
    import platformdirs

    return Path(platformdirs.user_data_dir("coupling-tui")) / "svg"
