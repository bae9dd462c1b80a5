"""Per-token block Jacobians ``J^l_t = d f^l(X)_t / d x_t`` of a decoder block's residual branch ``f = block - id``."""
