"""coupling-tui's Textual interface: the app, its panes and key registry. Never imports torch or the engine."""
