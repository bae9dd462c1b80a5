"""``coupling-tui collapse``: representational collapse and over-squashing headless (rich progress bar, atomic save,
a short table of the pair difference against n). Torch is imported only once the flags are checked."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from coupling_tui.core.cli.common import (add_collapse_args, add_common_args, add_model_args, collapse_spec, default_output, guarded, load_announced, run_params, stream_with_progress)
from coupling_tui.core.maths.collapse_view import sensitivity_shares
from coupling_tui.core.results import names

COLLAPSE_PROMPT = "1 1 1 1 1 1 1 1"
"""The short prompt of the run's ordinary layer pass (its trajectories; no Jacobians): a results file always has
one."""


def build_collapse_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="coupling-tui collapse", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Measure representational collapse and over-squashing (Barbero et al., 'Transformers need "
                    "glasses!', NeurIPS 2024) headless and save a results file: for each family and length n, the "
                    "last token's final-layer state of a sequence with n repeats and of its twin with n+1, in "
                    "float32 and in a low precision, and the sensitivity of that state to every input position.",
        epilog="lengths: 8,16,32 (a list), 8:256:x2 (geometric: 8, 16, …, 256), 8:64:8 (arithmetic), or a mix "
               "(2,3,8:64:x2).\nSee docs/collapse.md for every measure.")
    add_model_args(p)
    add_collapse_args(p, switch=False)
    p.set_defaults(collapse=True)
    p.add_argument("-o", "--output", default=None, metavar="PATH",
                   help="results file to write (default: a new file under the user data dir)")
    add_common_args(p)
    return p


def collapse_output(args: argparse.Namespace) -> Path:
    """``<user data dir>/runs/<time>-<model>[-random-init]-collapse.safetensors``."""
    path = default_output(args)
    return path.with_name(f"{path.stem}-collapse{path.suffix}")


def collapse_command(args: argparse.Namespace) -> int:
    from rich.console import Console

    from coupling_tui.core.engine import stream as engine
    from coupling_tui.core.options.run_options import RunOptions
    from coupling_tui.core.results import run_file as results

    console = Console(stderr=True)
    spec = collapse_spec(args)                     # every flag checked before the model loads
    output = Path(args.output).expanduser() if args.output else collapse_output(args)
    loaded, _ = load_announced(args, console)

    def notes(header: dict) -> None:
        for warning in header["collapse"]["warnings"]:
            console.print(f"[yellow]note:[/] {warning}")

    from coupling_tui.core.cli.cost_check import check_run_cost

    options = RunOptions(top_k=0, collapse=spec, params=run_params(args))
    check_run_cost(options, loaded, COLLAPSE_PROMPT, console, yes=True)     # told, never asked: no --yes here
    events = engine.stream(loaded, COLLAPSE_PROMPT, options)
    run = stream_with_progress(events, console, loaded.info["n_layers"], on_started=notes)
    path = results.save(run, output)
    console.print(summary_table(run))
    for line in sensitivity_lines(run):
        console.print(line)
    console.print(f"computed in {run.header['seconds']:.1f} s")
    print(path)
    return 0


def summary_table(run):
    """Rows n, one column per family: the pair's L1/d in float32, and in parentheses the share of coordinates that
    are bit-identical in the low precision."""
    from rich.table import Table

    info, a = run.header["collapse"], run.arrays
    table = Table(title=f"‖y(n+1) − y(n)‖₁/d, last token, final layer, pre-norm, {info['reference_dtype']} "
                        f"(bit-identical coordinates in {info['low_dtype']})", title_justify="left")
    table.add_column("n", justify="right")
    for family in info["families"]:
        table.add_column(family, justify="right")
    for j, n in enumerate(a[names.COLLAPSE_LENGTHS]):
        table.add_row(str(int(n)), *(f"{a['collapse.diff'][f, j, 0]:.3g} ({a['collapse.identical_low'][f, j]:.0%})"
                                     for f in range(len(info["families"]))))
    return table


def sensitivity_lines(run) -> list[str]:
    s = run.header["collapse"].get("sensitivity")
    if not s:
        return []
    shares = sensitivity_shares(run.arrays[names.COLLAPSE_SENSITIVITY])
    if shares is None:
        return []
    how = "exact" if s["method"] == "exact" else f"Hutchinson, {s['probes']} probes"
    return [f"sensitivity ‖∂h_last/∂e_i‖ ({s['family']}, n={s['n']}, {s['n_tokens']} tokens, {how}), share of the "
            f"total: first token {shares.first:.1%}, first half {shares.first_half:.1%}, last token "
            f"{shares.last:.1%}"]


def main(argv: list[str] | None = None) -> int:
    """``python -m coupling_tui.core.cli.collapse`` — the same as ``coupling-tui collapse``."""
    args = build_collapse_parser().parse_args(argv)
    return guarded(lambda: collapse_command(args), debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())
