"""The across-model fits of a sweep (Aubry et al. 2025, Figure 1: the coupling scalar against a benchmark score, and
the comparison "coupling predicts the score better than size, depth or width"): for each predictor, an ordinary
least-squares line of the score on it (``scipy.stats.linregress``: slope, intercept, R² = r², the two-sided p-value
of a zero slope) and Spearman's rank correlation ρ with its p-value (``scipy.stats.spearmanr``). Pure functions of
the table's numbers; no torch."""

from __future__ import annotations

import math

import numpy as np

MIN_MODELS = 3
"""A line through two points always fits (R² = 1): below three models with a score and the predictor, no fit."""


def fit(x, y) -> dict:
    """The fit of ``y`` (scores) on ``x`` over the pairs where both are finite numbers: {"n", "slope", "intercept",
    "r2", "p", "spearman_rho", "spearman_p"}, or {"n", "note"} when fewer than MIN_MODELS pairs exist or ``x`` does
    not vary. Values are plain floats (JSON-safe; None where scipy gives NaN)."""
    from scipy import stats

    pairs = [(float(a), float(b)) for a, b in zip(x, y) if _number(a) and _number(b)]
    n = len(pairs)
    if n < MIN_MODELS:
        return {"n": n, "note": f"needs {MIN_MODELS} models with a score and this value, has {n}"}
    xs, ys = np.array(pairs).T
    if np.ptp(xs) == 0:
        return {"n": n, "note": "the predictor is the same for every model"}
    line = stats.linregress(xs, ys)
    rho = stats.spearmanr(xs, ys)
    return {"n": n, "slope": _json(line.slope), "intercept": _json(line.intercept), "r2": _json(line.rvalue ** 2),
            "p": _json(line.pvalue), "spearman_rho": _json(rho.statistic), "spearman_p": _json(rho.pvalue)}


def fits(rows: list[dict], predictors: dict[str, str], score: str = "score") -> dict:
    """``fit`` of the ``score`` column on each predictor over the rows whose status is "ok"; ``predictors`` maps a
    fit's name to the column it reads (a name starting with ``log10_`` takes the column's base-10 log)."""
    ok = [r for r in rows if r.get("status") == "ok"]
    y = [r.get(score) for r in ok]
    out = {}
    for name, column in predictors.items():
        x = [r.get(column) for r in ok]
        if name.startswith("log10_"):
            x = [math.log10(v) if _number(v) and v > 0 else None for v in x]
        out[name] = fit(x, y)
    return out


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _json(v) -> float | None:
    v = float(v)
    return v if math.isfinite(v) else None
