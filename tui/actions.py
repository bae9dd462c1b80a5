"""The one registry of user actions: the app's BINDINGS, the footer, the help table and the command palette's
entries all derive from it."""

from __future__ import annotations

from dataclasses import dataclass

from textual.actions import parse
from textual.binding import Binding


@dataclass(frozen=True)
class Command:
    """One command-palette entry of an action (``UserAction.commands``): fixed (fuzzy-matched on its title) or
    numbered (a word and a number typed, e.g. ``layer 12``)."""

    title: str
    """What the palette shows (and matches a fixed command on); a numbered command's has ``{n}`` for the number."""
    help: str = ""
    """The palette's line under the title."""
    call: str = ""
    """The app method it calls, written like an action string (``"set_metric('1-m²')"``); a numbered command's gets
    the number as its last argument. Empty: the action's own ``action_…`` method with the action's arguments."""
    words: tuple[str, ...] = ()
    """A numbered command: the words typed before the number (``"layer 12"``, ``"l12"``, ``"layer=12"``); a fixed
    command has none."""


NEEDS = ("coupling", "baseline", "vju", "views", "collapse", "prompts", "compare", "computing", "tokens", "layers")
"""What an action can need: tokens to select ("tokens": not in a collapse run, whose pairs are not the stored prompt,
nor in a prompt set's aggregate), layers to select ("layers": not in a collapse run); the Coupling pane on screen ("coupling", absent from a collapse run without
Jacobians); with it a random-init baseline outside the compare layout ("baseline", --random-baseline), the vju
variant ("vju", --vju), a view besides depth ("views"); collapse data ("collapse"); a prompt set ("prompts");
two runs to compare ("compare"); a compute running ("computing")."""


@dataclass(frozen=True)
class PaletteEntry:
    """A command resolved for the palette: the app method (its name) and the arguments it is called with."""

    title: str
    help: str
    method: str
    args: tuple[object, ...]
    words: tuple[str, ...]
    needs: str = ""
    """The action's ``UserAction.needs``: the palette offers the entry only when the app says it applies."""


@dataclass(frozen=True)
class UserAction:
    """One thing the user can do: its id, keys (Textual key names), the app action it runs and how it is shown."""

    id: str
    keys: str
    """Comma-separated Textual key names, e.g. ``"left,h"``."""
    action: str
    """The App action string, e.g. ``"step_token(-1)"``."""
    description: str
    """Short label for the footer."""
    key_display: str
    """How the keys are written in the footer and the help table."""
    help: str
    """One sentence for the help table."""
    show: bool = True
    """Whether the footer lists it."""
    footer_group: str = ""
    """Actions sharing a footer group are shown as one footer entry: their keys, then this label."""
    needs: str = ""
    """What the action needs to apply (one of ``NEEDS``, or nothing): the footer hides it otherwise, the palette
    leaves its commands out, and its key says why it does not apply (tui/app_keys.py)."""
    commands: tuple[Command, ...] = ()
    """Its command-palette entries (none: not in the palette), offered when the action applies."""


ACTIONS: tuple[UserAction, ...] = (
    UserAction("previous-token", "left,h", "step_token(-1)", "prev token", "←/h", "Select the previous token.",
               footer_group="token", needs="tokens",
               commands=(Command("Jump to token {n}", call="jump_to_token", words=("token", "t")),)),
    UserAction("next-token", "right,l", "step_token(1)", "next token", "→/l", "Select the next token.",
               footer_group="token", needs="tokens"),
    UserAction("back-10-tokens", "left_square_bracket", "step_token(-10)", "-10 tokens", "[",
               "Jump 10 tokens back.", show=False, needs="tokens"),
    UserAction("forward-10-tokens", "right_square_bracket", "step_token(10)", "+10 tokens", "]",
               "Jump 10 tokens forward.", show=False, needs="tokens"),
    UserAction("first-token", "home", "first_token", "first token", "home", "Select the first token.", show=False,
               needs="tokens"),
    UserAction("last-token", "end", "last_token", "last token", "end", "Select the last token.", show=False,
               needs="tokens"),
    UserAction("previous-layer", "up,k", "step_layer(-1)", "prev layer", "↑/k", "Select the previous layer (block).",
               footer_group="layer", needs="layers",
               commands=(Command("Jump to layer {n}", call="jump_to_layer", words=("layer", "l")),)),
    UserAction("next-layer", "down,j", "step_layer(1)", "next layer", "↓/j", "Select the next layer (block).",
               footer_group="layer", needs="layers"),
    UserAction("previous-column", "shift+left,H", "step_column(-1)", "prev column", "⇧←/H",
               "Move the coupling cursor's column back (a layer, or a token in the token view).",
               footer_group="column", needs="coupling"),
    UserAction("next-column", "shift+right,L", "step_column(1)", "next column", "⇧→/L",
               "Move the coupling cursor's column forward.", footer_group="column", needs="coupling"),
    UserAction("cycle-k", "K", "cycle_k", "cycle K", "K", "Cycle the coupling K among the values computed.",
               needs="coupling",
               commands=(Command("Cycle coupling K", "among the K values computed"),)),
    UserAction("toggle-average", "t", "toggle_average", "token/avg", "t",
               "Depth coupling of the selected token, or averaged over all tokens.", needs="coupling",
               commands=(Command("Toggle token / average", "depth coupling of one token or all"),)),
    UserAction("toggle-baseline", "r", "toggle_baseline", "random-init", "r",
               "Trained model or its random-init baseline (runs computed with --random-baseline), in every pane of "
               "the one-run layout.", needs="baseline",
               commands=(Command("Toggle trained / random-init", "needs --random-baseline"),)),
    UserAction("toggle-view", "v", "toggle_view", "views", "v",
               "Cycle the coupling views: depth (layer×layer), token (token×token at a layer pair), the context "
               "views (cross-token Jacobians, runs computed with --context-layers), then two plots of the depth "
               "matrix: adjacent coupling m(l, l+1) against depth and the mean m against |i − j|.", needs="views",
               commands=(Command("Next coupling view", "depth, token, context, adjacent m(l, l+1), m against "
                                 "|i − j|"),
                         Command("Coupling view: adjacent m(l, l+1) against depth", "a plot of the depth matrix",
                                 call="set_view('adjacent')"),
                         Command("Coupling view: m against |i − j|", "a plot of the depth matrix",
                                 call="set_view('distance')"),
                         Command("Coupling view: depth heatmap", "layer × layer", call="set_view('depth')"))),
    UserAction("toggle-variant", "u", "toggle_variant", "ujv/vju", "u",
               "Depth coupling as |Uᵀ J V| (ujv) or |Vᵀ J U| (vju: runs computed with --vju).", show=False,
               needs="vju",
               commands=(Command("Toggle coupling variant ujv / vju", "needs --vju"),)),
    UserAction("toggle-metric", "m", "toggle_metric", "metric", "m", "Colour the coupling matrix by 1−m² or m.",
               show=False, needs="coupling",
               commands=(Command("Coupling metric: 1−m²", "the official notebook's plot", call="set_metric('1-m²')"),
                         Command("Coupling metric: m", "0 = coupled, ≈1 = unrelated", call="set_metric('m')"))),
    UserAction("toggle-scale", "s", "toggle_scale", "scale", "s",
               "Colour scale of the coupling heatmaps: auto (the matrix's off-diagonal range: the diagonal is outside "
               "it) or fixed 0–1 (the same for every run, to compare runs by eye; --scale fixed starts with it).",
               show=False, needs="coupling",
               commands=(Command("Colour scale: fixed 0–1", "the same for every run, to compare runs by eye",
                                 call="set_scale('fixed')"),
                         Command("Colour scale: auto", "the matrix's off-diagonal range", call="set_scale('auto')"))),
    UserAction("previous-length", "comma", "step_length(-1)", "n−", ",",
               "Collapse: the previous length n (runs with collapse data).", footer_group="length",
               needs="collapse",
               commands=(Command("Collapse: jump to length n = {n}", call="jump_to_length",
                                 words=("length", "n")),)),
    UserAction("next-length", "full_stop", "step_length(1)", "n+", ".", "Collapse: the next length n.",
               footer_group="length", needs="collapse"),
    UserAction("cycle-family", "f", "cycle_family", "family", "f", "Collapse: the next sequence family.",
               needs="collapse",
               commands=(Command("Collapse: next family", "ones, digits, commas, …"),)),
    UserAction("toggle-normed", "n", "toggle_normed", "norm", "n",
               "Collapse: the last states before or after the final norm.", needs="collapse",
               commands=(Command("Collapse: pre-/post-norm states",
                                 "the last states before or after the final norm"),)),
    UserAction("cycle-measure", "d", "cycle_measure", "L∞/L1/L2", "d",
               "Collapse: the pair difference shown, last layer, pre-final-norm: L∞ (the paper's figure) → L1/d → "
               "relative L2.", show=False, needs="collapse",
               commands=(Command("Collapse: next difference measure", "L∞ (the paper's), L1/d, relative L2"),)),
    UserAction("next-prompt", "p", "step_prompt(1)", "next prompt", "p",
               "Prompt sets: the next prompt, then the aggregate over prompts (every pane follows).",
               footer_group="prompt", needs="prompts",
               commands=(Command("Next prompt", "runs of several prompts (p)"),
                         Command("Show prompt {n}", call="jump_to_prompt", words=("prompt", "p")))),
    UserAction("previous-prompt", "P", "step_prompt(-1)", "prev prompt", "P",
               "Prompt sets: the previous prompt (or the aggregate).", footer_group="prompt", needs="prompts",
               commands=(Command("Previous prompt", "runs of several prompts (P)"),
                         Command("Show the aggregate over prompts", "mean ± std of the depth coupling",
                                 call="show_aggregate"))),
    UserAction("toggle-compare", "c", "toggle_compare", "compare", "c",
               "Two runs side by side: both coupling heatmaps, the run scalar and the trajectories (two results "
               "files, --compare MODEL2, or a run with its random-init baseline), or back to one run.",
               needs="compare",
               commands=(Command("Compare: toggle the side-by-side layout",
                                 "two models (--compare, view A B) or trained vs random-init (c)"),)),
    UserAction("swap-sides", "x", "swap_sides", "swap A/B", "x",
               "Compare: swap A and B (the one-run layout then shows the other model).", show=False,
               needs="compare",
               commands=(Command("Compare: swap A and B", "B on the left (x)"),)),
    UserAction("scroll-compare-up", "pageup", "scroll_compare(-1)", "table up", "PgUp",
               "Compare layout: scroll the Compare table up (when it is taller than its pane).", show=False,
               needs="compare"),
    UserAction("scroll-compare-down", "pagedown", "scroll_compare(1)", "table down", "PgDn",
               "Compare layout: scroll the Compare table down (when it is taller than its pane).", show=False,
               needs="compare"),
    UserAction("focus-coupling", "1", "focus_pane('coupling')", "coupling", "1", "Focus the Coupling pane.",
               show=False),
    UserAction("focus-trajectory", "2", "focus_pane('trajectory')", "trajectory", "2",
               "Focus (and show) the Trajectory pane.", show=False),
    UserAction("focus-spectrum", "3", "focus_pane('spectrum')", "spectrum", "3",
               "Focus (and show) the Spectrum pane.", show=False),
    UserAction("focus-collapse", "4", "focus_pane('collapse')", "collapse", "4",
               "Focus (and show) the Collapse pane.", show=False),
    UserAction("focus-tokens", "5", "focus_pane('tokens')", "tokens", "5", "Focus the Tokens pane.", show=False),
    UserAction("focus-compare", "6", "focus_pane('compare')", "compare", "6",
               "Focus the Compare pane (the compare layout).", show=False),
    UserAction("export-pane", "e", "export_pane", "export", "e",
               "Export the focused pane to SVG (<dir>/<run>-<pane>.svg).",
               commands=(Command("Export the focused pane to SVG", "into the export directory"),)),
    UserAction("export-all", "E", "export_all", "export all", "E",
               "Export every pane and the whole screen to SVG.", show=False,
               commands=(Command("Export all panes to SVG", "every pane and the whole screen"),)),
    UserAction("palette", "ctrl+p", "command_palette", "commands", "^p",
               "Command palette: jump to a layer, token or collapse length; switch metric, K, view, collapse family; "
               "export.", show=False),
    UserAction("cancel-compute", "escape", "cancel_compute", "cancel", "esc",
               "Stop a running compute; nothing is saved.", needs="computing"),
    UserAction("help", "question_mark,f1", "show_help", "help", "?/F1", "Show this help."),
    UserAction("quit", "q", "quit", "quit", "q", "Quit (a running compute is cancelled)."),
    UserAction("interrupt", "ctrl+c", "interrupt", "interrupt", "^c",
               "Like Ctrl-C on the command line: stop a running compute (nothing unfinished is saved) and quit.",
               show=False),
)


SWEEP_ACTIONS: tuple[UserAction, ...] = (
    UserAction("sweep-open", "enter", "open_model", "open", "enter",
               "Open the selected model's run (or prompt set) in the usual panes; Esc there comes back."),
    UserAction("sweep-sort", "s", "sort", "sort", "s",
               "Sort the table by the next column: sweep order, m last token, m all-token, score, parameters."),
    UserAction("sweep-pooling", "t", "pooling", "last/all tokens", "t",
               "Switch the scatter's coupling scalar: the last token's (the papers') or the all-token mean."),
    UserAction("sweep-export-pane", "e", "export_pane", "export", "e",
               "Export the focused pane to SVG (<dir>/<sweep>-<pane>.svg)."),
    UserAction("sweep-export-all", "E", "export_all", "export all", "E",
               "Export the scatter, the table and the whole screen to SVG.", show=False),
    UserAction("sweep-help", "question_mark,f1", "show_help", "help", "?/F1", "Show this help."),
    UserAction("sweep-quit", "q,escape", "quit", "quit", "q", "Quit."),
    UserAction("sweep-interrupt", "ctrl+c", "interrupt", "interrupt", "^c", "Like Ctrl-C on the command line: quit.",
               show=False),
)
"""The Sweep view's actions (``coupling-tui view DIR`` on a sweep directory, tui.sweep_app)."""


def bindings(actions: tuple[UserAction, ...] = ACTIONS) -> list[Binding]:
    """An app's BINDINGS, one Binding per registered action (the explorer's, or ``SWEEP_ACTIONS``)."""
    groups = {a.footer_group: Binding.Group(a.footer_group) for a in actions if a.footer_group}
    return [
        Binding(a.keys, a.action, a.description, show=a.show, key_display=a.key_display, id=a.id,
                group=groups.get(a.footer_group))
        for a in actions
    ]


def action_for_key(keys: list[str]) -> UserAction | None:
    """The registered action bound to a key pressed (its Textual name and aliases, ``events.Key.aliases``)."""
    return next((a for a in ACTIONS if set(a.keys.split(",")) & set(keys)), None)


def requirement(action: str) -> str:
    """What the app action ``action`` (its name, without arguments) needs to be offered (``UserAction.needs``)."""
    return next((a.needs for a in ACTIONS if a.action.split("(")[0] == action and a.needs), "")


def help_rows(actions: tuple[UserAction, ...] = ACTIONS) -> list[tuple[str, str]]:
    """(keys, what they do) for every registered action, for the help screen's table."""
    return [(a.key_display, a.help) for a in actions]


def palette_entries() -> list[PaletteEntry]:
    """Every registered command-palette entry, fixed and numbered, in registry order."""
    entries = []
    for a in ACTIONS:
        for c in a.commands:
            _, method, args = parse(c.call or a.action)
            entries.append(PaletteEntry(c.title, c.help, method if c.call else f"action_{method}", args, c.words,
                                        a.needs))
    return entries
