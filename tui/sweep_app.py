"""The Sweep view (``coupling-tui view DIR`` on a sweep directory): the scatter of the models (tui.panes.sweep_scatter)
above the table of models (tui.panes.sweep_models), a status line naming the sweep. Enter ends this app with the
selected model, for ``tui.main`` to open its run in the explorer (whose Esc comes back here, selection and sort
kept). Reads ``sweep.json`` only: no torch, no model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from textual import work
from textual.app import App, ComposeResult
from textual.message import Message
from textual.containers import Vertical
from textual.widgets import Footer, Static
from textual.worker import get_current_worker

from coupling_tui.core.errors import UserError

from . import export
from .actions import SWEEP_ACTIONS, bindings, help_rows
from .app_signals import SignalsMixin
from .help_screen import HelpScreen
from .messages import one_line
from .panes.sweep_models import SORTS, SweepModels
from .panes.sweep_scatter import POOLINGS, SweepScatter


@dataclass(frozen=True)
class SweepView:
    """What the user had chosen, kept across a visit to a model's run."""

    selected: int | None = 0
    sort: int = 0
    pooling: str = "coupling_scalar_last_token"


def status_text(directory: Path, table: dict, view: SweepView) -> str:
    rows = table["rows"]
    ok = sum(r.get("status") == "ok" for r in rows)
    prompts = len(table.get("prompts") or [])
    k = next((r.get("k") for r in rows if r.get("k") is not None), None)
    text = (f"sweep {directory.name} · {len(rows)} models ({ok} ok, {len(rows) - ok} failed) · {prompts} prompt"
            f"{'s' if prompts != 1 else ''}" + (f" · K = {k}" if k is not None else "")
            + f" · scalar: {POOLINGS[view.pooling]}")
    return text


class SweepProgress(Message):
    """From the live sweep's worker: where it is, and whether a model just ended (the table changed)."""

    def __init__(self, text: str, ended: bool) -> None:
        super().__init__()
        self.text, self.ended = text, ended


class SweepDone(Message):
    """The live sweep ended: ``error`` is None, or what stopped it."""

    def __init__(self, error: BaseException | None) -> None:
        super().__init__()
        self.error = error


class Stopped(Exception):
    """Raised inside the live sweep's worker between events when the app asks it to stop."""


class SweepApp(SignalsMixin, App[SweepView | None]):
    """The Sweep view (module docstring). Its result: the view with the model to open, or None to quit."""

    TITLE = "coupling-tui sweep"
    replace_exports = False
    """As CouplingApp's (``app_export.ExportMixin``): only the headless export replaces files of the same names."""
    BINDINGS = bindings(SWEEP_ACTIONS)
    CSS = """
    #sweep-status { height: 1; background: $panel; padding: 0 1; }
    #sweep-body { height: 1fr; }
    SweepScatter { height: 3fr; min-height: 8; border: round $secondary; }
    SweepModels { height: 2fr; min-height: 5; border: round $secondary; }
    SweepScatter:focus, SweepModels:focus { border: round $accent; }
    """

    def __init__(self, table: dict, directory: Path, export_dir: Path, view: SweepView | None = None,
                 live: Callable | None = None) -> None:
        super().__init__()
        self.live = live
        """A sweep to run and watch (core.cli.sweep.PreparedSweep.drive): called in a thread worker with a callback
        after every event; None = a saved sweep."""
        self.computing = False
        self.progress = ""
        """Where the live sweep is ("model 2/5 NAME · layers 3/30")."""
        self.failure: BaseException | None = None
        """What stopped a live sweep (a bug in it): the command reports it once the app has quit."""
        self.table, self.directory, self.export_dir = table, Path(directory), Path(export_dir)
        self.view = view or SweepView()
        self.run_name = self.directory.name or "sweep"
        self.stopped_by: int | None = None
        """SIGINT or SIGTERM when a signal (or Ctrl-C) ended the app (app_signals)."""
        self._previous_handlers: dict[int, object] = {}

    def compose(self) -> ComposeResult:
        yield Static(id="sweep-status", markup=False)
        with Vertical(id="sweep-body"):
            yield SweepScatter(id="scatter")
            yield SweepModels(id="models")
        yield Footer()

    def on_mount(self) -> None:
        self._catch_signals()
        if self.live is not None:
            self.computing = True
            self._run_live()
        self.query_one(SweepModels).show(self.table, self.view.sort, self.view.selected)
        self.query_one(SweepModels).focus()
        self.redraw()

    @work(thread=True, exclusive=True, group="sweep", name="sweep")
    def _run_live(self) -> None:
        worker = get_current_worker()

        def on_event(sweep) -> None:
            if worker.is_cancelled:
                raise Stopped
            self.post_message(SweepProgress(sweep.progress_text(), bool(sweep.just_ended)))

        try:
            self.live(on_event)
        except Stopped:
            self.post_message(SweepDone(None))
        except BaseException as exc:  # noqa: BLE001 - reported by the command once the app has quit
            self.post_message(SweepDone(exc))
        else:
            self.post_message(SweepDone(None))

    def on_sweep_progress(self, message: SweepProgress) -> None:
        if message.ended:
            from coupling_tui.core.results import sweep_table

            self.table = sweep_table.load(self.directory)
            self.query_one(SweepModels).show(self.table, self.view.sort, self.view.selected)
        self.progress = message.text
        self.redraw()

    def on_sweep_done(self, message: SweepDone) -> None:
        self.computing = False
        self.progress = ""
        if message.error is not None:
            self.failure = message.error
            self.exit(None, return_code=1)
            return
        self.redraw()
        self.notify("the sweep is done: Enter opens a model", markup=False)

    def redraw(self) -> None:
        text = status_text(self.directory, self.table, self.view)
        if self.computing:
            text = f"computing {self.progress} · " + text
        self.query_one("#sweep-status", Static).update(text)
        self.query_one(SweepScatter).show(self.table, self.view.pooling, self.view.selected)

    def on_data_table_row_highlighted(self, event: SweepModels.RowHighlighted) -> None:
        models = self.query_one(SweepModels)
        if models.selected != self.view.selected:
            self.view = SweepView(models.selected, self.view.sort, self.view.pooling)
            models.describe(self.table, models.selected)
            self.redraw()

    def on_data_table_row_selected(self, event: SweepModels.RowSelected) -> None:
        self.action_open_model()

    def action_open_model(self) -> None:
        index = self.query_one(SweepModels).selected
        if index is None:
            return
        if self.computing:
            self.notify("the sweep is still computing: open its models when it is done (or with `coupling-tui view "
                        "DIR` in another terminal)", severity="warning", markup=False)
            return
        row = self.table["rows"][index]
        if row.get("status") != "ok" or not row.get("results"):
            self.notify(f"{row['model']} has no run to open: {row.get('status')}", severity="warning", markup=False)
            return
        if not (self.directory / row["results"]).exists():
            self.notify(f"{row['model']}'s results {row['results']} are not in {self.directory}", severity="error",
                        markup=False)
            return
        self.exit(SweepView(index, self.view.sort, self.view.pooling))

    def action_cancel_compute(self) -> None:
        """Stop a live sweep between layers (app_signals calls this before quitting on a signal); the models done
        stay in the table."""
        if self.computing:
            self.workers.cancel_group(self, "sweep")

    def action_quit(self) -> None:
        self.action_cancel_compute()
        self.exit(None)

    def action_sort(self) -> None:
        self.view = SweepView(self.view.selected, (self.view.sort + 1) % len(SORTS), self.view.pooling)
        self.query_one(SweepModels).show(self.table, self.view.sort, self.view.selected)
        self.notify(f"sorted by {SORTS[self.view.sort][0]}", markup=False)

    def action_pooling(self) -> None:
        pools = list(POOLINGS)
        pooling = pools[(pools.index(self.view.pooling) + 1) % len(pools)]
        self.view = SweepView(self.view.selected, self.view.sort, pooling)
        self.redraw()

    def action_show_help(self) -> None:
        node = self.focused
        self.push_screen(HelpScreen(getattr(node, "HELP", SweepScatter.HELP), rows=help_rows(SWEEP_ACTIONS)))

    def action_export_pane(self) -> None:
        pane = self.focused if isinstance(self.focused, (SweepScatter, SweepModels)) else self.query_one(SweepScatter)
        export.export_pane(self, pane, replace=self.replace_exports)

    def action_export_all(self) -> None:
        try:
            written = self.export_all()
        except (UserError, ValueError) as exc:
            export.notify_failed(self, exc)
            return
        self.notify(f"exported {len(written)} SVGs to {written[0].parent}", markup=False)

    def export_all(self) -> list[Path]:
        """The scatter, the table and the whole screen, all written or none."""
        svgs = {pane.id: export.pane_svg(self, pane, f"{self.run_name} · {pane.id}")
                for pane in (self.query_one(SweepScatter), self.query_one(SweepModels))}
        svgs["screen"] = export.screen_svg(self, self.run_name)
        return export.write_svgs(self.export_dir, self.run_name, svgs, replace=self.replace_exports)

    def export_and_exit(self) -> None:
        """Headless ``coupling-tui export DIR``: every SVG, then exit with the paths (or the error)."""
        try:
            self.exit(self.export_all())
        except (UserError, ValueError) as exc:
            self.exit(UserError(one_line(exc)), return_code=2)
