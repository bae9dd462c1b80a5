"""Orchestration: a generator of small engine events (core.results.events), one per layer, that a CLI, the TUI or a test
consumes. Nothing here draws or saves; stopping the iteration between layers stops the work."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any, Iterator

import numpy as np
import torch

from coupling_tui.core import __version__
from coupling_tui.core.errors import UserError
from coupling_tui.core.results.events import Event, RunFinished, RunStarted
from coupling_tui.core.load.models import LoadedModel
from coupling_tui.core.engine.model_pass import ModelPass
from coupling_tui.core.load.placement import is_dispatched
from coupling_tui.core.options.run_options import RunOptions
from coupling_tui.core.engine.collapse import CollapsePass, CollapseSpec
from coupling_tui.core.engine.context import ContextPass
from coupling_tui.core.linalg.spectra import resolve_solver
from coupling_tui.core.results import names


def tokenize(loaded: LoadedModel, prompt: str, max_tokens: int) -> tuple[list[int], int | None]:
    """Token ids of ``prompt`` (the tokenizer's own special tokens included), cut to the first ``max_tokens``
    and to the model's context; returns (ids, original length if truncated else None)."""
    ids = list(loaded.tokenizer(prompt, add_special_tokens=True)["input_ids"])
    if not ids:
        raise UserError("the prompt has no tokens", "give some text to analyse")
    limit = max_tokens
    context = getattr(loaded.model.config, "max_position_embeddings", None) or getattr(
        loaded.model.config, "n_positions", None)
    if context:
        limit = min(limit, int(context))
    if len(ids) > limit:
        return ids[:limit], len(ids)
    return ids, None


def token_texts(tokenizer: Any, ids: list[int]) -> list[str]:
    return [tokenizer.decode([i]) for i in ids]


def stream(loaded: LoadedModel, prompt: str, options: RunOptions | None = None, *,
           baseline: LoadedModel | None = None) -> Iterator[Event]:
    """Yield RunStarted, one LayerDone per block and stage, then RunFinished, for the run ``options``
    (core.options.run_options; None = the defaults) asks for. Its header's ``params`` are
    ``options.header_params``.

    Stage "layers" carries, per block, the residual stream leaving it, its norms, the trajectory fits so far and,
    when ``top_k`` > 0, the block's Jacobian summary (top-K singular values and Frobenius norm of every token's J,
    top-K singular vectors of the tokens chosen by ``vector_tokens``) and the depth/token coupling entries it
    completes (core.engine.coupling_stream; with ``vju`` also the bases-exchanged variant, with ``token_pairs``
    (core.options.coupling: "adjacent", "r:c,…" or a list of pairs) token coupling between different layers).
    ``context_layers`` adds a stage "context" (core.engine.context: cross-token Jacobians at those layers for
    the input token ``context_tokens[0]`` and the output token ``context_tokens[1]``). A stage "coupling pass" follows when the dense-J history did not fit
    ``history_mb``. With ``baseline`` (the same architecture, random weights) the same stages run again on it,
    into arrays with the random-init prefix (``results.names``). With ``collapse`` a stage "collapse" follows (core.engine.collapse: the
    representational-collapse pairs and the over-squashing sensitivity, on the trained model; its header under
    ``collapse``, its arrays prefixed ``collapse.``). Only one layer's dense Jacobians exist at a time unless the
    history fits; a consumer that stops iterating stops the work between layers. ``layers`` (sorted block
    indices) bounds the Jacobians, their spectra and the coupling to those blocks (``--layers``): the arrays keep
    every block's place, NaN at the others; trajectories cover every block, and the linearisation fidelity and
    the 1/σ₁ fit, which need every block, are left NaN. ``topk_solver`` is ``core.linalg.spectra.top_k``'s solver
    ("auto": scipy on the CPU, subspace iteration on CUDA)."""
    started = time.perf_counter()
    o = RunOptions() if options is None else options
    _check_collapse_placement(loaded, o.collapse)
    _check_solver(o.topk_solver, loaded.device)
    layers = o.blocks(len(loaded.adapter.block_list(loaded.model)))
    ids, truncated_from = tokenize(loaded, prompt, o.max_tokens)
    collapse_pass = CollapsePass(loaded, o.collapse) if o.collapse is not None else None   # checks the spec first
    n_layers = int(loaded.info["n_layers"])
    pairs = o.pairs(n_layers)
    opts = {"top_k": o.top_k, "jacobian_method": o.jacobian_method, "history_mb": o.history_mb, "vju": o.vju,
            "layers": layers, "topk_solver": o.topk_solver, "convention": o.convention}
    passes = [ModelPass(loaded, ids, stage="layers", prefix="", vector_budget_mb=o.vector_budget_mb,
                        token_coupling=o.token_coupling, keep_hidden=True, pairs=pairs, **opts)]
    if baseline is not None:
        passes.append(ModelPass(baseline, ids, stage="random-init", prefix=names.RANDOM_INIT_PREFIX,
                                vector_budget_mb=None,
                                token_coupling=False, keep_hidden=False, pairs=[], **opts))
    layers_c = o.context_blocks(n_layers)
    context = ContextPass(loaded, ids, layers_c, o.context_tokens, top_k=passes[0].k, history_mb=o.history_mb,
                          topk_solver=o.topk_solver) if layers_c and passes[0].k > 0 else None
    main = passes[0]
    header = {
        "tool": {"name": "coupling-tui", "version": __version__},
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": dict(loaded.info),
        "dtype": loaded.dtype,
        "device": loaded.device,
        "placement": loaded.placement,
        "prompt": prompt,
        "tokens": {"ids": ids, "text": token_texts(loaded.tokenizer, ids), "truncated_from": truncated_from},
        "params": o.header_params(n_layers, top_k=main.k, baseline=baseline is not None),
        "jacobian": None if main.jac is None else {
            "method": main.jac.method, "compute_dtype": str(main.jac.dtype).replace("torch.", ""), "top_k": main.k,
            "topk_solver": resolve_solver(o.topk_solver, loaded.device)},
        "coupling": main.coupling_header(),
        "fits": main.fits_header(),
        "stages": [stage for p in passes for stage in p.stages()],
        "versions": {"torch": torch.__version__, "transformers": _transformers_version()},
    }
    if baseline is not None:
        header["random_init"] = {"model": dict(baseline.info)}
    arrays = {names.TOKENS_IDS: np.asarray(ids, dtype=np.int64)}
    for p in passes:
        arrays.update(p.arrays())
    if context is not None:
        header["context"] = context.header()
        header["stages"] += context.stages()
        arrays.update(context.arrays())
    if collapse_pass is not None:
        header["collapse"] = collapse_pass.header()
        header["stages"] += collapse_pass.stages()
        arrays.update(collapse_pass.arrays())
    yield RunStarted(header=header, arrays=arrays)
    for p in passes:
        yield from p.events()
    if context is not None:
        yield from context.events()
    if collapse_pass is not None:
        yield from collapse_pass.events()
    end = {"next_token": main.next_token(), **main.scalars()}
    if baseline is not None:
        end["random_init"] = {**header["random_init"], "next_token": passes[1].next_token(), **passes[1].scalars()}
    if collapse_pass is not None:
        end["collapse"] = collapse_pass.header()          # now with the greedy tokens' texts and the time
    yield RunFinished(seconds=time.perf_counter() - started, header=end)


def _check_collapse_placement(loaded: LoadedModel, collapse: CollapseSpec | None) -> None:
    """The collapse stage copies the whole model into its low dtype: not a model accelerate has dispatched."""
    if collapse is not None and loaded.placement is not None and is_dispatched(loaded.model):
        raise UserError("--collapse copies the whole model into --low-dtype, which a model sharded with "
                        "--device-map/--max-memory cannot do",
                        "run the collapse stage on a model that fits one device (drop --device-map/--max-memory)")


def _check_solver(solver: str, device: str) -> None:
    """scipy (LAPACK on numpy arrays) only for a model on the CPU (RunOptions has checked the solver's name)."""
    try:
        resolve_solver(solver, device)
    except ValueError:
        raise UserError(f"--topk-solver scipy runs on the CPU only, and this model is on {device}",
                        "use auto, torch or subspace") from None


def _transformers_version() -> str:
    import transformers

    return transformers.__version__
