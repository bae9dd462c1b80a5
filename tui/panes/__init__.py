"""The app's panes. Each pane carries the CSS class ``run-pane``, a ``HELP`` markdown string and a
``show(run, token, layer)`` method the app calls after every event or selection change; adding a pane means writing
one such widget and yielding it in ``CouplingApp.compose``."""

RUN_PANE_CLASS = "run-pane"
