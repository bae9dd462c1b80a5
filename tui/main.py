"""The ``coupling-tui`` command: explore (default), ``compute`` and ``collapse`` (headless), ``view`` (a saved run,
no torch), ``export`` (SVGs of a saved run), ``figures`` (matplotlib figures of a saved run, no torch)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from coupling_tui.core.cli import common as core_cli
from coupling_tui.core.cli import compute as core_compute
from coupling_tui.core.cli.compute_compare import add_compare_args, compare_mode
from coupling_tui.core.results.comparison import RANDOM_INIT
from coupling_tui.core.cli.run_bounds import add_run_size_args

COMMANDS = {
    "compute": "compute a run headless and save it (rich progress bar)",
    "collapse": "measure representational collapse and over-squashing headless and save it",
    "sweep": "the same prompts on many models: one table, the fits against a score, resumable (Ray optional)",
    "view": "open a saved results file (or two, side by side) in the explorer (no model, no torch)",
    "export": "write every pane of a saved run as SVG, no terminal needed",
    "figures": "draw a saved run's figures for a paper with matplotlib (svg, pdf, png; --data for CSV/NPZ)",
}


def build_explore_parser() -> argparse.ArgumentParser:
    epilog = "commands:\n" + "\n".join(f"  coupling-tui {name:<9} {text}" for name, text in COMMANDS.items())
    epilog += "\n\nRun `coupling-tui COMMAND --help` for a command's flags."
    p = argparse.ArgumentParser(
        prog="coupling-tui", epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Explore a causal LM block by block: load the model, compute, and stream the results "
                    "into the terminal explorer (saved as a results file when done).")
    core_cli.add_model_args(p)
    core_cli.add_prompt_args(p)
    core_cli.add_jacobian_args(p)
    core_cli.add_collapse_args(p)
    add_run_size_args(p)
    add_compare_args(p)
    p.add_argument("-o", "--output", default=None, metavar="PATH",
                   help="where to save the run (default: a new file under the user data dir)")
    add_svg_dir_arg(p)
    add_scale_arg(p)
    core_cli.add_common_args(p)                                          # --debug, --version
    return p


def add_scale_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scale", choices=("auto", "fixed"), default="auto",
                   help="colour scale of the coupling heatmaps: auto = the matrix's off-diagonal range (the default), "
                        "fixed = 0–1 for every run, to compare runs by eye (s switches it in the explorer)")


def add_svg_dir_arg(p: argparse.ArgumentParser) -> None:
    from .export import default_svg_dir

    p.add_argument("--svg-dir", "--svg", dest="svg_dir", default=None, metavar="DIR",
                   help=f"where e / E write SVG exports, as <run>-<pane>.svg, numbered <run>-<pane>-2.svg … rather "
                        f"than replacing an earlier export (default: {default_svg_dir()}; each export says where)")


def svg_path(value: str | None) -> Path:
    """--svg-dir as a path; the user data dir's ``svg`` folder when not given."""
    from .export import default_svg_dir

    return Path(value).expanduser() if value else default_svg_dir()


def build_view_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="coupling-tui view", description="Open a saved results file in the explorer, or "
                                "two side by side (c toggles the compare layout, x swaps them).")
    p.add_argument("results", help="a .safetensors results file written by coupling-tui, or a prompt set's directory")
    p.add_argument("compare", nargs="?", default=None, metavar="results_b",
                   help="a second results file: both runs side by side (docs/compare.md); 'random-init': the run "
                        "beside its random-init baseline (runs computed with --random-baseline)")
    add_svg_dir_arg(p)
    add_scale_arg(p)
    core_cli.add_common_args(p)
    return p


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT like 200x60, got {text!r}") from None
    if not (40 <= w <= 1000 and 12 <= h <= 500):
        raise argparse.ArgumentTypeError(f"{text} is outside 40x12 .. 1000x500")
    return w, h


def build_export_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="coupling-tui export",
                                description="Render a saved run in a virtual terminal and write every pane and the "
                                            "whole screen as SVG: <DIR>/<run>-<pane>.svg. No terminal or torch needed.")
    p.add_argument("results", help="a .safetensors results file or a prompt-set directory written by coupling-tui")
    p.add_argument("compare", nargs="?", default=None, metavar="results_b",
                   help="a second results file: export the compare layout (both runs side by side); 'random-init': "
                        "the run beside its random-init baseline")
    p.add_argument("--svg-dir", "--svg", dest="svg", required=True, metavar="DIR",
                   help="directory to write the SVGs into (created); files of the same names there are replaced")
    p.add_argument("--size", type=_size, default=(200, 60), metavar="WxH",
                   help="virtual terminal size in cells (default 200x60: every pane visible)")
    p.add_argument("--token", type=int, default=None, help="token to select (default: the last)")
    p.add_argument("--layer", type=int, default=0, help="layer to select (default 0)")
    add_scale_arg(p)
    core_cli.add_common_args(p)
    return p


def run_app(app, **kw):
    """``app.run(**kw)``; an exception that escaped the app (a pane that crashed) is re-raised here, after the
    terminal is restored, for main() to turn into one line and a status (defect 2 of #17). Textual's own printout
    of it is dropped: main() prints the traceback with --debug."""
    app._print_error_renderables = app._exit_renderables.clear
    result = app.run(**kw)
    app.raise_signal_exit()
    if app._exception is not None:
        raise app._exception
    return result


def explore(args: argparse.Namespace) -> int:
    from rich.console import Console

    from coupling_tui.core.cli import run_job

    console = Console(stderr=True)
    prompts = core_cli.validated_prompts(args)
    mode = compare_mode(args, len(prompts))
    if mode == "model":
        return explore_compare(args, prompts[0].text, console)
    if len(prompts) > 1:                      # a prompt set: saved as a directory (core.results.set_file)
        from coupling_tui.core.cli.compute_set import default_set_output
        from coupling_tui.core.results.set_file import check_target

        output = check_target(args.output or default_set_output(args), len(prompts))
    else:
        output = Path(args.output).expanduser() if args.output else core_cli.default_output(args)
    loaded, baseline = core_cli.load_with_status(args, console)
    if len(prompts) > 1:
        job = run_job.prepare_prompts(core_cli.run_options(args), loaded, baseline, prompts, console, yes=args.yes)
    else:
        job = run_job.prepare(core_cli.run_options(args), loaded, baseline, prompts[0].text, console, yes=args.yes)

    from .app import CouplingApp

    app = CouplingApp(job=job, save_path=output, export_dir=svg_path(args.svg_dir), compare=mode is not None,
                      scale=args.scale)
    run_app(app)                   # stopped by SIGINT/SIGTERM: the same one line and status as the CLI
    return reported(app)


def reported(app) -> int:
    """After the explorer quit: a compute or save that failed is printed as one line and ends the command with its
    status (issue 17 defect 7: a failed save was a toast and status 0); 0 otherwise."""
    if app.failure is None:
        return 0
    print(f"coupling-tui: error: {app.failure.message}", file=sys.stderr)
    return app.failure.status


def explore_compare(args: argparse.Namespace, prompt: str, console) -> int:
    """``--compare MODEL2``: both models loaded up front (a bad MODEL2 fails before any compute), then streamed one
    after the other into the compare layout; each saved as its own results file."""
    from coupling_tui.core.cli import compute_compare as compare_cli

    output = Path(args.output).expanduser() if args.output else core_cli.default_output(args)
    output_b = compare_cli.output_b(args, output)
    loaded_a, _ = core_cli.load_with_status(args, console)
    loaded_b = compare_cli.load_b(args, console)
    job = compare_cli.prepare(args, loaded_a, loaded_b, prompt, core_cli.run_options(args), console)

    from .app import CouplingApp

    app = CouplingApp(job=job, save_path=output, compare_save_path=output_b,
                      export_dir=svg_path(args.svg_dir), compare=True, scale=args.scale)
    run_app(app)
    return reported(app)


def view_app(path: str, svg: str | None = None, compare: str | None = None, scale: str = "auto"):
    """The explorer on a saved results file or prompt set (its directory or its aggregate.safetensors), or on two
    results files side by side (``compare``): no model and no torch import. ``scale``: the heatmaps' colour scale
    (``--scale``)."""
    app = _view_app(path, svg, compare)
    app.scale = scale
    return app


def _view_app(path: str, svg: str | None, compare: str | None):
    from coupling_tui.core.results import set_file as set_results

    from .app import CouplingApp

    if compare == RANDOM_INIT and not Path(compare).exists():
        from coupling_tui.core.results import run_file as results
        from coupling_tui.core.results.compare import random_init_run
        from coupling_tui.core.errors import UserError

        run = results.load(path)
        if random_init_run(run) is None:
            raise UserError(f"{path} has no random-init baseline to compare with",
                            "compute it with --random-baseline or --compare random-init")
        return CouplingApp(run=run, export_dir=svg_path(svg), run_name=f"{Path(path).stem}-vs-random-init",
                           compare=True)
    if compare is not None:
        from coupling_tui.core.results.comparison import open_pair

        pa, pb = Path(path).expanduser(), Path(compare).expanduser()
        return CouplingApp(run=open_pair(pa, pb), export_dir=svg_path(svg),
                           run_name=f"{pa.stem}-vs-{pb.stem}")
    opened = set_results.open_results(path)
    p = Path(path).expanduser().resolve()
    name = p.name if p.is_dir() else p.parent.name if set_results.is_set(p) else p.stem
    return CouplingApp(run=opened, export_dir=svg_path(svg), run_name=name)


def view(args: argparse.Namespace) -> int:
    from coupling_tui.core.results import sweep_table

    if sweep_table.is_sweep(args.results) and args.compare is None:
        return view_sweep(Path(args.results).expanduser(), svg_path(args.svg_dir))
    app = view_app(args.results, args.svg_dir, args.compare, args.scale)
    run_app(app)
    return 0


def watch_sweep(args: argparse.Namespace) -> int:
    """``coupling-tui sweep --view``: plan and confirm on the terminal, then compute in the Sweep view (rows and
    points appear as models finish); once it is done, Enter opens a model as in ``view DIR``."""
    from rich.console import Console

    from coupling_tui.core.cli import sweep as sweep_cli
    from coupling_tui.core.results import sweep_table

    from .sweep_app import SweepApp

    console = Console(stderr=True)
    said: list[str] = []
    say = lambda line: console.print(line, markup=False, highlight=False, soft_wrap=True)  # noqa: E731
    prepared = sweep_cli.prepare_sweep(args, say)
    prepared.writer.say = said.append                  # the per-model lines wait until the screen is given back
    directory, svg_dir = prepared.directory, svg_path(None)
    table = {"rows": [], "prompts": prepared.writer.meta["prompts"], "fits": {}}
    app = SweepApp(table, directory, svg_dir, live=prepared.drive)
    chosen = run_app(app)
    for line in said:
        say(line)
    if app.failure is not None:
        raise app.failure
    status = sweep_cli.finish(prepared, say) if sweep_table.is_sweep(directory) else 2
    if chosen is not None and sweep_table.is_sweep(directory):
        view_sweep(directory, svg_dir, chosen)
    return status


def view_sweep(directory: Path, svg_dir: Path, chosen=None) -> int:
    """The Sweep view; Enter opens the selected model's run in the explorer, whose Esc comes back (selection, sort
    and pooling kept); q in either quits. ``chosen`` (a SweepView): a model to open first (after a live sweep)."""
    from coupling_tui.core.results import sweep_table

    from .sweep_app import SweepApp

    table = sweep_table.load(directory)
    while True:
        if chosen is not None and not _open_model(directory, svg_dir, chosen, table):
            return 0
        chosen = run_app(SweepApp(table, directory, svg_dir, chosen))
        if chosen is None:
            return 0


def _open_model(directory: Path, svg_dir: Path, chosen, table: dict) -> bool:
    """The chosen model's run in the explorer; True when its Esc asked to go back to the Sweep view."""
    from .app import BACK

    row = table["rows"][chosen.selected]
    app = view_app(str(directory / row["results"]), str(svg_dir))
    app.back = True
    app.run_name = f"{directory.name}-{Path(row['results']).stem}"
    return run_app(app) == BACK


def export_svgs(args: argparse.Namespace) -> int:
    """Headless: open the run (or a sweep) in a virtual terminal of --size, select --token/--layer, write every
    SVG."""
    from coupling_tui.core.results import sweep_table

    if sweep_table.is_sweep(args.results) and args.compare is None:
        from .sweep_app import SweepApp

        app = SweepApp(sweep_table.load(args.results), Path(args.results).expanduser(), Path(args.svg).expanduser())
        app.replace_exports = True
        return _export_headless(app, args.size)
    app = view_app(args.results, args.svg, args.compare, args.scale)
    app.replace_exports = True                  # the headless export names its directory: it replaces
    app.start_token = args.token
    app.selected_layer = args.layer
    app.requested_token, app.requested_layer = args.token, args.layer
    return _export_headless(app, args.size)


def _export_headless(app, size: tuple[int, int]) -> int:
    """Run ``app``'s ``export_and_exit`` headless at ``size``; print every path written."""
    from coupling_tui.core.errors import UserError

    app.call_after_refresh(app.export_and_exit)
    written = run_app(app, headless=True, size=size)
    if isinstance(written, UserError):
        raise written
    for path in written or []:
        print(path)
    return 0 if written else 2


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] == "compute":
        args = core_compute.build_compute_parser().parse_args(argv[1:])
        action = lambda: core_compute.compute(args)  # noqa: E731
    elif argv and argv[0] == "collapse":
        from coupling_tui.core.cli import collapse as collapse_cli

        args = collapse_cli.build_collapse_parser().parse_args(argv[1:])
        action = lambda: collapse_cli.collapse_command(args)  # noqa: E731
    elif argv and argv[0] == "sweep":
        from coupling_tui.core.cli import sweep as sweep_cli

        args = sweep_cli.build_sweep_parser().parse_args(argv[1:])
        action = lambda: (watch_sweep if args.view else sweep_cli.sweep_command)(args)  # noqa: E731
    elif argv and argv[0] == "view":
        args = build_view_parser().parse_args(argv[1:])
        action = lambda: view(args)  # noqa: E731
    elif argv and argv[0] == "figures":
        from coupling_tui.core.cli import figures as figures_cli

        args = figures_cli.build_figures_parser().parse_args(argv[1:])
        action = lambda: figures_cli.figures_command(args)  # noqa: E731
    elif argv and argv[0] == "export":
        args = build_export_parser().parse_args(argv[1:])
        action = lambda: export_svgs(args)  # noqa: E731
    else:
        args = build_explore_parser().parse_args(argv)
        action = lambda: explore(args)  # noqa: E731
    try:
        return core_cli.guarded(action, debug=args.debug)
    except Exception as exc:       # a bug (status 1), or with --debug any error (2 for bad data): one line last
        from coupling_tui.core.errors import UserError

        if args.debug:
            import traceback

            traceback.print_exc()
            print(file=sys.stderr)
        print(f"coupling-tui: error: {exc}" if isinstance(exc, UserError)
              else f"coupling-tui: error: internal error ({type(exc).__name__}: {exc}); rerun with --debug for the "
                   "traceback and please report it", file=sys.stderr)
        return 2 if isinstance(exc, UserError) else 1


if __name__ == "__main__":
    sys.exit(main())
