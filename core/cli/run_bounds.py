"""``--layers`` and ``--yes``: bound a run to some of the model's blocks, and accept a large run without asking.
The flags' argument group; the ``--layers`` syntax and its blocks live in ``core.options.layers`` (``parse_layers``,
``select_layers``) and reach the engine through ``RunOptions.layers``. Torch-free."""

from __future__ import annotations

import argparse


def add_run_size_args(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("run size")
    g.add_argument("--layers", default=None, metavar="SEL",
                   help="compute the Jacobians and coupling of these blocks only: half-open ranges and blocks, "
                        "comma-separated (0:12 = blocks 0..11; 3,7,12; 20: = block 20 to the last)")
    g.add_argument("-y", "--yes", action="store_true",
                   help="start a large run without asking (the memory and time estimate is still printed)")
