"""How many engine events the compute worker has posted that the app has not applied yet: while more wait, the app
applies an event without redrawing, so a burst of events (a machine busy elsewhere, a fast stage) costs one redraw,
not one per event, and keys stay quick while a compute runs (issue 20 item 11, benchmarks/key_latency.py)."""

from __future__ import annotations

import threading


class Backlog:
    """A counter the worker thread increments and the app's thread decrements."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting = 0

    def add(self) -> None:
        """One more event posted (the worker thread)."""
        with self._lock:
            self._waiting += 1

    def taken(self) -> bool:
        """One event applied (the app's thread); True when more are still waiting behind it."""
        with self._lock:
            self._waiting = max(self._waiting - 1, 0)
            return self._waiting > 0
