"""``coupling-tui compute`` with two or more prompts: load once, run every prompt under one progress bar (prompts ×
layers), save the set (core.results.set_file), and print each prompt's run scalar and the aggregate's mean ± std."""

from __future__ import annotations

import argparse
from pathlib import Path

from coupling_tui.core.maths.run_scalar import ALL_TOKENS, LABELS, LAST_TOKEN
from coupling_tui.core.results.aggregate import SCALAR_KEYS, prompt_scalars
from coupling_tui.core.results.prompt_set import PromptSet
from coupling_tui.core.options.prompts import Prompt, truncation_note


HEAD_LAST, HEAD_ALL = "── last token (papers') ──", "── all-token mean ──"


def default_set_output(args: argparse.Namespace) -> Path:
    """``<user data dir>/runs/<time>-<model>-prompts/``."""
    from coupling_tui.core.cli.common import default_output

    single = default_output(args)
    return single.with_name(single.stem + "-prompts")


def stream_set_with_progress(events, console) -> PromptSet:
    """Fold a prompt set's events into a PromptSet under one rich progress bar over every prompt's steps, described
    as "prompt 2/4 · layers 3/30" (cli.common.stream_with_progress); a prompt cut to --max-tokens is announced as it
    starts."""
    from coupling_tui.core.cli.common import stream_with_progress

    pset = PromptSet()

    def announce(header: dict) -> None:
        if note := truncation_note(header):
            console.print(f"[yellow]note:[/] {pset.current_name()}: {note}", highlight=False)

    return stream_with_progress(events, console, on_started=announce, container=pset)


def _fmt(x) -> str:
    return "–" if x is None else f"{x:.3f}"


def set_lines(pset: PromptSet) -> list[str]:
    """A plain-text table: per prompt its tokens, greedy next token and run scalar (over the last token, the papers'
    quantity, then over all tokens: the off-diagonal, adjacent and far means of m), then the aggregate's mean and std
    over prompts."""
    agg = pset.aggregate.header["aggregate"]
    if not agg.get("k"):
        return ["no coupling in these runs (--top-k 0): nothing to aggregate"]
    width = max([len(f"{n} {label}") for n, label in enumerate(pset.labels, 1)] + [len("mean (99 prompts)")])
    wheres = (LAST_TOKEN, ALL_TOKENS)

    def row(name: str, tokens: str, nxt: str, cells: list[str]) -> str:
        cells = [f"{c:>9}" for c in cells]
        return f"{name:<{width}} {tokens:>6}  {nxt:<10}{''.join(cells[:3])}  {''.join(cells[3:])}".rstrip()

    lines = [f"depth coupling m_{agg['k']} (0 = coupled, ≈1 = unrelated): mean over i ≠ j (offdiag), |i − j| = 1 "
             f"(adjacent), |i − j| ≥ 10 (far)",
             f"{'':<{width + 18}}{HEAD_LAST:^27}  {HEAD_ALL:^27}",
             row("prompt", "tokens", "next", list(SCALAR_KEYS) * 2)]
    for n, (label, run) in enumerate(zip(pset.labels, pset.runs), 1):
        s = prompt_scalars(run)
        values = [s[w][key] if s else None for w in wheres for key in SCALAR_KEYS]
        nxt = repr((run.header.get("next_token") or {}).get("text"))[:10]
        lines.append(row(f"{n} {label}", str(run.n_tokens), nxt, [_fmt(v) for v in values]))
    if agg.get("scalar"):
        for stat in ("mean", "std"):
            name = f"mean ({agg['n_prompts']} prompts)" if stat == "mean" else "std (ddof 1)"
            lines.append(row(name, "", "", [_fmt(agg["scalar"][w][key][stat]) for w in wheres
                                              for key in SCALAR_KEYS]))
    return lines


def _pm(entry: dict) -> str:
    return f"{_fmt(entry['mean'])} ± {_fmt(entry['std'])}"


def scalar_summary(pset: PromptSet) -> list[str]:
    """The aggregate in one line per model (trained; random-init with --random-baseline): the last token's mean
    off-diagonal m (the papers') first, the all-token mean beside it, each mean ± std over prompts and named."""
    agg = pset.aggregate.header["aggregate"]
    out = []
    for label, part in (("trained", agg.get("scalar")), ("random-init", (agg.get("random_init") or {}).get("scalar"))):
        if part:
            out.append(f"{label}, over {agg['n_prompts']} prompts (mean ± std): off-diagonal m_{agg['k']}: "
                       f"{LABELS[LAST_TOKEN]} {_pm(part[LAST_TOKEN]['offdiag'])} (the papers'), "
                       f"{LABELS[ALL_TOKENS]} {_pm(part[ALL_TOKENS]['offdiag'])}; adjacent: "
                       f"{LABELS[LAST_TOKEN]} {_pm(part[LAST_TOKEN]['adjacent'])}, "
                       f"{LABELS[ALL_TOKENS]} {_pm(part[ALL_TOKENS]['adjacent'])}")
    return out


def compute_set(args: argparse.Namespace, prompts: list[Prompt], console) -> int:
    from coupling_tui.core.cli import run_job
    from coupling_tui.core.results import set_file as set_results
    from coupling_tui.core.cli.common import load_announced, run_options

    output = set_results.check_target(args.output or default_set_output(args), len(prompts))
    console.print(f"{len(prompts)} prompts: {', '.join(p.label for p in prompts)}", markup=False, highlight=False)
    loaded, baseline = load_announced(args, console)
    job = run_job.prepare_prompts(run_options(args), loaded, baseline, prompts, console, yes=args.yes)
    pset = stream_set_with_progress(job(), console)
    path = set_results.save(pset, output)
    console.print(f"computed {pset.n_prompts} prompts × {pset.runs[0].n_layers} layers in {pset.seconds:.1f} s")
    for line in set_lines(pset):
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    for line in scalar_summary(pset):
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    print(path)
    return 0
