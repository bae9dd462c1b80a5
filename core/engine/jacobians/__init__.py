"""Per-token block Jacobians ``J^l_t = d f^l(X)_t / d x_t`` of a decoder block's residual branch ``f = block - id``."""

DEFAULT_TOP_K = 50
"""Singular triplets kept per block Jacobian unless ``--top-k`` says otherwise (the official code's largest K)."""
DEFAULT_VECTOR_BUDGET_MB = 100.0
"""Results-file megabytes that singular vectors may take (see ``layers.vector_tokens``)."""
