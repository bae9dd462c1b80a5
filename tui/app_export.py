"""The explorer's SVG export: the focused pane (e), every pane and the whole screen (E), and the headless
``coupling-tui export``."""

from __future__ import annotations

from pathlib import Path

from coupling_tui.core.errors import UserError

from . import export
from .export_layout import PaneLayout
from .messages import one_line
from .panes import RUN_PANE_CLASS


class ExportMixin:
    """Mixed into CouplingApp (``export_dir``, ``run_name`` and ``has_place``)."""

    replace_exports = False
    """Whether an export replaces files of the same names (the headless ``coupling-tui export``); the explorer's e
    and E never do: they number the new files (``export.free_number``)."""

    # -- SVG export --
    def _pane_for_export(self):
        node = self.focused
        while node is not None and RUN_PANE_CLASS not in node.classes:
            node = node.parent
        return node if node is not None else self.coupling

    def action_export_pane(self) -> None:
        export.export_pane(self, self._pane_for_export(), replace=self.replace_exports)

    async def action_export_all(self) -> None:
        try:
            written = await self.export_all()
        except (UserError, ValueError) as exc:
            export.notify_failed(self, exc)
            return
        self.notify(f"exported {len(written)} SVGs to {written[0].parent}", markup=False)

    async def export_all(self) -> list[Path]:
        """Every pane of the run's layout, each laid out for its own SVG (``PaneLayout``), then the whole screen as
        the user has it; all written or none (a failure leaves the export directory as it was). Raises UserError
        when the files cannot be written."""
        layout = PaneLayout(self)
        svgs: dict[str, str] = {}
        for pane in list(self.query(f".{RUN_PANE_CLASS}")):
            if self.has_place(pane):
                svgs[pane.id or "pane"] = await layout.pane_svg(pane, f"{self.run_name} · {pane.id}")
        await layout.settle()
        svgs["screen"] = export.screen_svg(self, self.run_name)
        return export.write_svgs(self.export_dir, self.run_name, svgs, replace=self.replace_exports)

    def export_and_exit(self) -> None:
        """Headless ``coupling-tui export``: write every SVG, then exit with the paths (or the error) as result. The
        export runs as a worker: the layout changes it makes are applied by the app's message loop meanwhile."""
        try:
            self._check_requested_selection()
        except UserError as exc:
            self.exit(exc, return_code=2)
            return
        self.run_worker(self._export_and_exit(), name="export", group="export", exclusive=True)

    async def _export_and_exit(self) -> None:
        await PaneLayout(self).settle()
        try:
            self.exit(await self.export_all())
        except (UserError, ValueError) as exc:
            self.exit(UserError(one_line(exc)), return_code=2)

    def _check_requested_selection(self) -> None:
        """Refuse an out-of-range ``--token``/``--layer`` (set as ``requested_token``/``requested_layer``)."""
        for flag, what, value, n in (
                ("--token", "tokens", getattr(self, "requested_token", None), self.results.n_tokens),
                ("--layer", "layers", getattr(self, "requested_layer", None), self.results.n_layers)):
            if value is not None and not 0 <= value < n:
                raise UserError(f"{flag} {value} is out of range: this run has {n} {what}, so use 0 to {n - 1}")
