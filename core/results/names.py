"""The one place that spells the names of a results file's arrays (docs/results-format.md gives their shapes and
meaning): the engine's producers, the file checks (``results.run_file``), ``Run``, the aggregate and the panes all
use these constants, so a name is written once. Torch-free, import-free."""

RANDOM_INIT_PREFIX = "random_init."
"""Arrays of the untrained (random-init) baseline carry this prefix before the trained model's names."""
COLLAPSE_PREFIX = "collapse."
"""Every array of the collapse stage starts with this."""

# -- The prompt's tokens.
TOKENS_IDS = "tokens.ids"

# -- The residual stream and its trajectory fits (every block, the last token's fits).
TRAJECTORY_EXPODISTANCE_CV = "trajectory.expodistance_cv"
TRAJECTORY_EXPODISTANCE_FACTOR = "trajectory.expodistance_factor"
TRAJECTORY_EXPODISTANCE_R2 = "trajectory.expodistance_r2"
TRAJECTORY_FIDELITY = "trajectory.fidelity"
TRAJECTORY_GROWTH_FACTOR = "trajectory.growth_factor"
TRAJECTORY_GROWTH_R2 = "trajectory.growth_r2"
TRAJECTORY_HIDDEN = "trajectory.hidden"
TRAJECTORY_LSS = "trajectory.lss"
TRAJECTORY_NORMS = "trajectory.norms"

# -- Per-(layer, token) block-Jacobian summaries: top-K singular values and vectors, Frobenius norms, the 1/σ₁ fit.
JACOBIAN_U = "jacobian.U"
JACOBIAN_V = "jacobian.V"
JACOBIAN_FROBENIUS = "jacobian.frobenius"
JACOBIAN_SIGMA1_FIT_INTERCEPT = "jacobian.sigma1_fit_intercept"
JACOBIAN_SIGMA1_FIT_R2 = "jacobian.sigma1_fit_r2"
JACOBIAN_SIGMA1_FIT_SLOPE = "jacobian.sigma1_fit_slope"
JACOBIAN_SINGULAR_VALUES = "jacobian.singular_values"
JACOBIAN_VECTOR_TOKENS = "jacobian.vector_tokens"

# -- Coupling matrices m_K: depth (layer×layer per token), token (token×token per layer), token pairs, variants.
COUPLING_DEPTH = "coupling.depth"
COUPLING_DEPTH_K = "coupling.depth_k"
COUPLING_DEPTH_MEAN_K = "coupling.depth_mean_k"
COUPLING_DEPTH_TRACE_K = "coupling.depth_trace_k"
COUPLING_DEPTH_VJU_K = "coupling.depth_vju_k"
COUPLING_DEPTH_VJU_TRACE_K = "coupling.depth_vju_trace_k"
COUPLING_KS = "coupling.ks"
COUPLING_TOKEN_K = "coupling.token_k"
COUPLING_TOKEN_PAIR_K = "coupling.token_pair_k"
COUPLING_TOKEN_PAIRS = "coupling.token_pairs"

# -- Context coupling (cross-token Jacobians) at a few layers; per-side names come from ``context_name``.
CONTEXT_LAYERS = "context.layers"
CONTEXT_TOKENS = "context.tokens"

# -- Representational collapse and over-squashing (the collapse stage).
COLLAPSE_DIFF = "collapse.diff"
COLLAPSE_DIFF_LOW = "collapse.diff_low"
COLLAPSE_FINAL = "collapse.final"
COLLAPSE_FINAL_NORMED = "collapse.final_normed"
COLLAPSE_IDENTICAL_LOW = "collapse.identical_low"
COLLAPSE_LENGTHS = "collapse.lengths"
COLLAPSE_N_TOKENS = "collapse.n_tokens"
COLLAPSE_NEXT_IDS = "collapse.next_ids"
COLLAPSE_NEXT_IDS_LOW = "collapse.next_ids_low"
COLLAPSE_SENSITIVITY = "collapse.sensitivity"
COLLAPSE_SENSITIVITY_RAW = "collapse.sensitivity_raw"

# -- A prompt set's aggregate (mean ± std over prompts); names from ``aggregate_name``.
AGGREGATE_DEPTH_MEAN_K_MEAN = "aggregate.depth_mean_k.mean"
AGGREGATE_KS = "aggregate.ks"

CONTEXT_SIDES = ("out", "in")
"""Context coupling's two views: Jacobians sharing the output token (``out``) or the input token (``in``)."""


def random_init(name: str) -> str:
    """The random-init baseline's array of the same quantity as ``name``."""
    return RANDOM_INIT_PREFIX + name


def context_name(side: str, what: str) -> str:
    """``context.<side>_<what>``: ``side`` in CONTEXT_SIDES, ``what`` one of ``k``, ``frobenius``,
    ``singular_values``."""
    if side not in CONTEXT_SIDES:
        raise ValueError(f"context side must be one of {CONTEXT_SIDES}, got {side!r}")
    return f"context.{side}_{what}"


def aggregate_name(name: str, stat: str, prefix: str = "") -> str:
    """``[random_init.]aggregate.<name>.<stat>``: ``stat`` is ``mean`` or ``std``."""
    return f"{prefix}aggregate.{name}.{stat}"

# Header keys of a run file's progress (checked by core/results/schema.py).
HEADER_LAYERS_DONE = "layers_done"
HEADER_STEPS_DONE = "steps_done"

# -- Header keys (the run header and a prompt set's index; their types are declared in core/results/schema.py).
H_MODEL, H_N_LAYERS, H_D_MODEL = "model", "n_layers", "d_model"
H_TOKENS, H_TEXT, H_IDS, H_ID = "tokens", "text", "ids", "id"
H_STAGES, H_NAME, H_STEPS = "stages", "name", "steps"
H_COUPLING, H_JACOBIAN, H_CONTEXT, H_COLLAPSE, H_FITS = "coupling", "jacobian", "context", "collapse", "fits"
H_RANDOM_INIT, H_NEXT_TOKEN, H_PARAMS, H_SECONDS, H_COMPLETE = "random_init", "next_token", "params", "seconds", "complete"
H_KS, H_K, H_TOP_K, H_LAYERS = "ks", "k", "top_k", "layers"
H_FAMILIES, H_NEXT_TEXT, H_SENSITIVITY, H_TOKENIZER, H_LENGTHS = "families", "next_text", "sensitivity", "tokenizer", "lengths"
H_GROWTH_START, H_EXPODISTANCE_START, H_LSS_START, H_SIGMA1_START = (
    "growth_start", "expodistance_start", "lss_start", "sigma1_start")
H_PROMPTS, H_AGGREGATE, H_LABEL, H_FILE, H_N_TOKENS, H_N_PROMPTS = (
    "prompts", "aggregate", "label", "file", "n_tokens", "n_prompts")
H_SCALAR = "scalar"
H_CONVENTION = "convention"
"""``params.convention``: ``--convention`` (paper or official); absent in files written before it (= paper)."""
H_COUPLING_SCALAR = "coupling_scalar"
"""Run header (at the end): the run scalar pooled over every token's depth matrix (``tokens`` = "all")."""
H_COUPLING_SCALAR_LAST = "coupling_scalar_last_token"
"""Run header (at the end, runs since issue 18): the last token's run scalar, the papers' (``tokens`` = "last")."""

# -- A sweep directory (core.results.sweep_table): its table, the same rows as CSV and as JSON with the fits.
SWEEP_CSV, SWEEP_JSON = "sweep.csv", "sweep.json"
SWEEP_KIND = "coupling-tui-sweep"
"""``sweep.json``'s ``format``."""
H_N_PARAMS = "n_params"
"""``model.n_params``: the model's parameter count (runs since the sweep, issue 19)."""
