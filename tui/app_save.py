"""Saving the explorer's finished computation (atomically, in a thread worker): one run, a prompt set's directory or
a comparison's two files."""

from __future__ import annotations

from pathlib import Path

from textual import work

from coupling_tui.core.results import run_file as results
from coupling_tui.core.results import set_file as set_results
from coupling_tui.core.results.comparison import Comparison, compare_output, save_pair
from coupling_tui.core.results.container import RunContainer
from coupling_tui.core.results.prompt_set import PromptSet

from .messages import Failure, RunSaved, SaveFailed


def save_container(container: RunContainer, path: Path, compare_path: Path | None = None) -> tuple[Path, Path | None]:
    """Write ``container`` at ``path``: a run's results file, a prompt set's directory, or a comparison's two files
    (B at ``compare_path``, by default beside A named after B's model). Returns what was written (B's file second)."""
    if isinstance(container, PromptSet):
        return set_results.save(container, path), None
    if isinstance(container, Comparison):
        return save_pair(container, path, compare_path or compare_output(path, container.labels[1]))
    return results.save(container, path), None


class SaveMixin:
    """Mixed into CouplingApp: ``finish`` saves ``container`` to ``_save_path`` (when there is one) and the app's
    RunSaved / SaveFailed handlers report it."""

    container: RunContainer
    _save_path: Path | None
    _compare_save_path: Path | None

    def finish(self, seconds: float) -> None:
        if self._save_path is None:
            self.set_state(f"done in {seconds:.1f} s")
            self.notify(f"computed in {seconds:.1f} s", markup=False)
        else:
            self.set_state(f"done in {seconds:.1f} s · saving…")
            self._save(self._save_path)

    @work(thread=True, exit_on_error=False, group="save", description="save run")
    def _save(self, path: Path) -> None:
        try:
            written, other = save_container(self.container, path, self._compare_save_path)
        except Exception as exc:  # noqa: BLE001 - shown as a notification, never a traceback
            self.post_message(SaveFailed(Failure.of(exc)))
        else:
            self.post_message(RunSaved(written, other))
