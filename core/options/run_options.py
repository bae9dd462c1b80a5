"""``RunOptions``: everything a run is asked to do besides the model and the prompt, in one frozen, typed object,
checked once where it is built (the same one-line UserError messages as the flags give). The command line builds it
(``core.cli.common.run_options``), ``engine.stream`` runs it, the cost estimate (``core.cli.cost_check``) sizes it
and the results header records it (``header_params``). Its defaults are the flags' defaults; they live here so the
engine, the solvers and the argument groups share them. Pure Python."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from types import MappingProxyType
from typing import Any, Mapping

from coupling_tui.core.errors import UserError
from coupling_tui.core.options import coupling as coupling_options
from coupling_tui.core.options.collapse import CollapseSpec
from coupling_tui.core.options.layers import LayerSpec, parse_layers, select_layers
from coupling_tui.core.options.prompts import DEFAULT_MAX_TOKENS, check_max_tokens

DEFAULT_TOP_K = 50
"""Singular triplets kept per block Jacobian unless ``--top-k`` says otherwise (the official code's largest K)."""
DEFAULT_VECTOR_BUDGET_MB = 100.0
"""Results-file megabytes that singular vectors may take (see ``layers.vector_tokens``)."""
DEFAULT_HISTORY_MB = 4096.0
"""Dense-J history budget (``--history-mb``): above it the upper triangle comes from a second pass instead."""
SOLVERS = ("auto", "scipy", "torch", "subspace")
"""``core.linalg.spectra.top_k``'s solvers (``--topk-solver``)."""
JACOBIAN_METHODS = ("auto", "closed-form", "autodiff")
"""``--jacobian-method``: closed form where it exists (auto), or generic autodiff."""
CONVENTIONS = ("paper", "official")
"""``--convention`` (docs/metrics.md, "Two conventions"): ``paper`` = every block's clean residual branch (the
paper's definition); ``official`` = what sugolov/coupling's released code computes (the last block through the
final norm, K ∈ {10, 30, 50}, the linearisation over L−1 blocks to the post-norm state, a 1-based σ₁ fit)."""
DEFAULT_CONVENTION = "paper"


@dataclass(frozen=True)
class RunOptions:
    """What ``engine.stream`` computes on a loaded model and a prompt. ``token_pairs`` and ``context_layers`` are
    the flags' text or explicit lists (resolved against the model's depth by ``core.options.coupling``); ``layers``
    is a ``--layers`` value (its text or parsed ``LayerSpec``) or block indices, None = every block; ``convention``
    is one of CONVENTIONS; ``params`` is
    what the results header records besides these options (the model flags, the prompt file, …), read-only."""

    max_tokens: int = DEFAULT_MAX_TOKENS
    top_k: int = DEFAULT_TOP_K
    jacobian_method: str = "auto"
    vector_budget_mb: float = DEFAULT_VECTOR_BUDGET_MB
    history_mb: float = DEFAULT_HISTORY_MB
    token_coupling: bool = True
    vju: bool = False
    token_pairs: str | tuple[tuple[int, int], ...] | None = None
    context_layers: str | tuple[int, ...] | None = None
    context_tokens: tuple[int, int] = (0, -1)
    collapse: CollapseSpec | None = None
    layers: LayerSpec | tuple[int, ...] | None = None
    topk_solver: str = "auto"
    convention: str = DEFAULT_CONVENTION
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_max_tokens(self.max_tokens)
        if self.top_k < 0:
            raise UserError(f"--top-k must be 0 or more (got {self.top_k})")
        if self.topk_solver not in SOLVERS:
            raise UserError(f"unknown --topk-solver {self.topk_solver!r}", "use one of " + ", ".join(SOLVERS))
        if self.convention not in CONVENTIONS:
            raise UserError(f"unknown --convention {self.convention!r}: use " + " or ".join(CONVENTIONS))
        if self.jacobian_method not in JACOBIAN_METHODS:
            raise UserError(f"unknown Jacobian method {self.jacobian_method!r} "
                            f"(choose from {', '.join(JACOBIAN_METHODS)})")
        for flag, name in (("--token-pairs", "token_pairs"), ("--context-layers", "context_layers")):
            value = getattr(self, name)
            if isinstance(value, str):
                coupling_options.check_syntax(value, flag)
            elif value is not None:
                value = tuple(tuple(int(i) for i in p) for p in value) if name == "token_pairs" else \
                    tuple(int(i) for i in value)
                object.__setattr__(self, name, value)
        a, b = self.context_tokens
        object.__setattr__(self, "context_tokens", (int(a), int(b)))
        if isinstance(self.layers, str):
            object.__setattr__(self, "layers", parse_layers(self.layers))
        elif self.layers is not None and not isinstance(self.layers, LayerSpec):
            object.__setattr__(self, "layers", tuple(sorted({int(b) for b in self.layers})))
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))

    def blocks(self, n_layers: int) -> list[int] | None:
        """The sorted block indices ``layers`` names in a model of ``n_layers`` blocks; None = every block (also
        when ``layers`` names them all). Blocks outside the model are a UserError."""
        if self.layers is None:
            return None
        if isinstance(self.layers, LayerSpec):
            return select_layers(self.layers, n_layers)
        chosen = list(self.layers)
        if not chosen or chosen[0] < 0 or chosen[-1] >= n_layers:
            raise UserError(f"layers {chosen} outside the model's blocks 0..{n_layers - 1}")
        return None if len(chosen) == n_layers else chosen

    def pairs(self, n_layers: int) -> list[tuple[int, int]]:
        """The token-pair layers (``token_pairs``) in a model of ``n_layers`` blocks, bounded to ``blocks``."""
        pairs = coupling_options.token_pairs(self.token_pairs, n_layers)
        layers = self.blocks(n_layers)
        if layers is not None:                      # --layers: pairs of two selected blocks only
            pairs = [(r, c) for r, c in pairs if r in layers and c in layers]
        return pairs

    def context_blocks(self, n_layers: int) -> list[int]:
        """The context-coupling layers (``context_layers``) in a model of ``n_layers`` blocks."""
        return coupling_options.context_layers(self.context_layers, n_layers)

    def header_params(self, n_layers: int, *, top_k: int, baseline: bool) -> dict:
        """The results header's ``params``: these options as run on a model of ``n_layers`` blocks (``top_k`` the K
        the engine kept, ``baseline`` whether a random-init baseline ran), then ``params``."""
        return {"max_tokens": self.max_tokens, "top_k": top_k, "jacobian_method": self.jacobian_method,
                "vector_budget_mb": self.vector_budget_mb, "history_mb": self.history_mb,
                "token_coupling": self.token_coupling, "vju": self.vju,
                "token_pairs": [list(p) for p in self.pairs(n_layers)], "context_layers": self.context_blocks(n_layers),
                "baseline": "random-init" if baseline else None, "layers": self.blocks(n_layers),
                "convention": self.convention, **self.params}

    def __reduce__(self):
        """Pickled (a Ray task's argument, core.engine.sweep_ray) with ``params`` as a plain dict: a read-only
        mapping proxy does not pickle."""
        state = {f.name: getattr(self, f.name) for f in fields(self)}
        state["params"] = dict(self.params)
        return _rebuild, (state,)

    def with_params(self, **recorded: Any) -> RunOptions:
        """A copy whose ``params`` also (or instead) record ``recorded``."""
        return replace(self, params={**self.params, **recorded})



def _rebuild(state: dict) -> RunOptions:
    return RunOptions(**state)
