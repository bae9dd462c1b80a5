"""Command palette (ctrl+p) entries of the explorer: jump to a layer, token, prompt or collapse length by number, switch
the coupling metric, K or view, the collapse family, states or measure, export. Each command calls an app method; the palette itself is Textual's."""

from __future__ import annotations

import re
from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

_NUMBERED = {
    "layer": ("Jump to layer {n}", "jump_to_layer"),
    "token": ("Jump to token {n}", "jump_to_token"),
    "length": ("Collapse: jump to length n = {n}", "jump_to_length"),
    "prompt": ("Show prompt {n}", "jump_to_prompt"),
}
_KINDS = {"layer": "layer", "l": "layer", "token": "token", "t": "token", "length": "length", "n": "length",
          "prompt": "prompt", "p": "prompt"}


class ExplorerCommands(Provider):
    """Fixed commands (fuzzy-matched) plus "layer N" / "token N" jumps parsed from what is typed."""

    def _fixed(self) -> list[tuple[str, object, str]]:
        app = self.app
        return [
            ("Export all panes to SVG", app.action_export_all, "every pane and the whole screen"),
            ("Export the focused pane to SVG", app.action_export_pane, "into the export directory"),
            ("Coupling metric: 1−m²", partial(app.set_metric, "1-m²"), "the official notebook's plot"),
            ("Coupling metric: m", partial(app.set_metric, "m"), "0 = coupled, ≈1 = unrelated"),
            ("Cycle coupling K", app.action_cycle_k, "among the K values computed"),
            ("Toggle token / average", app.action_toggle_average, "depth coupling of one token or all"),
            ("Toggle trained / random-init", app.action_toggle_baseline, "needs --random-baseline"),
            ("Next coupling view", app.action_toggle_view, "depth, token, context (same output / same input)"),
            ("Toggle coupling variant ujv / vju", app.action_toggle_variant, "needs --vju"),
            ("Next prompt", partial(app.action_step_prompt, 1), "runs of several prompts (p)"),
            ("Previous prompt", partial(app.action_step_prompt, -1), "runs of several prompts (P)"),
            ("Show the aggregate over prompts", app.show_aggregate, "mean ± std of the depth coupling"),
            ("Compare: toggle the side-by-side layout", app.action_toggle_compare,
             "two models (--compare, view A B) or trained vs random-init (c)"),
            ("Compare: swap A and B", app.action_swap_sides, "B on the left (x)"),
            ("Collapse: next family", app.action_cycle_family, "ones, digits, commas, …"),
            ("Collapse: pre-/post-norm states", app.action_toggle_normed, "the last states before or after the "
                                                                          "final norm"),
            ("Collapse: next difference measure", app.action_cycle_measure, "L1/d, L∞, relative L2"),
        ]

    async def discover(self) -> Hits:
        for text, callback, help_text in self._fixed():
            yield DiscoveryHit(text, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        match = re.fullmatch(r"\s*(layer|token|length|prompt|l|t|n|p)\s*=?\s*(\d+)\s*", query, flags=re.IGNORECASE)
        if match:
            kind = _KINDS[match.group(1).lower()]
            n = int(match.group(2))
            text, method = _NUMBERED[kind]
            yield Hit(1.0, text.format(n=n), partial(getattr(self.app, method), n), text=text.format(n=n))
        matcher = self.matcher(query)
        for text, callback, help_text in self._fixed():
            score = matcher.match(text)
            if score > 0:
                yield Hit(score, matcher.highlight(text), callback, help=help_text)
