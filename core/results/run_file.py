"""Results files: one safetensors file per run, tensors plus a JSON header. Torch-free; never unpickles.

Format (documented in docs/results-format.md): the safetensors ``__metadata__`` holds ``format = "coupling-tui"``
and ``header`` = the run header as JSON, whose ``schema_version`` is checked on load.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from coupling_tui.core.atomic import atomic_write_bytes
from coupling_tui.core.errors import ResultsError
from coupling_tui.core.results.run import Run
from coupling_tui.core.results import names, schema

FORMAT_NAME = "coupling-tui"
SCHEMA_VERSION = 1
REQUIRED_ARRAYS = (names.TOKENS_IDS, names.TRAJECTORY_HIDDEN, names.TRAJECTORY_NORMS)


def to_bytes(run: Run) -> bytes:
    from safetensors.numpy import save

    header = dict(run.header)
    header["schema_version"] = SCHEMA_VERSION
    header["layers_done"] = run.layers_done
    header["steps_done"] = run.steps_done
    header["complete"] = bool(run.finished and run.layers_done == run.n_layers)
    arrays = {name: np.ascontiguousarray(a) for name, a in run.arrays.items()}
    return save(arrays, metadata={"format": FORMAT_NAME, "header": json.dumps(header)})


def save(run: Run, path: str | os.PathLike) -> Path:
    """Write ``run`` atomically to ``path`` (temp file + rename); returns the path written."""
    return atomic_write_bytes(path, to_bytes(run))


def load(path: str | os.PathLike) -> Run:
    """Open a results file without torch. Any problem raises ResultsError("cannot open …: reason")."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise ResultsError(f"cannot open {p}: no such file")
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ResultsError(f"cannot open {p}: {exc.strerror or exc}") from exc
    return from_bytes(data, str(p))


def from_bytes(data: bytes, name: str = "<bytes>") -> Run:
    from safetensors import SafetensorError
    from safetensors.numpy import load as st_load

    def fail(reason: str) -> ResultsError:
        return ResultsError(f"cannot open {name}: {reason}")

    header = read_header(data, fail, FORMAT_NAME,
                         "not a coupling-tui results file (a safetensors file without its header)")
    version = header.get("schema_version")
    if version != SCHEMA_VERSION:
        raise fail(f"schema version {version!r}, this coupling-tui reads version {SCHEMA_VERSION}")
    schema.check_run_header(header, fail)
    try:
        arrays = st_load(data)
    except (SafetensorError, ValueError, TypeError) as exc:
        raise fail(f"corrupt tensor data ({exc})") from exc
    missing = [n for n in REQUIRED_ARRAYS if n not in arrays]
    if missing:
        raise fail(f"missing arrays {', '.join(missing)}")
    _check_shapes(header, arrays, fail)
    n_layers = int(header["model"]["n_layers"])
    schema.check_arrays(arrays, n_layers, len(header["tokens"]["text"]), fail)
    schema.check_run_counters(header, n_layers, schema.count_steps(header, n_layers), fail)
    layers_done = header.get(names.HEADER_LAYERS_DONE, 0)
    return Run(header=header, arrays=arrays, layers_done=layers_done, steps_done=header.get(names.HEADER_STEPS_DONE, 0),
               finished=bool(header.get("complete")))


def read_header(data: bytes, fail, format_name: str, not_ours: str) -> dict:
    """The JSON header of a coupling-tui safetensors file of format ``format_name`` (a results file, a prompt
    set's index); ``fail(reason)`` builds the error, ``not_ours`` is the reason when the format is another."""
    meta = _read_metadata(data, fail)
    if meta.get("format") != format_name or "header" not in meta:
        raise fail(not_ours)
    if not isinstance(meta["header"], str):
        raise fail(f"its header is a JSON {type(meta['header']).__name__}, not a string of JSON")
    try:
        header = json.loads(meta["header"])
    except json.JSONDecodeError as exc:
        raise fail(f"its header is not valid JSON ({exc.msg})") from exc
    if not isinstance(header, dict):
        raise fail("its header is not a JSON object")
    return header


def _read_metadata(data: bytes, fail) -> dict:
    """Parse the safetensors JSON header by hand (8-byte little-endian length + JSON), so garbage is reported
    clearly before the tensor loader sees it."""
    if len(data) < 8:
        raise fail("not a safetensors file (too short)")
    n = int.from_bytes(data[:8], "little")
    if n <= 1 or 8 + n > len(data):
        raise fail("not a safetensors file, or truncated (bad header length)")
    try:
        st_header = json.loads(data[8 : 8 + n])
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise fail("not a safetensors file (unreadable header)") from None
    if not isinstance(st_header, dict):
        raise fail("not a safetensors file (header is not an object)")
    meta = st_header.get("__metadata__") or {}
    if not isinstance(meta, dict):
        raise fail("not a safetensors file (bad metadata)")
    return meta


def _check_shapes(header: dict, arrays: dict, fail) -> None:
    try:
        n_layers = int(header["model"]["n_layers"])
        n_tokens = len(header["tokens"]["text"])
    except (KeyError, TypeError, ValueError):
        raise fail("its header lacks model.n_layers or tokens.text") from None
    hidden, norms, ids = arrays[names.TRAJECTORY_HIDDEN], arrays[names.TRAJECTORY_NORMS], arrays[names.TOKENS_IDS]
    if hidden.ndim != 3 or hidden.shape[:2] != (n_layers + 1, n_tokens):
        raise fail(f"trajectory.hidden has shape {hidden.shape}, expected ({n_layers + 1}, {n_tokens}, d)")
    if norms.shape != (n_layers + 1, n_tokens):
        raise fail(f"trajectory.norms has shape {norms.shape}, expected ({n_layers + 1}, {n_tokens})")
    if ids.shape != (n_tokens,):
        raise fail(f"tokens.ids has shape {ids.shape}, expected ({n_tokens},)")
    if names.JACOBIAN_SINGULAR_VALUES in arrays:
        _check_jacobian_shapes(arrays, n_layers, n_tokens, hidden.shape[2], fail)
    for prefix in ("", names.RANDOM_INIT_PREFIX):
        if prefix + names.COUPLING_KS in arrays:
            _check_coupling_shapes(arrays, prefix, n_layers, n_tokens, fail)
    if names.CONTEXT_LAYERS in arrays:
        _check_context_shapes(header, arrays, n_layers, n_tokens, fail)
    if header.get("collapse") is not None or any(name.startswith(names.COLLAPSE_PREFIX) for name in arrays):
        _check_collapse_shapes(header, arrays, hidden.shape[2], fail)


def _check_coupling_shapes(arrays: dict, prefix: str, L: int, T: int, fail) -> None:
    """Every coupling matrix has the shape the panes index: nK Ks, L layers, T tokens, P layer pairs."""
    ks = arrays[prefix + names.COUPLING_KS]
    if ks.ndim != 1 or not ks.size:
        raise fail(f"{prefix}coupling.ks has shape {ks.shape}, expected (nK,)")
    nk = ks.shape[0]
    pairs = arrays.get(prefix + names.COUPLING_TOKEN_PAIRS)
    if pairs is not None and (pairs.ndim != 2 or pairs.shape[1] != 2 or (pairs.size and not (
            0 <= pairs.min() and pairs.max() < L))):
        raise fail(f"{prefix}coupling.token_pairs is not a (P, 2) list of layers 0..{L - 1}")
    P = 0 if pairs is None else pairs.shape[0]
    expected = {names.COUPLING_DEPTH: (T, L, L), names.COUPLING_DEPTH_K: (nk, T, L, L),
                names.COUPLING_DEPTH_TRACE_K: (nk, T, L, L), names.COUPLING_DEPTH_MEAN_K: (nk, L, L),
                names.COUPLING_DEPTH_VJU_K: (nk, T, L, L), names.COUPLING_DEPTH_VJU_TRACE_K: (nk, T, L, L),
                names.COUPLING_TOKEN_K: (nk, L, T, T), names.COUPLING_TOKEN_PAIR_K: (nk, P, T, T)}
    for name, shape in expected.items():
        a = arrays.get(prefix + name)
        if a is not None and a.shape != shape:
            raise fail(f"{prefix}{name} has shape {a.shape}, expected {shape}")
    if prefix + names.COUPLING_DEPTH_K not in arrays:
        raise fail(f"missing array {prefix}coupling.depth_k")


def _check_context_shapes(header: dict, arrays: dict, L: int, T: int, fail) -> None:
    layers, tokens = arrays[names.CONTEXT_LAYERS], arrays.get(names.CONTEXT_TOKENS)
    ks = (header.get("context") or {}).get("ks")
    if layers.ndim != 1 or (layers.size and not (0 <= layers.min() and layers.max() < L)) or not ks:
        raise fail(f"context.layers is not a list of layers 0..{L - 1} with the header's context.ks")
    if tokens is None or tokens.shape != (2,) or not (0 <= tokens.min() and tokens.max() < T):
        raise fail(f"context.tokens is not two token indices 0..{T - 1}")
    lc, nk = layers.shape[0], len(ks)
    for side in ("out", "in"):
        expected = {names.context_name(side, "k"): (nk, lc, lc, T, T), names.context_name(side, "frobenius"): (lc, T),
                    names.context_name(side, "singular_values"): (lc, T, max(int(k) for k in ks))}
        for name, shape in expected.items():
            a = arrays.get(name)
            if a is None or a.shape != shape:
                raise fail(f"{name} has shape {None if a is None else a.shape}, expected {shape}")


def _check_jacobian_shapes(arrays: dict, n_layers: int, n_tokens: int, d: int, fail) -> None:
    required = (names.JACOBIAN_SINGULAR_VALUES, names.JACOBIAN_FROBENIUS, names.JACOBIAN_VECTOR_TOKENS,
                names.JACOBIAN_U, names.JACOBIAN_V)
    missing = [n for n in required if n not in arrays]
    if missing:
        raise fail(f"missing arrays {', '.join(missing)}")
    S, keep = arrays[names.JACOBIAN_SINGULAR_VALUES], arrays[names.JACOBIAN_VECTOR_TOKENS]
    if S.ndim != 3 or keep.ndim != 1:
        raise fail(f"jacobian.singular_values has shape {S.shape} and jacobian.vector_tokens {keep.shape}, "
                   f"expected ({n_layers}, {n_tokens}, K) and (n,)")
    k, n = S.shape[2], keep.shape[0]
    expected = {
        names.JACOBIAN_SINGULAR_VALUES: (n_layers, n_tokens, k),
        names.JACOBIAN_FROBENIUS: (n_layers, n_tokens),
        names.JACOBIAN_U: (n_layers, n, d, k),
        names.JACOBIAN_V: (n_layers, n, d, k),
    }
    for name, shape in expected.items():
        if arrays[name].shape != shape:
            raise fail(f"{name} has shape {arrays[name].shape}, expected {shape}")
    if keep.size and (keep.min() < 0 or keep.max() >= n_tokens):
        raise fail("jacobian.vector_tokens holds token indices outside the prompt")


COLLAPSE_ARRAYS = (names.COLLAPSE_LENGTHS, names.COLLAPSE_N_TOKENS, names.COLLAPSE_FINAL, names.COLLAPSE_FINAL_NORMED,
                   names.COLLAPSE_DIFF, names.COLLAPSE_DIFF_LOW, names.COLLAPSE_IDENTICAL_LOW, names.COLLAPSE_NEXT_IDS,
                   names.COLLAPSE_SENSITIVITY, names.COLLAPSE_SENSITIVITY_RAW)


def _check_collapse_shapes(header: dict, arrays: dict, d: int, fail) -> None:
    """F families (the header's ``collapse.families``), N lengths, model width d (that of the trajectories)."""
    info = header.get("collapse")
    families = info.get("families") if isinstance(info, dict) else None
    if not isinstance(families, list) or not families:
        raise fail("it has collapse arrays but its header lacks collapse.families")
    missing = [n for n in COLLAPSE_ARRAYS if n not in arrays]
    if missing:
        raise fail(f"missing arrays {', '.join(missing)}")
    lengths = arrays[names.COLLAPSE_LENGTHS]
    if lengths.ndim != 1 or lengths.shape[0] == 0:
        raise fail(f"collapse.lengths has shape {lengths.shape}, expected (N,)")
    F, N = len(families), lengths.shape[0]
    expected = {
        names.COLLAPSE_N_TOKENS: (F, N, 2),
        names.COLLAPSE_FINAL: (F, N, 2, d),
        names.COLLAPSE_FINAL_NORMED: (F, N, 2, d),
        names.COLLAPSE_DIFF: (F, N, 3),
        names.COLLAPSE_DIFF_LOW: (F, N, 3),
        names.COLLAPSE_IDENTICAL_LOW: (F, N),
        names.COLLAPSE_NEXT_IDS: (F, N, 2),
        names.COLLAPSE_NEXT_IDS_LOW: (F, N, 2),
    }
    for name, shape in expected.items():
        if name in arrays and arrays[name].shape != shape:
            raise fail(f"{name} has shape {arrays[name].shape}, expected {shape} "
                       f"({F} families, {N} lengths, d = {d})")
    sens, raw = arrays[names.COLLAPSE_SENSITIVITY], arrays[names.COLLAPSE_SENSITIVITY_RAW]
    if sens.ndim != 1 or raw.shape != sens.shape:
        raise fail(f"collapse.sensitivity has shape {sens.shape} and collapse.sensitivity_raw {raw.shape}, expected "
                   "the same (P,)")
