"""Token selection shared by the Jacobian methods."""

from __future__ import annotations

from typing import Any, Sequence

import torch

from coupling_tui.core.errors import UserError


def token_index(tokens: Any, T: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Indices (on ``device``) of the selected tokens of a T-token prompt: all when ``tokens`` is None; negative
    indices count from the end; out-of-range indices are a UserError."""
    if tokens is None:
        return torch.arange(T, device=device)
    idx = torch.as_tensor(list(tokens) if isinstance(tokens, (range, Sequence)) else tokens, dtype=torch.long)
    idx = idx.reshape(-1).to(device)
    if idx.numel() and (int(idx.min()) < -T or int(idx.max()) >= T):
        raise UserError(f"token index out of range for a {T}-token prompt: {idx.tolist()}")
    return idx % T
