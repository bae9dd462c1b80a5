"""The headless command line: the argparse groups (``args``), the flags read back and the shared front-end
helpers (``common``), one module per command (``compute``, ``compute_set``, ``compute_compare``, ``collapse``),
and the cost check and job a front end runs (``cost_check``, ``run_job``, ``run_bounds``).

The top layer of core: may import everything in core; argparse namespaces stop here. Never Textual."""
