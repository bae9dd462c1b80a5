"""Representational collapse and over-squashing (Barbero et al., "Transformers need glasses!", NeurIPS 2024) on the
loaded model, as a stage of engine events. docs/collapse.md gives every formula as this code computes it.

For each family and length n (core.engine.collapse_pairs) the pair (n, n+1 repeats) runs through the model twice: in the
reference precision (float32, or the model's float64) and in the low precision (bfloat16 by default). Each run
keeps the last token's final-layer state before the final norm (``core.engine.trace``: the last block's output) and, in
the reference precision, after it and the greedy next token. The pair's difference is measured as L1/d, L∞ and
relative L2; in the low precision also the fraction of coordinates that are bit-identical. Over-squashing: the
sensitivity S_i = ‖∂h_last/∂e_i‖_F of that state to each input embedding e_i, exact or by orthogonal Hutchinson
probes, on one sequence.

Pure torch and numpy; no Textual.
"""

from __future__ import annotations

import copy
import itertools
import math
import time
from typing import Any, Iterator

import numpy as np
import torch

from coupling_tui.core.engine.collapse_pairs import Sequence, build_pairs
from coupling_tui.core.engine.jacobians.frozen_attention import attn_implementation
from coupling_tui.core.options.collapse import DEFAULT_LENGTHS, CollapseSpec
from coupling_tui.core.errors import UserError
from coupling_tui.core.results.events import LayerDone
from coupling_tui.core.load.models import LoadedModel
from coupling_tui.core.engine.trace import first_tensor, trace
from coupling_tui.core.results import names

__all__ = ["CollapsePass", "CollapseSpec", "STAGE", "pair_differences", "bit_identical_fraction", "sensitivity",
           "cast_copy", "model_context", "attention_of"]

STAGE = "collapse"
PROBE_CHUNK = 16
"""Output probes (or basis vectors) per batched backward: bounds the memory of one chunk of input gradients."""


# -- the measures (pure functions, each tested against an independent implementation) --

def pair_differences(a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray) -> np.ndarray:
    """(L1/d, L∞, relative L2) of Δ = b − a in float64, a = the n-sequence's state, b = the (n+1)-sequence's:
    ‖Δ‖₁/d, max |Δ_k|, ‖Δ‖₂/‖a‖₂."""
    a64 = torch.as_tensor(a).detach().to("cpu", torch.float64)
    b64 = torch.as_tensor(b).detach().to("cpu", torch.float64)
    delta = b64 - a64
    return np.array([delta.abs().sum() / delta.numel(), delta.abs().max(),
                     torch.linalg.vector_norm(delta) / torch.linalg.vector_norm(a64)], np.float64)


def bit_identical_fraction(a: torch.Tensor, b: torch.Tensor) -> float:
    """The fraction of coordinates whose stored bits are equal (any dtype: compared byte by byte)."""
    if a.dtype != b.dtype or a.shape != b.shape:
        raise ValueError(f"cannot compare {a.dtype}{tuple(a.shape)} with {b.dtype}{tuple(b.shape)} bitwise")
    bytes_a = a.detach().contiguous().view(torch.uint8).reshape(a.numel(), -1)
    bytes_b = b.detach().contiguous().view(torch.uint8).reshape(b.numel(), -1)
    return float((bytes_a == bytes_b).all(-1).double().mean())


def last_state(model: Any, adapter: Any, ids: list[int]) -> tuple[torch.Tensor, torch.Tensor, int]:
    """The last token's final-layer state before the final norm [d] (model dtype), after it [d], and the greedy
    next token id."""
    device = next(model.parameters()).device
    tr = trace(model, adapter, torch.tensor([ids], device=device))
    h = tr.block_outputs[-1, -1]
    with torch.no_grad():
        normed = adapter.final_norm_module(model)(h[None])[0]
    return h, normed, int(tr.last_logits.argmax())


def _last_block_output(model: Any, adapter: Any, embeds: torch.Tensor) -> torch.Tensor:
    """Forward from input embeddings [1, T, d] with autograd on; the last block's output at the last position."""
    out: dict[str, torch.Tensor] = {}
    handle = adapter.block_list(model)[-1].register_forward_hook(
        lambda module, args, output: out.__setitem__("h", first_tensor(output)))
    try:
        with torch.enable_grad():
            model(inputs_embeds=embeds, use_cache=False, logits_to_keep=1)
    finally:
        handle.remove()
    return out["h"][0, -1]


def sensitivity(model: Any, adapter: Any, ids: list[int], *, method: str = "exact", probes: int = 32,
                seed: int = 0, chunk: int = PROBE_CHUNK) -> np.ndarray:
    """S_i = ‖∂h/∂e_i‖_F for every input position i, h the last token's final-layer state before the final norm and
    e_i the input embedding of token i (what ``inputs_embeds`` takes: before any family-specific scaling).

    ``exact``: one vector-Jacobian product per output coordinate (the rows of the identity, d of them), batched
    ``chunk`` at a time: S_i² = Σ_a ‖(e_aᵀ J)_i‖². ``hutchinson``: ``probes`` probes u_k = √d q_k with q_k
    orthonormal columns of a random (Haar) orthogonal matrix, so E[u uᵀ] = I and S_i² ≈ (1/r) Σ_k ‖(u_kᵀ J)_i‖²,
    unbiased for every r and exact at r = d. Computed in the model's dtype, accumulated in float64."""
    device = next(model.parameters()).device
    embed = model.get_input_embeddings()
    with torch.no_grad():
        e = embed(torch.tensor([ids], device=device))
    e = e.detach().requires_grad_(True)
    h = _last_block_output(model, adapter, e)
    d = h.shape[-1]
    if method == "exact":
        n_directions, scale = d, 1.0

        def directions(rows: range) -> torch.Tensor:                       # rows of the identity
            u = torch.zeros(len(rows), d, dtype=torch.float64)
            u[torch.arange(len(rows)), torch.tensor(rows)] = 1.0
            return u
    elif method == "hutchinson":
        n_directions = min(probes, d)
        scale = 1.0 / n_directions
        gen = torch.Generator().manual_seed(seed)
        q, rr = torch.linalg.qr(torch.randn(d, d, generator=gen, dtype=torch.float64))
        q = q * torch.sign(torch.diagonal(rr))[None, :]                      # Haar: fix the QR signs
        u_all = math.sqrt(d) * q[:, :n_directions].T                         # [r, d], E[u uᵀ] = I

        def directions(rows: range) -> torch.Tensor:
            return u_all[rows.start:rows.stop]
    else:
        raise ValueError(f"unknown sensitivity method {method!r}")
    total = torch.zeros(len(ids), dtype=torch.float64)
    for start in range(0, n_directions, chunk):
        u = directions(range(start, min(start + chunk, n_directions))).to(device=device, dtype=h.dtype)
        g = _batched_vjp(h, e, u)                                            # [c, T, d]
        total += g.double().pow(2).sum(dim=(0, 2)).cpu()
    return (total * scale).sqrt().numpy()


def _batched_vjp(h: torch.Tensor, e: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """u_k ᵀ ∂h/∂e for each row u_k of ``u``: [c, T, d]. One vmapped backward; one backward per probe where an
    operator has no batching rule."""
    try:
        (g,) = torch.autograd.grad(h, e, grad_outputs=u, is_grads_batched=True, retain_graph=True)
        return g[:, 0]
    except RuntimeError:
        return torch.stack([torch.autograd.grad(h, e, grad_outputs=row, retain_graph=True)[0][0] for row in u])


# -- models in two precisions --

def cast_copy(model: Any, dtype: torch.dtype) -> Any:
    """A copy of ``model`` with its floating parameters and persistent buffers in ``dtype`` — as loading it in
    ``dtype`` with ``from_pretrained`` makes them: non-persistent buffers (RoPE's ``inv_freq``) stay in their own
    dtype — without ever holding a second full-precision copy: each tensor is cast first and handed to deepcopy
    through its memo (tied weights stay tied). The original is untouched."""
    kept = {id(getattr(m, name)) for m in model.modules() for name in getattr(m, "_non_persistent_buffers_set", ())
            if getattr(m, name, None) is not None}
    memo: dict[int, Any] = {}
    for t in itertools.chain(model.parameters(), model.buffers()):
        if t.is_floating_point() and id(t) not in memo and id(t) not in kept:
            cast = t.detach().to(dtype)
            memo[id(t)] = torch.nn.Parameter(cast, requires_grad=False) if isinstance(t, torch.nn.Parameter) \
                else cast
    twin = copy.deepcopy(model, memo)
    return twin.eval()


def model_context(config: Any) -> int | None:
    """The longest sequence the model's positions allow (``max_position_embeddings``/``n_positions``), if any."""
    value = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
    return int(value) if value else None


def attention_of(model: Any) -> str | None:
    """The attention implementation ``model`` runs with (its config's ``_attn_implementation``), if it says."""
    return getattr(getattr(model, "config", None), "_attn_implementation", None)


# -- the stage --

class CollapsePass:
    """One stage "collapse" of LayerDone events: one per (family, length) pair as it completes, then one for the
    sensitivity. The pairs are tokenised (and the spec checked against the model) in the constructor; the models
    in the two precisions are made on the first event and dropped after the last."""

    def __init__(self, loaded: LoadedModel, spec: CollapseSpec):
        self.loaded, self.spec = loaded, spec
        self.context = model_context(loaded.model.config)
        lengths = spec.lengths or DEFAULT_LENGTHS
        families = build_pairs(loaded.tokenizer, spec, lengths)
        # the longest sequence at each n, and its family: (tokens, family)
        longest = [max((len(p.long.ids), f.family) for f in families for p in f.pairs if p.n == n) for n in lengths]
        if self.context is not None:
            fits = [n for n, (t, _) in zip(lengths, longest) if t <= self.context]
            if spec.lengths is not None and len(fits) < len(lengths):
                tokens, family = longest[len(fits)]
                raise UserError(f"collapse length {lengths[len(fits)]} is beyond the model's context: the {family} "
                                f"sequence with {lengths[len(fits)] + 1} repeats has {tokens} tokens, the model takes "
                                f"{self.context}", f"use lengths up to {fits[-1]}" if fits else "use shorter lengths")
            if not fits:
                tokens, family = longest[0]
                raise UserError(f"even the shortest collapse sequence is beyond the model's context: the {family} "
                                f"sequence with {lengths[0] + 1} repeats has {tokens} tokens, the model takes "
                                f"{self.context}")
            if len(fits) < len(lengths):
                families = build_pairs(loaded.tokenizer, spec, tuple(fits))
            lengths = tuple(fits)
        self.lengths, self.families = tuple(lengths), families
        self.d = int(loaded.model.get_input_embeddings().weight.shape[1])
        self.reference_dtype = loaded.dtype if loaded.dtype in ("float32", "float64") else "float32"
        self.sens = self._sensitivity_target() if spec.sensitivity else None
        self.next_text: dict[str, str] = {}
        self.seconds: float | None = None

    def _sensitivity_target(self) -> dict:
        fam = next((f for f in self.families if f.family == "ones"), self.families[0])
        fitting = [p for p in fam.pairs if len(p.short.ids) <= self.spec.sensitivity_tokens]
        pair = fitting[-1] if fitting else fam.pairs[0]
        method = self.spec.sensitivity_method
        if method == "auto":
            method = "exact" if self.d <= self.spec.probes else "hutchinson"
        return {"family": fam.family, "n": pair.n, "n_tokens": len(pair.short.ids), "ids": pair.short.ids,
                "text": pair.short.text, "method": method,
                "probes": self.d if method == "exact" else min(self.spec.probes, self.d)}

    # -- what RunStarted announces --
    @property
    def n_steps(self) -> int:
        return len(self.families) * len(self.lengths) + (1 if self.sens else 0)

    def stages(self) -> list[dict]:
        return [{"name": STAGE, "steps": self.n_steps}]

    def header(self) -> dict:
        sens = None
        if self.sens is not None:
            sens = {k: v for k, v in self.sens.items() if k != "ids"}
            sens.update({"target": "last token, last block's output (pre-final-norm)", "input": "inputs_embeds",
                         "seed": self.spec.seed, "positions": "i / (n_tokens - 1)"})
        tok = self.loaded.tokenizer
        return {
            "families": [f.family for f in self.families],
            "lengths": list(self.lengths),
            "low_dtype": self.spec.low_dtype,
            "reference_dtype": self.reference_dtype,
            "attention": {"reference": attention_of(self.loaded.model), "low": self.spec.attention},
            "template": self.spec.template_text if "template" in self.spec.families else None,
            "seed": self.spec.seed,
            "context": self.context,
            "tokenizer": {f.family: f.header(tok) for f in self.families},
            "warnings": [w for f in self.families for w in f.warnings],
            "sensitivity": sens,
            "next_text": dict(self.next_text),
            "seconds": self.seconds,
        }

    def arrays(self) -> dict[str, np.ndarray]:
        F, N, d = len(self.families), len(self.lengths), self.d
        P = self.sens["n_tokens"] if self.sens else 0
        n_tokens = np.array([[[len(p.short.ids), len(p.long.ids)] for p in f.pairs] for f in self.families],
                            np.int64).reshape(F, N, 2)
        return {
            names.COLLAPSE_LENGTHS: np.asarray(self.lengths, np.int64),
            names.COLLAPSE_N_TOKENS: n_tokens,
            names.COLLAPSE_FINAL: _unfilled((F, N, 2, d)),
            names.COLLAPSE_FINAL_NORMED: _unfilled((F, N, 2, d)),
            names.COLLAPSE_DIFF: _unfilled((F, N, 3)),
            names.COLLAPSE_DIFF_LOW: _unfilled((F, N, 3)),
            names.COLLAPSE_IDENTICAL_LOW: _unfilled((F, N)),
            names.COLLAPSE_NEXT_IDS: np.full((F, N, 2), -1, np.int64),
            names.COLLAPSE_NEXT_IDS_LOW: np.full((F, N, 2), -1, np.int64),
            names.COLLAPSE_SENSITIVITY: _unfilled((P,)),
            names.COLLAPSE_SENSITIVITY_RAW: _unfilled((P,)),
        }

    # -- the work --
    def events(self) -> Iterator[LayerDone]:
        started = time.perf_counter()
        reference, low = self._models()
        try:
            step = 0
            for f, fam in enumerate(self.families):
                for j, pair in enumerate(fam.pairs):
                    rows = self._pair_rows(f, j, pair.short, pair.long, reference, low)
                    yield LayerDone(layer=step, n_layers=self.n_steps, stage=STAGE, rows=rows)
                    step += 1
            if self.sens is not None:
                s = self.sens
                raw = sensitivity(reference, self.loaded.adapter, s["ids"], method=s["method"], probes=s["probes"],
                                  seed=self.spec.seed)
                rows = {names.COLLAPSE_SENSITIVITY_RAW: (Ellipsis, raw.astype(np.float32)),
                        names.COLLAPSE_SENSITIVITY: (Ellipsis, (raw / raw.sum()).astype(np.float32))}
                yield LayerDone(layer=step, n_layers=self.n_steps, stage=STAGE, rows=rows)
        finally:
            del reference, low
        self.seconds = time.perf_counter() - started

    def _models(self) -> tuple[Any, Any]:
        """(reference, low): the loaded model where it already runs in that precision, else a cast copy."""
        model, dtype = self.loaded.model, self.loaded.dtype
        ref_dtype, low_dtype = self.reference_dtype, self.spec.low_dtype
        reference = model if dtype == ref_dtype else cast_copy(model, getattr(torch, ref_dtype))
        if dtype == low_dtype:
            return reference, model
        return reference, reference if low_dtype == ref_dtype else cast_copy(model, getattr(torch, low_dtype))

    def _pair_rows(self, f: int, j: int, short: Sequence, long: Sequence, reference: Any, low: Any) -> dict:
        adapter = self.loaded.adapter
        (h_a, n_a, next_a), (h_b, n_b, next_b) = (last_state(reference, adapter, s.ids) for s in (short, long))
        with attn_implementation(low, self.spec.attention):          # the low stage's kernel (--collapse-attn)
            (l_a, _, low_a), (l_b, _, low_b) = (last_state(low, adapter, s.ids) for s in (short, long))
        for i in (next_a, next_b, low_a, low_b):
            self.next_text.setdefault(str(i), self.loaded.tokenizer.decode([i]))
        return {
            names.COLLAPSE_FINAL: ((f, j), torch.stack([h_a, h_b]).float().cpu().numpy()),
            names.COLLAPSE_FINAL_NORMED: ((f, j), torch.stack([n_a, n_b]).float().cpu().numpy()),
            names.COLLAPSE_DIFF: ((f, j), pair_differences(h_a, h_b).astype(np.float32)),
            names.COLLAPSE_DIFF_LOW: ((f, j), pair_differences(l_a, l_b).astype(np.float32)),
            names.COLLAPSE_IDENTICAL_LOW: ((f, j), np.float32(bit_identical_fraction(l_a, l_b))),
            names.COLLAPSE_NEXT_IDS: ((f, j), np.array([next_a, next_b], np.int64)),
            names.COLLAPSE_NEXT_IDS_LOW: ((f, j), np.array([low_a, low_b], np.int64)),
        }


def _unfilled(shape: tuple[int, ...]) -> np.ndarray:
    return np.full(shape, np.nan, dtype=np.float32)
