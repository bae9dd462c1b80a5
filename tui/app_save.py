"""Saving the explorer's finished computation (atomically, in a thread worker): one run, a prompt set's directory or
a comparison's two files; the engine time the status line reports."""

from __future__ import annotations

from pathlib import Path

from textual import work

from coupling_tui.core.results import run_file as results
from coupling_tui.core.results import set_file as set_results
from coupling_tui.core.results.comparison import Comparison, compare_output, save_pair
from coupling_tui.core.results.prompt_set import PromptSet
from coupling_tui.core.results.run import Run

from .messages import RunSaved, SaveFailed, one_line


class SaveMixin:
    """Mixed into CouplingApp: ``_finished`` saves to ``_save_path`` (when there is one) and the app's RunSaved /
    SaveFailed handlers report it."""

    results: Run
    prompt_set: PromptSet | None
    comparison: Comparison | None
    _save_path: Path | None
    _compare_save_path: Path | None

    def _finished(self, seconds: float) -> None:
        if self._save_path is None:
            self._set_state(f"done in {seconds:.1f} s")
            self.notify(f"computed in {seconds:.1f} s", markup=False)
        else:
            self._set_state(f"done in {seconds:.1f} s · saving…")
            self._save(self._save_path)

    @work(thread=True, exit_on_error=False, group="save", description="save run")
    def _save(self, path: Path) -> None:
        other = None
        try:
            if self.prompt_set is not None:
                written = set_results.save(self.prompt_set, path)
            elif self.comparison is not None:
                written, other = save_pair(self.comparison, path, self._compare_save_path
                                           or compare_output(path, self.comparison.labels[1]))
            else:
                written = results.save(self.results, path)
        except Exception as exc:  # noqa: BLE001 - shown as a notification, never a traceback
            self.post_message(SaveFailed(one_line(exc)))
        else:
            self.post_message(RunSaved(written, other))

    def _seconds(self) -> float:
        """The finished computation's engine time (every prompt's, for a prompt set)."""
        if self.comparison is not None:
            return self.comparison.seconds
        return self.prompt_set.seconds if self.prompt_set is not None else self.results.header.get("seconds", 0.0)
