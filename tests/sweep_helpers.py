"""Shared by the sweep tests (tests/test_sweep.py, tests/test_sweep_view.py; their models and sweep are
tests/conftest.py's ``sweep_names`` and ``swept``): the prompt and flags every sweep there runs with, and the table
read back."""

from __future__ import annotations

import csv

PROMPT = "The capital of France is Paris."
COMMON = ["--top-k", "4", "-p", PROMPT]


def rows_of(directory) -> list[dict]:
    """``sweep.csv``'s rows, each a dict of its columns' text."""
    with open(directory / "sweep.csv", newline="") as fh:
        return list(csv.DictReader(fh))
