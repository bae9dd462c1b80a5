"""What a run produced, in memory and on disk: the engine's events (``events``), the one in-memory run every pane
reads (``run``), prompt sets and their aggregate (``prompt_set``, ``aggregate``), two runs side by side
(``compare``, ``comparison``), the file formats (``run_file``, ``set_file``) and the names of every array
(``names``).

Torch-free, so ``coupling-tui view`` opens a saved run without importing torch: may import numpy, safetensors,
``core.maths``, ``core.options`` and core's top-level modules; never torch, the engine, loading or the command
line."""
