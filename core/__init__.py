"""coupling-tui's headless engine: model loading, forward traces, results files. Never imports Textual."""

__version__ = "0.1.0"
