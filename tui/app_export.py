"""The explorer's SVG export: the focused pane (e), every pane and the whole screen (E), and the headless
``coupling-tui export``."""

from __future__ import annotations

from pathlib import Path

from coupling_tui.core.errors import UserError

from . import export
from .messages import one_line
from .panes import RUN_PANE_CLASS


class ExportMixin:
    """Mixed into CouplingApp (``export_dir``, ``run_name``, ``SIDE_PANES`` and the layout helpers)."""

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
            if self.collapse_zoomed():                     # the Coupling pane first needs its place back
                self.show_side(self.SIDE_PANES[0])
                await self._settle(self.coupling)
            for pane in list(self.query(f".{RUN_PANE_CLASS}")):
                if not self.has_place(pane):
                    continue
                if pane.id in self.SIDE_PANES and not pane.region.area:
                    self.show_side(pane.id)
                    await self._settle(pane)
                written.append(self._write_pane(pane))
        finally:
            self.show_side(shown)
            await self._settle()
        written.append(export.write_svg(self.export_dir, self.run_name, "screen",
                                        export.screen_svg(self, self.run_name)))
        return written

    async def export_and_exit(self) -> None:
        """Headless ``coupling-tui export``: write every SVG, then exit with the paths (or the error) as result."""
        try:
            self._check_requested_selection()
        except UserError as exc:
            self.exit(exc, return_code=2)
            return
        await self._settle()
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

    async def _settle(self, pane=None) -> None:
        """Let a layout change be laid out and painted (and ``pane`` get a place on screen), at most ~1 s."""
        import asyncio

        self.screen.refresh(layout=True)
        for _ in range(50):
            await asyncio.sleep(0.02)
            if pane is None or pane.region.area:
                break
        await asyncio.sleep(0.05)
