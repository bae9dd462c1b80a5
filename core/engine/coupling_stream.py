"""Exact depth and token coupling of one run, filled in as the engine's layers arrive.

The depth-coupling entry [i, j] = m_K(J_i, J_j) needs J_i *dense* (the row) and only the top-K bases of J_j (the
column), per token. When block i arrives the engine has J_i dense and the bases of every block ≤ i, so

- row i, j ≤ i (the lower triangle and the diagonal) is filled at once;
- column i, j < i (the upper triangle) needs the earlier dense J_j: they are kept in a *history* when
  L·T·d² numbers fit the history budget (the default run: 30 × 52 × 576² float32 = 2.1 GB), and column i is
  filled at once too; otherwise a **second pass** recomputes each J_j after the last layer (the Jacobian cost a
  second time, no top-K) and fills row j's upper part.

Every K ≤ K_max comes from the leading k×k block of the one K_max×K_max product M = U_{j}ᵀ J_i V_{j}, via 2-D
cumulative sums of (|M| − diag s_i)². Cost per (i, j, token): 2·d²·K_max + 2·d·K_max² FLOPs (36 MFLOP at
d = 576, K_max = 50), L²·T of them per run, plus T² per layer for token coupling at the same layer.

Optional, at the same cost per entry: the "vju" variant of depth coupling (M' = V_jᵀ J_i U_j, bases exchanged; a
second product, about the depth coupling's time again) and token coupling between two different layers
(``pairs``: entry [t, t'] = m(J_r at t, J_c at t'), computed when the later of r, c arrives, or in the second
pass when r < c and no history is kept).

The bases of every (layer, token) are held for the whole run: L·T·d·K_max·2 numbers (360 MB for the default run).
Formulas and their reading: docs/metrics.md; the plain reference implementation: core/linalg/coupling.py.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from coupling_tui.core.options.run_options import DEFAULT_HISTORY_MB

COUPLING_KS = (8, 10, 30, 50)
"""K values stored: the official code's (10, 30, 50) and the K = 8 of the research measurements."""
OFFICIAL_KS = (10, 30, 50)
"""K values of ``--convention official``: the official code's ``num_sing_vecs``."""
DEFAULT_COUPLING_K = 50
"""K shown first and stored as ``coupling.depth``: the official notebook's plot uses K = 50."""
_J_CHUNK = 8
"""Blocks j multiplied against one J_i at once (bounds the [j, T, d, K] intermediate)."""


def coupling_ks(top_k: int, convention: str = "paper") -> list[int]:
    """The K values a run with ``top_k`` singular triplets stores: those of COUPLING_KS (OFFICIAL_KS for
    ``convention`` "official") ≤ top_k, else [top_k]."""
    ks = [k for k in (OFFICIAL_KS if convention == "official" else COUPLING_KS) if k <= top_k]
    return ks or ([top_k] if top_k > 0 else [])


def display_k(ks) -> int:
    """The K stored as ``coupling.depth``: DEFAULT_COUPLING_K when computed, else the largest."""
    ks = [int(k) for k in ks]
    return DEFAULT_COUPLING_K if DEFAULT_COUPLING_K in ks else max(ks)


def m_for_ks(M: torch.Tensor, s: torch.Tensor, ks) -> tuple[torch.Tensor, torch.Tensor]:
    """m_K for every K of ``ks`` from M [..., Kc, Kc] = U_jᵀ J_i V_j and J_i's descending singular values
    s [..., ≥Kc]: (norm, trace), each [len(ks), ...]; norm divides by ‖s_{1..K}‖₂, trace by Σ s_{1..K}."""
    kc = M.shape[-1]
    s = s[..., :kc]
    sq = (M.abs() - torch.diag_embed(s)).square()
    block = sq.cumsum(-1).cumsum(-2)                            # [..., a, b] = Σ over the leading (a+1)×(b+1)
    idx = torch.as_tensor([k - 1 for k in ks], device=M.device)
    diff = block[..., idx, idx].clamp_min(0).sqrt()             # [..., nK]
    norm = diff / s.square().cumsum(-1)[..., idx].sqrt()
    trace = diff / s.cumsum(-1)[..., idx]
    return norm.movedim(-1, 0), trace.movedim(-1, 0)


def pair_coupling(J: torch.Tensor, s: torch.Tensor, U: torch.Tensor, V: torch.Tensor, ks, *,
                  variant: str = "ujv") -> tuple[torch.Tensor, torch.Tensor]:
    """m_K(J[r], bases of column c) for every row matrix J [n, d, d] (descending singular values s [n, ≥Kc]) and
    every column basis U, V [m, d, Kc] (variant "vju": U and V exchanged): (norm, trace), each [len(ks), n, m].
    One GEMM per chunk of rows against every column's basis side by side."""
    left, right = (U, V) if variant == "ujv" else (V, U)
    m_cols, d, kc = right.shape
    right_all = right.permute(1, 0, 2).reshape(d, m_cols * kc)
    rows = max(1, int(5e7 // max(1, m_cols * d * kc)))
    norms, traces = [], []
    for r0 in range(0, J.shape[0], rows):
        r1 = min(r0 + rows, J.shape[0])
        X = (J[r0:r1] @ right_all).reshape(r1 - r0, d, m_cols, kc)          # J_r R_c for every c
        M = torch.einsum("cdk,rdcl->rckl", left, X)                           # [rows, m, Kc, Kc]
        norm, trace = m_for_ks(M, s[r0:r1].unsqueeze(1), ks)
        norms.append(norm)
        traces.append(trace)
    return torch.cat(norms, 1), torch.cat(traces, 1)


def _times_bases(J: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
    """J V_b for every block b: J [n, d, d], V [B, n, d, K] -> [B, n, d, K], as one batched GEMM over the B·K
    columns side by side (broadcasting J against V would copy J B times)."""
    B, n, d, k = V.shape
    X = J @ V.permute(1, 2, 0, 3).reshape(n, d, B * k)
    return X.reshape(n, d, B, k).permute(2, 0, 1, 3)


class CouplingStream:
    """Holds the top-K bases of every (layer, token) seen so far and, when it fits, their dense J; turns each new
    layer's J into depth-coupling entries (and same-layer token coupling). Host arrays are float32 numpy."""

    def __init__(self, n_layers: int, n_tokens: int, d: int, ks, *, dtype: torch.dtype, device,
                 history_mb: float = DEFAULT_HISTORY_MB, token_coupling: bool = True, vju: bool = False,
                 pairs=None):
        self.ks = [int(k) for k in ks]
        self.kc = max(self.ks)
        self.n_layers, self.n_tokens, self.d = n_layers, n_tokens, d
        self.token_coupling = token_coupling
        opts = {"dtype": dtype, "device": device}
        self.U = torch.zeros((n_layers, n_tokens, d, self.kc), **opts)
        self.V = torch.zeros((n_layers, n_tokens, d, self.kc), **opts)
        self.S = torch.zeros((n_layers, n_tokens, self.kc), **opts)
        history_bytes = n_layers * n_tokens * d * d * torch.finfo(dtype).bits // 8
        self.keep_history = history_bytes <= history_mb * 1e6
        self.history = torch.empty((n_layers, n_tokens, d, d), **opts) if self.keep_history else None
        nk = len(self.ks)
        self.depth = np.full((nk, n_tokens, n_layers, n_layers), np.nan, np.float32)
        self.depth_trace = np.full_like(self.depth, np.nan)
        self.token = np.full((nk, n_layers, n_tokens, n_tokens), np.nan, np.float32) if token_coupling else None
        self.vju = np.full_like(self.depth, np.nan) if vju else None
        self.vju_trace = np.full_like(self.depth, np.nan) if vju else None
        self.pairs = [(int(r), int(c)) for r, c in (pairs or [])]
        """Token coupling between layers r ≠ c: token_pair[:, p] is the T×T matrix of pair p = (r, c)."""
        self.token_pair = np.full((nk, len(self.pairs), n_tokens, n_tokens), np.nan, np.float32)

    @property
    def second_pass(self) -> bool:
        """True when the upper triangle needs the J recomputed after the last layer (no history kept)."""
        return not self.keep_history

    def add_layer(self, i: int, tokens: range, J: torch.Tensor, U: torch.Tensor, S: torch.Tensor,
                  V: torch.Tensor) -> None:
        """Block i's dense J [n, d, d] and its triplets at ``tokens`` (a chunk of consecutive tokens, or all)."""
        sl = slice(tokens.start, tokens.stop)
        kc = self.kc
        self.U[i, sl], self.V[i, sl], self.S[i, sl] = U[..., :kc], V[..., :kc], S[..., :kc]
        s_i = self.S[i, sl]
        whole = tokens.start == 0 and tokens.stop == self.n_tokens
        for variant in self.variants:
            left, right = self._bases(variant)
            for j0 in range(0, i + 1, _J_CHUNK):                 # row i: m(J_i, J_j), j ≤ i
                j1 = min(j0 + _J_CHUNK, i + 1)
                M = left[j0:j1, sl].mT @ _times_bases(J, right[j0:j1, sl])
                self._store(variant, (slice(None), sl, i, slice(j0, j1)), M, s_i.unsqueeze(0))
            if self.history is not None:
                for j0 in range(0, i, _J_CHUNK):                 # column i: m(J_j, J_i), j < i
                    j1 = min(j0 + _J_CHUNK, i)
                    M = left[i, sl].mT.unsqueeze(0) @ (self.history[j0:j1, sl] @ right[i, sl].unsqueeze(0))
                    self._store(variant, (slice(None), sl, slice(j0, j1), i), M, self.S[j0:j1, sl])
        if whole:
            for p, (r, c) in enumerate(self.pairs):
                if r == i and c < i:
                    self._token_pair(p, J, i)
                elif c == i and r < i and self.history is not None:
                    self._token_pair(p, self.history[r], r)
        if self.history is not None:
            self.history[i, sl] = J
        if self.token is not None and whole:
            self._token_layer(i, J)

    def add_upper(self, j: int, tokens: range, J: torch.Tensor) -> None:
        """Second pass: block j's recomputed dense J [n, d, d] fills m(J_j, J_i) for every i > j."""
        sl = slice(tokens.start, tokens.stop)
        s_j = self.S[j, sl].unsqueeze(0)
        for variant in self.variants:
            left, right = self._bases(variant)
            for i0 in range(j + 1, self.n_layers, _J_CHUNK):
                i1 = min(i0 + _J_CHUNK, self.n_layers)
                M = left[i0:i1, sl].mT @ _times_bases(J, right[i0:i1, sl])
                self._store(variant, (slice(None), sl, j, slice(i0, i1)), M, s_j)
        if tokens.start == 0 and tokens.stop == self.n_tokens:
            for p, (r, c) in enumerate(self.pairs):
                if r == j and c > j:
                    self._token_pair(p, J, j)

    @property
    def variants(self) -> tuple[str, ...]:
        return ("ujv", "vju") if self.vju is not None else ("ujv",)

    def _bases(self, variant: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(left, right) of M = leftᵀ J right: (U, V) for "ujv", (V, U) for "vju"."""
        return (self.U, self.V) if variant == "ujv" else (self.V, self.U)

    def _store(self, variant: str, index, M, s) -> None:
        """Write m for every K (norm and trace) at ``index`` of depth[nK, T, L, L] (or the vju arrays); M, s lead
        with the block axis."""
        norm, trace = m_for_ks(M, s, self.ks)                   # [nK, blocks, n]
        norm = norm.movedim(1, 2).float().cpu().numpy()          # [nK, n, blocks]
        trace = trace.movedim(1, 2).float().cpu().numpy()
        target, target_trace = (self.depth, self.depth_trace) if variant == "ujv" else (self.vju, self.vju_trace)
        target[index] = norm
        target_trace[index] = trace

    def _token_pair(self, p: int, J_row: torch.Tensor, row: int) -> None:
        """Token coupling of pair p = (row, c): J of block ``row`` at every token against block c's bases."""
        c = self.pairs[p][1]
        norm, _ = pair_coupling(J_row, self.S[row], self.U[c], self.V[c], self.ks)
        self.token_pair[:, p] = norm.float().cpu().numpy()

    def pairs_done_at(self, layer: int, second_pass: bool = False) -> list[int]:
        """The pairs whose matrix the main pass's block ``layer`` (or the second pass's) completes."""
        if second_pass:
            return [p for p, (r, c) in enumerate(self.pairs) if r == layer and c > r and self.history is None]
        return [p for p, (r, c) in enumerate(self.pairs)
                if (r == layer and c < r) or (c == layer and r < c and self.history is not None)]

    def _token_layer(self, i: int, J: torch.Tensor) -> None:
        """Token coupling at block i: entry [t, t'] = m(J_i at t, J_i at t'), t' in the bases."""
        norm, _ = pair_coupling(J, self.S[i], self.U[i], self.V[i], self.ks)
        self.token[:, i] = norm.float().cpu().numpy()

    def depth_mean(self) -> np.ndarray:
        """Token average of depth coupling, [nK, L, L] (entries no token has yet stay NaN)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=RuntimeWarning)   # "Mean of empty slice" on NaN entries
            return np.nanmean(self.depth, axis=1).astype(np.float32)
