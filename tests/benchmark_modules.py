"""Importing benchmarks/ scripts in tests (their renderers are tested without running them)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def benchmark_modules(*names: str) -> list[ModuleType]:
    """The benchmarks folder's modules ``names``, imported as the scripts import each other: with their folder on
    ``sys.path`` while they import."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        return [importlib.import_module(name) for name in names]
    finally:
        sys.path.remove(str(BENCHMARKS))
