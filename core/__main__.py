"""``python -m coupling_tui.core compute-flags…``: the headless engine without the TUI."""

import sys

from .cli import main

sys.exit(main())
