"""One model's per-block work on one token sequence (``ModelPass``): the trace up front, then per block the Jacobians,
their top-K triplets, the coupling entries they complete and the trajectory fits, as LayerDone events of one stage.
``core.engine.stream`` runs one for the model and one for its random-init baseline."""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch

from coupling_tui.core.maths.run_scalar import all_tokens_scalar, last_token_scalar
from coupling_tui.core.engine.coupling_stream import CouplingStream, coupling_ks, display_k
from coupling_tui.core.results.events import LayerDone
from coupling_tui.core.engine.jacobians.layers import LayerJacobians, vector_tokens
from coupling_tui.core.load.models import LoadedModel
from coupling_tui.core.linalg.spectra import resolve_solver, top_k as top_k_triplets
from coupling_tui.core.engine.trace import trace
from coupling_tui.core.maths.trajectory import expodistance, growth_fit, lss, sigma1_depth_fit
from coupling_tui.core.results import names


class ModelPass:
    """Everything one model computes on one token sequence: the trace up front, then per block the Jacobians,
    their top-K, coupling entries and trajectory fits, as LayerDone events of one stage."""

    def __init__(self, loaded: LoadedModel, ids: list[int], *, stage: str, prefix: str, top_k: int,
                 jacobian_method: str, vector_budget_mb: float | None, history_mb: float, token_coupling: bool,
                 keep_hidden: bool, vju: bool = False, pairs=(), layers: list[int] | None = None,
                 topk_solver: str = "auto", convention: str = "paper"):
        self.loaded, self.stage, self.prefix, self.keep_hidden = loaded, stage, prefix, keep_hidden
        self.official = convention == "official"
        """``--convention official`` (docs/metrics.md "Two conventions"): the last block through the final norm,
        the official Ks, the linearisation over L−1 blocks to the post-norm state, the 1-based σ₁ fit."""
        self.topk_solver = topk_solver
        self._warm: dict[int, torch.Tensor] | None = (
            {} if resolve_solver(topk_solver, loaded.device) == "subspace" else None)
        """The subspace solver's warm start: the previous selected block's V per token chunk (chunk start → V)."""
        input_ids = torch.tensor([ids], device=loaded.device)
        tr = trace(loaded.model, loaded.adapter, input_ids)
        self.last_logits = tr.last_logits
        self.hidden = tr.hidden.float().cpu().numpy()                  # [L+1, T, d], pre-final-norm
        self.norms = np.linalg.norm(self.hidden.astype(np.float64), axis=-1).astype(np.float32)
        L1, self.n_tokens, self.d = self.hidden.shape
        self.n_layers = L1 - 1
        self.selected = list(range(self.n_layers)) if layers is None else list(layers)
        """The blocks whose Jacobians are computed (--layers); the coupling stream holds them compactly."""
        self.slot = {layer: i for i, layer in enumerate(self.selected)}
        self.partial = len(self.selected) < self.n_layers
        self.k = min(top_k, self.d)
        self.jac = LayerJacobians(loaded, input_ids, tr.block_inputs, jacobian_method,
                                  last_output=tr.block_outputs[-1] if self.official else None) if self.k > 0 else None
        self.post_norm = _post_norm(loaded, tr.block_outputs[-1]) if self.official and self.k > 0 else None
        """[T, d] float64: norm(x^L), HF's hidden_states[L], the official linearisation's target."""
        self.keep = (vector_tokens(self.n_tokens, self.n_layers, self.d, self.k, vector_budget_mb)
                     if self.jac is not None and vector_budget_mb is not None else np.zeros(0, np.int64))
        self.ks = coupling_ks(self.k, convention) if self.jac is not None else []
        self.coupling = None
        self.pair_layers = [(int(r), int(c)) for r, c in pairs if r in self.slot and c in self.slot]
        """Token-coupling layer pairs (r ≠ c, both selected); the coupling stream holds them as slots."""
        self.coupling_device = tr.block_inputs.device
        """Where the coupling stream's bases, history and products live: block 0's input device (a sharded
        model's first GPU). Each block's J and top-K are made on its own device, then moved here."""
        if self.ks:
            self.coupling = CouplingStream(len(self.selected), self.n_tokens, self.d, self.ks, dtype=self.jac.dtype,
                                           device=self.coupling_device, history_mb=history_mb,
                                           token_coupling=token_coupling, vju=vju,
                                           pairs=[(self.slot[r], self.slot[c]) for r, c in self.pair_layers])
        self.sigma1_start = 9 if self.n_layers >= (11 if self.official else 12) else 0
        """The official code fits d[9:] whenever that has two points (L ≥ 11); the paper convention from L ≥ 12."""
        self._sigma1 = np.full((self.n_layers, self.n_tokens), np.nan, np.float64)
        self._x_lin: torch.Tensor | None = None
        """Π (I + J^l) x^0 over the blocks done so far, per token (float64, on the Jacobians' device)."""

    # -- what RunStarted announces --
    def stages(self) -> list[dict]:
        out = [{"name": self.stage, "steps": self.n_layers}]
        if self.coupling is not None and self.coupling.second_pass:
            out.append({"name": f"{self.stage} · coupling pass", "steps": len(self.selected)})
        return out

    def coupling_header(self) -> dict | None:
        c = self.coupling
        if c is None:
            return None
        return {"ks": c.ks, "k": display_k(c.ks), "norm": "norm", "variant": "ujv", "variants": list(c.variants),
                "elementwise_abs": True, "tokens": "all", "history": c.keep_history,
                "token_coupling": c.token is not None, "token_pairs": len(c.pairs)}

    def fits_header(self) -> dict:
        return {"growth_start": 1, "expodistance_start": 1, "lss_start": 0, "sigma1_start": self.sigma1_start}

    def arrays(self) -> dict[str, np.ndarray]:
        L, T, d = self.n_layers, self.n_tokens, self.d
        a: dict[str, np.ndarray] = {names.TRAJECTORY_NORMS: _unfilled((L + 1, T))}
        a[names.TRAJECTORY_NORMS][0] = self.norms[0]
        if self.keep_hidden:
            a[names.TRAJECTORY_HIDDEN] = _unfilled(self.hidden.shape)
            a[names.TRAJECTORY_HIDDEN][0] = self.hidden[0]
        for name in _FIT_NAMES:
            a[name] = _unfilled((T,))
        if self.jac is not None:
            a.update({names.JACOBIAN_SINGULAR_VALUES: _unfilled((L, T, self.k)),
                      names.JACOBIAN_FROBENIUS: _unfilled((L, T)),
                      names.TRAJECTORY_FIDELITY: _unfilled((L + 1, T))})
            a[names.TRAJECTORY_FIDELITY][0] = 1.0                     # x_lin = x^0 before any block
            for name in _SIGMA1_NAMES:
                a[name] = _unfilled((T,))
            if self.keep.size:
                a.update({names.JACOBIAN_VECTOR_TOKENS: self.keep,
                          names.JACOBIAN_U: _unfilled((L, len(self.keep), d, self.k)),
                          names.JACOBIAN_V: _unfilled((L, len(self.keep), d, self.k))})
        c = self.coupling
        if c is not None:
            a.update({names.COUPLING_KS: np.asarray(c.ks, np.int64), names.COUPLING_DEPTH: _unfilled((T, L, L)),
                      names.COUPLING_DEPTH_K: self._full(c.depth, 2),
                      names.COUPLING_DEPTH_TRACE_K: self._full(c.depth_trace, 2),
                      names.COUPLING_DEPTH_MEAN_K: _unfilled((len(c.ks), L, L))})
            if c.token is not None:
                a[names.COUPLING_TOKEN_K] = self._full(c.token, 1, pair=False)
            if c.vju is not None:
                a.update({names.COUPLING_DEPTH_VJU_K: self._full(c.vju, 2),
                          names.COUPLING_DEPTH_VJU_TRACE_K: self._full(c.vju_trace, 2)})
            if c.pairs:
                a.update({names.COUPLING_TOKEN_PAIRS: np.asarray(self.pair_layers, np.int64).reshape(-1, 2),
                          names.COUPLING_TOKEN_PAIR_K: c.token_pair.copy()})
        return {self.prefix + name: value for name, value in a.items()}

    # -- the work --
    def events(self) -> Iterator[LayerDone]:
        for layer in range(self.n_layers):
            rows = {names.TRAJECTORY_NORMS: (layer + 1, self.norms[layer + 1])}
            if self.keep_hidden:
                rows[names.TRAJECTORY_HIDDEN] = (layer + 1, self.hidden[layer + 1])
            if self.jac is not None and layer in self.slot:
                rows.update(self._jacobian_rows(layer))
            rows.update(self._fit_rows(layer))
            yield self._event(layer, self.stage, rows)
        if self.coupling is not None and self.coupling.second_pass:
            for slot, layer in enumerate(self.selected):
                if slot < len(self.selected) - 1:
                    for chunk in self.jac.token_chunks():
                        J = self.jac.layer(layer, chunk).to(self.coupling_device)
                        self.coupling.add_upper(slot, chunk, J)
                yield self._event(layer, f"{self.stage} · coupling pass",
                                  self._coupling_rows(pairs=bool(self.coupling.pairs_done_at(slot, True))))

    def _event(self, layer: int, stage: str, rows: dict) -> LayerDone:
        return LayerDone(layer=layer, n_layers=self.n_layers, stage=stage,
                         rows={self.prefix + name: value for name, value in rows.items()})

    def _jacobian_rows(self, layer: int) -> dict:
        """Top-K triplets, Frobenius norms and coupling entries of block ``layer``, token chunk by token chunk."""
        jac, k, keep = self.jac, self.k, self.keep
        S = np.empty((jac.n_tokens, k), np.float32)
        fro = np.empty(jac.n_tokens, np.float32)
        U = np.empty((len(keep), jac.d, k), np.float32)
        V = np.empty((len(keep), jac.d, k), np.float32)
        x_lin = None
        for chunk in jac.token_chunks():
            J = jac.layer(layer, chunk)
            warm = self._warm.get(chunk.start) if self._warm is not None else None
            u, s, v = top_k_triplets(J, k, solver=self.topk_solver, start=warm)
            if self._warm is not None:
                self._warm[chunk.start] = v
            S[chunk.start:chunk.stop] = s.float().cpu().numpy()
            fro[chunk.start:chunk.stop] = torch.linalg.matrix_norm(J).float().cpu().numpy()
            sel = np.flatnonzero((keep >= chunk.start) & (keep < chunk.stop))
            if sel.size:
                local = torch.as_tensor(keep[sel] - chunk.start, device=u.device)
                U[sel] = u[local].float().cpu().numpy()
                V[sel] = v[local].float().cpu().numpy()
            if self.coupling is not None:                      # sharded: J, U, S, V move to one device
                self.coupling.add_layer(self.slot[layer], chunk, *self._to_coupling(J, u, s, v))
            if not self.partial:                                  # Π (I + J^l) x^0 needs every block
                x_lin = self._chain(layer, chunk, J)
            del J, u, s, v
        self._sigma1[layer] = S[:, 0]
        rows = {names.JACOBIAN_SINGULAR_VALUES: (layer, S), names.JACOBIAN_FROBENIUS: (layer, fro)}
        if x_lin is not None:
            rows[names.TRAJECTORY_FIDELITY] = (layer + 1, x_lin)
        if keep.size:
            rows.update({names.JACOBIAN_U: (layer, U), names.JACOBIAN_V: (layer, V)})
        if self.coupling is not None:
            rows.update(self._coupling_rows(layer))
        if layer >= self.sigma1_start + 1 and not self.partial:
            fit = sigma1_depth_fit(self._sigma1[: layer + 1], start=self.sigma1_start, first_depth=int(self.official))
            for name, key in zip(_SIGMA1_NAMES, ("slope", "intercept", "r2")):
                rows[name] = (Ellipsis, fit[key].astype(np.float32))
        return rows

    def _to_coupling(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``tensors`` on the coupling device (no copy where they already are: an unsharded model)."""
        return tuple(t.to(self.coupling_device) for t in tensors)

    def _chain(self, layer: int, chunk: range, J: torch.Tensor) -> np.ndarray:
        """Linearisation fidelity: push x_lin = Π (I + J^l) x^0 through block ``layer`` at ``chunk``; returns
        cos(x_lin, x^{l+1}) for every token computed so far (float64 maths). Official convention, last block:
        x_lin stays Π over the first L−1 blocks and the target is norm(x^L) (its ``compute_linearization``)."""
        if self._x_lin is None:
            self._x_lin = torch.as_tensor(self.hidden[0], dtype=torch.float64, device=J.device)
        self._x_lin = self._x_lin.to(J.device)                    # [T, d]: follows a sharded model's blocks
        last = self.post_norm is not None and layer == self.n_layers - 1
        if not last:
            x = self._x_lin[chunk.start:chunk.stop]
            self._x_lin[chunk.start:chunk.stop] = x + (J.double() @ x.unsqueeze(-1)).squeeze(-1)
        xl = self._x_lin.cpu().numpy()
        y = self.post_norm if last else self.hidden[layer + 1].astype(np.float64)
        return ((xl * y).sum(-1) / (np.linalg.norm(xl, axis=-1) * np.linalg.norm(y, axis=-1))).astype(np.float32)

    def _coupling_rows(self, layer: int | None = None, pairs: bool = False) -> dict:
        c = self.coupling
        depth_k = self._full(c.depth, 2)
        rows = {names.COUPLING_DEPTH: (Ellipsis, depth_k[c.ks.index(display_k(c.ks))]),
                names.COUPLING_DEPTH_K: (Ellipsis, depth_k),
                names.COUPLING_DEPTH_TRACE_K: (Ellipsis, self._full(c.depth_trace, 2)),
                names.COUPLING_DEPTH_MEAN_K: (Ellipsis, self._full(c.depth_mean(), 1))}
        if c.vju is not None:
            rows.update({names.COUPLING_DEPTH_VJU_K: (Ellipsis, self._full(c.vju, 2)),
                         names.COUPLING_DEPTH_VJU_TRACE_K: (Ellipsis, self._full(c.vju_trace, 2))})
        if layer is not None and c.token is not None:
            rows[names.COUPLING_TOKEN_K] = ((slice(None), layer), c.token[:, self.slot[layer]].copy())
        if pairs or (layer is not None and c.pairs_done_at(self.slot[layer])):
            rows[names.COUPLING_TOKEN_PAIR_K] = (Ellipsis, c.token_pair.copy())
        return rows

    def _full(self, compact: np.ndarray, axis: int, pair: bool = True) -> np.ndarray:
        """A coupling array over the selected blocks (``axis``, and ``axis + 1`` when ``pair``) spread over every
        block, NaN at the others; a copy either way."""
        if not self.partial:
            return compact.copy()
        shape = list(compact.shape)
        shape[axis] = self.n_layers
        if pair:
            shape[axis + 1] = self.n_layers
        out = np.full(shape, np.nan, np.float32)
        sel = np.asarray(self.selected)
        index = [slice(None)] * compact.ndim
        if pair:
            index[axis], index[axis + 1] = sel[:, None], sel[None, :]
        else:
            index[axis] = sel
        out[tuple(index)] = compact
        return out

    def _fit_rows(self, layer: int) -> dict:
        """Trajectory fits over the states computed so far (rows 0..layer+1)."""
        rows: dict = {}
        norms, hidden = self.norms[: layer + 2], self.hidden[: layer + 2]
        if layer >= 1:
            g = growth_fit(norms, start=1)
            e = expodistance(hidden, start=1)
            rows.update({names.TRAJECTORY_GROWTH_FACTOR: g["factor"], names.TRAJECTORY_GROWTH_R2: g["r2"],
                         names.TRAJECTORY_EXPODISTANCE_FACTOR: e["factor"], names.TRAJECTORY_EXPODISTANCE_R2: e["r2"],
                         names.TRAJECTORY_EXPODISTANCE_CV: e["ratio_cv"]})
        rows[names.TRAJECTORY_LSS] = lss(hidden, start=0)
        return {name: (Ellipsis, np.asarray(v, np.float32)) for name, v in rows.items()}

    # -- what RunFinished adds --
    def next_token(self) -> dict:
        next_id = int(self.last_logits.argmax())
        return {"id": next_id, "text": self.loaded.tokenizer.decode([next_id])}

    def scalars(self) -> dict:
        """The header's run scalars at the K of ``coupling.depth`` (docs/metrics.md "One number per run"): pooled
        over every token (``coupling_scalar``) and the last token's alone (``coupling_scalar_last_token``, the
        papers'); both None without coupling."""
        c = self.coupling
        if c is None:
            return {names.H_COUPLING_SCALAR: None, names.H_COUPLING_SCALAR_LAST: None}
        k = display_k(c.ks)
        depth = c.depth[c.ks.index(k)]
        return {names.H_COUPLING_SCALAR: all_tokens_scalar(depth, k),
                names.H_COUPLING_SCALAR_LAST: last_token_scalar(depth, k)}


_FIT_NAMES = (names.TRAJECTORY_GROWTH_FACTOR, names.TRAJECTORY_GROWTH_R2, names.TRAJECTORY_LSS,
              names.TRAJECTORY_EXPODISTANCE_FACTOR,
              names.TRAJECTORY_EXPODISTANCE_R2, names.TRAJECTORY_EXPODISTANCE_CV)
_SIGMA1_NAMES = (names.JACOBIAN_SIGMA1_FIT_SLOPE, names.JACOBIAN_SIGMA1_FIT_INTERCEPT, names.JACOBIAN_SIGMA1_FIT_R2)


def _post_norm(loaded: LoadedModel, last_output: torch.Tensor) -> np.ndarray:
    """norm(x^L) [T, d] float64: the model's final norm on the last block's output, in the model's dtype, as HF
    makes ``hidden_states[L]``."""
    with torch.no_grad():
        y = loaded.adapter.final_norm_module(loaded.model)(last_output[None])[0]
    return y.double().cpu().numpy()


def _unfilled(shape: tuple[int, ...]) -> np.ndarray:
    return np.full(shape, np.nan, dtype=np.float32)
