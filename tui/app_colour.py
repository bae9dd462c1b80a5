"""How the coupling matrix is coloured (issue 20 item 4): the metric (``m``: 1−m² or m) and the colour scale (``s``,
``--scale``): ``auto`` spans the off-diagonal values of the matrix shown (and of its trained/random-init twin),
``fixed`` is 0–1 for every matrix, so runs can be compared by eye. The heatmap's legend says which is on."""

from __future__ import annotations

from .panes.coupling import SCALES
from .panes.coupling_text import PROFILE_METRIC
from .panes.profile import PROFILE_VIEWS


class ColourMixin:
    """Mixed into CouplingApp (``coupling``, ``show_run``, ``refused``)."""

    def action_toggle_metric(self) -> None:
        if self.coupling.view in PROFILE_VIEWS:
            self.notify(PROFILE_METRIC, markup=False)
        self.coupling.toggle_metric()
        self.show_run()

    def set_metric(self, metric: str) -> None:
        self.coupling.set_metric(metric)
        self.show_run()

    def action_toggle_scale(self) -> None:
        if not self.refused("coupling"):
            self.set_scale(SCALES[(SCALES.index(self.coupling.scale) + 1) % len(SCALES)])

    def set_scale(self, scale: str) -> None:
        """Colour every coupling heatmap on the ``fixed`` 0–1 scale or the ``auto`` (off-diagonal range) one."""
        if scale in SCALES and not self.refused("coupling"):
            for pane in self.query(".coupling-pane"):
                pane.scale = scale
            self.show_run()
