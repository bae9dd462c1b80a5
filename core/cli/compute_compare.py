"""``--compare MODEL2`` for the explorer and ``coupling-tui compute`` (docs/compare.md): model B is loaded like model
A (same dtype, device and flags), both run the same prompt with the same options one after the other, each is saved
as its own results file, and the comparison table is printed (headless) or shown side by side (explorer).
``--compare random-init`` is the same model with random weights: ``--random-baseline`` in one results file."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from coupling_tui.core.results.comparison import RANDOM_INIT
from coupling_tui.core.errors import UserError


def add_compare_args(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("compare", "two models side by side on the same prompt: the paper's comparison "
                                             "(more coupled ↔ better model; trained ↔ random-init)")
    g.add_argument("--compare", default=None, metavar="MODEL2",
                   help="also run MODEL2 (a Hugging Face id, local directory or .gguf, loaded with the same --dtype, "
                        "--device and flags) on the same prompt and show both side by side; 'random-init' = this "
                        "model with random weights (the same as --random-baseline; a directory of that name: "
                        "./random-init). Each model's run is saved as its own results file")
    g.add_argument("--compare-output", default=None, metavar="PATH",
                   help="where MODEL2's run is saved (default: beside the first run's file, "
                        "<name>.vs-<MODEL2>.safetensors)")


def compare_mode(args: argparse.Namespace, n_prompts: int) -> str | None:
    """None (no --compare), "random-init" (then ``args.random_baseline`` is set) or "model"; refuses what cannot be
    combined, before any model loads."""
    other = getattr(args, "compare", None)
    if other is None:
        if getattr(args, "compare_output", None):
            raise UserError("--compare-output needs --compare MODEL2")
        return None
    if not other.strip():
        raise UserError("--compare needs a model: a Hugging Face id, a local directory, a .gguf file or random-init")
    if n_prompts > 1:
        raise UserError("--compare takes one prompt, not a prompt set",
                        "run each model on the set (two output directories) and open either with coupling-tui view")
    if other == RANDOM_INIT:
        if getattr(args, "compare_output", None):
            raise UserError("--compare random-init keeps both runs in one results file: drop --compare-output")
        if args.random_init:
            raise UserError("--random-init with --compare random-init would compare random weights with random "
                            "weights", "drop --random-init")
        args.random_baseline = True
        return RANDOM_INIT
    if getattr(args, "random_baseline", False):
        raise UserError("--random-baseline with --compare MODEL2: one comparison at a time",
                        "use --compare random-init for trained vs random-init, or --compare MODEL2 without it")
    from coupling_tui.core.load.models import check_model

    check_model(other, args.trust_remote_code)             # a bad local MODEL2 fails before model A loads
    return "model"


def output_b(args: argparse.Namespace, output_a: Path) -> Path:
    from coupling_tui.core.results.comparison import compare_output

    path = Path(args.compare_output).expanduser() if args.compare_output else compare_output(output_a, args.compare)
    if path.resolve() == Path(output_a).expanduser().resolve():
        raise UserError(f"both runs would be saved to {path}", "give --compare-output another file")
    return path


def params_b(args: argparse.Namespace, params_a) -> dict:
    """Model B's recorded parameters: A's with B's model, no revision and trained weights, plus who it was compared
    with."""
    return {**params_a, "model": args.compare, "revision": None, "random_init": False,
            "compared_with": {"side": "B", "model": args.model}}


def load_b(args: argparse.Namespace, console):
    """Model B, with a rich status line; loaded with A's flags but its own model, no revision, trained weights."""
    from coupling_tui.core.cli.common import model_request
    from coupling_tui.core.load.models import load

    request = replace(model_request(args), model=args.compare, revision=None, random_init=False)
    with console.status("loading the model to compare with…") as status:
        loaded = load(request, on_stage=lambda text: status.update(text + "…"))
    for note in loaded.notes:
        console.print(note, markup=False, highlight=False)
    console.print(f"compare with {loaded.info['source']} ({loaded.info['n_layers']} layers, "
                  f"d={loaded.info['d_model']})", markup=False, highlight=False)
    return loaded


def prepare(args: argparse.Namespace, loaded_a, loaded_b, prompt: str, options, console):
    """Check both runs' cost together (may ask, or refuse), then return the job yielding
    core.engine.compare.stream_compare's events: A runs ``options`` (core.options.run_options.RunOptions), B the
    same with its own recorded parameters (``params_b``)."""
    from coupling_tui.core.engine.compare import stream_compare
    from coupling_tui.core.results.compare import side_label
    from coupling_tui.core.cli.cost_check import (available_memory, confirm, estimate_for, machine_note,
                                                  machine_rates, set_cost)
    from coupling_tui.core.faults import memory_guarded
    from coupling_tui.core.results.run import Run
    import sys

    from rich.text import Text

    sides = (options, replace(options, params=params_b(args, options.params)))
    rates = machine_rates(loaded_a.device)
    cost = set_cost([estimate_for(options, loaded_a, prompt, rates=rates),
                     estimate_for(options, loaded_b, prompt, rates=rates)])
    interactive = sys.stdin is not None and sys.stdin.isatty()
    confirm(cost, available_memory(loaded_a.device), yes=getattr(args, "yes", False), interactive=interactive,
            ask=lambda q: console.input(Text(q)),
            say=lambda line: console.print(line, markup=False, highlight=False, soft_wrap=True), note=machine_note())
    labels = tuple(side_label(Run(header={"model": dict(loaded.info)})) for loaded in (loaded_a, loaded_b))

    def job():
        return memory_guarded(stream_compare(loaded_a, loaded_b, prompt, labels=labels, options=sides), cost)

    return job


def compute_compare(args: argparse.Namespace, prompt: str, output_a: Path, console) -> int:
    """Headless ``compute --compare MODEL2``: both runs under one progress bar, both saved, the table printed."""
    from coupling_tui.core.cli.common import announce_truncation, load_announced, run_options, stream_with_progress
    from coupling_tui.core.results.compare import table_lines
    from coupling_tui.core.results.comparison import Comparison, save_a_alone, save_pair

    path_b = output_b(args, output_a)
    loaded_a, _ = load_announced(args, console)
    loaded_b = load_b(args, console)
    job = prepare(args, loaded_a, loaded_b, prompt, run_options(args), console)
    comparison = Comparison()

    def announce(header: dict) -> None:
        if comparison.current == 0:
            announce_truncation(header, console)

    try:
        stream_with_progress(job(), console, 2 * loaded_a.info["n_layers"], on_started=announce,
                             container=comparison)
    except Exception:                                      # B failed (Ctrl-C is no Exception: nothing is saved)
        kept = save_a_alone(comparison, output_a)
        if kept is not None:
            console.print(f"model A had finished: its run is saved to {kept}", markup=False, highlight=False,
                          soft_wrap=True)
        raise
    written = save_pair(comparison, output_a, path_b)
    console.print(f"computed both models in {comparison.seconds:.1f} s")
    for line in table_lines(*comparison.runs):
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    console.print(f"reopen side by side: coupling-tui view {written[0]} {written[1]}", markup=False,
                  highlight=False, soft_wrap=True)
    for path in written:
        print(path)
    return 0
