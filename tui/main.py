"""The ``coupling-tui`` command: explore (default), ``compute`` (headless), ``view`` (a saved run, no torch)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from coupling_tui.core import __version__
from coupling_tui.core import cli as core_cli

COMMANDS = {
    "compute": "compute a run headless and save it (rich progress bar)",
    "view": "open a saved results file in the explorer (no model, no torch)",
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
    p.add_argument("-o", "--output", default=None, metavar="PATH",
                   help="where to save the run (default: a new file under the user data dir)")
    core_cli.add_common_args(p)
    p.add_argument("--version", action="version", version=f"coupling-tui {__version__}")
    return p


def build_view_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="coupling-tui view", description="Open a saved results file in the explorer.")
    p.add_argument("results", help="a .safetensors results file written by coupling-tui")
    core_cli.add_common_args(p)
    return p


def explore(args: argparse.Namespace) -> int:
    from rich.console import Console

    from coupling_tui.core import engine

    console = Console(stderr=True)
    prompt = core_cli.validated_prompt(args)
    output = Path(args.output).expanduser() if args.output else core_cli.default_output(args)
    loaded, baseline = core_cli.load_with_status(args, console)
    options = core_cli.engine_options(args)

    def job():
        return engine.stream(loaded, prompt, baseline=baseline, **options)

    from .app import CouplingApp

    CouplingApp(job=job, save_path=output).run()
    return 0


def view_app(path: str):
    """The explorer on a saved results file: no model and no torch import."""
    from coupling_tui.core import results

    from .app import CouplingApp

    return CouplingApp(run=results.load(path))


def view(args: argparse.Namespace) -> int:
    view_app(args.results).run()
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] == "compute":
        args = core_cli.build_compute_parser().parse_args(argv[1:])
        action = lambda: core_cli.compute(args)  # noqa: E731
    elif argv and argv[0] == "view":
        args = build_view_parser().parse_args(argv[1:])
        action = lambda: view(args)  # noqa: E731
    else:
        args = build_explore_parser().parse_args(argv)
        action = lambda: explore(args)  # noqa: E731
    return core_cli.guarded(action, debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())
