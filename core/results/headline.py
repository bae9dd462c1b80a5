"""A run's headline: its run scalar pooled two ways, each named (docs/metrics.md "One number per run").

- **last token** (shown first): the mean over i ≠ j of the last token's depth matrix m_K[T − 1] — the papers' and
  the official code's quantity (``core.maths.run_scalar.last_token_scalar``);
- **all-token mean**: the same mean over every token's matrix, the attention-sink token 0 included
  (``all_tokens_scalar``; the header's ``coupling_scalar``).

Both are recomputed from the stored per-token matrices (``coupling.depth_k``, else ``coupling.depth`` at the header's
K), so a file written before the last token's scalar existed shows it too; a file that keeps neither falls back to
its header's scalars, and says "not in this file" for the one it lacks. Torch-free: the explorer, ``compute``'s
summary and the Compare table all read this."""

from __future__ import annotations

from dataclasses import dataclass

from coupling_tui.core.maths.run_scalar import ALL_TOKENS, LABELS, LAST_TOKEN, all_tokens_scalar, last_token_scalar
from coupling_tui.core.results import names
from coupling_tui.core.results.run import Run, default_k

NOT_IN_FILE = "not in this file"
PENDING = "pending"
PAPERS = "the papers'"
"""What the last token's scalar is called beside its label."""


@dataclass(frozen=True)
class Headline:
    """One run's two run scalars at one K (each a ``run_scalar`` dict with ``tokens``, or None) and what is known
    about them."""

    k: int
    last: dict | None
    """The last token's (the papers'): ``last_token_scalar``; None when missing (see ``last_note``)."""
    all: dict | None
    """Every token's: ``all_tokens_scalar``; None when missing (see ``all_note``)."""
    n_tokens: int
    source: str
    """"arrays" (recomputed from the stored matrices) or "header" (the file keeps only its header's scalars)."""
    complete: bool
    """False while layers are still missing (NaN entries skipped: the values so far)."""

    @property
    def missing(self) -> str:
        """What a missing value reads as: "not in this file" (a header-only file) or "pending" (not computed yet)."""
        return NOT_IN_FILE if self.source == "header" else PENDING

    def value(self, where: str, key: str = "offdiag") -> float | None:
        scalar = self.last if where == LAST_TOKEN else self.all
        return None if scalar is None else scalar.get(key)


def run_headline(run: Run, k: int | None = None, baseline: bool = False) -> Headline | None:
    """The headline of ``run`` (its random-init baseline's with ``baseline``) at K = ``k`` (default the header's
    ``coupling.k``); None when the run has no coupling at that K, stored or in its header."""
    prefix = names.RANDOM_INIT_PREFIX if baseline else ""
    ks = [int(x) for x in run.arrays.get(prefix + names.COUPLING_KS, run.arrays.get(names.COUPLING_KS, []))]
    header_k = default_k(run.header.get(names.H_COUPLING), ks)
    k = header_k if k is None else int(k)
    if k is None:
        return None
    depth = None
    if prefix + names.COUPLING_DEPTH_K in run.arrays and k in ks:
        depth = run.arrays[prefix + names.COUPLING_DEPTH_K][ks.index(k)]
    elif prefix + names.COUPLING_DEPTH in run.arrays and k == header_k:
        depth = run.arrays[prefix + names.COUPLING_DEPTH]
    if depth is not None and depth.ndim == 3 and depth.shape[0]:
        last, every = last_token_scalar(depth, k), all_tokens_scalar(depth, k)
        return Headline(k=k, last=last if last["offdiag"] is not None else None,
                        all=every if every["offdiag"] is not None else None, n_tokens=int(depth.shape[0]),
                        source="arrays", complete=bool(run.finished))
    stored = (run.header.get(names.H_RANDOM_INIT) or {}) if baseline else run.header
    last, every = stored.get(names.H_COUPLING_SCALAR_LAST), stored.get(names.H_COUPLING_SCALAR)
    last, every = (s if s and s.get("k") == k and s.get("offdiag") is not None else None for s in (last, every))
    if last is None and every is None:
        return None
    n = (every or {}).get("matrices") or run.n_tokens
    return Headline(k=k, last=last, all=every, n_tokens=int(n), source="header", complete=True)


def _num(x: float | None) -> str:
    return "–" if x is None else f"{x:.3f}"


KEY_NAMES = {"offdiag": "off-diag", "adjacent": "adjacent |i−j|=1", "far": "far |i−j|≥10"}


def values_text(h: Headline, key: str = "offdiag", detail: bool = True) -> str:
    """"last token 0.958 (the papers') · all-token mean 0.964 (5 tokens)" (without the parentheses when not
    ``detail``); a missing value reads "not in this file" or "pending"."""
    parts = []
    for where, extra in ((LAST_TOKEN, f" ({PAPERS})"), (ALL_TOKENS, f" ({h.n_tokens} tokens)")):
        value = h.value(where, key)
        parts.append(f"{LABELS[where]} {h.missing if value is None else _num(value) + (extra if detail else '')}")
    return " · ".join(parts)


def headline_text(h: Headline, key: str = "offdiag") -> str:
    """One line, the last token's first: "m_10 off-diag · last token 0.958 (the papers') · all-token mean 0.964
    (5 tokens)"; an unfinished run's ends "(so far)"."""
    return f"m_{h.k} {KEY_NAMES[key]} · {values_text(h, key)}" + ("" if h.complete else " (so far)")


def aggregate_headline_text(aggregate: dict, baseline: bool = False, key: str = "offdiag") -> str | None:
    """A prompt set's headline from its aggregate header (core.results.aggregate): the mean ± sample std over
    prompts of each prompt's last-token and all-token scalar at the aggregate's K, the last token's first; None
    without a scalar."""
    part = ((aggregate.get(names.H_RANDOM_INIT) or {}) if baseline else aggregate).get(names.H_SCALAR)
    if not part:
        return None
    pieces = []
    for where, extra in ((LAST_TOKEN, f" ({PAPERS})"), (ALL_TOKENS, "")):
        entry = (part.get(where) or {}).get(key)
        if not entry or entry.get("mean") is None:
            pieces.append(f"{LABELS[where]} {NOT_IN_FILE if not entry else PENDING}")
        else:
            pieces.append(f"{LABELS[where]} {_num(entry['mean'])} ± {_num(entry.get('std'))}{extra}")
    return (f"m_{aggregate.get(names.H_K)} off-diag, mean ± std over {aggregate.get(names.H_N_PROMPTS)} prompts · "
            + " · ".join(pieces))
