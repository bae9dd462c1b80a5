"""The small numbers the Collapse pane shows that the results file does not store: the pair's difference vector,
its largest coordinates, the low precision's resolution, colour-strip bins and the sensitivity's shares.

Pure numpy, torch-free (a saved run opens without torch); docs/collapse.md ("In the explorer") defines each one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MEASURES = ("L1/d", "L∞", "rel L2")
"""The three pair differences in the order of the last axis of ``collapse.diff`` / ``collapse.diff_low``."""
MEASURE_ORDER = (1, 0, 2)
"""The order the pane shows them in (indices into MEASURES): L∞ first, as the paper's collapse figure (‖·‖_∞ of
the difference of the last token's state in the last layer, before the final norm), then L1/d, then the relative
L2."""
MEASURE_FORMULAS = ("‖Δ‖₁/d", "max_k |Δ_k|", "‖Δ‖₂/‖y(n)‖₂")
"""Each measure's formula, Δ = y(n+1) − y(n), in the order of MEASURES."""
UNIT_ROUNDOFF = {"bfloat16": 2.0 ** -8, "float16": 2.0 ** -11, "float32": 2.0 ** -24, "float64": 2.0 ** -53}
"""u = 2^-p for a format with p significant bits: any number is rounded by at most u times its magnitude, and two
neighbouring numbers of magnitude x are between 2u·x and 4u·x apart (bfloat16: p = 8)."""
STRIP_QUANTILE = 0.98
"""A colour strip saturates at this quantile of |value|, so a few huge coordinates do not wash out the rest."""


def next_measure(measure: int) -> int:
    """The measure after ``measure`` in MEASURE_ORDER (L∞ → L1/d → relative L2 → L∞)."""
    return MEASURE_ORDER[(MEASURE_ORDER.index(measure) + 1) % len(MEASURE_ORDER)]


def share_text(fraction: float, d: int) -> str:
    """A share of the d coordinates with one decimal ("0.7 %", "12.3 %"); "0 of d" when none is (a share below
    0.05 %, which one decimal would show as 0.0 %, shows as its count: "1 of 4096"); "…" while pending (NaN)."""
    if not np.isfinite(fraction):
        return "…"
    count = int(round(float(fraction) * d))           # a stored share is a count of coordinates over d
    if count == 0 or 1000 * count < d / 2:             # 0, or below what one decimal shows (0.05 %)
        return f"{count} of {d}"
    return f"{100 * count / d:.1f} %"


def attention_text(info: dict) -> str:
    """The attention implementations a collapse header records, "attention: float32 sdpa, bfloat16 eager"; files
    written before they were recorded say "attention: not recorded"."""
    attention = info.get("attention") or {}
    if not attention:
        return "attention: not recorded"
    ref = attention.get("reference") or "not recorded"
    low = attention.get("low") or "not recorded"
    return f"attention: {info.get('reference_dtype', 'float32')} {ref}, {info.get('low_dtype', 'bfloat16')} {low}"


def pair_delta(pair: np.ndarray) -> np.ndarray:
    """Δ = y(n+1) − y(n) in float64 from a stored pair [2, d] (index 0 = n repeats, 1 = n+1)."""
    pair = np.asarray(pair, dtype=np.float64)
    return pair[1] - pair[0]


@dataclass(frozen=True)
class DimDifference:
    dim: int
    short: float
    """y_dim(n), the value as stored."""
    long: float
    """y_dim(n+1)."""
    delta: float
    """y_dim(n+1) − y_dim(n) in float64."""


def top_differences(pair: np.ndarray, k: int) -> list[DimDifference]:
    """The ``k`` coordinates where the pair differs most, by |Δ| descending (the lower index first on a tie);
    empty while the pair is not computed (NaN)."""
    pair = np.asarray(pair)
    delta = pair_delta(pair)
    if k <= 0 or not np.isfinite(delta).all():
        return []
    order = np.lexsort((np.arange(delta.size), -np.abs(delta)))[:k]
    return [DimDifference(int(i), float(pair[0, i]), float(pair[1, i]), float(delta[i])) for i in order]


def resolution(y: np.ndarray, low_dtype: str, measure: int) -> float:
    """The low precision's resolution at the state ``y`` [d], in the units of difference measure ``measure``
    (index into MEASURES): u·median_k |y_k| for L1/d (a coordinate of typical size is rounded by up to that much),
    u·max_k |y_k| for L∞ (the rounding of the largest coordinate), u itself for the relative L2. u is the format's
    unit roundoff (UNIT_ROUNDOFF; bfloat16 2^-8). A pair difference below it is below what the format can tell
    apart at that magnitude. NaN while ``y`` is not computed."""
    if low_dtype not in UNIT_ROUNDOFF:
        raise ValueError(f"unknown low dtype {low_dtype!r}: expected one of {', '.join(UNIT_ROUNDOFF)}")
    if measure not in range(len(MEASURES)):
        raise ValueError(f"measure must be 0..{len(MEASURES) - 1}, got {measure}")
    u = UNIT_ROUNDOFF[low_dtype]
    magnitude = np.abs(np.asarray(y, dtype=np.float64))
    if magnitude.size == 0 or not np.isfinite(magnitude).all():
        return float("nan")
    if measure == 0:
        return u * float(np.median(magnitude))
    if measure == 1:
        return u * float(magnitude.max())
    return u


def resolutions(final: np.ndarray, low_dtype: str, measure: int) -> np.ndarray:
    """``resolution`` of y(n) for every length of one family: ``final`` [N, 2, d] → [N] (NaN where pending)."""
    return np.array([resolution(pair[0], low_dtype, measure) for pair in final], dtype=np.float64)


def strip_bins(values: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """A vector [d] squeezed into at most ``width`` cells: the coordinates split into that many contiguous bins
    (numpy's array_split) and each cell showing the coordinate of largest magnitude in its bin (the first on a
    tie), so no outlier disappears. Returns (the cells' values, their coordinate indices)."""
    values = np.asarray(values)
    if values.size == 0 or width < 1:
        return values[:0], np.zeros(0, np.int64)
    cells = min(width, values.size)
    dims = []
    for bin_ in np.array_split(np.arange(values.size), cells):
        magnitude = np.abs(values[bin_])
        pick = 0 if np.isnan(magnitude).all() else int(np.nanargmax(magnitude))
        dims.append(int(bin_[pick]))
    dims = np.asarray(dims, np.int64)
    return values[dims], dims


def strip_limit(*vectors: np.ndarray) -> float:
    """The symmetric colour limit of one or more strips: the STRIP_QUANTILE quantile of |value| over all of them
    (finite values only); NaN when none is finite, 0 when all are 0."""
    magnitude = np.abs(np.concatenate([np.asarray(v, dtype=np.float64).ravel() for v in vectors]))
    magnitude = magnitude[np.isfinite(magnitude)]
    return float(np.quantile(magnitude, STRIP_QUANTILE)) if magnitude.size else float("nan")


@dataclass(frozen=True)
class SensitivityShares:
    first: float
    """S_0's share of the total."""
    first_half: float
    """The share of positions 0 .. P//2 − 1."""
    last: float
    """The last position's share (it has a direct residual path to the output)."""
    peak: int
    """The position with the largest share."""


def sensitivity_shares(shares: np.ndarray) -> SensitivityShares | None:
    """Summary of ``collapse.sensitivity`` (S_i / Σ S_j over the P positions); None when it is empty or pending."""
    v = np.asarray(shares, dtype=np.float64)
    if v.size == 0 or not np.isfinite(v).all():
        return None
    return SensitivityShares(first=float(v[0]), first_half=float(v[:v.size // 2].sum()), last=float(v[-1]),
                             peak=int(np.argmax(v)))
