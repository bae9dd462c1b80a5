"""``--layers``: bound a run to some of the model's blocks. Python-style half-open ranges and single blocks,
comma-separated: ``0:12`` (blocks 0..11), ``3,7,12``, ``20:`` (block 20 to the last), ``:6``, or mixes
(``0:4,10,28:``). Its syntax is checked before any model loads (``parse_layers``); the block numbers are checked
against the model once its depth is known (``select_layers``). Pure Python."""

from __future__ import annotations

import re
from dataclasses import dataclass

from coupling_tui.core.errors import UserError

_PART = re.compile(r"^\s*(?:(?P<single>\d+)|(?P<start>\d*)\s*:\s*(?P<stop>\d*))\s*$")


@dataclass(frozen=True)
class LayerSpec:
    """A parsed ``--layers`` value: single blocks and half-open ranges (None = open end)."""

    text: str
    parts: tuple[tuple[int, int | None], ...]
    """(start, stop) per comma-separated part; a single block b is (b, b + 1); stop None = to the last block."""


def parse_layers(text: str | None) -> LayerSpec | None:
    """The ``--layers`` value, syntax checked (no model needed); None when the flag is absent."""
    if text is None:
        return None
    parts: list[tuple[int, int | None]] = []
    for raw in text.split(","):
        m = _PART.match(raw)
        if not raw.strip() or m is None:
            raise UserError(f"--layers {text}: cannot read {raw.strip()!r}",
                            "give blocks and half-open ranges, e.g. --layers 0:12 or --layers 3,7,12")
        if m["single"] is not None:
            b = int(m["single"])
            parts.append((b, b + 1))
            continue
        start = int(m["start"]) if m["start"] else 0
        stop = int(m["stop"]) if m["stop"] else None
        if stop is not None and stop <= start:
            raise UserError(f"--layers {text}: the range {raw.strip()} is empty",
                            "a range A:B holds blocks A..B-1, so B must be larger than A")
        parts.append((start, stop))
    return LayerSpec(text=text, parts=tuple(parts))


def select_layers(spec: LayerSpec | None, n_layers: int) -> list[int] | None:
    """The sorted block indices ``spec`` names in a model of ``n_layers`` blocks; None = every block (also when
    ``spec`` names them all). Blocks past the last are a UserError naming the model's depth."""
    if spec is None:
        return None
    chosen: set[int] = set()
    for start, stop in spec.parts:
        end = n_layers if stop is None else stop
        if start >= n_layers or end > n_layers:
            block = start if start >= n_layers else end - 1
            raise UserError(f"--layers {spec.text} names block {block}, and the model has {n_layers} blocks "
                            f"(0..{n_layers - 1})")
        chosen.update(range(start, end))
    layers = sorted(chosen)
    return None if len(layers) == n_layers else layers
