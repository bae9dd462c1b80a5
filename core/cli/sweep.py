"""``coupling-tui sweep``: the same prompts on many models, one table. Each model's results are an ordinary results
file (one prompt) or prompt-set directory (several) under ``-o DIR``; ``DIR/sweep.csv`` and ``DIR/sweep.json`` (the
rows plus the fits of ``--scores`` against the coupling scalar and against size, depth and width: the first paper's
Figure 1) are rewritten whole after every model, so an interrupted sweep leaves a valid table of the models done. A
re-run skips the models whose results exist with the same options. Models run one after another in this process
(``--executor local``) or as one Ray task each (``--executor ray``); only this process writes ``DIR``."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from coupling_tui.core.cli.args import add_common_args, add_jacobian_args, add_model_args, add_prompt_args
from coupling_tui.core.cli.run_bounds import add_run_size_args
from coupling_tui.core.cli.sweep_plan import (SAME_OPTIONS, Planned, check_directory, model_cost, plan,
                                              recorded_options, stored, sweep_cost)
from coupling_tui.core.errors import UserError
from coupling_tui.core.options.sweep import entries, read_scores
from coupling_tui.core.results import sweep as sweep_state
from coupling_tui.core.results import sweep_table

EXECUTORS = ("local", "ray")


def build_sweep_parser(prog: str = "coupling-tui sweep") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=(
        "Run the same prompts with the same options on many models and write one table, DIR/sweep.csv and "
        "DIR/sweep.json, with each model's results beside it (open DIR with `coupling-tui view DIR`). With --scores, "
        "the fits of the score against the coupling scalar and against size, depth and width (Aubry et al. 2025, "
        "Figure 1). Re-running skips models already done with the same options."))
    add_model_args(p, sweep=True)
    add_prompt_args(p)
    add_jacobian_args(p)
    add_run_size_args(p)
    g = p.add_argument_group("sweep")
    g.add_argument("-o", "--output", required=True, metavar="DIR",
                   help="the sweep directory: a new one, or an earlier sweep's (its finished models are kept)")
    g.add_argument("--scores", default=None, metavar="CSV",
                   help="a CSV with columns model,score (e.g. a leaderboard average), matched on the model's name as "
                        "given here; adds the score column and the fits")
    g.add_argument("--force", action="store_true", help="compute every model again, even with results in DIR")
    g.add_argument("--view", action="store_true",
                   help="watch the sweep in the Sweep view: rows and points appear as models finish (q stops it, "
                        "keeping the models done)")
    g.add_argument("--executor", default="local", choices=EXECUTORS,
                   help="local: models one after another in this process (default); ray: one Ray task per model, "
                        "on the cluster at --ray-address or RAY_ADDRESS, else on a local Ray started for the sweep "
                        "(pip install 'coupling-tui[ray]')")
    g.add_argument("--ray-address", default=None, metavar="ADDR",
                   help="a running Ray cluster's address (ray://host:10001, or auto); default RAY_ADDRESS")
    g.add_argument("--gpus-per-model", type=float, default=0.0, metavar="N",
                   help="GPUs each model's Ray task reserves (num_gpus; default 0; with --device-map a task can "
                        "span several)")
    g.add_argument("--cpus-per-model", type=float, default=1.0, metavar="N",
                   help="CPUs each model's Ray task reserves (num_cpus; default 1)")
    add_common_args(p)
    return p


class TableWriter:
    """Saves each model's results as it ends and rewrites the table: the one writer of the sweep directory."""

    def __init__(self, directory: Path, planned: list[Planned], scores: dict[str, float], meta: dict, say):
        self.directory, self.planned, self.scores, self.meta, self.say = directory, planned, scores, meta, say
        self.rows: dict[int, dict] = {}
        self.previous = _previous_seconds(directory)

    def ended(self, index: int, model: sweep_state.ModelState, stored_container=None) -> None:
        from coupling_tui.core.results import run_file, set_file

        p = self.planned[index]
        score = self.scores.get(p.entry.given)
        if model.state == sweep_state.FAILED:
            row = sweep_table.failed_row(p.entry.given, model.reason, model.seconds, score)
        else:
            container = stored_container if model.state == sweep_state.SKIPPED else model.container
            if model.state == sweep_state.OK:
                target = self.directory / p.results
                (run_file.save if p.results.endswith(".safetensors") else set_file.save)(container, target)
            seconds = self.previous.get(p.entry.given, 0.0) if model.state == sweep_state.SKIPPED else model.seconds
            row = sweep_table.ok_row(p.entry.given, container, seconds=seconds, results=p.results, score=score)
        row["key"] = p.key
        self.rows[index] = row
        self.write()
        self.say(_model_line(index, len(self.planned), model, row))

    def write(self) -> None:
        from coupling_tui.core.maths.sweep_fits import fits

        rows = [self.rows[i] for i in sorted(self.rows)]
        sweep_table.write(self.directory, rows, fits(rows, sweep_table.PREDICTORS), self.meta)

    @property
    def any_ok(self) -> bool:
        return any(r["status"] == "ok" for r in self.rows.values())


def _previous_seconds(directory: Path) -> dict[str, float]:
    """Each model's seconds in the table an earlier run left (a skipped model keeps its own)."""
    try:
        table = sweep_table.load(directory)
    except UserError:
        return {}
    return {r["model"]: float(r.get("seconds") or 0.0) for r in table["rows"] if r.get("status") == "ok"}


def _num(x, fmt: str = ".3f") -> str:
    return "–" if x is None else format(x, fmt)


def _model_line(index: int, n: int, model: sweep_state.ModelState, row: dict) -> str:
    head = f"model {index + 1}/{n} {model.name}: "
    if model.state == sweep_state.FAILED:
        return head + row["status"]
    k = row.get("k")
    scalar = (f"m_{k} last token {_num(row['coupling_scalar_last_token'])} (the papers'), all-token mean "
              f"{_num(row['coupling_scalar'])}") if k is not None else "no coupling (--top-k 0)"
    how = "skipped: " + model.reason if model.state == sweep_state.SKIPPED else f"ok in {model.seconds:.1f} s"
    return head + f"{how}; {scalar}"


def fit_lines(table: dict) -> list[str]:
    """The fits as text: one line per predictor."""
    out = []
    for name, f in (table.get("fits") or {}).items():
        if "note" in f:
            out.append(f"score ~ {name}: no fit ({f['note']})")
        else:
            out.append(f"score ~ {name}: R² {_num(f['r2'])}, p {_num(f['p'], '.2g')}, slope {_num(f['slope'], '.4g')}, "
                       f"Spearman ρ {_num(f['spearman_rho'])} (n = {f['n']})")
    return out


@dataclass
class PreparedSweep:
    """A sweep planned, checked and confirmed, not started: ``drive`` computes it (headless under a progress bar,
    or in the explorer's worker thread for ``--view``)."""

    directory: Path
    writer: TableWriter
    events: Callable[[], Iterator]
    """Makes the sweep's event stream (core.engine.sweep or sweep_ray); nothing runs before it is iterated."""
    existing: dict
    """Index → the stored container of each model skipped."""

    def drive(self, on_event: Callable[[sweep_state.Sweep], None] | None = None) -> sweep_state.Sweep:
        """Run the sweep: fold its events into a Sweep, save each model and rewrite the table as it ends, and call
        ``on_event`` after every event (it may raise to stop: the running model stops between layers)."""
        sweep = sweep_state.Sweep()
        with contextlib.closing(self.events()) as events:
            for event in events:
                sweep.apply(event)
                for index in sweep.just_ended:
                    self.writer.ended(index, sweep.models[index], self.existing.get(index))
                if on_event is not None:
                    on_event(sweep)
        return sweep


def prepare_sweep(args: argparse.Namespace, say) -> PreparedSweep:
    """Everything before the first model loads: the models, scores, prompts and directory checked (a UserError for
    anything wrong), each model's job planned, the models already done found, the cost estimated and confirmed."""
    models = entries(args.model, args.models)
    scores = read_scores(args.scores) if args.scores else {}
    args.random_init, args.revision, args.collapse = False, None, False
    from coupling_tui.core.cli.common import validated_prompts

    prompts = validated_prompts(args)
    directory = check_directory(args.output)
    if args.executor == "ray":
        from coupling_tui.core.engine.sweep_ray import import_ray

        import_ray()                                     # the missing extra is refused before any model loads
    if unmatched := sorted(set(scores) - {m.given for m in models}):
        say(f"note: {len(unmatched)} scores name no model of this sweep: {', '.join(unmatched[:5])}")
    planned = plan(args, models, prompts)
    existing = {} if args.force else {i: c for i, p in enumerate(planned) if (c := stored(directory, p)) is not None}
    todo = [p for i, p in enumerate(planned) if i not in existing]
    say(f"{len(planned)} model{'s' if len(planned) > 1 else ''} × {len(prompts)} prompt{'s' if len(prompts) > 1 else ''}"
        + (f"; {len(existing)} already done with the same options" if existing else ""))
    if todo:
        _confirm_cost(todo, prompts, args, say)
    writer = TableWriter(directory, planned, scores, _meta(args, planned, prompts), say)
    skip = {i: SAME_OPTIONS for i in existing}
    return PreparedSweep(directory, writer, lambda: _events(args, planned, prompts, skip), existing)


def sweep_command(args: argparse.Namespace) -> int:
    from rich.console import Console

    from coupling_tui.core.cli.common import progress_bar

    console = Console(stderr=True)
    say = lambda line: console.print(line, markup=False, highlight=False, soft_wrap=True)  # noqa: E731
    prepared = prepare_sweep(args, say)
    with progress_bar(console) as progress:
        task = progress.add_task("models", total=None)
        prepared.drive(lambda sweep: progress.update(task, total=sweep.n_steps or None, completed=sweep.steps_done,
                                                     description=sweep.progress_label()))
    return finish(prepared, say)


def finish(prepared: PreparedSweep, say) -> int:
    """After a sweep: the fits (with scores), the directory on stdout, and the exit status (2 when no model
    succeeded)."""
    table = sweep_table.load(prepared.directory)
    for line in fit_lines(table) if prepared.writer.scores else []:
        say(line)
    print(prepared.directory)
    if not prepared.writer.any_ok:
        say("coupling-tui: error: no model of the sweep succeeded (the reasons are in the table)")
        return 2
    return 0


def _events(args: argparse.Namespace, planned: list[Planned], prompts, skip: dict[int, str]):
    jobs = [p.job for p in planned]
    if args.executor == "ray":
        from coupling_tui.core.engine.sweep_ray import stream_sweep_ray

        return stream_sweep_ray(jobs, prompts, skip=skip, address=args.ray_address,
                                gpus_per_model=args.gpus_per_model, cpus_per_model=args.cpus_per_model)
    from coupling_tui.core.engine.sweep import stream_sweep

    return stream_sweep(jobs, prompts, skip=skip)


def _confirm_cost(todo: list[Planned], prompts, args: argparse.Namespace, say) -> None:
    """The estimate of the models still to compute, added up (each from its config and tokenizer); asks or refuses
    as ``compute`` does. Models whose config cannot be read are left out of it (they fail as their own rows)."""
    from coupling_tui.core.cli.cost_check import available_memory, confirm, machine_note

    costs, unknown = [], []
    for p in todo:
        cost = model_cost(p, prompts)
        if cost is None:
            unknown.append(p.entry.given)
        else:
            costs.append(cost)
    if unknown:
        say(f"note: no estimate for {', '.join(unknown)} (its config or tokenizer cannot be read: it will fail "
            "as its own row)")
    if not costs:
        return
    total = sweep_cost(costs)
    interactive = sys.stdin is not None and sys.stdin.isatty()
    confirm(total, available_memory(total.device), yes=args.yes, interactive=interactive, say=say,
            note=machine_note())


def _meta(args: argparse.Namespace, planned: list[Planned], prompts) -> dict:
    """What the table records about the sweep besides its rows."""
    return {"models": [p.entry.given for p in planned],
            "prompts": [{"label": p.label, "text": p.text} for p in prompts],
            "options": json.loads(json.dumps(recorded_options(planned[0].job.options), default=str)),
            "dtype": args.dtype, "device": args.device, "seed": args.seed,
            "random_baseline": bool(args.random_baseline), "executor": args.executor,
            "scores_file": str(Path(args.scores).expanduser().resolve()) if args.scores else None}


def main(argv: list[str] | None = None) -> int:
    from coupling_tui.core.cli.common import guarded

    args = build_sweep_parser().parse_args(argv)
    return guarded(lambda: sweep_command(args), debug=args.debug)
