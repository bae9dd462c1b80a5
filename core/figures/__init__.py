"""Figures fit for a paper from a saved run, a prompt set or two runs (``coupling-tui figures``): what each figure
plots, read from the stored arrays or pure functions of them (``data``), the matplotlib drawing in a light theme at
a paper column's size (``draw``), and the files written, figures and the numbers behind them (``files``).

Torch-free and headless: may import numpy, ``core.results``, ``core.maths``, core's top modules and matplotlib (an
optional extra, imported only when drawing); never torch, the engine, the loaders, the command line or Textual."""
