"""The block-coupling metric m_K of Aubry et al. (ICLR 2025) and its depth / token / context aggregations.

Orientation everywhere: m(J_1, J_2) puts J_1 (the *row*, the Jacobian that must be exact and dense) in the top-K
singular bases of J_2 (the *column*, only its triplets are needed):

    M   = U_{2,K}ᵀ J_1 V_{2,K}                                  (K×K; "vju" uses V_{2,K}ᵀ J_1 U_{2,K})
    m_K = ‖ |M| − diag(s_{1,1..K}) ‖_F / ‖s_{1,1..K}‖_2          ("trace" divides by Σ_k s_{1,k} instead)

|M| is the element-wise absolute value, as in the official sugolov/coupling code (`metrics.py`). 0 = perfectly
coupled, ≈ 1 = unrelated bases (see `haar_null`); m is not capped at 1. The Jacobians are those of the residual
branch f = block − id (rows = output coordinates), the triplets those of `core.linalg.spectra.top_k` (J V = U diag(S)).

Cost of one entry (one J against one basis, one token): J V is 2·d²·K FLOPs, Uᵀ(J V) is 2·d·K², so about
2·d²·K + 2·d·K² (36 MFLOP at d = 576, K = 50). Inputs may be numpy arrays or torch tensors (any device); results
come back as the kind J arrives in, computed in the common floating dtype of the inputs.
"""

from __future__ import annotations

from typing import Iterable, Mapping

import numpy as np
import torch

from coupling_tui.core.maths.run_scalar import run_scalar  # noqa: F401 - re-exported (torch-free home)
from coupling_tui.core.maths.null_baseline import haar_null_from_spectrum


def _tensors(*xs):
    """Torch views of the inputs (None passes through), cast to their common floating dtype (at least float32) on
    the device of the first torch tensor among them."""
    ts = [x if x is None or isinstance(x, torch.Tensor) else torch.as_tensor(np.ascontiguousarray(x)) for x in xs]
    dtype, device = torch.float32, None
    for x, t in zip(xs, ts):
        if t is not None:
            dtype = torch.promote_types(dtype, t.dtype)
            device = t.device if device is None and isinstance(x, torch.Tensor) else device
    return [None if t is None else t.to(device=device or t.device, dtype=dtype) for t in ts]


def _out(x: torch.Tensor, like):
    """x as numpy when `like` was not a torch tensor, else as is."""
    return x if isinstance(like, torch.Tensor) else x.detach().cpu().numpy()


def coupling_m(J1, U2, V2, s1=None, k: int | None = None, *, norm: str = "norm", variant: str = "ujv",
               elementwise_abs: bool = True):
    """m_K(J_1, J_2) [...] for J1 [..., d, d], J_2's sorted top-K' bases U2, V2 [..., d, K'] (broadcast, K ≤ K') and
    J_1's own descending singular values s1 [..., ≥K] (svdvals when None), with ``norm`` "norm" (÷ ‖s_{1,K}‖_2) or
    "trace" (÷ Σ s_{1,k}), ``variant`` "ujv" or "vju" (U, V exchanged) and ``elementwise_abs=False`` for the
    paper's displayed formula without the code's |·| (NaN where s_{1,K} = 0)."""
    like = J1
    J1, U2, V2, s1 = _tensors(J1, U2, V2, s1)
    kmax = min(U2.shape[-1], V2.shape[-1])
    k = kmax if k is None else k
    if not 1 <= k <= kmax:
        raise ValueError(f"k must be between 1 and {kmax} (the columns of the bases given), got {k}")
    if norm not in ("norm", "trace") or variant not in ("ujv", "vju"):
        raise ValueError(f"norm must be 'norm' or 'trace' and variant 'ujv' or 'vju', got {norm!r}, {variant!r}")
    left, right = (U2[..., :k], V2[..., :k]) if variant == "ujv" else (V2[..., :k], U2[..., :k])
    M = left.mT @ (J1 @ right)
    s = (torch.linalg.svdvals(J1) if s1 is None else s1)[..., :k]
    A = M.abs() if elementwise_abs else M
    diff = torch.linalg.vector_norm(A - torch.diag_embed(s), dim=(-2, -1))
    den = torch.linalg.vector_norm(s, dim=-1) if norm == "norm" else s.sum(-1)
    return _out(diff / den, like)


def one_minus_m_squared(m):
    """C = 1 − m², the form the official notebook plots (1 on the diagonal; negative where m > 1)."""
    return 1 - m * m


def coupling_rows(J_i, bases_U, bases_V, s_i=None, k: int | None = None, **kw):
    """Row i of depth coupling for every token: m(J_i, J_j) for J_i [T, d, d] against the bases of each layer j
    given, bases_U/V [L', T, d, K]; returns [L', T]. Streaming use: call it as layer i's dense J arrives, against
    all layers whose bases exist. Cost: L'·T·(2·d²·K + 2·d·K²) FLOPs, one layer j at a time in memory."""
    like = J_i
    J_i, s_i = _tensors(J_i, s_i)
    if s_i is None:
        s_i = torch.linalg.svdvals(J_i)
    rows = [_tensors(coupling_m(J_i, bases_U[j], bases_V[j], s_i, k, **kw))[0] for j in range(len(bases_U))]
    return _out(torch.stack(rows), like)


def coupling_columns(J_js: Iterable, U_i, V_i, s_js: Iterable | None = None, k: int | None = None, **kw):
    """Column i of depth coupling: m(J_j, J_i) for each dense J_j [T, d, d] yielded by ``J_js`` (a list, an array
    [L', T, d, d], or a generator that recomputes them: the second pass) against layer i's bases U_i, V_i
    [T, d, K]; ``s_js`` yields each J_j's singular values [T, K]. Returns [L', T]; cost as `coupling_rows`."""
    s_iter = iter(s_js) if s_js is not None else None
    cols, like = [], None
    for J_j in J_js:
        like = J_j if like is None else like
        s_j = next(s_iter) if s_iter is not None else None
        cols.append(_tensors(coupling_m(J_j, U_i, V_i, s_j, k, **kw))[0])
    return _out(torch.stack(cols), like)


def depth_coupling(J_layers, triplets, k: int | None = None, **kw):
    """The depth-coupling matrices [..., L, L], entry [i, j] = m_K(J_i, J_j) (row = Jacobian, column = basis; not
    symmetric; diagonal ≈ 0 since U_iᵀ J_i V_i = S_i, so a non-zero diagonal is an orientation bug), from the exact
    dense J_i ([L, ..., d, d], an iterable in layer order or a callable i -> J_i) and the triplets (U [L, ..., d, K],
    S [L, ..., K], V [L, ..., d, K]) of `core.linalg.spectra.top_k`; cost L²·(2·d²·K + 2·d·K²) FLOPs per token."""
    U, S, V = triplets
    n = len(U)
    it = (J_layers(i) for i in range(n)) if callable(J_layers) else J_layers
    rows, like = [], None
    for i, J_i in enumerate(it):
        like = J_i if like is None else like
        rows.append(_tensors(coupling_rows(J_i, U, V, S[i], k, **kw))[0])
    if len(rows) != n:
        raise ValueError(f"got {len(rows)} Jacobians for {n} layers of triplets")
    return _out(torch.stack(rows).movedim((0, 1), (-2, -1)), like)


def token_coupling(J_a, triplets_b, k: int | None = None, *, s_a=None, **kw):
    """Token self-coupling at a pair of layers (l, l'): the T×T' matrix m_K(J^l_{tt}, J^{l'}_{t't'}) for the dense
    J_a = J^l [T, d, d] (rows) and the triplets (U, S, V) of J^{l'} at T' tokens (columns); ``s_a`` [T, K] are
    J_a's singular values (svdvals when None). Cost: T·T'·(2·d²·K + 2·d·K²) FLOPs."""
    like = J_a
    U, _, V = triplets_b
    J_a, s_a = _tensors(J_a, s_a)
    if s_a is None:
        s_a = torch.linalg.svdvals(J_a)
    rows = [_tensors(coupling_m(J_a[t], U, V, s_a[t], k, **kw))[0] for t in range(len(J_a))]
    return _out(torch.stack(rows), like)


def residual_branch(blocks: Mapping[tuple[int, int], object]) -> dict:
    """Jacobians of the residual branch f from those of the whole block, {(t1, t2): ∂x^{l+1}_{t2}/∂x^l_{t1}}: I is
    subtracted on t1 = t2 only (the skip path never crosses tokens; the official code's −I on t1 ≠ t2 is a bug)."""
    out = {}
    for (t1, t2), J in blocks.items():
        if t1 == t2:
            eye = (torch.eye(J.shape[-1], dtype=J.dtype, device=J.device) if isinstance(J, torch.Tensor)
                   else np.eye(J.shape[-1]))
            J = J - eye
        out[(t1, t2)] = J
    return out


def context_coupling(blocks_a: Mapping[tuple[int, int], object], blocks_b: Mapping | None = None,
                     k: int | None = None, *, fixed: int, same: str = "input", **kw) -> dict:
    """Context coupling from cross-token residual-branch Jacobians {(t1, t2): J^l_{t1 t2} [d, d]}, causal pairs
    t1 ≤ t2 only (``blocks_b`` = layer l', default the same layer as ``blocks_a``).

    same="input": t1 = ``fixed``, entry [a, b] = m_K(J^l_{t1, t2_a}, J^{l'}_{t1, t2_b}) over the t2 ≥ t1 present in
    both; same="output": t2 = ``fixed``, entry [a, b] = m_K(J^l_{t1_a, t2}, J^{l'}_{t1_b, t2}) over t1 ≤ t2.
    No identity is subtracted across tokens here (the official code subtracts I from every J_{t1 t2}, a bug:
    the skip path contributes only at t1 = t2; see `residual_branch`). Bases of blocks_b come from a full SVD.
    Returns {"tokens": the varying token positions, "m": [n, n] numpy/torch as the blocks}."""
    blocks_b = blocks_a if blocks_b is None else blocks_b
    if same not in ("input", "output"):
        raise ValueError(f"same must be 'input' or 'output', got {same!r}")
    for blocks in (blocks_a, blocks_b):
        if any(t1 > t2 for t1, t2 in blocks):
            raise ValueError("only causal pairs t1 ≤ t2 exist (J_{t1 t2} = 0 for t1 > t2)")
    pos = 1 if same == "input" else 0

    def varying(blocks):
        return {key[pos]: J for key, J in blocks.items() if key[1 - pos] == fixed}

    a, b = varying(blocks_a), varying(blocks_b)
    tokens = sorted(set(a) & set(b))
    if not tokens:
        raise ValueError(f"no pairs with {'t1' if same == 'input' else 't2'} = {fixed} in both sets of blocks")
    like = a[tokens[0]]
    both = _tensors(*[a[t] for t in tokens], *[b[t] for t in tokens])
    Ja, Jb = torch.stack(both[:len(tokens)]), torch.stack(both[len(tokens):])
    Ub, Sb, Vhb = torch.linalg.svd(Jb)
    kk = Sb.shape[-1] if k is None else k
    m = token_coupling(Ja, (Ub[..., :kk], Sb[..., :kk], Vhb[..., :kk, :].mT), kk, **kw)
    return {"tokens": tokens, "m": _out(m, like)}


def haar_orthonormal(d: int, k: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """n Haar-random d×k matrices with orthonormal columns, [n, d, k] (QR of a Gaussian, signs fixed by diag R)."""
    Q, R = np.linalg.qr(rng.standard_normal((n, d, k)))
    return Q * np.sign(np.diagonal(R, axis1=-2, axis2=-1))[:, None, :]


def haar_null(d: int, k: int, n: int, rng: np.random.Generator, *, J=None, **kw) -> np.ndarray:
    """The null baseline: n values [n] of m_K(J, ·) against independent Haar-random bases (U, V), in float64, for J
    [d, d] (default: N(0, 1/d) entries); slightly below 1 (≈ 0.978 at d = 256, K = 8), see `haar_null_expected`."""
    J = rng.standard_normal((d, d)) / np.sqrt(d) if J is None else np.asarray(J, dtype=np.float64)
    U, V = haar_orthonormal(d, k, n, rng), haar_orthonormal(d, k, n, rng)
    return coupling_m(J, U, V, np.linalg.svd(J, compute_uv=False), k, **kw)


def haar_null_expected(J, k: int) -> float:
    """√E[m_K²] of J against Haar bases (norm "norm", ujv, |·|), from E‖M‖_F² = K²f² and E|M_kk| ≈ √(2/π)·f with
    f = ‖J‖_F/d: E[m²] ≈ 1 + (K²f² − 2√(2/π)·f·Σs_k)/‖s_K‖² (large d); core.maths.null_baseline computes it."""
    J = np.asarray(J, dtype=np.float64)
    return float(haar_null_from_spectrum(np.linalg.svd(J, compute_uv=False), np.linalg.norm(J), J.shape[-1], k))


__all__ = ["coupling_m", "one_minus_m_squared", "coupling_rows", "coupling_columns", "depth_coupling",
           "token_coupling", "residual_branch", "context_coupling", "haar_orthonormal", "haar_null",
           "haar_null_expected", "run_scalar"]
