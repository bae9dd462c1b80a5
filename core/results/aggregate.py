"""The aggregate of a prompt set: mean ± std over prompts of the layer×layer coupling and of the run scalar.

Prompts have different token counts, so only layer×layer quantities aggregate: the token-averaged depth coupling
of every K (``coupling.depth_mean_k``), the last token's depth coupling (``coupling.depth_k[:, -1]``) and the run
scalar (core.maths.run_scalar: off-diagonal, adjacent and far means of m, over all tokens and over the last token).
The std is the sample standard deviation over prompts (ddof = 1; NaN with fewer than two prompts). Torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from coupling_tui.core.maths.run_scalar import ALL_TOKENS, LAST_TOKEN, all_tokens_scalar, last_token_scalar
from coupling_tui.core.results.run import (CouplingView, Run, convention_of, default_k, metric_values, nanmean,
                                          off_diagonal_range)
from coupling_tui.core.results import names

STD_DDOF = 1
SCALAR_KEYS = ("offdiag", "adjacent", "far")
MATRICES = {"depth_mean_k": "token average", "depth_last_k": "last token"}
"""The aggregated matrices, each [nK, L, L], stored as ``aggregate.<name>.mean`` and ``.std``."""
PREFIXES = ("", names.RANDOM_INIT_PREFIX)


def mean_std(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sample std (ddof = 1) over axis 0, NaN entries skipped; the mean is NaN where no value exists, the
    std where fewer than two do. float64."""
    a = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(a)
    n = finite.sum(axis=0)
    total = np.where(finite, a, 0.0).sum(axis=0)
    mean = np.where(n > 0, total / np.maximum(n, 1), np.nan)
    dev = np.where(finite, a - mean, 0.0)
    var = (dev ** 2).sum(axis=0) / np.maximum(n - STD_DDOF, 1)
    return mean, np.where(n > STD_DDOF, np.sqrt(var), np.nan)


def _json(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def prompt_scalars(run: Run, prefix: str = "") -> dict | None:
    """The run scalar of one prompt's run at the header's K: over the last token only (the papers' quantity, =
    the header's ``coupling_scalar_last_token``) and over all tokens (= its ``coupling_scalar``); None without
    coupling."""
    name = prefix + names.COUPLING_DEPTH_K
    if name not in run.arrays or not run.coupling_ks:
        return None
    ks = run.coupling_ks
    k = default_k(run.header.get("coupling"), ks)
    depth = run.arrays[name][ks.index(k)]
    return {"k": k, LAST_TOKEN: last_token_scalar(depth, k), ALL_TOKENS: all_tokens_scalar(depth, k)}


def aggregate(runs: list[Run]) -> tuple[dict, dict[str, np.ndarray]]:
    """(header, arrays) of the aggregate over ``runs`` (complete runs of one model, one per prompt, same K values).
    Header: ``n_prompts``, ``ks``, ``k``, ``std``, ``scalar`` = {"last_token" | "all_tokens": {key: {mean, std,
    values (one per prompt)}}} and the same under ``random_init`` when every run has the baseline. Arrays:
    ``aggregate.ks`` and ``[<random-init prefix>]aggregate.<depth_mean_k | depth_last_k>.<mean | std>`` [nK, L, L]
    (``results.names.aggregate_name``)."""
    header: dict = {"n_prompts": len(runs), "ks": [], "k": None,
                    "std": f"sample standard deviation over prompts (ddof = {STD_DDOF})", "scalar": None,
                    "random_init": None}
    arrays: dict[str, np.ndarray] = {}
    with_coupling = [r for r in runs if r.coupling_ks]
    if not runs or len(with_coupling) < len(runs):
        return header, arrays                              # --top-k 0: nothing layer×layer to aggregate
    ks = with_coupling[0].coupling_ks
    if any(r.coupling_ks != ks for r in runs):
        raise ValueError("the prompts' runs have different coupling K values; they cannot be aggregated")
    first = runs[0]
    header["ks"] = ks
    header["k"] = default_k(first.header.get("coupling"), ks)
    arrays[names.AGGREGATE_KS] = np.asarray(ks, dtype=np.int64)
    for prefix in PREFIXES:
        if not all(prefix + names.COUPLING_DEPTH_K in r.arrays for r in runs):
            continue
        stacks = {"depth_mean_k": [_depth_mean(r, prefix) for r in runs],
                  "depth_last_k": [r.arrays[prefix + names.COUPLING_DEPTH_K][:, -1] for r in runs]}
        for name, stack in stacks.items():
            mean, std = mean_std(np.stack(stack))
            arrays[names.aggregate_name(name, "mean", prefix)] = mean.astype(np.float32)
            arrays[names.aggregate_name(name, "std", prefix)] = std.astype(np.float32)
        per_prompt = [prompt_scalars(r, prefix) for r in runs]
        scalar = {}
        for where in (LAST_TOKEN, ALL_TOKENS):
            scalar[where] = {}
            for key in SCALAR_KEYS:
                values = np.array([np.nan if s[where][key] is None else s[where][key] for s in per_prompt])
                mean, std = mean_std(values)
                scalar[where][key] = {"mean": _json(mean), "std": _json(std),
                                      "values": [_json(v) for v in values]}
        if prefix:
            header["random_init"] = {"scalar": scalar}
        else:
            header["scalar"] = scalar
    return header, arrays


def _depth_mean(run: Run, prefix: str) -> np.ndarray:
    name = prefix + names.COUPLING_DEPTH_MEAN_K
    if name in run.arrays:
        return run.arrays[name]
    return nanmean(run.arrays[prefix + names.COUPLING_DEPTH_K], axis=1)


def aggregate_run(runs: list[Run], n_total: int | None = None) -> Run:
    """The aggregate over ``runs`` as a Run the explorer can show (``as_run``); ``n_total`` = prompts in the set."""
    header, arrays = aggregate(runs)
    return as_run(runs[0].header if runs else {}, header, arrays, len(runs) if n_total is None else n_total)


def as_run(base: dict, header: dict, arrays: dict[str, np.ndarray], n_total: int) -> Run:
    """An aggregate (``header``, ``arrays``) as a Run: no tokens, the model part of ``base`` (a prompt's or the
    set's header), ``aggregate`` = the stats header with ``n_total``, and ``coupling.ks`` so K cycles."""
    header = {**header, "n_total": n_total}
    run_header = {key: base[key] for key in ("tool", "model", "dtype", "device") if key in base}
    run_header.update({"prompt": "", "tokens": {"ids": [], "text": [], "truncated_from": None},
                       "coupling": {"ks": header["ks"], "k": header["k"]} if header.get("ks") else None,
                       "aggregate": header, names.H_PARAMS: {names.H_CONVENTION: convention_of(base)}})
    arrays = dict(arrays)
    if names.AGGREGATE_KS in arrays:
        arrays[names.COUPLING_KS] = arrays[names.AGGREGATE_KS]
    n_layers = int(run_header.get("model", {}).get("n_layers", 0))
    return Run(header=run_header, arrays=arrays, layers_done=n_layers, finished=header.get("n_prompts", 0) > 0)


def is_aggregate(run: Run) -> bool:
    return "aggregate" in run.header


def has_aggregate_baseline(run: Run) -> bool:
    return names.random_init(names.AGGREGATE_DEPTH_MEAN_K_MEAN) in run.arrays


@dataclass(frozen=True)
class AggregateView:
    """The mean matrix as a CouplingView (its ``m`` the mean m), the std of m at each entry, and how many prompts."""

    view: CouplingView
    std: np.ndarray
    n_prompts: int

    def cell(self, row: int, column: int) -> tuple[float, float, float]:
        """At [row, column]: the mean m over prompts, its std, and 1 − (mean m)² (NaN when not computed)."""
        m, c = self.view.cell(row, column)
        return m, float(self.std[row, column]), c


def aggregate_view(run: Run, *, k: int | None = None, last_token: bool = False, metric: str = "1-m²",
                   baseline: bool = False) -> AggregateView | None:
    """The mean depth-coupling matrix of an aggregate run at K = ``k`` (default the header's): token-averaged, or
    the last token's (``last_token``); trained or random-init (``baseline``). None when it has no such matrix."""
    info = run.header.get("aggregate") or {}
    ks = [int(x) for x in info.get("ks", [])]
    k = info.get("k") if k is None else int(k)
    if k not in ks:
        return None
    a = ks.index(k)
    name = "aggregate." + ("depth_last_k" if last_token else "depth_mean_k")
    prefix, other = (names.RANDOM_INIT_PREFIX, "") if baseline else ("", names.RANDOM_INIT_PREFIX)
    if prefix + name + ".mean" not in run.arrays:
        return None
    m = run.arrays[prefix + name + ".mean"][a]
    values = metric_values(m.astype(np.float64), metric)
    twin = run.arrays.get(other + name + ".mean")
    scale = off_diagonal_range(values, None if twin is None else metric_values(twin[a].astype(np.float64), metric))
    view = CouplingView(values=values, m=m, axis="layer", k=k, metric=metric, scale=scale)
    return AggregateView(view=view, std=run.arrays[prefix + name + ".std"][a], n_prompts=int(info.get("n_prompts", 0)))
