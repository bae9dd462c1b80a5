"""Per-token block Jacobians ``J^l_t = d f^l(X)_t / d x_t`` of a decoder block's residual branch ``f = block - id``."""

from coupling_tui.core.options.run_options import DEFAULT_TOP_K, DEFAULT_VECTOR_BUDGET_MB  # noqa: F401 (old home)
