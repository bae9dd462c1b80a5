"""Two models on the same prompt (``--compare MODEL2``, ``coupling-tui view A B``): two ordinary runs, A and B, filled
by ``engine.compare.stream_compare``'s events or read from two results files. Each run is saved as its own results
file, so either opens alone too; ``results.compare`` holds what is compared. Torch-free."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from coupling_tui.core.atomic import file_slug
from coupling_tui.core.errors import UserError
from coupling_tui.core.results.events import CompareFinished, CompareStarted, SideStarted
from coupling_tui.core.results.run import Run

RANDOM_INIT = "random-init"
"""``--compare random-init``: the same model with random weights (computed as ``--random-baseline``)."""


@dataclass
class Comparison:
    labels: list[str] = field(default_factory=lambda: ["", ""])
    runs: list[Run] = field(default_factory=lambda: [Run(), Run()])
    current: int = -1
    """The side being computed (-1 before model A starts)."""
    finished: bool = False
    seconds: float = 0.0

    def apply(self, event) -> None:
        """Fold one event of ``stream_compare`` into the comparison."""
        if isinstance(event, CompareStarted):
            self.labels, self.runs = list(event.labels), [Run(), Run()]
            self.current, self.finished = -1, False
        elif isinstance(event, SideStarted):
            self.current = event.index
        elif isinstance(event, CompareFinished):
            self.seconds, self.finished = event.seconds, True
        else:
            if self.current not in (0, 1):
                raise ValueError("a run event before SideStarted")
            self.runs[self.current].apply(event)

    @property
    def n_steps(self) -> int:
        """Steps of both runs (B's count is known once it starts; until then, A's is assumed)."""
        a, b = self.runs
        return a.n_steps + (b.n_steps if b.header else a.n_steps)

    @property
    def steps_done(self) -> int:
        return self.runs[0].steps_done + self.runs[1].steps_done

    def progress_text(self) -> str:
        side = max(self.current, 0)
        run = self.runs[side]
        return f"{'AB'[side]} {self.labels[side]} · {run.stage_text}" if run.header else f"{'AB'[side]} starting"


    # -- the container protocol (core.results.container): entry 0 is model A, 1 model B --
    def progress_label(self) -> str:
        """The side and its stage, e.g. "A SmolLM2 · layers" (the bar beside it counts the steps)."""
        return self.progress_text().rsplit(" ", 1)[0]

    def current_name(self) -> str:
        """"A" or "B": the side being computed ("" before model A starts)."""
        return "AB"[self.current] if self.current in (0, 1) else ""

    def shown(self, entry: int) -> Run:
        return self.runs[entry]

def open_pair(path_a: str | os.PathLike, path_b: str | os.PathLike) -> Comparison:
    """Two saved results files as a comparison (each checked like any results file; prompt sets are refused)."""
    from coupling_tui.core.results import run_file as results
    from coupling_tui.core.results.set_file import is_set

    runs = []
    for path in (path_a, path_b):
        p = Path(path).expanduser()
        if p.is_dir() or is_set(p):
            raise UserError(f"{path} is a prompt set: compare two single runs",
                            "open a set on its own with `coupling-tui view SET`; its p/P keys step through prompts")
        runs.append(results.load(p))
    from coupling_tui.core.results.compare import side_label

    return Comparison(labels=[side_label(r) for r in runs], runs=runs, current=1, finished=all(r.finished
                                                                                            for r in runs))


def save_pair(comparison: Comparison, path_a: Path, path_b: Path) -> tuple[Path, Path]:
    """Write both runs (each atomically, core.results.run_file.save). B is written first: a failure leaves A's target as it
    was."""
    from coupling_tui.core.results import run_file as results

    if Path(path_a).expanduser().resolve() == Path(path_b).expanduser().resolve():
        raise UserError(f"both runs would be saved to {path_a}", "give --compare-output a different file")
    written_b = results.save(comparison.runs[1], path_b)
    written_a = results.save(comparison.runs[0], path_a)
    return written_a, written_b


def save_a_alone(comparison: Comparison, path_a: Path) -> Path | None:
    """After model B failed (out of memory, say): A's finished run saved on its own at ``path_a`` (atomically), so
    the minutes A took are not lost; None when A had not finished or the pair did (then save_pair applies)."""
    from coupling_tui.core.results import run_file as results

    if comparison.finished or not comparison.runs[0].finished:
        return None
    return results.save(comparison.runs[0], path_a)


def compare_output(path_a: Path, model_b: str) -> Path:
    """Where model B's run goes by default: beside A's file, named after B's model ("<A stem>.vs-<B>.safetensors")."""
    name = file_slug(Path(model_b).name, "B")
    path_a = Path(path_a)
    return path_a.with_name(f"{path_a.stem}.vs-{name}{path_a.suffix or '.safetensors'}")
