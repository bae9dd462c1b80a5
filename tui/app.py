"""CouplingApp: streams one engine run or a prompt set (or opens a saved one) into the panes, and saves it when it
finishes."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

from textual import on, work
from textual.app import App, ComposeResult
from textual.containers import Container, Horizontal
from textual.widgets import Footer, ProgressBar, Static
from textual.worker import Worker, get_current_worker

from coupling_tui.core import results, set_results
from coupling_tui.core.aggregate import is_aggregate
from coupling_tui.core.errors import UserError
from coupling_tui.core.faults import Terminated, is_out_of_memory, out_of_memory_error
from coupling_tui.core.prompts import truncation_note
from coupling_tui.core.events import BatchFinished, BatchStarted, Event, LayerDone, RunFinished, RunStarted
from coupling_tui.core.prompt_set import PromptSet
from coupling_tui.core.run import Run

from . import export
from .actions import bindings, requirement
from .commands import ExplorerCommands
from .help_screen import HelpScreen
from .messages import ComputeCancelled, ComputeFailed, EngineEvent, RunSaved, SaveFailed
from .panes import RUN_PANE_CLASS
from .panes.collapse import NO_COLLAPSE, CollapsePane
from .panes.coupling import NO_COUPLING, ONLY_DEPTH, CouplingPane
from .panes.spectrum import SpectrumPane
from .panes.tokens import TokensPane
from .panes.trajectory import TrajectoryPane

Job = Callable[[], Iterator[Event]]


def one_line(exc: BaseException) -> str:
    """The message a user sees for ``exc``: a UserError's own text, else its type and text; never a traceback."""
    if is_out_of_memory(exc) and not isinstance(exc, UserError):
        exc = out_of_memory_error("computing")
    text = str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"
    return " — ".join(line.strip() for line in text.splitlines() if line.strip())


class CouplingApp(App[None]):
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

    def __init__(self, run: Run | PromptSet | None = None, job: Job | None = None, save_path: Path | None = None,
                 export_dir: Path | None = None, run_name: str | None = None) -> None:
        if (run is None) == (job is None):
            raise ValueError("CouplingApp needs exactly one of run= (a saved run or prompt set) or job= (an engine "
                             "run)")
        super().__init__()
        self.prompt_set: PromptSet | None = run if isinstance(run, PromptSet) else None
        """A run over several prompts (core.prompt_set): from a job's BatchStarted, or a saved set."""
        self.entry = 0
        """The prompt set's entry shown: a prompt's index, or ``n_prompts`` for the aggregate."""
        if self.prompt_set is not None and self.prompt_set.aggregate.header["aggregate"]["n_prompts"]:
            self.entry = self.prompt_set.n_prompts                 # a saved set opens on its aggregate
        self.results = (self.prompt_set.view(self.entry) if self.prompt_set is not None
                        else run if run is not None else Run())
        """The one run every pane reads (a prompt set's shown entry); mutated on the main thread only."""
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
        self.stopped_by: int | None = None
        """SIGINT or SIGTERM when a signal (or Ctrl-C) ended the app; ``raise_signal_exit`` reports it."""
        self._previous_handlers: dict[int, object] = {}

    def compose(self) -> ComposeResult:
        with Horizontal(id="status"):
            yield Static(id="run-info", markup=False)
            yield Static(id="run-state", markup=False)
        yield TokensPane(id="tokens")
        with Horizontal(id="main"):
            yield CouplingPane(id="coupling")
            with Container(id="side"):
                yield TrajectoryPane(id="trajectory")
                yield SpectrumPane(id="spectrum")
                yield CollapsePane(id="collapse")
        yield ProgressBar(id="progress", show_eta=True)
        yield Footer()

    def on_mount(self) -> None:
        self._catch_signals()
        if self._job is not None:
            self.computing = True
            self._set_state("starting…")
            self.compute_worker = self._compute()
        elif self.prompt_set is not None:
            pset = self.prompt_set
            self._set_state(f"saved prompt set · {len(pset.complete_runs())}/{pset.n_prompts} prompts complete · "
                            "p/P switch prompts")
            self.selected_token = self._first_token()
        else:
            run = self.results
            done = "complete" if run.finished else "partial"
            self._set_state(f"saved run · {done} · {run.layers_done}/{run.n_layers} layers")
            self.selected_token = self._first_token()
        self.query_one(ProgressBar).display = self.computing
        self._show_side(self.SIDE_PANES[0])
        self.query_one(CouplingPane).focus()
        self._arrange()
        self._show_run()

    # -- SIGINT/SIGTERM and Ctrl-C: cancel the compute between layers, quit, give the terminal back --
    def _catch_signals(self) -> None:
        import asyncio
        import signal

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous_handlers[sig] = signal.signal(
                    sig, lambda signum, frame: loop.call_soon_threadsafe(self.stop_by_signal, signum))
            except ValueError:  # not the main thread: the signal keeps its own handler
                return

    def on_unmount(self) -> None:
        import signal

        for sig, handler in self._previous_handlers.items():
            signal.signal(sig, handler)
        self._previous_handlers.clear()

    def stop_by_signal(self, signum: int) -> None:
        """Cancel a running compute (nothing unfinished is saved) and exit; the caller's ``raise_signal_exit``
        turns it into the command line's one message and status."""
        self.stopped_by = signum
        self.action_cancel_compute()
        self.exit(return_code=128 + signum)

    def action_interrupt(self) -> None:
        import signal

        self.stop_by_signal(signal.SIGINT)

    def raise_signal_exit(self) -> None:
        """After ``run()``: raise KeyboardInterrupt (SIGINT, Ctrl-C) or Terminated (SIGTERM) if one ended the app."""
        import signal

        if self.stopped_by == signal.SIGTERM:
            raise Terminated()
        if self.stopped_by is not None:
            raise KeyboardInterrupt()

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
                self.post_message(EngineEvent(event))
        except Exception as exc:  # noqa: BLE001 - every failure becomes one line on screen
            if not worker.is_cancelled:
                self.post_message(ComputeFailed(one_line(exc)))
        finally:
            close = getattr(events, "close", None)
            if callable(close):
                close()
        if worker.is_cancelled:
            self.post_message(ComputeCancelled())

    @on(EngineEvent)
    def _apply_event(self, message: EngineEvent) -> None:
        if not self.computing:
            return  # queued before a cancel or a failure: the run stays as it was
        event = message.event
        if self.prompt_set is not None or isinstance(event, BatchStarted):
            self._apply_set_event(event)
            return
        self.results.apply(event)
        progress = self.query_one(ProgressBar)
        if isinstance(event, RunStarted):
            self.selected_token = self._first_token()
            self._arrange()
            if note := truncation_note(self.results.header):
                self.notify(note, title="prompt cut", severity="warning", timeout=10, markup=False)
            progress.update(total=self.results.n_steps, progress=0)
            self._set_state(f"computing {self.results.stage_text}")
        elif isinstance(event, LayerDone):
            progress.update(progress=self.results.steps_done)
            self._set_state(f"computing {self.results.stage_text}")
        elif isinstance(event, RunFinished):
            self._stop_computing()
            self._finished(event.seconds)
        self._show_run()

    def _apply_set_event(self, event) -> None:
        """One event of a prompt set (core.batch): it fills its prompt's run; the shown entry is redrawn, the
        progress bar counts every prompt's steps (prompts × layers)."""
        if isinstance(event, BatchStarted):
            self.prompt_set = PromptSet()
            self.entry = 0
            self.refresh_bindings()
        pset = self.prompt_set
        pset.apply(event)
        self.results = pset.view(self.entry)
        progress = self.query_one(ProgressBar)
        if isinstance(event, RunStarted) and pset.current == self.entry:
            self.selected_token = self._first_token()
            self._arrange()
        if isinstance(event, RunStarted) and (note := truncation_note(event.header)):
            self.notify(f"{pset.labels[pset.current]}: {note}", title="prompt cut", severity="warning", timeout=10,
                        markup=False)
        if isinstance(event, BatchFinished):
            self._stop_computing()
            self._finished(event.seconds)
        else:
            progress.update(total=pset.n_steps or None, progress=pset.steps_done)
            self._set_state(f"computing {pset.progress_text()}")
        self._show_run()

    def _finished(self, seconds: float) -> None:
        if self._save_path is None:
            self._set_state(f"done in {seconds:.1f} s")
            self.notify(f"computed in {seconds:.1f} s", markup=False)
        else:
            self._set_state(f"done in {seconds:.1f} s · saving…")
            self._save(self._save_path)

    @work(thread=True, exit_on_error=False, group="save", description="save run")
    def _save(self, path: Path) -> None:
        try:
            if self.prompt_set is not None:
                written = set_results.save(self.prompt_set, path)
            else:
                written = results.save(self.results, path)
        except Exception as exc:  # noqa: BLE001 - shown as a notification, never a traceback
            self.post_message(SaveFailed(one_line(exc)))
        else:
            self.post_message(RunSaved(written))

    def _seconds(self) -> float:
        """The finished computation's engine time (every prompt's, for a prompt set)."""
        return self.prompt_set.seconds if self.prompt_set is not None else self.results.header.get("seconds", 0.0)

    @on(RunSaved)
    def _saved(self, message: RunSaved) -> None:
        seconds = self._seconds()
        self._set_state(f"done in {seconds:.1f} s · saved to {message.path}")
        self.notify(f"computed in {seconds:.1f} s · saved to {message.path}", markup=False)

    @on(SaveFailed)
    def _save_failed(self, message: SaveFailed) -> None:
        seconds = self._seconds()
        self._set_state(f"done in {seconds:.1f} s · not saved")
        self.notify(message.message, title="not saved", severity="error", timeout=10, markup=False)

    @on(ComputeFailed)
    def _failed(self, message: ComputeFailed) -> None:
        self._stop_computing()
        self._set_state(f"error: {message.message}")
        self.notify(message.message, title="compute failed", severity="error", timeout=10, markup=False)

    @on(ComputeCancelled)
    def _cancelled(self, message: ComputeCancelled) -> None:
        self.log.info("compute worker stopped after a cancel")

    def _stop_computing(self) -> None:
        self.computing = False
        self.query_one(ProgressBar).display = False
        self.refresh_bindings()

    # -- actions (bound through the registry in actions.py) --
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel_compute":
            return self.computing
        needs = requirement(action)
        if needs == "prompts":
            return self.prompt_set is not None
        if needs == "collapse":
            return CollapsePane.available(self.results)
        if needs == "coupling":
            return self._available(self.coupling) and not self._collapse_zoomed()
        return True

    def action_cancel_compute(self) -> None:
        if not self.computing:
            return
        self.workers.cancel_group(self, "compute")
        self._stop_computing()
        run = self.results
        if self.prompt_set is not None and self.prompt_set.current >= 0:
            pset = self.prompt_set
            current = pset.runs[pset.current]
            self._set_state(f"cancelled in prompt {pset.current + 1}/{pset.n_prompts} after {current.layers_done}/"
                            f"{current.n_layers} layers — nothing saved")
        else:
            self._set_state(f"cancelled after {run.layers_done}/{run.n_layers} layers — nothing saved")

    def action_step_token(self, delta: int) -> None:
        self._select_token(self.selected_token + delta)

    def action_first_token(self) -> None:
        self._select_token(0)

    def action_last_token(self) -> None:
        self._select_token(self.results.n_tokens - 1)

    def action_step_layer(self, delta: int) -> None:
        self._select_layer(self.selected_layer + delta)

    # -- prompt sets: p / P step through the prompts and the aggregate --
    def action_step_prompt(self, delta: int) -> None:
        if self.prompt_set is None:
            self.notify("this run has one prompt: give --prompt several times or a .jsonl --prompt-file",
                        severity="warning", markup=False)
            return
        self.show_entry((self.entry + delta) % (self.prompt_set.n_prompts + 1))

    def jump_to_prompt(self, number: int) -> None:
        """Show prompt ``number`` (1-based, as the status line counts)."""
        if self.prompt_set is None or not 1 <= number <= self.prompt_set.n_prompts:
            n = 0 if self.prompt_set is None else self.prompt_set.n_prompts
            self.notify(f"no prompt {number} in this run (it has {max(n, 1)})", severity="warning", markup=False)
            return
        self.show_entry(number - 1)

    def show_aggregate(self) -> None:
        if self.prompt_set is None:
            self.action_step_prompt(1)                     # says why there is none
            return
        self.show_entry(self.prompt_set.n_prompts)

    def show_entry(self, entry: int) -> None:
        """Show a prompt set's prompt ``entry`` (or the aggregate at ``n_prompts``); every pane follows. The token
        stays the last one when it was (where the papers measure), else the same index, clamped."""
        assert self.prompt_set is not None
        was_last = self.selected_token >= self.results.n_tokens - 1
        self.entry = entry
        self.results = self.prompt_set.view(entry)
        if self.results.n_tokens:
            self.selected_token = (self.results.n_tokens - 1 if was_last
                                   else min(self.selected_token, self.results.n_tokens - 1))
        self._arrange()
        if is_aggregate(self.results):
            self.query_one(CouplingPane).focus()
        self._show_run()

    def action_focus_pane(self, pane_id: str) -> None:
        panes = self.query(f"#{pane_id}")
        if not panes:
            self.notify(f"no {pane_id} pane in this version", severity="warning", markup=False)
            return
        if pane_id == "coupling" and self._collapse_zoomed():
            self._show_side(self.SIDE_PANES[0])            # Coupling back beside the first side pane
        if not self._available(panes.first()):
            message = NO_COLLAPSE if pane_id == "collapse" else NO_COUPLING
            self.notify(message, severity="warning", markup=False)
            return
        if pane_id in self.SIDE_PANES:
            self._show_side(pane_id)
        panes.first().focus()

    def _available(self, pane) -> bool:
        """Whether ``pane`` has a place in this run's layout: Collapse needs collapse data; a collapse run without
        Jacobians gives the Coupling pane's place to the side column."""
        if pane.id != "coupling" and self.screen.has_class("-aggregate"):
            return False
        if pane.id == "collapse":
            return not pane.has_class("-absent")
        if pane.id == "coupling":
            return not self.query_one("#main").has_class("-collapse-run")
        return True

    def _arrange(self) -> None:
        """Lay the panes out for the run: the Collapse pane only with collapse data; when the run has collapse data
        but no Jacobians (``coupling-tui collapse``), Collapse takes the width the empty Coupling pane would and has
        the focus."""
        has = CollapsePane.available(self.results)
        collapse_run = has and "jacobian.singular_values" not in self.results.arrays
        self.screen.set_class(is_aggregate(self.results), "-aggregate")   # the Coupling pane alone (app.tcss)
        if (has, collapse_run) == self._layout:
            return
        self._layout = (has, collapse_run)
        main, pane = self.query_one("#main"), self.collapse
        pane.set_class(not has, "-absent")
        main.set_class(collapse_run, "-collapse-run")
        self.refresh_bindings()
        if collapse_run:
            self._show_side("collapse")
            pane.focus()
        elif not has and pane.has_class("-shown"):
            self._show_side(self.SIDE_PANES[0])

    def _collapse_zoomed(self) -> bool:
        """Whether the Collapse pane has the whole width: a short and narrow screen (app.tcss) that shows it."""
        return (self.screen.has_class("-short") and self.screen.has_class("-narrow")
                and self.query_one("#main").has_class("-collapse-shown"))

    def _show_side(self, pane_id: str) -> None:
        """Make ``pane_id`` the side pane a short screen shows (a tall one shows them all). On a short and narrow
        screen the Collapse pane, too rich for half the width, then takes the Coupling pane's place too."""
        for other in self.SIDE_PANES:
            for pane in self.query(f"#{other}"):
                pane.set_class(other == pane_id, "-shown")
        self.query_one("#main").set_class(pane_id == "collapse", "-collapse-shown")
        self.refresh_bindings()

    @property
    def coupling(self) -> CouplingPane:
        return self.query_one(CouplingPane)

    @property
    def collapse(self) -> CollapsePane:
        return self.query_one(CollapsePane)

    def _collapse_key(self, change: Callable[[CollapsePane], object]) -> None:
        """Apply ``change`` to the Collapse pane and redraw; on a short screen that shows another side pane, show
        Collapse. A run without collapse data says so (the palette reaches these actions whatever the run)."""
        pane = self.collapse
        if not CollapsePane.available(self.results):
            self.notify(NO_COLLAPSE, severity="warning", markup=False)
            return
        change(pane)
        if self.screen.has_class("-short") and not pane.has_class("-shown"):
            self._show_side("collapse")
            pane.focus()
        self._show_run()

    def action_step_length(self, delta: int) -> None:
        self._collapse_key(lambda pane: pane.step_length(self.results, delta))

    def action_cycle_family(self) -> None:
        self._collapse_key(lambda pane: pane.cycle_family(self.results))

    def action_toggle_normed(self) -> None:
        self._collapse_key(CollapsePane.toggle_normed)

    def action_cycle_measure(self) -> None:
        self._collapse_key(CollapsePane.cycle_measure)

    def jump_to_length(self, n: int) -> None:
        lengths = self.results.arrays.get("collapse.lengths")
        if lengths is not None and n not in lengths.tolist():
            self.notify(f"no collapse length n = {n} in this run (it has {', '.join(map(str, lengths.tolist()))})",
                        severity="warning", markup=False)
            return
        self._collapse_key(lambda pane: pane.jump_to_length(self.results, n))

    def action_step_column(self, delta: int) -> None:
        self.coupling.step_column(self.results, delta)
        self._show_run()

    def action_cycle_k(self) -> None:
        self.coupling.cycle_k(self.results)
        self._show_run()

    def action_toggle_average(self) -> None:
        self.coupling.toggle_average()
        self._show_run()

    def action_toggle_baseline(self) -> None:
        if not self.coupling.toggle_baseline(self.results):
            self.notify("this run has no random-init baseline: compute it with --random-baseline",
                        severity="warning", markup=False)
        self._show_run()

    def action_toggle_view(self) -> None:
        if not self.coupling.toggle_view(self.results, self.selected_layer) and self.results.coupling_ks:
            self.notify(ONLY_DEPTH, severity="warning", markup=False)
        self._show_run()

    def action_toggle_variant(self) -> None:
        if not self.coupling.toggle_variant(self.results):
            self.notify("this run has only the ujv variant: compute the vju one with --vju", severity="warning",
                        markup=False)
        self._show_run()

    def action_toggle_metric(self) -> None:
        self.coupling.toggle_metric()
        self._show_run()

    def set_metric(self, metric: str) -> None:
        self.coupling.set_metric(metric)
        self._show_run()

    def jump_to_layer(self, layer: int) -> None:
        self._select_layer(layer)

    def jump_to_token(self, token: int) -> None:
        self._select_token(token)

    # -- SVG export --
    def _pane_for_export(self):
        node = self.focused
        while node is not None and RUN_PANE_CLASS not in node.classes:
            node = node.parent
        return node if node is not None else self.coupling

    def action_export_pane(self) -> None:
        pane = self._pane_for_export()
        try:
            path = self._write_pane(pane)
        except (UserError, ValueError) as exc:
            self.notify(one_line(exc), title="export failed", severity="error", timeout=10, markup=False)
            return
        self.notify(f"exported {pane.id} to {path}", markup=False)

    def _write_pane(self, pane) -> Path:
        """``pane`` as it is on screen, to ``<export dir>/<run>-<pane id>.svg``."""
        return export.write_svg(self.export_dir, self.run_name, pane.id or "pane",
                                export.pane_svg(self, pane, f"{self.run_name} · {pane.id}"))

    async def action_export_all(self) -> None:
        try:
            written = await self.export_all()
        except (UserError, ValueError) as exc:
            self.notify(one_line(exc), title="export failed", severity="error", timeout=10, markup=False)
            return
        self.notify(f"exported {len(written)} SVGs to {written[0].parent}", markup=False)

    async def export_all(self) -> list[Path]:
        """Every pane on its own, then the whole screen; a short screen shows its side panes one by one for it.
        Raises UserError when a file cannot be written (nothing partial is left)."""
        written: list[Path] = []
        shown = next((p for p in self.SIDE_PANES if self.query(f"#{p}.-shown")), self.SIDE_PANES[0])
        try:
            if self._collapse_zoomed():                    # the Coupling pane first needs its place back
                self._show_side(self.SIDE_PANES[0])
                await self._settle(self.coupling)
            for pane in list(self.query(f".{RUN_PANE_CLASS}")):
                if not self._available(pane):
                    continue
                if pane.id in self.SIDE_PANES and not pane.region.area:
                    self._show_side(pane.id)
                    await self._settle(pane)
                written.append(self._write_pane(pane))
        finally:
            self._show_side(shown)
            await self._settle()
        written.append(export.write_svg(self.export_dir, self.run_name, "screen",
                                        export.screen_svg(self, self.run_name)))
        return written

    async def export_and_exit(self) -> None:
        """Headless ``coupling-tui export``: write every SVG, then exit with the paths (or the error) as result."""
        await self._settle()
        try:
            self.exit(await self.export_all())
        except (UserError, ValueError) as exc:
            self.exit(UserError(one_line(exc)), return_code=2)

    async def _settle(self, pane=None) -> None:
        """Let a layout change be laid out and painted (and ``pane`` get a place on screen), at most ~1 s."""
        import asyncio

        self.screen.refresh(layout=True)
        for _ in range(50):
            await asyncio.sleep(0.02)
            if pane is None or pane.region.area:
                break
        await asyncio.sleep(0.05)

    def action_show_help(self) -> None:
        node = self.focused
        while node is not None and getattr(node, "HELP", None) is None:
            node = node.parent
        pane_help = node.HELP if node is not None else self.query_one(TrajectoryPane).HELP
        self.push_screen(HelpScreen(pane_help))

    def _first_token(self) -> int:
        n = self.results.n_tokens
        return n - 1 if self.start_token is None else max(0, min(self.start_token, n - 1))

    # -- drawing --
    def _select_token(self, token: int) -> None:
        token = max(0, min(token, self.results.n_tokens - 1))
        if token != self.selected_token:
            self.selected_token = token
            self._show_run()

    def _select_layer(self, layer: int) -> None:
        layer = max(0, min(layer, self.results.n_layers - 1))
        if layer != self.selected_layer:
            self.selected_layer = layer
            self._show_run()

    def _show_run(self) -> None:
        self.selected_token = max(0, min(self.selected_token, self.results.n_tokens - 1))
        self.selected_layer = max(0, min(self.selected_layer, self.results.n_layers - 1))
        for pane in self.query(f".{RUN_PANE_CLASS}"):
            pane.show(self.results, self.selected_token, self.selected_layer)  # type: ignore[attr-defined]
        self._show_info()

    def _show_info(self) -> None:
        header = self.results.header
        if not header:
            info = "coupling-tui"
        else:
            model = header.get("model", {})
            tokens = "" if is_aggregate(self.results) else f"{self.results.n_tokens} tokens · "
            info = (f"{model.get('source', '?')} · {header.get('device', '?')} · {header.get('dtype', '?')} · "
                    f"{tokens}{self.results.n_layers} layers")
        if self.prompt_set is not None and self.prompt_set.n_prompts:
            info = f"{self.prompt_set.entry_text(self.entry)} · {info}"
        self.query_one("#run-info", Static).update(info)

    def _set_state(self, text: str) -> None:
        self.state_text = text
        self.query_one("#run-state", Static).update(text)
