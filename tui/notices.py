"""Warnings the explorer shows from more than one place (a key, the palette, pane focus), kept apart so that any of
those modules imports them without importing another."""

from __future__ import annotations

NO_PROMPTS = "this run has one prompt: give --prompt several times or a .jsonl --prompt-file"
NO_PAIR = ("nothing to compare with: open two results files (coupling-tui view A B), or compute with --compare MODEL2 "
           "or --compare random-init")
