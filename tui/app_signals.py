"""The explorer's signal handling: SIGINT/SIGTERM (and Ctrl-C) cancel a running compute between layers, quit, and give
the terminal back; the command line then reports the signal as one line and its status (``raise_signal_exit``)."""

from __future__ import annotations

from coupling_tui.core.faults import Terminated


class SignalsMixin:
    """Mixed into CouplingApp: needs ``action_cancel_compute`` and Textual's ``exit``."""

    stopped_by: int | None
    _previous_handlers: dict[int, object]

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
