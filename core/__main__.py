"""``python -m coupling_tui.core compute-flags…``: the headless engine without the TUI."""

import sys

from coupling_tui.core.cli.compute import main

sys.exit(main(prog="python -m coupling_tui.core"))
