"""Command-line pieces shared by every front end (the explorer, ``compute``, ``collapse``): the flags read back
(their argument groups live in ``cli.args`` and are re-exported here), loading with a rich status line, the rich
progress bar, the default output path and ``guarded`` (one message and an exit status instead of a traceback).
No Textual here."""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from coupling_tui.core.cli.args import (add_collapse_args, add_common_args, add_jacobian_args, add_model_args,  # noqa: F401
                                        add_prompt_args)
from coupling_tui.core.atomic import file_slug
from coupling_tui.core.errors import UserError
from coupling_tui.core.faults import (interrupt_message, is_out_of_memory, out_of_memory_error, sigterm_as_interrupt)
from coupling_tui.core.options.prompts import Prompt, read_prompts, truncation_note
from coupling_tui.core.options.run_options import RunOptions


def collapse_spec(args: argparse.Namespace):
    """The CollapseSpec the flags ask for (checked: a UserError for anything wrong), or None when ``args.collapse``
    is off or absent (``coupling-tui collapse`` sets it on by default)."""
    from coupling_tui.core.options.collapse import DEFAULT_FAMILIES, FAMILIES, CollapseSpec, parse_lengths

    defaults = CollapseSpec()
    flags = {"families": ("--families", None), "lengths": ("--lengths", None), "template": ("--template", None),
             "low_dtype": ("--low-dtype", defaults.low_dtype), "no_sensitivity": ("--no-sensitivity", False),
             "collapse_attn": ("--collapse-attn", defaults.attention),
             "sensitivity_method": ("--sensitivity-method", defaults.sensitivity_method),
             "probes": ("--probes", defaults.probes), "sensitivity_tokens": ("--sensitivity-tokens",
                                                                             defaults.sensitivity_tokens),
             "collapse_seed": ("--collapse-seed", defaults.seed)}
    value = {name: getattr(args, name, default) for name, (_, default) in flags.items()}
    if not getattr(args, "collapse", False):
        given = [flag for name, (flag, default) in flags.items() if value[name] != default]
        if given:
            raise UserError(f"{given[0]} tunes the collapse stage, which is off", "add --collapse")
        return None
    if value["families"] is None:
        families = list(DEFAULT_FAMILIES)
    elif value["families"].strip() == "all":
        families = list(FAMILIES)
    else:
        families = [f.strip() for f in value["families"].split(",") if f.strip()]
    if value["template"] is not None and "template" not in families:
        families.append("template")
    lengths = parse_lengths(value["lengths"]) if value["lengths"] is not None else None
    return CollapseSpec(families=tuple(families), lengths=lengths, template=value["template"],
                        low_dtype=value["low_dtype"], attention=value["collapse_attn"],
                        sensitivity=not value["no_sensitivity"],
                        sensitivity_method=value["sensitivity_method"], probes=value["probes"],
                        sensitivity_tokens=value["sensitivity_tokens"], seed=value["collapse_seed"])


def model_request(args: argparse.Namespace):
    from coupling_tui.core.load.models import ModelRequest

    return ModelRequest(model=args.model, revision=args.revision, dtype=args.dtype, device=args.device,
                        trust_remote_code=args.trust_remote_code, random_init=args.random_init, seed=args.seed,
                        device_map=getattr(args, "device_map", None), max_memory=getattr(args, "max_memory", None))


def run_params(args: argparse.Namespace) -> dict:
    """The model and prompt flags the results header records besides the run options (``RunOptions.params``)."""
    return {"model": args.model, "revision": args.revision, "dtype": args.dtype, "device": args.device,
            "trust_remote_code": args.trust_remote_code, "random_init": args.random_init, "seed": args.seed,
            "prompt_file": _one_or_all(getattr(args, "prompt_file", None)),
            "device_map": getattr(args, "device_map", None), "max_memory": getattr(args, "max_memory", None)}


def _one_or_all(values: list[str] | None):
    """A repeatable flag as recorded: None, its one value, or the list."""
    return values[0] if values and len(values) == 1 else values


def validated_prompt(args: argparse.Namespace) -> str:
    """Check the flags and the prompt before any model is loaded; the (first) prompt's text."""
    return validated_prompts(args)[0].text


def validated_prompts(args: argparse.Namespace) -> list[Prompt]:
    """Check prompts, token budget and the other flags before any model is loaded; every prompt of the run (two or
    more make a prompt set, core.engine.batch)."""
    options = run_options(args)                          # every run option, checked before any model loads
    if args.random_baseline and args.random_init:
        raise UserError("--random-baseline compares trained weights with random ones; drop --random-init")
    if args.random_baseline and options.top_k == 0:
        raise UserError("--random-baseline compares coupling, which needs the Jacobians; drop --top-k 0")
    prompts = read_prompts(args.prompt, args.prompt_file, per_line=getattr(args, "prompts_per_line", False))
    if len(prompts) > 1 and getattr(args, "collapse", False):
        raise UserError(f"--collapse measures fixed sequence families, not your {len(prompts)} prompts",
                        "run it with one prompt, or alone with `coupling-tui collapse`")
    return prompts


def run_options(args: argparse.Namespace) -> RunOptions:
    """The run the flags ask for, as the one ``RunOptions`` that the engine runs, the cost estimate sizes and the
    results header records; checked as it is built (a one-line UserError for a bad value). The only reader of the
    run flags: nothing below ``core.cli`` sees the Namespace."""
    options = RunOptions(max_tokens=args.max_tokens, top_k=args.top_k, jacobian_method=args.jacobian_method,
                         vector_budget_mb=args.vector_budget_mb, history_mb=args.history_mb,
                         token_coupling=not args.no_token_coupling, vju=args.vju, token_pairs=args.token_pairs,
                         context_layers=args.context_layers, context_tokens=args.context_tokens,
                         layers=getattr(args, "layers", None), topk_solver=getattr(args, "topk_solver", "auto"),
                         convention=getattr(args, "convention", "paper"), params=run_params(args))
    spec = collapse_spec(args)                           # after the options above, as the flags were checked before
    return options if spec is None else replace(options, collapse=spec)


def default_output(args: argparse.Namespace) -> Path:
    """``<user data dir>/runs/<time>-<model>.safetensors``."""
    import platformdirs

    name = file_slug(Path(args.model).name if args.model else "", "SmolLM2-135M-Instruct")
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    suffix = "-random-init" if args.random_init else ""
    return Path(platformdirs.user_data_dir("coupling-tui")) / "runs" / f"{stamp}-{name}{suffix}.safetensors"


def load_with_status(args: argparse.Namespace, console):
    """Load the model (and, with --random-baseline, its random-init twin) while a rich status line tells what is
    happening (before any full-screen UI starts). Returns (model, baseline or None)."""
    from coupling_tui.core.load.models import load

    check_depth = layers_check(args)
    started = time.perf_counter()
    with console.status("loading model…") as status:
        loaded = load(model_request(args), on_stage=lambda text: status.update(text + "…"), on_config=check_depth)
        baseline = None
        if getattr(args, "random_baseline", False):
            status.update("building the random-init baseline…")
            baseline = load(replace(model_request(args), random_init=True),
                            on_stage=lambda text: status.update(text + "…"))
    loaded.load_seconds = time.perf_counter() - started
    for note in loaded.notes:
        console.print(note, markup=False, highlight=False)
    return loaded, baseline


def layers_check(args: argparse.Namespace):
    """``--layers`` against the model's depth before its weights load: at once when the depth is cheap to read
    (core.load.depth: a local config.json, GGUF metadata), else a check of the config as soon as it is read
    (``load``'s ``on_config``); None without --layers."""
    from coupling_tui.core.load.depth import cheap_depth, config_depth
    from coupling_tui.core.options.layers import parse_layers, select_layers

    spec = parse_layers(getattr(args, "layers", None))
    if spec is None:
        return None
    depth = cheap_depth(args.model)
    if depth is not None:
        select_layers(spec, depth)                         # a UserError naming the model's depth

    def check(config) -> None:
        n = config_depth(config)
        if n is not None:
            select_layers(spec, n)
    return check


def announce_truncation(header: dict, console) -> None:
    note = truncation_note(header)
    if note:
        console.print(f"[yellow]note:[/] {note}")


def scalar_lines(run) -> list[str]:
    """The run's headline (core.results.headline) for the model and for its random-init baseline: the mean
    off-diagonal depth coupling of the last token (the papers') first, the all-token mean beside it, each named;
    then the same for adjacent blocks."""
    from coupling_tui.core.results.headline import headline_text, run_headline, values_text

    out = []
    for label, baseline in (("trained", False), ("random-init", True)):
        h = run_headline(run, baseline=baseline) if run.has_baseline or not baseline else None
        if h is None or (h.last is None and h.all is None):
            continue
        out.append(f"{label}: depth coupling {headline_text(h)}; adjacent |i−j|=1: "
                   f"{values_text(h, 'adjacent', detail=False)} ({run.n_layers} "
                   f"layers; 0 = coupled, ≈1 = unrelated)")
    return out


def load_announced(args: argparse.Namespace, console):
    """``load_with_status``, then one line saying what was loaded, where, as what and how fast."""
    t0 = time.perf_counter()
    loaded, baseline = load_with_status(args, console)
    from coupling_tui.core.options.sharding import placement_text

    where = placement_text(loaded.placement)
    console.print(f"loaded {loaded.info['source']} ({loaded.info['n_layers']} layers, d={loaded.info['d_model']}) "
                  f"{'on ' + loaded.device if where is None else 'with ' + where} as {loaded.dtype} in "
                  f"{time.perf_counter() - t0:.1f} s")
    return loaded, baseline


def progress_bar(console):
    """The rich progress bar of a headless run (description, bar, steps done/total, time left), cleared at the end."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeRemainingColumn(), console=console, transient=True)


def stream_with_progress(events, console, total: int | None = None, on_started=None, container=None):
    """Fold ``events`` into ``container`` (a RunContainer, core.results.container: a new Run by default, a
    PromptSet or a Comparison) under one rich progress bar over every step of every run it holds, described by its
    ``progress_label``; ``total`` is the bar's length until the first run announces its steps, ``on_started`` gets
    each run's header as it arrives (to print notes about it). Returns the container."""
    from coupling_tui.core.results.events import RunStarted
    from coupling_tui.core.results.run import Run

    container = Run() if container is None else container
    with progress_bar(console) as progress:
        task = progress.add_task(container.progress_label(), total=total)
        for event in events:
            container.apply(event)
            if isinstance(event, RunStarted) and on_started is not None:
                on_started(event.header)
            progress.update(task, total=container.n_steps or total, completed=container.steps_done,
                            description=container.progress_label())
    return container






def guarded(action, *, debug: bool = False) -> int:
    """Run ``action`` turning user errors, running out of memory, Ctrl-C and SIGTERM into one message and an exit
    status (2, 130, 143), not a traceback."""
    try:
        with sigterm_as_interrupt():
            return action()
    except UserError as exc:
        if debug:
            raise
        print(f"coupling-tui: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        line, status = interrupt_message(exc)
        print(line, file=sys.stderr)
        return status
    except Exception as exc:
        if debug or not is_out_of_memory(exc):
            raise
        print(f"coupling-tui: error: {out_of_memory_error('running')}", file=sys.stderr)
        return 2
