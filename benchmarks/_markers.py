"""The marked sections of docs/ pages that benchmark scripts write: ``<!-- NAME: begin (written by
benchmarks/NAME.py; do not edit by hand) -->`` … ``<!-- NAME: end -->``, replaced whole by a script's run."""

from __future__ import annotations

from pathlib import Path


def markers(name: str) -> tuple[str, str]:
    """The begin and end lines of the section ``name`` (the script's own name)."""
    return (f"<!-- {name}: begin (written by benchmarks/{name}.py; do not edit by hand) -->", f"<!-- {name}: end -->")


def section(name: str, lines: list[str]) -> str:
    """``lines`` between the section's markers, a blank line inside each."""
    begin, end = markers(name)
    return "\n".join([begin, "", *lines, "", end])


def write_section(path: Path, name: str, lines: list[str]) -> None:
    """Replace the section ``name`` of the page at ``path`` (markers included) with ``lines``."""
    begin, end = markers(name)
    text = Path(path).read_text()
    if begin not in text or end not in text:
        raise SystemExit(f"{path} has no {begin!r} … {end!r} markers")
    head, rest = text.split(begin, 1)
    Path(path).write_text(head + section(name, lines) + rest.split(end, 1)[1])
