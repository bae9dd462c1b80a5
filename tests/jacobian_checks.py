"""Checks shared by the Jacobian method tests."""

from __future__ import annotations

import torch


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """Relative Frobenius error of ``a`` against the reference ``b``, in float64."""
    return float((a.double() - b.double()).norm() / b.double().norm())


def assert_causal(full: torch.Tensor) -> None:
    """A full-sequence Jacobian [T, d, T, d]: output token t1 never depends on a later input token (exact zeros),
    and does depend on itself."""
    for t1 in range(full.shape[0]):
        assert torch.count_nonzero(full[t1, :, t1 + 1:, :]) == 0
        assert full[t1, :, t1, :].abs().max() > 0
