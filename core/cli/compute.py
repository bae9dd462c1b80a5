"""``coupling-tui compute`` (and ``python -m coupling_tui.core``): load the model with a status line, stream its
layers under a rich progress bar, save the run atomically and print a summary; two or more prompts go to
``cli.compute_set``, ``--compare`` to ``cli.compute_compare``."""

from __future__ import annotations

import argparse
from pathlib import Path

from coupling_tui.core.cli import run_job
from coupling_tui.core.cli.args import (add_collapse_args, add_common_args, add_jacobian_args, add_model_args,
                                        add_prompt_args)
from coupling_tui.core.cli.common import (announce_truncation, default_output, guarded,
                                          load_announced, run_options, scalar_lines, stream_with_progress,
                                          validated_prompts)
from coupling_tui.core.cli.compute_compare import add_compare_args, compare_mode, compute_compare
from coupling_tui.core.cli.compute_set import compute_set
from coupling_tui.core.cli.run_bounds import add_run_size_args
from coupling_tui.core.results import run_file as results

def build_compute_parser(prog: str = "coupling-tui compute") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog,
                                description="Compute a run headless and save it as a results file.")
    add_model_args(p)
    add_prompt_args(p)
    add_jacobian_args(p)
    add_collapse_args(p)
    add_run_size_args(p)
    add_compare_args(p)
    p.add_argument("-o", "--output", default=None, metavar="PATH",
                   help="results file to write (default: a new file under the user data dir)")
    add_common_args(p)
    return p
from coupling_tui.core.atomic import check_file_target


def compute(args: argparse.Namespace) -> int:
    """Headless compute: rich progress for loading and layers, atomic save, a one-line summary."""
    from rich.console import Console

    console = Console(stderr=True)
    prompts = validated_prompts(args)
    mode = compare_mode(args, len(prompts))
    if mode == "model":
        return compute_compare(args, prompts[0].text, check_file_target(args.output) if args.output
                               else default_output(args), console)
    if len(prompts) > 1:
        return compute_set(args, prompts, console)
    prompt = prompts[0].text
    output = check_file_target(args.output) if args.output else default_output(args)   # before the model loads
    loaded, baseline = load_announced(args, console)
    job = run_job.prepare(run_options(args), loaded, baseline, prompt, console, yes=args.yes)
    run = stream_with_progress(job(), console, loaded.info["n_layers"],
                               on_started=lambda header: announce_truncation(header, console))
    path = results.save(run, output)
    nxt = run.header.get("next_token", {}).get("text")
    console.print(f"computed {run.n_layers} layers × {run.n_tokens} tokens in {run.header['seconds']:.1f} s; "
                  f"greedy next token {nxt!r}")
    for line in scalar_lines(run):
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    if mode is not None:                                   # --compare random-init: trained vs its baseline
        from coupling_tui.core.results.compare import random_init_run, table_lines

        for line in table_lines(run, random_init_run(run)):
            console.print(line, markup=False, highlight=False, soft_wrap=True)
    print(path)
    return 0
def main(argv: list[str] | None = None, prog: str = "coupling-tui compute") -> int:
    """``coupling-tui compute``, and ``python -m coupling_tui.core`` (``prog`` names it in usage and errors)."""
    args = build_compute_parser(prog).parse_args(argv)
    return guarded(lambda: compute(args), debug=args.debug)
