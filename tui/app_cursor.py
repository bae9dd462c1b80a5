"""The explorer's cursor: the selected token and layer (block), moved by keys and by numbers typed in the command
palette (refused, not clamped, when the run has no such one), and the token a run opens on."""

from __future__ import annotations


class CursorMixin:
    """Mixed into CouplingApp (``results``, ``selected_token``, ``selected_layer``, ``start_token``, ``show_run``)."""

    def action_step_token(self, delta: int) -> None:
        self._select_token(self.selected_token + delta)

    def action_first_token(self) -> None:
        self._select_token(0)

    def action_last_token(self) -> None:
        self._select_token(self.results.n_tokens - 1)

    def action_step_layer(self, delta: int) -> None:
        self._select_layer(self.selected_layer + delta)

    def jump_to_layer(self, layer: int) -> None:
        if self._in_range("layer", layer, self.results.n_layers):
            self._select_layer(layer)

    def jump_to_token(self, token: int) -> None:
        if self._in_range("token", token, self.results.n_tokens):
            self._select_token(token)

    def _in_range(self, what: str, n: int, count: int) -> bool:
        """A number typed in the palette is refused, not clamped, when the run has no such layer or token."""
        if 0 <= n < count:
            return True
        self.notify(f"no {what} {n} in this run (it has {what}s 0–{count - 1})" if count else
                    f"no {what}s in this run yet", severity="warning", markup=False)
        return False

    def opening_token(self) -> int:
        n = self.results.n_tokens
        return n - 1 if self.start_token is None else max(0, min(self.start_token, n - 1))

    def _select_token(self, token: int) -> None:
        token = max(0, min(token, self.results.n_tokens - 1))
        if token != self.selected_token:
            self.selected_token = token
            self.show_run()

    def _select_layer(self, layer: int) -> None:
        layer = max(0, min(layer, self.results.n_layers - 1))
        if layer != self.selected_layer:
            self.selected_layer = layer
            self.show_run()
