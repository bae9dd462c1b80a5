"""CouplingApp: streams one engine run (or opens a saved one) into the panes, and saves it when it finishes."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

from textual import on, work
from textual.app import App, ComposeResult
from textual.containers import Container, Horizontal
from textual.widgets import Footer, ProgressBar, Static
from textual.worker import Worker, get_current_worker

from coupling_tui.core import results
from coupling_tui.core.errors import UserError
from coupling_tui.core.faults import Terminated, is_out_of_memory, out_of_memory_error
from coupling_tui.core.prompts import truncation_note
from coupling_tui.core.events import Event, LayerDone, RunFinished, RunStarted
from coupling_tui.core.run import Run

from . import export
from .actions import bindings
from .commands import ExplorerCommands
from .help_screen import HelpScreen
from .messages import ComputeCancelled, ComputeFailed, EngineEvent, RunSaved, SaveFailed
from .panes import RUN_PANE_CLASS
from .panes.coupling import CouplingPane
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
    SIDE_PANES = ("trajectory", "spectrum")
    """The panes of the side column, in order."""

    def __init__(self, run: Run | None = None, job: Job | None = None, save_path: Path | None = None,
                 export_dir: Path | None = None, run_name: str | None = None) -> None:
        if (run is None) == (job is None):
            raise ValueError("CouplingApp needs exactly one of run= (a saved run) or job= (an engine run)")
        super().__init__()
        self.results = run if run is not None else Run()
        """The one run every pane reads; mutated on the main thread only."""
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
        yield ProgressBar(id="progress", show_eta=True)
        yield Footer()

    def on_mount(self) -> None:
        self._catch_signals()
        if self._job is not None:
            self.computing = True
            self._set_state("starting…")
            self.compute_worker = self._compute()
        else:
            run = self.results
            done = "complete" if run.finished else "partial"
            self._set_state(f"saved run · {done} · {run.layers_done}/{run.n_layers} layers")
            self.selected_token = self._first_token()
        self.query_one(ProgressBar).display = self.computing
        self._show_side(self.SIDE_PANES[0])
        self.query_one(CouplingPane).focus()
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
        self.results.apply(event)
        progress = self.query_one(ProgressBar)
        if isinstance(event, RunStarted):
            self.selected_token = self._first_token()
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
            written = results.save(self.results, path)
        except Exception as exc:  # noqa: BLE001 - shown as a notification, never a traceback
            self.post_message(SaveFailed(one_line(exc)))
        else:
            self.post_message(RunSaved(written))

    @on(RunSaved)
    def _saved(self, message: RunSaved) -> None:
        seconds = self.results.header.get("seconds", 0.0)
        self._set_state(f"done in {seconds:.1f} s · saved to {message.path}")
        self.notify(f"computed in {seconds:.1f} s · saved to {message.path}", markup=False)

    @on(SaveFailed)
    def _save_failed(self, message: SaveFailed) -> None:
        seconds = self.results.header.get("seconds", 0.0)
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
        return True

    def action_cancel_compute(self) -> None:
        if not self.computing:
            return
        self.workers.cancel_group(self, "compute")
        self._stop_computing()
        run = self.results
        self._set_state(f"cancelled after {run.layers_done}/{run.n_layers} layers — nothing saved")

    def action_step_token(self, delta: int) -> None:
        self._select_token(self.selected_token + delta)

    def action_first_token(self) -> None:
        self._select_token(0)

    def action_last_token(self) -> None:
        self._select_token(self.results.n_tokens - 1)

    def action_step_layer(self, delta: int) -> None:
        self._select_layer(self.selected_layer + delta)

    def action_focus_pane(self, pane_id: str) -> None:
        panes = self.query(f"#{pane_id}")
        if not panes:
            self.notify(f"no {pane_id} pane in this version", severity="warning", markup=False)
            return
        if pane_id in self.SIDE_PANES:
            self._show_side(pane_id)
        panes.first().focus()

    def _show_side(self, pane_id: str) -> None:
        """Make ``pane_id`` the side pane a short screen shows (a tall one shows them all)."""
        for other in self.SIDE_PANES:
            for pane in self.query(f"#{other}"):
                pane.set_class(other == pane_id, "-shown")

    @property
    def coupling(self) -> CouplingPane:
        return self.query_one(CouplingPane)

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
        self.coupling.toggle_view()
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
            for pane in list(self.query(f".{RUN_PANE_CLASS}")):
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
            info = (f"{model.get('source', '?')} · {header.get('device', '?')} · {header.get('dtype', '?')} · "
                    f"{self.results.n_tokens} tokens · {self.results.n_layers} layers")
        self.query_one("#run-info", Static).update(info)

    def _set_state(self, text: str) -> None:
        self.state_text = text
        self.query_one("#run-state", Static).update(text)
