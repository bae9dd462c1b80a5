"""Which optional coupling matrices a run computes, parsed from the flags (torch-free, checked before the model
loads): token coupling between two different layers (``--token-pairs``) and the layers of context coupling
(``--context-layers``). Every layer index may be negative (counted from the last block)."""

from __future__ import annotations

from coupling_tui.core.errors import UserError

PAIR_HELP = "'adjacent' (every l→l+1 and l+1→l), 'none', or pairs ROW:COL like 12:13,3:20 (negative = from the end)"
LAYERS_HELP = "'all', 'none', or layers like 0,14,-1 or a range 10:20 (end excluded; negative = from the end)"


def _layer(text: str, n_layers: int, flag: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise UserError(f"{flag}: {text!r} is not a layer number") from None
    index = value + n_layers if value < 0 else value
    if not 0 <= index < n_layers:
        raise UserError(f"{flag}: layer {value} is outside this model's blocks 0..{n_layers - 1}")
    return index


def check_syntax(text: str | None, flag: str) -> None:
    """Refuse a malformed value before any model is loaded (the layer range is checked once L is known)."""
    keywords = ("none", "", "adjacent") if flag == "--token-pairs" else ("none", "", "all")
    if text is None or text.strip().lower() in keywords:
        return
    if flag == "--token-pairs":
        token_pairs(text, 10**9)
    else:
        context_layers(text, 10**9)


def token_pairs(text, n_layers: int) -> list[tuple[int, int]]:
    """The (row layer, column layer) pairs, row ≠ column, of ``--token-pairs`` (its text, or a list of pairs):
    sorted, without repeats. Same-layer pairs are not listed: they are the run's ordinary token coupling."""
    if not isinstance(text, (str, type(None))):
        text = ",".join(f"{r}:{c}" for r, c in text) or "none"
    text = (text or "none").strip().lower()
    if text in ("none", ""):
        return []
    if text == "adjacent":
        pairs = {(l, l + 1) for l in range(n_layers - 1)} | {(l + 1, l) for l in range(n_layers - 1)}
        return sorted(pairs)
    pairs = set()
    for part in text.split(","):
        row, sep, col = part.strip().partition(":")
        if not sep:
            raise UserError(f"--token-pairs: {part.strip()!r} is not ROW:COL", f"expected {PAIR_HELP}")
        r, c = _layer(row.strip(), n_layers, "--token-pairs"), _layer(col.strip(), n_layers, "--token-pairs")
        if r != c:
            pairs.add((r, c))
    return sorted(pairs)


def context_layers(text, n_layers: int) -> list[int]:
    """The layers of ``--context-layers`` (its text, or a list of layers), sorted, without repeats."""
    if not isinstance(text, (str, type(None))):
        text = ",".join(str(int(x)) for x in text) or "none"
    text = (text or "none").strip().lower()
    if text in ("none", ""):
        return []
    if text == "all":
        return list(range(n_layers))
    if ":" in text and "," not in text:
        start, _, stop = (part.strip() for part in text.partition(":"))
        a = _layer(start or "0", n_layers, "--context-layers")
        try:
            b = n_layers if not stop else int(stop) + (n_layers if int(stop) < 0 else 0)
        except ValueError:
            b = -1
        if not a < b <= n_layers:
            raise UserError(f"--context-layers: {text!r} is not a range of blocks 0..{n_layers - 1}",
                            f"expected {LAYERS_HELP}")
        return list(range(a, b))
    return sorted({_layer(part.strip(), n_layers, "--context-layers") for part in text.split(",")})
