"""CouplingApp: streams one engine run or a prompt set (or opens a saved one) into the panes, and saves it when it
finishes."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Callable, Iterator

from textual import on, work
from textual.app import App, ComposeResult
from textual.events import Unmount
from textual.containers import Container, Horizontal
from textual.widgets import Footer, ProgressBar
from textual.worker import Worker, get_current_worker

from coupling_tui.core.results.aggregate import is_aggregate
from coupling_tui.core.results.compare import model_name, weights
from coupling_tui.core.results.comparison import Comparison
from coupling_tui.core.results.container import RunContainer, container_for
from coupling_tui.core.results.events import Event, RunStarted
from coupling_tui.core.results.prompt_set import PromptSet
from coupling_tui.core.options.prompts import truncation_note
from coupling_tui.core.results.run import Run, convention_of
from coupling_tui.core.options.sharding import placement_summary

from .actions import bindings
from .app_colour import ColourMixin
from .app_compare import CompareMixin
from .app_export import ExportMixin
from .app_keys import KeysMixin
from .app_layout import LayoutMixin
from .app_save import SaveMixin
from .app_sets import PromptSetsMixin
from .app_signals import SignalsMixin
from .commands import ExplorerCommands
from .help_screen import HelpScreen
from .app_cursor import CursorMixin
from .backlog import Backlog
from .messages import ComputeCancelled, ComputeFailed, EngineEvent, Failure, RunSaved, SaveFailed, one_line
from .panes import RUN_PANE_CLASS
from .panes.collapse import CollapsePane
from .panes.compare import ComparePane
from .panes.coupling import CouplingPane
from .panes.readout import FitStatic, MiddleCutStatic
from .panes.spectrum import SpectrumPane
from .panes.tokens import TokensPane
from .panes.trajectory import TrajectoryPane

__all__ = ["CouplingApp", "Job", "one_line"]

Job = Callable[[], Iterator[Event]]


BACK = "back"
"""What the explorer returns when Esc leaves it for the Sweep view it was opened from."""
COMPARE_PANES = ("coupling-b", "compare")
"""The panes only the compare layout shows (app_compare draws them)."""
OWN_RUN_PANES = ("coupling", "collapse")
"""The panes drawn from the run itself while ``r`` shows its random-init twin: the Coupling pane draws the baseline
from it (one colour scale for both), the Collapse data is the trained model's only."""


class CouplingApp(KeysMixin, CursorMixin, SignalsMixin, PromptSetsMixin, CompareMixin, LayoutMixin, ColourMixin,
                  ExportMixin, SaveMixin, App[None]):
    """The explorer: a status bar, the panes, a progress bar while computing, and the footer."""

    CSS_PATH = "app.tcss"
    TITLE = "coupling-tui"
    BINDINGS = bindings()
    COMMANDS = App.COMMANDS | {ExplorerCommands}
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (40, "-tall")]
    """On a tall screen the side column shows every side pane; on a short one, the one last focused (app.tcss)."""
    SIDE_PANES = ("trajectory", "spectrum", "collapse")
    """The panes of the side column, in order (Collapse only in a run with collapse data)."""

    def __init__(self, run: Run | PromptSet | Comparison | None = None, job: Job | None = None,
                 save_path: Path | None = None, export_dir: Path | None = None, run_name: str | None = None,
                 compare: bool = False, compare_save_path: Path | None = None, back: bool = False,
                 scale: str = "auto") -> None:
        if (run is None) == (job is None):
            raise ValueError("CouplingApp needs exactly one of run= (a saved run or prompt set) or job= (an engine "
                             "run)")
        super().__init__()
        self.container: RunContainer = run if run is not None else Run()
        """What is shown (core.results.container): one run, a prompt set (core.results.prompt_set: from a job's BatchStarted,
        or a saved set) or two models' runs side by side (core.results.comparison: a --compare job or two saved files);
        replaced when a job's events open another; mutated on the main thread only."""
        self.compare_shown = compare or self.comparison is not None
        """The compare layout (app_compare) is on when there is a pair."""
        self.swapped = False
        """The compare layout shows B on the left (``x``)."""
        self._compare_save_path = Path(compare_save_path) if compare_save_path is not None else None
        self.entry = 0
        """The container's entry shown: a prompt's index or ``n_prompts`` for the aggregate, a comparison's side."""
        if self.prompt_set is not None and self.prompt_set.aggregate.header["aggregate"]["n_prompts"]:
            self.entry = self.prompt_set.n_prompts                 # a saved set opens on its aggregate
        self.selected_token = 0
        self.selected_layer = 0
        """The selected block, 0..L-1: the Spectrum pane shows its Jacobian, the Trajectory pane marks its output."""
        self.computing = False
        """True while the compute worker's events are being applied."""
        self.state_text = ""
        """The state part of the status bar."""
        self.compute_worker: Worker[None] | None = None
        """The thread worker reading the engine's events, once started (job mode only)."""
        self._job = job
        self._save_path = Path(save_path) if save_path is not None else None
        self.start_token: int | None = None
        """Token selected when the run arrives; None = the last token (where the papers measure)."""
        self.export_dir = Path(export_dir) if export_dir is not None else Path.cwd()
        """Where `e`/`E` write SVGs."""
        self.run_name = run_name or (self._save_path.stem if self._save_path is not None else "coupling-tui")
        """The <run> part of exported file names."""
        self._layout: tuple[bool, bool] | None = None
        """(the run has collapse data, it is a collapse run without Jacobians) as last laid out."""
        self.failure: Failure | None = None
        """A compute or a save that failed: the command prints it and exits non-zero once the app has quit."""
        self.stopped_by: int | None = None
        """SIGINT or SIGTERM when a signal (or Ctrl-C) ended the app; ``raise_signal_exit`` reports it."""
        self._previous_handlers: dict[int, object] = {}
        self.backlog = Backlog()
        """Engine events posted and not applied yet: a burst of them is drawn once, by its last."""
        self.scale = scale
        """The coupling heatmaps' colour scale at start (``--scale``): "auto" or "fixed" (tui/app_colour.py)."""
        self.back = back
        """Opened from the Sweep view (tui.sweep_app): Esc, with no compute to stop, ends the app with ``BACK``."""

    def compose(self) -> ComposeResult:
        with Horizontal(id="status"):
            yield FitStatic(id="run-info")                  # the model and its weights stay whole
            yield MiddleCutStatic(id="run-state")          # a saved path keeps its file name
        yield TokensPane(id="tokens")
        with Horizontal(id="main"):
            yield CouplingPane(id="coupling", scale=self.scale)
            yield CouplingPane(id="coupling-b", scale=self.scale)
            with Container(id="side"):
                yield TrajectoryPane(id="trajectory")
                yield SpectrumPane(id="spectrum")
                yield CollapsePane(id="collapse")
        yield ComparePane(id="compare")
        yield ProgressBar(id="progress", show_eta=True)
        yield Footer()

    def on_mount(self) -> None:
        self._catch_signals()
        if self.back:
            self.notify(f"{self.run_name}: esc goes back to the sweep", markup=False)
        if self._job is not None:
            self.computing = True
            self.set_state("starting…")
            self.compute_worker = self._compute()
        elif self.prompt_set is not None:
            pset = self.prompt_set
            self.set_state(f"saved prompt set · {len(pset.complete_runs())}/{pset.n_prompts} prompts complete · "
                            "p/P switch prompts")
            self.selected_token = self.opening_token()
        else:
            run = self.results
            done = "complete" if run.finished else "partial"
            self.set_state(f"saved run · {done} · {run.layers_done}/{run.n_layers} layers")
            self.selected_token = self.opening_token()
        self.query_one(ProgressBar).display = self.computing
        self.show_side(self.SIDE_PANES[0])
        self.query_one(CouplingPane).focus()
        self.arrange()
        self.show_run()
        self.call_after_refresh(gc.freeze)
        """What the app holds once its screen is up (modules, widgets, the run) lives as long as the app: kept out of
        the garbage collector's full passes, which took up to 47 ms of a key press (benchmarks/key_latency.py);
        handed back to the collector when the app ends (``_unfreeze``)."""

    @on(Unmount)
    def _unfreeze(self) -> None:
        gc.unfreeze()                                      # the app's objects (widget cycles) collectable again

    # -- compute worker (runs in a thread; only posts messages) --
    @work(thread=True, exclusive=True, exit_on_error=False, group="compute", description="engine run")
    def _compute(self) -> None:
        assert self._job is not None
        worker = get_current_worker()
        events: Iterator[Event] | None = None
        try:
            events = self._job()
            for event in events:
                if worker.is_cancelled:
                    break
                self.backlog.add()
                self.post_message(EngineEvent(event))
        except Exception as exc:  # noqa: BLE001 - every failure becomes one line on screen
            if not worker.is_cancelled:
                self.post_message(ComputeFailed(Failure.of(exc)))
        finally:
            close = getattr(events, "close", None)
            if callable(close):
                close()
        if worker.is_cancelled:
            self.post_message(ComputeCancelled())

    @property
    def results(self) -> Run:
        """The one run every pane reads: the container's shown entry."""
        return self.container.shown(self.entry)

    @property
    def prompt_set(self) -> PromptSet | None:
        return self.container if isinstance(self.container, PromptSet) else None

    @property
    def comparison(self) -> Comparison | None:
        return self.container if isinstance(self.container, Comparison) else None

    def open_container(self, container: RunContainer) -> None:
        """Show a container a job's events opened (a prompt set, a comparison: the compare layout) at entry 0."""
        self.container, self.entry, self.swapped = container, 0, False
        self.compare_shown = self.compare_shown or self.comparison is not None
        self.refresh_bindings()

    @on(EngineEvent)
    def _apply_event(self, message: EngineEvent) -> None:
        """Any event of any container: the container folds it in; the run shown, the progress bar (every step of
        every run the container holds) and the status line follow; the last event saves."""
        more = self.backlog.taken()                     # more events wait: the last of them redraws
        if not self.computing:
            return  # queued before a cancel or a failure: the run stays as it was
        event = message.event
        if (opened := container_for(event)) is not None:
            self.open_container(opened)
        container = self.container
        container.apply(event)
        if isinstance(event, RunStarted):
            if container.current == self.entry:            # the run starting is the one on screen
                self.selected_token = self.opening_token()
                self.arrange()
            if note := truncation_note(event.header):
                name = container.current_name()
                self.notify(f"{name}: {note}" if name else note, title="prompt cut", severity="warning", timeout=10,
                            markup=False)
        if container.finished:
            self._stop_computing()
            self.finish(container.seconds)
        elif more:
            return
        else:
            self.query_one(ProgressBar).update(total=container.n_steps or None, progress=container.steps_done)
            self.set_state(f"computing {container.progress_text()}")
        self.show_run()

    @on(RunSaved)
    def _saved(self, message: RunSaved) -> None:
        seconds = self.container.seconds
        where = str(message.path) if message.other is None else f"{message.path} and {message.other}"
        self.set_state(f"done in {seconds:.1f} s · saved to {where}")
        self.notify(f"computed in {seconds:.1f} s · saved to {where}", markup=False)

    @on(SaveFailed)
    def _save_failed(self, message: SaveFailed) -> None:
        seconds = self.container.seconds
        self.set_state(f"done in {seconds:.1f} s · not saved")
        self.failure = Failure(f"not saved: {message.failure.message}", message.failure.status)
        self.notify(message.failure.message, title="not saved", severity="error", timeout=10, markup=False)

    @on(ComputeFailed)
    def _failed(self, message: ComputeFailed) -> None:
        self._stop_computing()
        kept = self.keep_a()                               # a comparison whose model B failed after A finished
        self.failure = Failure(message.failure.message + kept, message.failure.status)
        self.set_state(f"error: {self.failure.message}")
        self.notify(self.failure.message, title="compute failed", severity="error", timeout=10, markup=False)

    @on(ComputeCancelled)
    def _cancelled(self, message: ComputeCancelled) -> None:
        self.log.info("compute worker stopped after a cancel")

    def _stop_computing(self) -> None:
        self.computing = False
        self.query_one(ProgressBar).display = False
        self.refresh_bindings()

    # -- actions (bound through the registry in actions.py; app_keys says when each applies) --
    def action_cancel_compute(self) -> None:
        if not self.computing and self.back:
            self.exit(BACK)
            return
        if self.refused("computing"):
            return
        self.workers.cancel_group(self, "compute")
        self._stop_computing()
        run = self.results
        if self.prompt_set is not None and self.prompt_set.current >= 0:
            pset = self.prompt_set
            current = pset.runs[pset.current]
            self.set_state(f"cancelled in prompt {pset.current + 1}/{pset.n_prompts} after {current.layers_done}/"
                           f"{current.n_layers} layers — nothing saved")
        else:
            self.set_state(f"cancelled after {run.layers_done}/{run.n_layers} layers — nothing saved")

    def action_step_column(self, delta: int) -> None:
        if why := self.coupling.step_column(self.results, delta):
            self.notify(why, severity="warning", markup=False)
            return
        self.show_run()

    def action_cycle_k(self) -> None:
        self.coupling.cycle_k(self.results)
        self.show_run()

    def action_toggle_average(self) -> None:
        self.coupling.toggle_average()
        self.show_run()

    def action_toggle_baseline(self) -> None:
        if not self.refused("baseline"):
            self.coupling.toggle_baseline(self.results)
            self.show_run()

    def action_toggle_view(self) -> None:
        if not self.refused("views"):
            self.coupling.toggle_view(self.results, self.selected_layer)
            self.show_run()

    def set_view(self, view: str) -> None:
        """The palette's direct choice of a coupling view (``v`` cycles them): refused when the run has no such
        view."""
        if self.refused("coupling"):
            return
        if not self.coupling.set_view(self.results, view, self.selected_layer):
            self.notify(f"no {view} view in this run (it has {', '.join(self.coupling.views(self.results))})",
                        severity="warning", markup=False)
            return
        self.show_run()

    def action_toggle_variant(self) -> None:
        if not self.refused("vju"):
            self.coupling.toggle_variant(self.results)
            self.show_run()

    def action_show_help(self) -> None:
        node = self.focused
        while node is not None and getattr(node, "HELP", None) is None:
            node = node.parent
        pane_help = node.HELP if node is not None else self.query_one(TrajectoryPane).HELP
        name = f"help-{type(node).__name__ if node is not None else 'trajectory'}"
        if not self.is_screen_installed(name):             # built once per pane: opens again without a rebuild
            self.install_screen(HelpScreen(pane_help), name)
        self.push_screen(name)

    # -- drawing --
    def show_run(self) -> None:
        self.selected_token = max(0, min(self.selected_token, self.results.n_tokens - 1))
        self.selected_layer = max(0, min(self.selected_layer, self.results.n_layers - 1))
        comparing = self.comparing()
        if self.explorer_screen.has_class("-compare") != comparing:
            self.arrange()
        shown = self.shown_run()                           # the run, or its random-init twin (r)
        self.coupling.with_twin = not comparing            # the compare layout: each pane its own run only
        for pane in self.query(f".{RUN_PANE_CLASS}"):
            if pane.id in COMPARE_PANES or (comparing and pane.id == "coupling"):
                continue                                   # drawn by draw_pair, or hidden
            run = self.results if pane.id in OWN_RUN_PANES else shown
            pane.show(run, self.selected_token, self.selected_layer)  # type: ignore[attr-defined]
        if comparing:
            self.draw_pair(self.selected_token, self.selected_layer)
        else:
            self.coupling.border_title = CouplingPane.BORDER_TITLE
        self._show_info()

    def _show_info(self) -> None:
        """The status line's run: the model and its weights (trained, random-init) first and never cut; the rest
        dropped from its end where the line is short."""
        header, tail = self.results.header, ""
        if not header:
            variants = ["coupling-tui"]
        else:
            model = header.get("model", {})
            shown = "random-init" if self.coupling.baseline else weights(self.shown_run())
            tail = f" ({shown})"
            name, short = f"{model.get('source', '?')} ({shown})", f"{model_name(self.results)} ({shown})"
            tokens = ("" if is_aggregate(self.results) or CollapsePane.collapse_only(self.results)  # not the pairs'
                      else f"{self.results.n_tokens} tokens · ")
            layers = f"{self.results.n_layers} layers"
            where = f"{header.get('device', '?')} · {header.get('dtype', '?')}"
            full = f"{name} · {where} · {tokens}{layers} · {convention_of(header)} convention"
            placed = placement_summary(header)
            variants = [f"{full} · {placed}" if placed else full, f"{name} · {where} · {tokens}{layers}",
                        f"{name} · {tokens}{layers}", f"{short} · {tokens}{layers}", f"{short} · {layers}", short]
        if self.prompt_set is not None and self.prompt_set.n_prompts:
            variants = [f"{self.prompt_set.entry_text(self.entry)} · {v}" for v in variants]
        if self.comparing():
            variants, tail = self.pair_info()
        self.query_one("#run-info", FitStatic).show_variants(*variants, tail=tail)

    def set_state(self, text: str) -> None:
        self.state_text = text
        self.query_one("#run-state", MiddleCutStatic).show_text(text)
