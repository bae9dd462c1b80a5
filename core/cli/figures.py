"""``coupling-tui figures``: the papers' figures of a saved run, a prompt set or two runs, drawn with matplotlib (the
optional ``figures`` extra) into a directory, with the numbers behind each (``--data``). No model and no torch: the
results are read as saved (core.figures)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from coupling_tui.core.cli.args import add_common_args
from coupling_tui.core.errors import UserError

DEFAULT_FORMATS = "pdf,png"


def build_figures_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="coupling-tui figures",
        description="Draw the papers' figures of a saved run with matplotlib (light theme, a paper column's size): "
                    "the depth-coupling heatmap, m(l, l+1) against depth, m against |i − j|, the hidden-state norm "
                    "and σ₁ against depth, collapse against n and the sensitivity against position, whichever the "
                    "run holds; trained and random-init (or A and B) on one scale. Needs the optional extra: "
                    "pip install 'coupling-tui[figures]'.",
        epilog="Files already in DIR with the same names are replaced (the command names its directory); every file "
               "is written or none.")
    p.add_argument("results", help="a .safetensors results file, or a prompt set's directory (its aggregate)")
    p.add_argument("compare", nargs="?", default=None, metavar="results_b",
                   help="a second results file: A and B in the same figures, on one scale")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="directory to write the figures into "
                                                                       "(created)")
    p.add_argument("--format", default=DEFAULT_FORMATS, metavar="LIST",
                   help=f"comma-separated formats among svg, pdf, png (default {DEFAULT_FORMATS}; png at 300 dpi)")
    p.add_argument("--data", action="store_true",
                   help="also write the numbers behind each figure: <figure>.csv (or <figure>-<panel>.csv for a "
                        "heatmap) and one figures.npz with every array")
    p.add_argument("--token", type=int, default=None,
                   help="the token of the per-token figures (default: the last, where the papers measure)")
    p.add_argument("--k", type=int, default=None, help="the coupling K (default: the run's shown K)")
    p.add_argument("--metric", choices=("1-m2", "m"), default="1-m2",
                   help="the heatmap's colour: 1 − m² (1 = coupled, the default, as the explorer) or m (0 = coupled)")
    add_common_args(p)
    return p


def formats(text: str) -> tuple[str, ...]:
    from coupling_tui.core.figures.draw import FORMATS

    chosen = tuple(dict.fromkeys(f.strip().lower().lstrip(".") for f in text.split(",") if f.strip()))
    bad = [f for f in chosen if f not in FORMATS]
    if bad or not chosen:
        raise UserError(f"--format {text!r}: {', '.join(bad) or 'no format'} is not one of {', '.join(FORMATS)}",
                        "e.g. --format svg,pdf,png")
    return chosen


def opened_results(path: str, compare: str | None):
    """The run, prompt set or pair to draw (each checked as any results file)."""
    from coupling_tui.core.results import set_file
    from coupling_tui.core.results.comparison import RANDOM_INIT, open_pair

    if compare == RANDOM_INIT and not Path(compare).exists():
        from coupling_tui.core.figures.data import subjects_of

        opened = set_file.open_results(path)
        if len(subjects_of(opened)) < 2:
            raise UserError(f"{path} has no random-init baseline to draw beside it",
                            "compute it with --random-baseline; a run that has one draws it without asking")
        return opened
    if compare is not None:
        return open_pair(path, compare)
    return set_file.open_results(path)


def figures_command(args: argparse.Namespace) -> int:
    from coupling_tui.core.figures.data import figures_of
    from coupling_tui.core.figures.draw import matplotlib_figure_class
    from coupling_tui.core.figures.files import write_figures

    chosen = formats(args.format)
    matplotlib_figure_class()                          # the extra is missing: one line, before anything is read
    opened = opened_results(args.results, args.compare)
    figures = figures_of(opened, token=args.token, k=args.k, metric="1-m²" if args.metric == "1-m2" else "m")
    if not figures:
        raise UserError(f"{args.results} holds nothing to draw (no coupling, trajectory or collapse data"
                        + (f" at K = {args.k}" if args.k is not None else "") + ")")
    for path in write_figures(args.output, figures, chosen, data=args.data):
        print(path)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m coupling_tui.core.cli.figures`` — the same as ``coupling-tui figures``."""
    from coupling_tui.core.cli.common import guarded

    args = build_figures_parser().parse_args(argv)
    return guarded(lambda: figures_command(args), debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())
