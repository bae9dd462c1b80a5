"""The declared schema of coupling-tui results files, checked when a file is opened (issue 17, defect 3): a file
that opens is a file every pane can draw; anything else is one ResultsError naming the key or array.

``RUN_HEADER`` and ``SET_HEADER`` declare the headers (every key through core/results/names.py, its type and
range; optional keys stay optional, unknown keys are left alone). ``INT_ARRAYS`` / ``per-token`` tables declare the
arrays' dtype and the lengths that must match the header (the other shapes are checked in run_file). NaN is a
valid float value (rows not computed yet, fits that are undefined); ±inf is not, except in the raw activations
and the per-token fits (``MAY_BE_INFINITE``), where a low-precision model can overflow. Torch-free, Textual-free.
"""
from __future__ import annotations

import math

import numpy as np

from coupling_tui.core.results import names as n


class Spec:
    """A value's type and range: ``ok(value)`` and how it is described in a message."""

    def __init__(self, what: str, ok):
        self.what, self.ok = what, ok

    def check(self, value, path: str, fail) -> None:
        if not self.ok(value):
            raise fail(f"header key {path} is {_show(value)}, it must be {self.what}")


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def Int(lo: int = 0) -> Spec:
    return Spec(f"an integer ≥ {lo}", lambda v: _is_int(v) and v >= lo)


def Num(lo: float = 0.0) -> Spec:
    return Spec(f"a finite number ≥ {lo:g}",
                lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= lo)


STR = Spec("a string", lambda v: isinstance(v, str))
BOOL = Spec("true or false", lambda v: isinstance(v, bool))


class Nullable(Spec):
    """``spec`` or null (JSON ``null``)."""

    def __init__(self, spec: Spec):
        self.spec = spec
        super().__init__(f"{spec.what} or null", lambda v: v is None or spec.ok(v))

    def check(self, value, path: str, fail) -> None:
        if value is not None:
            try:
                self.spec.check(value, path, fail)
            except Exception:
                super().check(value, path, fail)
                raise


class ListOf(Spec):
    """A list whose every item is ``item`` (checked in depth: a list of records checks each record's keys)."""

    def __init__(self, item: Spec, nonempty: bool = False):
        self.item = item
        super().__init__(f"a {'non-empty ' if nonempty else ''}list of "
                         f"{item.what.removeprefix('a ').removeprefix('an ')}s",
                         lambda v: isinstance(v, list) and (bool(v) or not nonempty) and all(item.ok(x) for x in v))

    def check(self, value, path: str, fail) -> None:
        super().check(value, path, fail)
        for i, x in enumerate(value):
            self.item.check(x, f"{path}[{i}]", fail)


def DictOf(value: Spec) -> Spec:
    return Spec(f"an object of {value.what.removeprefix('a ').removeprefix('an ')}s",
                lambda v: isinstance(v, dict) and all(isinstance(k, str) and value.ok(x) for k, x in v.items()))


class Record(Spec):
    """An object with declared keys: ``fields`` maps key → (spec, required). Other keys are not checked."""

    def __init__(self, fields: dict, nullable: bool = False):
        self.fields, self.nullable = fields, nullable
        super().__init__("an object" + (" or null" if nullable else ""),
                         lambda v: isinstance(v, dict) or (nullable and v is None))

    def check(self, value, path: str, fail) -> None:
        super().check(value, path, fail)
        if value is None:
            return
        for key, (spec, required) in self.fields.items():
            sub = f"{path}.{key}" if path else key
            if key not in value:
                if required:
                    raise fail(f"its header lacks {sub}")
                continue
            spec.check(value[key], sub, fail)


REQ, OPT = True, False
POS_INTS = ListOf(Int(1))
OBJECT = Record({})
MAYBE_OBJECT = Record({}, nullable=True)
NEXT_TOKEN = Record({n.H_ID: (Nullable(Int(0)), OPT), n.H_TEXT: (Nullable(STR), OPT)}, nullable=True)
MODEL = Record({n.H_N_LAYERS: (Int(1), REQ), n.H_D_MODEL: (Nullable(Int(1)), OPT)})

RUN_HEADER = Record({
    n.H_MODEL: (MODEL, REQ),
    n.H_TOKENS: (Record({n.H_TEXT: (ListOf(STR), REQ), n.H_IDS: (ListOf(Int(0)), OPT)}), REQ),
    n.H_STAGES: (Nullable(ListOf(Record({n.H_NAME: (STR, REQ), n.H_STEPS: (Int(0), REQ)}))), OPT),
    n.HEADER_LAYERS_DONE: (Int(0), OPT),
    n.HEADER_STEPS_DONE: (Int(0), OPT),
    n.H_COMPLETE: (Nullable(BOOL), OPT),
    n.H_SECONDS: (Nullable(Num(0)), OPT),
    n.H_NEXT_TOKEN: (NEXT_TOKEN, OPT),
    n.H_PARAMS: (MAYBE_OBJECT, OPT),
    n.H_FITS: (Record({key: (Int(0), OPT) for key in (n.H_GROWTH_START, n.H_EXPODISTANCE_START, n.H_LSS_START,
                                                      n.H_SIGMA1_START)}, nullable=True), OPT),
    n.H_JACOBIAN: (Record({n.H_TOP_K: (Nullable(Int(0)), OPT)}, nullable=True), OPT),
    n.H_COUPLING: (Record({n.H_KS: (POS_INTS, OPT), n.H_K: (Nullable(Int(1)), OPT)}, nullable=True), OPT),
    n.H_CONTEXT: (Record({n.H_KS: (POS_INTS, OPT), n.H_K: (Nullable(Int(1)), OPT),
                          n.H_LAYERS: (ListOf(Int(0)), OPT)}, nullable=True), OPT),
    n.H_COLLAPSE: (Record({n.H_FAMILIES: (ListOf(STR, nonempty=True), OPT), n.H_LENGTHS: (ListOf(Int(0)), OPT),
                           n.H_NEXT_TEXT: (Nullable(DictOf(STR)), OPT), n.H_SENSITIVITY: (MAYBE_OBJECT, OPT),
                           n.H_TOKENIZER: (MAYBE_OBJECT, OPT)}, nullable=True), OPT),
    n.H_RANDOM_INIT: (Record({n.H_MODEL: (Nullable(OBJECT), OPT), n.H_NEXT_TOKEN: (NEXT_TOKEN, OPT)},
                             nullable=True), OPT),
})

SET_HEADER = Record({
    n.H_MODEL: (MODEL, REQ),
    n.H_PROMPTS: (ListOf(Record({n.H_FILE: (STR, REQ), n.H_LABEL: (Nullable(STR), OPT), n.H_TEXT: (Nullable(STR), OPT),
                                 n.H_N_TOKENS: (Nullable(Int(0)), OPT), n.H_COMPLETE: (Nullable(BOOL), OPT),
                                 n.H_SECONDS: (Nullable(Num(0)), OPT), n.H_NEXT_TOKEN: (NEXT_TOKEN, OPT)}),
                      nonempty=True), REQ),
    n.H_AGGREGATE: (Record({n.H_KS: (POS_INTS, REQ), n.H_K: (Nullable(Int(1)), REQ), n.H_N_PROMPTS: (Int(0), REQ),
                            n.H_SCALAR: (MAYBE_OBJECT, OPT), n.H_RANDOM_INIT: (MAYBE_OBJECT, OPT)}), REQ),
    n.H_SECONDS: (Nullable(Num(0)), OPT),
    n.H_PARAMS: (MAYBE_OBJECT, OPT),
})

# -- arrays
INT_ARRAYS = frozenset({n.TOKENS_IDS, n.COUPLING_KS, n.COUPLING_TOKEN_PAIRS, n.CONTEXT_LAYERS, n.CONTEXT_TOKENS,
                        n.JACOBIAN_VECTOR_TOKENS, n.COLLAPSE_LENGTHS, n.COLLAPSE_N_TOKENS, n.COLLAPSE_NEXT_IDS,
                        n.COLLAPSE_NEXT_IDS_LOW})
"""Arrays of integers (indices, counts, Ks; with or without the random-init prefix); every other array is float."""
NON_NEGATIVE = frozenset({n.TOKENS_IDS, n.COUPLING_KS, n.COLLAPSE_LENGTHS, n.COLLAPSE_N_TOKENS})
PER_TOKEN = (n.TRAJECTORY_LSS, n.TRAJECTORY_GROWTH_FACTOR, n.TRAJECTORY_GROWTH_R2, n.TRAJECTORY_EXPODISTANCE_CV,
             n.TRAJECTORY_EXPODISTANCE_FACTOR, n.TRAJECTORY_EXPODISTANCE_R2, n.JACOBIAN_SIGMA1_FIT_INTERCEPT,
             n.JACOBIAN_SIGMA1_FIT_R2, n.JACOBIAN_SIGMA1_FIT_SLOPE)
"""(T,): one value per token."""
MAY_BE_INFINITE = frozenset({n.TRAJECTORY_HIDDEN, n.TRAJECTORY_NORMS, n.COLLAPSE_FINAL, n.COLLAPSE_FINAL_NORMED,
                             *PER_TOKEN})
"""Arrays where ±inf is a value, not damage: activations of a low-precision model can overflow, and a per-token fit
of such norms (growth factor e^b, R²) can be infinite; every pane draws them (tests/test_results_fuzz.py)."""
PER_DEPTH_TOKEN = (n.TRAJECTORY_FIDELITY, n.TRAJECTORY_NORMS)
"""(L + 1, T): one per depth 0..L and token."""
PER_LAYER_TOKEN = (n.JACOBIAN_FROBENIUS,)
"""(L, T): one per block and token."""


def check_run_header(header: dict, fail) -> None:
    RUN_HEADER.check(header, "", fail)


def check_set_header(header: dict, fail) -> None:
    SET_HEADER.check(header, "", fail)


def check_arrays(arrays: dict, L: int, T: int, fail) -> None:
    """dtype, finiteness and the per-token lengths of every array (both the trained and the random-init ones)."""
    for name, a in arrays.items():
        base = name.removeprefix(n.RANDOM_INIT_PREFIX)
        if base in INT_ARRAYS:
            if a.dtype.kind not in "iu":
                raise fail(f"{name} holds {a.dtype} values, it must hold integers")
            if base in NON_NEGATIVE and a.size and a.min() < 0:
                raise fail(f"{name} holds negative values")
        else:
            if a.dtype.kind != "f":
                raise fail(f"{name} holds {a.dtype} values, it must hold floating-point numbers")
            if base not in MAY_BE_INFINITE and np.isinf(a).any():
                raise fail(f"{name} holds infinite values")
    for prefix in ("", n.RANDOM_INIT_PREFIX):
        for names_, shape in ((PER_TOKEN, (T,)), (PER_DEPTH_TOKEN, (L + 1, T)), (PER_LAYER_TOKEN, (L, T))):
            for base in names_:
                a = arrays.get(prefix + base)
                if a is not None and a.shape != shape:
                    raise fail(f"{prefix}{base} has shape {a.shape}, expected {shape} ({L} layers, {T} tokens)")
        S = arrays.get(prefix + n.JACOBIAN_SINGULAR_VALUES)
        if S is not None and (S.ndim != 3 or S.shape[:2] != (L, T) or S.shape[2] < 1):
            raise fail(f"{prefix}{n.JACOBIAN_SINGULAR_VALUES} has shape {S.shape}, expected ({L}, {T}, K) "
                       "with K ≥ 1 singular values")
        ks = arrays.get(prefix + n.COUPLING_KS)
        if ks is not None and ks.size and ks.min() < 1:
            raise fail(f"{prefix}{n.COUPLING_KS} holds K < 1")


def check_run_counters(header: dict, n_layers: int, n_steps: int | None, fail) -> None:
    """Optional keys stay optional (absent = 0); present ones must be integers 0..n_layers / 0..n_steps
    (types are checked by RUN_HEADER first)."""
    for key, top in ((n.HEADER_LAYERS_DONE, n_layers), (n.HEADER_STEPS_DONE, n_steps)):
        value = header.get(key, 0)
        if not _is_int(value) or value < 0 or (top is not None and value > top):
            limit = "a non-negative integer" if top is None else f"an integer 0..{top}"
            raise fail(f"header key {key} is {_show(value)}, it must be {limit}")


def count_steps(header: dict, n_layers: int) -> int | None:
    """Steps of every stage the header announces (n_layers when it lists none); None if its stages are malformed."""
    stages = header.get(n.H_STAGES)
    if not stages:
        return n_layers
    try:
        total = 0
        for stage in stages:
            steps = stage[n.H_STEPS]
            if not _is_int(steps) or steps < 0:
                return None
            total += steps
        return total
    except (TypeError, KeyError):
        return None
