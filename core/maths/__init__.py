"""Numpy maths over stored arrays, so a saved run can show it without torch: the run scalar (``run_scalar``), the
Haar null of the coupling metric (``null_baseline``), the trajectory measures (``trajectory``) and the few numbers
the Collapse pane derives (``collapse_view``).

Pure functions; may import numpy only (never torch, the engine, results or the command line)."""
