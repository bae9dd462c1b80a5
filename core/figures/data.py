"""What each figure plots, as numbers: every value is a stored array (indexed, never recomputed) or a pure function
of stored arrays from ``core.maths`` / ``core.results``, so the drawing, the CSV and the NPZ hold the same numbers.
No matplotlib here: the figures' data can be built and tested without it."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from coupling_tui.core.maths.collapse_view import MEASURES, resolutions
from coupling_tui.core.maths.run_scalar import adjacent_coupling, distance_profile
from coupling_tui.core.results import names
from coupling_tui.core.results.aggregate import aggregate_view, has_aggregate_baseline, is_aggregate
from coupling_tui.core.results.compare import common_k, map_token
from coupling_tui.core.results.run import Run, default_k, metric_values, off_diagonal_range

LINF = MEASURES.index("L∞")
"""The collapse figure plots ‖y(n+1) − y(n)‖_∞, the paper's measure."""


@dataclass(frozen=True)
class Subject:
    """One run a figure shows, with the name its legend gives it ("trained", "random-init", "A · SmolLM2 …")."""

    label: str
    run: Run
    token: int | None
    """The token its per-token figures read (None for a prompt set's aggregate, which has no tokens)."""


@dataclass(frozen=True)
class Series:
    """One line of a line figure: y against x, as stored (NaN where not computed; a log axis drops y ≤ 0)."""

    label: str
    x: np.ndarray
    y: np.ndarray
    style: str = "line"
    """"line" (points joined), "fit" (a fitted curve, no markers), "band" (a spread, thin and grey),
    "reference" (a dashed reference such as a precision's resolution)."""
    group: int = 0
    """The subject it belongs to (its colour)."""


@dataclass(frozen=True)
class Figure:
    """One figure: a heatmap (``panels``, on one colour scale) or lines (``series``, in ``facets`` sub-plots)."""

    name: str
    """Its file stem, e.g. "coupling-depth"."""
    title: str
    xlabel: str
    ylabel: str
    series: tuple[Series, ...] = ()
    panels: tuple[tuple[str, np.ndarray], ...] = ()
    """Heatmap panels: (label, stored m [L, L], row = the Jacobian's layer, column = the basis's layer)."""
    metric: str = "m"
    """The heatmap's colour: "m" or "1-m²" of the stored m (core.results.run.metric_values)."""
    scale: tuple[float, float] = (float("nan"), float("nan"))
    """The heatmap's colour range: every panel's off-diagonal values (one scale for all)."""
    ylog: bool = False
    xlog: bool = False
    facets: tuple[str, ...] = ()
    """Sub-plot titles of a line figure; a series' ``group`` is then its facet (empty: one plot)."""
    note: str = ""
    """What the numbers are, written into the data files' headers."""
    ymin: float | None = None
    """A lower limit of a linear y axis (a share starts at 0); None: matplotlib's."""
    extra: dict[str, np.ndarray] = field(default_factory=dict)
    """Further stored numbers behind the figure (e.g. how many entries each mean averaged), for the data files."""


def subjects_of(opened, token: int | None = None) -> list[Subject]:
    """The runs to draw from what ``coupling-tui figures`` opened: a run (and its random-init baseline, when it has
    one), a prompt set's aggregate (and its baseline), or two runs A and B. ``token``: A's token (default: the
    last, where the papers measure); B's is mapped to it (core.results.compare.map_token)."""
    from coupling_tui.core.results.compare import random_init_run, run_name
    from coupling_tui.core.results.comparison import Comparison
    from coupling_tui.core.results.prompt_set import PromptSet

    if isinstance(opened, PromptSet):
        agg = opened.aggregate
        return [Subject("trained", agg, None)] + ([Subject("random-init", agg, None)]
                                                  if has_aggregate_baseline(agg) else [])
    if isinstance(opened, Comparison):
        a, b = opened.runs
        ta = _token(a, token)
        return [Subject(f"A · {run_name(a)}", a, ta), Subject(f"B · {run_name(b)}", b, map_token(ta, a, b))]
    t = _token(opened, token)
    baseline = random_init_run(opened)
    return [Subject("trained", opened, t)] + ([Subject("random-init", baseline, t)] if baseline else [])


def _token(run: Run, token: int | None) -> int:
    n = run.n_tokens
    if token is None:
        return max(n - 1, 0)
    if not 0 <= token < n:
        from coupling_tui.core.errors import UserError

        raise UserError(f"--token {token} is out of range: this run has {n} tokens, so use 0 to {n - 1}")
    return token


def depth_matrices(subjects: list[Subject], k: int | None) -> tuple[int, list[tuple[Subject, np.ndarray]]] | None:
    """The depth-coupling matrix m_K [L, L] each subject has at one K shared by all (``k``, default the first
    subject's shown K): the token's stored matrix, or an aggregate's mean over prompts of the last token's matrix;
    None when they share no K."""
    runs = [s.run for s in subjects]
    baseline_twin = len(subjects) == 2 and subjects[1].label == "random-init"
    shared = runs[0].coupling_ks if baseline_twin or len(runs) == 1 else None
    if shared is None:
        k = common_k(runs[0], runs[1], k)
    elif shared:
        k = default_k(runs[0].header.get("coupling"), shared) if k is None else k
        k = k if k in shared else None
    else:
        k = None
    if k is None:
        return None
    out = []
    for s in subjects:
        if is_aggregate(s.run):
            view = aggregate_view(s.run, k=k, last_token=True, baseline=s.label == "random-init")
            m = None if view is None else view.view.m
        else:
            view = s.run.coupling_view(k=k, token=s.token, metric="m")
            m = None if view is None else view.m
        if m is not None:
            out.append((s, m))
    return (k, out) if out else None


def _where(s: Subject) -> str:
    return "mean over prompts of the last token's matrix" if s.token is None else f"token {s.token}"


def coupling_figures(subjects: list[Subject], k: int | None, metric: str) -> list[Figure]:
    """The depth-coupling heatmap (every subject on one colour scale), m(l, l+1) against depth and m against
    |i − j|."""
    found = depth_matrices(subjects, k)
    if found is None and k is not None:
        from coupling_tui.core.errors import UserError

        ks = sorted(set.intersection(*(set(s.run.coupling_ks) for s in subjects)))
        raise UserError(f"--k {k}: no depth coupling at K = {k} here",
                        f"K stored: {', '.join(map(str, ks))}" if ks else "this run has no depth coupling")
    if found is None:
        return []
    k, matrices = found
    where = _where(matrices[0][0])
    scale = off_diagonal_range(*(metric_values(m.astype(np.float64), metric) for _, m in matrices))
    shown = "1 − m_K²" if metric == "1-m²" else "m_K"
    heatmap = Figure(
        "coupling-depth", f"Depth coupling, K = {k} ({where})", "basis: block j (column)",
        "Jacobian: block i (row)", panels=tuple((s.label, m) for s, m in matrices), metric=metric, scale=scale,
        note=f"m_K(J_i, J_j) at K = {k}, {where}: row i = the Jacobian's block, column j = the basis's block, as "
             f"stored; the colour shows {shown}")
    adjacent, distance, counts = [], [], {}
    for n, (s, m) in enumerate(matrices):
        layers, forward, backward = adjacent_coupling(m)
        adjacent += [Series(f"{s.label}: m(l, l+1)", layers, forward, group=n),
                     Series(f"{s.label}: m(l+1, l)", layers, backward, style="reference", group=n)]
        gaps, means, count = distance_profile(m)
        distance.append(Series(s.label, gaps, means, group=n))
        counts[f"{s.label}: entries"] = count
    return [heatmap,
            Figure("coupling-adjacent", f"Adjacent coupling, K = {k}", "block l", r"$m_K$ (0 = coupled)",
                   series=tuple(adjacent),
                   note=f"m_K(J_l, J_l+1) (block l's Jacobian in block l+1's bases) and m_K(J_l+1, J_l), K = {k}, "
                        f"{where}: the entries just above and below the diagonal of the depth matrix"),
            Figure("coupling-distance", f"Coupling against block distance, K = {k}", r"$|i - j|$ (blocks)",
                   r"mean $m_K$ (0 = coupled)", series=tuple(distance), extra=counts,
                   note=f"mean of m_K(J_i, J_j) over the ordered pairs with |i − j| = distance (both directions, "
                        f"core.maths.run_scalar.distance_profile), K = {k}, {where}")]


def trajectory_figures(subjects: list[Subject]) -> list[Figure]:
    """‖x^l‖ against depth with its exponential fit (and, for one run, every token's p10/p50/p90), and σ₁ of each
    block's Jacobian against depth, at the subjects' tokens."""
    norms, sigma = [], []
    for n, s in enumerate(subjects):
        run = s.run
        if s.token is None or names.TRAJECTORY_NORMS not in run.arrays:
            continue
        values = run.norms(s.token)
        norms.append(Series(f"{s.label}: token {s.token}", np.arange(values.size), values, group=n))
        line = run.growth_line(s.token)
        if line is not None:
            factor = run.trajectory_values(s.token)["growth"]
            label = f"{s.label}: fit" + (f" (×{factor:.3f}/block)" if np.isfinite(factor) else "")
            norms.append(Series(label, np.asarray(line[0]), line[1], style="fit", group=n))
        if len(subjects) == 1 and run.n_tokens > 1:
            for label, band in zip(("every token: p10", "every token: p50", "every token: p90"), run.norm_band()):
                norms.append(Series(label, np.arange(band.size), band, style="band", group=n))
        if names.JACOBIAN_SINGULAR_VALUES in run.arrays:
            s1 = run.arrays[names.JACOBIAN_SINGULAR_VALUES][:, s.token, 0]
            sigma.append(Series(f"{s.label}: token {s.token}", np.arange(s1.size), s1, group=n))
    out = []
    if norms:
        out.append(Figure("norms-depth", "Hidden-state norm against depth", "depth l (0 = embeddings)",
                          r"$\|x^l\|_2$", series=tuple(norms), ylog=True,
                          note="‖x_t^l‖₂ of the residual stream after block l (depth 0 = the embeddings), pre-final-"
                               "norm, as stored; the fit exp(a + b·l) of log‖x^l‖ on l from the run's growth_start "
                               "(core.results.run.Run.growth_line); the band: percentiles over every token"))
    if sigma:
        out.append(Figure("sigma1-depth", "Top singular value against depth", "block l", r"$\sigma_1(J^l)$",
                          series=tuple(sigma), ylog=True,
                          note="σ₁ of block l's residual-branch Jacobian at the token, as stored "
                               "(jacobian.singular_values[l, t, 0])"))
    return out


def collapse_figures(subjects: list[Subject]) -> list[Figure]:
    """Per run with collapse data: the pair difference ‖y(n+1) − y(n)‖_∞ against n per family, float32 and the low
    precision with its resolution; and the sensitivity share against the input position."""
    out = []
    for n, s in enumerate(subjects):
        run, a = s.run, s.run.arrays
        info = run.header.get("collapse") or {}
        if not info or names.COLLAPSE_DIFF not in a:
            continue
        suffix = "" if n == 0 else f"-{'ab'[n] if len(subjects) == 2 else n}"
        low = info.get("low_dtype", "bfloat16")
        ref = info.get("reference_dtype", "float32")
        lengths = a[names.COLLAPSE_LENGTHS]
        series = []
        for f, family in enumerate(info["families"]):
            series += [Series(ref, lengths, a[names.COLLAPSE_DIFF][f, :, LINF], group=f),
                       Series(low, lengths, a[names.COLLAPSE_DIFF_LOW][f, :, LINF], group=f),
                       Series(f"{low} resolution", lengths, resolutions(a[names.COLLAPSE_FINAL][f], low, LINF),
                              style="reference", group=f)]
        out.append(Figure(f"collapse-diff{suffix}", f"Representational collapse ({s.label})", "n (repeats)",
                          r"$\|y(n{+}1) - y(n)\|_\infty$", series=tuple(series), ylog=True, xlog=True,
                          facets=tuple(info["families"]),
                          note=f"max_k |y_k(n+1) − y_k(n)| of the last token's last-layer state before the final "
                               f"norm, in {ref} and {low} as stored (collapse.diff, collapse.diff_low [..., L∞]); "
                               f"{low}'s resolution u·max_k |y_k(n)| (core.maths.collapse_view.resolution)"))
        sens = a.get(names.COLLAPSE_SENSITIVITY)
        sinfo = info.get("sensitivity")
        if sens is not None and sens.size and sinfo:
            out.append(Figure(f"sensitivity-position{suffix}", f"Sensitivity to each input position ({s.label})",
                              "input position i", r"$\|\partial y / \partial e_i\|$, share of the total",
                              ymin=0.0,
                              series=(Series(f"{sinfo['family']}, n = {sinfo['n']}", np.arange(sens.size), sens),),
                              note=f"‖∂y/∂e_i‖ / Σ_j ‖∂y/∂e_j‖ of the last state to each input embedding "
                                   f"({sinfo['family']}, n = {sinfo['n']}, {sinfo.get('method')}), as stored "
                                   f"(collapse.sensitivity)"))
    return out


def figures_of(opened, *, token: int | None = None, k: int | None = None, metric: str = "1-m²") -> list[Figure]:
    """Every figure the opened run, set or pair has data for, in a fixed order."""
    subjects = subjects_of(opened, token)
    return [*coupling_figures(subjects, k, metric), *trajectory_figures(subjects), *collapse_figures(subjects)]
