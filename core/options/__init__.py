"""What a run is asked to do, checked before any model loads: the prompts (``prompts``), the optional coupling
matrices (``coupling``: token pairs, context layers), the collapse measurement (``collapse``), the sharding flags
(``sharding``) and the one frozen ``RunOptions`` built from them (``run_options``).

Pure Python: may import only ``core.errors`` and the standard library (no numpy, torch, argparse namespaces)."""
