"""The Haar null of the coupling metric from a Jacobian's stored summary (torch-free, so a saved run can show it):
the expected m_K of J against independent Haar-random bases needs only J's top-K singular values and ‖J‖_F.

With f = ‖J‖_F / d, E‖M‖_F² = K² f² for M = Uᵀ J V on Haar (U, V), and E|M_kk| ≈ √(2/π)·f, so
E[m²] ≈ 1 + (K² f² − 2√(2/π)·f·Σ_{k≤K} s_k) / ‖s_K‖² (large d). docs/metrics.md, "Null baseline".
"""

from __future__ import annotations

import numpy as np


def haar_null_from_spectrum(s, frobenius, d: int, k: int) -> np.ndarray:
    """√E[m_K²] against Haar bases for J with descending singular values ``s`` [..., ≥k] and Frobenius norm
    ``frobenius`` [...] in dimension ``d``; NaN where the inputs are NaN or J is zero."""
    s = np.asarray(s, np.float64)[..., :k]
    f = np.asarray(frobenius, np.float64) / d
    ss = (s * s).sum(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        m2 = 1 + (k * k * f * f - 2 * np.sqrt(2 / np.pi) * f * s.sum(-1)) / ss
    return np.where(ss > 0, np.sqrt(np.clip(m2, 0, None)), np.nan)
