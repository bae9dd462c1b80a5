"""Closed-form per-token Jacobians of the residual branch of RMSNorm + RoPE + GQA + SwiGLU decoder blocks (HF llama,
mistral, qwen2), batched over tokens as large GEMMs.

For token t with block input x (all other tokens held fixed) the branch is ``f(x) = o + mlp(n2(x + o))`` with
``o = Wo attn(n1(x)) + bo``, so ``J = A + M + M A`` where (see the research benchmark, section 2)

* ``N = (1/r)(I - x̂ x̂ᵀ/d)`` is the RMSNorm Jacobian (r = rms(x) incl. eps, x̂ = x/r; the gain is folded into the
  next projections: ``W_ = W diag(w)``),
* ``A = Wo S_t N1`` with, per head h (kv group g), ``S_t,h = C_h R_t Wq_h + s p_tt (v_t - a_t)(R_tᵀ q_t)ᵀ Wk_g
  + p_tt Wv_g`` and ``C_h = s (Σ_s p_s v_s k_sᵀ - a_t k̄ᵀ)`` (p: attention row of t, s: ``self_attn.scaling``,
  R_t: the RoPE rotation, q/k rotated, k̄ = Σ_s p_s k_s),
* ``M = Wd [diag(silu'(g) u) Wg_ + diag(silu(g)) Wu_] N2``.

Biases (qwen2's q/k/v, llama's optional attention/MLP biases) only move the point of evaluation, so they enter through
the forward statistics. cos/sin come from the model's own rotary module, which already applies any RoPE scaling
(linear, dynamic, yarn, llama3, ...) and its attention factor; RoPE still acts as ``x cos + rotate_half(x) sin``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from coupling_tui.core.errors import UserError
from coupling_tui.core.load.placement import execution_device, materialised
from coupling_tui.core.engine.jacobians.selection import token_index

FAMILIES = ("llama", "mistral", "qwen2")
"""HF ``model_type`` values whose decoder layers this closed form covers."""


class Workspace:
    """Reusable scratch buffers, so repeated calls (layer after layer) do not page-fault fresh large temporaries."""

    def __init__(self) -> None:
        self._buffers: dict[str, torch.Tensor] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        """A view of shape ``shape`` on the buffer ``name``, grown (never shrunk) as needed; contents undefined."""
        n = math.prod(shape)
        buf = self._buffers.get(name)
        if buf is None or buf.dtype != dtype or buf.device != device or buf.numel() < n:
            buf = torch.empty(n, dtype=dtype, device=device)
            self._buffers[name] = buf
        return buf[:n].view(shape)


def rotary_cos_sin(model: Any, T: int, *, dtype: torch.dtype = torch.float32,
                   device: torch.device | str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin [T, head_dim] for positions 0..T-1 from the model's own rotary module (HF builds them in float32)."""
    rotary = getattr(getattr(model, "model", model), "rotary_emb", None)
    if rotary is None:
        raise UserError(f"{type(model).__name__} has no rotary embedding at model.rotary_emb",
                        "the closed-form Jacobians need a llama, mistral or qwen2 model")
    device = device if device is not None else execution_device(rotary)
    probe = torch.zeros(1, T, 1, dtype=torch.float32, device=device)
    positions = torch.arange(T, device=device)[None]
    with torch.no_grad():
        cos, sin = rotary(probe, positions)
    return cos[0].to(dtype), sin[0].to(dtype)


def check_supported(block: Any, config: Any, T: int) -> None:
    """Raise a UserError unless the closed form covers this decoder layer at sequence length T."""
    family = getattr(config, "model_type", None)
    hint = f"closed-form Jacobians cover {', '.join(FAMILIES)} (RMSNorm + RoPE + GQA + SwiGLU)"
    if family not in FAMILIES:
        raise UserError(f"no closed-form Jacobian for architecture {family or 'unknown'}", hint)
    attn, mlp = getattr(block, "self_attn", None), getattr(block, "mlp", None)
    needed = [(attn, n) for n in ("q_proj", "k_proj", "v_proj", "o_proj")]
    needed += [(mlp, n) for n in ("gate_proj", "up_proj", "down_proj")]
    needed += [(block, n) for n in ("input_layernorm", "post_attention_layernorm")]
    if attn is None or mlp is None or any(not hasattr(obj, n) for obj, n in needed):
        raise UserError(f"{type(block).__name__} is not a {family} decoder layer the closed form understands", hint)
    if hasattr(attn, "q_norm") or hasattr(attn, "k_norm"):
        raise UserError(f"{type(block).__name__} normalises queries/keys (q_norm/k_norm): not covered", hint)
    act = getattr(config, "hidden_act", "silu")
    if act not in ("silu", "swish"):
        raise UserError(f"hidden_act={act!r}: the closed form covers SwiGLU (silu) MLPs only", hint)
    window = attn.sliding_window if hasattr(attn, "sliding_window") else getattr(config, "sliding_window", None)
    if window is not None and T > window:
        raise UserError(f"sliding-window attention (window {window}) is shorter than the prompt ({T} tokens)",
                        "use at most that many tokens, or a model without a sliding window")


@dataclass
class _Layer:
    """One layer's weights in the compute dtype, RMSNorm gains folded into the following projections."""

    Wq: torch.Tensor
    Wk: torch.Tensor
    Wv: torch.Tensor
    Wo: torch.Tensor
    Wg: torch.Tensor
    Wu: torch.Tensor
    Wd: torch.Tensor
    bq: torch.Tensor | None
    bk: torch.Tensor | None
    bv: torch.Tensor | None
    bo: torch.Tensor | None
    bg: torch.Tensor | None
    bu: torch.Tensor | None
    eps1: float
    eps2: float
    H: int
    KV: int
    hd: int
    scale: float

    def per_head(self, W: torch.Tensor, heads: int) -> torch.Tensor:
        """[H, hd, d] view of a projection, kv projections repeated to one copy per query head (GQA)."""
        W = W.view(heads, self.hd, W.shape[-1])
        return W if heads == self.H else W.repeat_interleave(self.H // heads, 0)


def _eps(norm: Any, config: Any) -> float:
    eps = getattr(norm, "variance_epsilon", getattr(norm, "eps", None))
    return float(config.rms_norm_eps if eps is None else eps)


def _layer(block: Any, config: Any, dtype: torch.dtype, device: torch.device) -> _Layer:
    attn, mlp = block.self_attn, block.mlp

    def cast(t: torch.Tensor | None) -> torch.Tensor | None:
        return None if t is None else t.detach().to(device=device, dtype=dtype)

    w1, w2 = cast(block.input_layernorm.weight), cast(block.post_attention_layernorm.weight)
    H, KV = config.num_attention_heads, config.num_key_value_heads
    hd = getattr(attn, "head_dim", None) or config.hidden_size // H
    if attn.q_proj.out_features != H * hd or attn.k_proj.out_features != KV * hd:
        raise UserError(f"{type(block).__name__}: q/k projection sizes do not match {H}/{KV} heads of {hd}")
    return _Layer(
        Wq=cast(attn.q_proj.weight) * w1, Wk=cast(attn.k_proj.weight) * w1, Wv=cast(attn.v_proj.weight) * w1,
        Wo=cast(attn.o_proj.weight), Wg=cast(mlp.gate_proj.weight) * w2, Wu=cast(mlp.up_proj.weight) * w2,
        Wd=cast(mlp.down_proj.weight), bq=cast(attn.q_proj.bias), bk=cast(attn.k_proj.bias),
        bv=cast(attn.v_proj.bias), bo=cast(attn.o_proj.bias), bg=cast(mlp.gate_proj.bias), bu=cast(mlp.up_proj.bias),
        eps1=_eps(block.input_layernorm, config), eps2=_eps(block.post_attention_layernorm, config),
        H=H, KV=KV, hd=hd, scale=float(getattr(attn, "scaling", hd ** -0.5)))


def _rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """R_t x: HF's ``x cos + rotate_half(x) sin``."""
    return x * cos + _rotate_half(x) * sin


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), -1)


def _rope_transposed(y: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """R_tᵀ y for vectors along the last dim; equivalently Y R_t for the rows Y of a matrix."""
    return y * cos - _rotate_half(y * sin)


def _linear(x: torch.Tensor, W: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    return torch.nn.functional.linear(x, W, b)


@dataclass
class _Stats:
    """Forward quantities of the whole sequence needed by the Jacobian (heads first: [H, T, hd])."""

    xh: torch.Tensor   # [T, d] x / r1
    r1: torch.Tensor   # [T, 1]
    hh: torch.Tensor   # [T, d] h / r2, h = x + o
    r2: torch.Tensor   # [T, 1]
    q: torch.Tensor    # [H, T, hd] rotated queries
    k: torch.Tensor    # [H, T, hd] rotated keys, repeated per query head
    v: torch.Tensor    # [H, T, hd] values, repeated per query head
    p: torch.Tensor    # [H, T, T] causal attention probabilities
    a: torch.Tensor    # [H, T, hd] attention outputs per head
    alpha: torch.Tensor  # [T, F] silu'(g) * u
    beta: torch.Tensor   # [T, F] silu(g)


def _rms(x: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    r = torch.sqrt(x.pow(2).mean(-1, keepdim=True) + eps)
    return x / r, r


def _forward_stats(X: torch.Tensor, W: _Layer, cos: torch.Tensor, sin: torch.Tensor) -> _Stats:
    T = X.shape[0]
    heads = lambda y, n: y.view(T, n, W.hd).transpose(0, 1)  # noqa: E731
    xh, r1 = _rms(X, W.eps1)
    q = _rope(heads(_linear(xh, W.Wq, W.bq), W.H), cos, sin)
    k = _rope(heads(_linear(xh, W.Wk, W.bk), W.KV), cos, sin)
    v = heads(_linear(xh, W.Wv, W.bv), W.KV)
    k, v = k.repeat_interleave(W.H // W.KV, 0), v.repeat_interleave(W.H // W.KV, 0)
    scores = (q @ k.transpose(1, 2)) * W.scale
    causal = torch.ones(T, T, dtype=torch.bool, device=X.device).tril()
    p = scores.masked_fill(~causal, float("-inf")).softmax(-1)
    a = p @ v
    h = X + _linear(a.transpose(0, 1).reshape(T, W.H * W.hd), W.Wo, W.bo)
    hh, r2 = _rms(h, W.eps2)
    g, u = _linear(hh, W.Wg, W.bg), _linear(hh, W.Wu, W.bu)
    sg = torch.sigmoid(g)
    return _Stats(xh=xh, r1=r1, hh=hh, r2=r2, q=q, k=k, v=v, p=p, a=a,
                  alpha=sg * (1 + g * (1 - sg)) * u, beta=g * sg)


def _attention_S(st: _Stats, W: _Layer, heads: dict, cos: torch.Tensor, sin: torch.Tensor,
                 idx: torch.Tensor, ws: Workspace) -> torch.Tensor:
    """S_t [c, H*hd, d]: d a_t / d x̂_t for the tokens ``idx`` (before Wo and the RMSNorm Jacobian N1)."""
    c, H, hd, d = idx.numel(), W.H, W.hd, W.Wq.shape[1]
    p, a, q = st.p[:, idx], st.a[:, idx], st.q[:, idx]                       # [H,c,T], [H,c,hd], [H,c,hd]
    cos_c, sin_c = cos[idx], sin[idx]                                       # [c,hd]
    C = torch.matmul((p[..., None] * st.v[:, None]).transpose(-1, -2), st.k[:, None])   # Σ_s p v_s k_sᵀ [H,c,hd,hd]
    C.sub_(a[..., :, None] * (p @ st.k)[..., None, :]).mul_(W.scale)
    CR = _rope_transposed(C, cos_c[None, :, None, :], sin_c[None, :, None, :]).transpose(0, 1)   # C R_t [c,H,hd,hd]
    S = ws.get("S", (c, H, hd, d), st.xh.dtype, st.xh.device)
    torch.matmul(CR, heads["q"], out=S)
    p_tt = st.p[:, idx, idx]                                                 # [H,c]
    coef = ((W.scale * p_tt)[..., None] * (st.v[:, idx] - a)).transpose(0, 1)           # [c,H,hd]
    key_row = (_rope_transposed(q, cos_c[None], sin_c[None]) @ heads["k"]).transpose(0, 1)  # (R_tᵀq)ᵀ Wk_g [c,H,d]
    S.addcmul_(coef[..., None], key_row[:, :, None, :])
    S.addcmul_(p_tt.T[..., None, None], heads["v"][None])
    return S.view(c, H * hd, d)


def _apply_norm(P: torch.Tensor, xh: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """P ← P (1/r)(I - x̂ x̂ᵀ/d) in place, batched over tokens: P [c,d,d], x̂ [c,d], r [c,1]."""
    d = xh.shape[-1]
    P.baddbmm_(P @ xh[:, :, None], xh[:, None, :], alpha=-1.0 / d)
    return P.div_(r[:, :, None])


def block_jacobians(block: Any, x_in: torch.Tensor, position_embeddings: tuple[torch.Tensor, torch.Tensor],
                    config: Any, *, dtype: torch.dtype = torch.float32, tokens: Any = None, chunk: int = 16,
                    workspace: Workspace | None = None, out: torch.Tensor | None = None) -> torch.Tensor:
    """J [T_sel, d, d] (rows = outputs) of the residual branch of HF decoder layer ``block`` at input x_in [T, d],
    for the tokens ``tokens`` (default all), computed in ``dtype`` whatever the model's dtype.

    ``position_embeddings`` is (cos, sin) [T, head_dim] or [1, T, head_dim] for positions 0..T-1 (see
    ``rotary_cos_sin``). Pass one ``workspace`` (and optionally ``out``) when looping over layers.

    J lives on the block's execution device (core.load.placement: where a sharded model runs it), x_in and cos/sin are
    moved there; an offloaded block's weights are read in for the cast copy of this one layer."""
    if dtype not in (torch.float32, torch.float64):
        raise UserError(f"closed-form Jacobians are computed in float32 or float64, not {dtype}")
    if x_in.dim() != 2:
        raise UserError(f"block input must be [T, d], got shape {tuple(x_in.shape)}")
    T, d = x_in.shape
    check_supported(block, config, T)
    device = execution_device(block)                     # a sharded model's block: its own device
    with materialised(block):                            # an offloaded block's weights, read in for the copy
        W = _layer(block, config, dtype, device)
    cos, sin = (t.reshape(-1, t.shape[-1]).to(device=device, dtype=dtype) for t in position_embeddings)
    if cos.shape != (T, W.hd) or sin.shape != (T, W.hd):
        raise UserError(f"cos/sin must be [{T}, {W.hd}] (positions 0..T-1, full head_dim), got {tuple(cos.shape)}")
    X = x_in.detach().to(device=device, dtype=dtype)
    idx = token_index(tokens, T, device)
    with torch.no_grad():
        st = _forward_stats(X, W, cos, sin)
        heads = {"q": W.per_head(W.Wq, W.H), "k": W.per_head(W.Wk, W.KV), "v": W.per_head(W.Wv, W.KV)}
        J = out if out is not None else torch.empty(idx.numel(), d, d, dtype=dtype, device=device)
        if J.shape != (idx.numel(), d, d) or J.dtype != dtype:
            raise ValueError(f"out must be {dtype} of shape {(idx.numel(), d, d)}, got {J.dtype} {tuple(J.shape)}")
        ws = workspace if workspace is not None else Workspace()
        for start in range(0, idx.numel(), max(1, chunk)):
            sel = idx[start:start + chunk]
            _chunk_jacobians(st, W, heads, cos, sin, sel, ws, J[start:start + sel.numel()])
    return J


def _chunk_jacobians(st: _Stats, W: _Layer, heads: dict, cos: torch.Tensor, sin: torch.Tensor,
                     sel: torch.Tensor, ws: Workspace, J: torch.Tensor) -> None:
    """Write J = A + M + M A for the tokens ``sel`` into J [c, d, d]."""
    c, d, F = sel.numel(), W.Wo.shape[0], W.Wg.shape[0]
    dt, dev = st.xh.dtype, st.xh.device
    S = _attention_S(st, W, heads, cos, sin, sel, ws)
    A = ws.get("A", (c, d, d), dt, dev)
    torch.matmul(W.Wo, S, out=A)
    _apply_norm(A, st.xh[sel], st.r1[sel])
    G = ws.get("G", (c, F, d), dt, dev)
    torch.mul(st.alpha[sel, :, None], W.Wg, out=G)
    G.addcmul_(st.beta[sel, :, None], W.Wu)
    M = ws.get("M", (c, d, d), dt, dev)
    torch.matmul(W.Wd, G, out=M)
    _apply_norm(M, st.hh[sel], st.r2[sel])
    torch.baddbmm(A, M, A, out=J)
    J.add_(M)
