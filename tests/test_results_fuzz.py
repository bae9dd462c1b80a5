"""Defect 3 of #17: a generated corpus of semantically broken results files and prompt sets, plus byte-level
fuzzing (fixed seed), through the reader and through headless export of every pane. The only outcomes allowed:
one ResultsError with a one-line message, or the file opens and every pane exports (exit 0, every SVG written)."""
from __future__ import annotations

import contextlib
import io
import json
import random
from pathlib import Path

import numpy as np
import pytest

from coupling_tui.core.errors import ResultsError
from coupling_tui.core.results import schema, set_file
from tests.broken_files import RUN, edited_run, edited_set, load_parts

SEED = 17
EXPORT_SAMPLE = 10
"""Files that open are exported, up to this many per corpus (sampled with SEED): export is the slow part."""
PANES = ("coupling", "trajectory", "spectrum", "tokens", "screen")
SET_PANES = ("coupling", "screen")
"""A set opens on its aggregate, which has no tokens: its export writes the Coupling pane and the screen."""
WRONG = ("x", 5, -3, 1.5, True, None, [1], {"a": 1}, float("nan"))


def _schema_paths(spec: schema.Spec, path=()):
    """Every key path the schema declares (nested records, and the first item of declared lists)."""
    if isinstance(spec, schema.Nullable):
        yield from _schema_paths(spec.spec, path)
    elif isinstance(spec, schema.ListOf):
        yield from _schema_paths(spec.item, (*path, 0))
    elif isinstance(spec, schema.Record):
        for key, (sub, _) in spec.fields.items():
            yield (*path, key)
            yield from _schema_paths(sub, (*path, key))


def _setter(path, value, delete=False):
    def edit(header, arrays):
        d = header
        for key in path[:-1]:
            if isinstance(d, dict) and key in d or isinstance(d, list) and isinstance(key, int) and key < len(d):
                d = d[key]
            else:
                return
        if not isinstance(d, (dict, list)) or isinstance(d, list) and path[-1] >= len(d):
            return
        if delete:
            if isinstance(d, dict):
                d.pop(path[-1], None)
        else:
            d[path[-1]] = value
    return edit


def _array_edit(name, how):
    def edit(header, arrays):
        if name in arrays:
            arrays[name] = how(arrays[name])
    return edit


def _poison(value):
    def how(a):
        a = np.array(a, dtype=a.dtype if a.dtype.kind == "f" else np.float32)
        if a.size:
            a.flat[len(a.flat) // 2] = value
        return a
    return how


def run_corpus() -> list[tuple[str, object]]:
    """(label, edit) pairs: every declared header key with wrong types, out-of-range values, missing keys; arrays of
    the wrong length, empty, NaN/inf, wrong dtype, K = 0; extra junk."""
    rng = random.Random(SEED)
    _, header, arrays = load_parts(RUN)
    cases = []
    for path in _schema_paths(schema.RUN_HEADER):
        for value in rng.sample(WRONG, 3):
            cases.append((f"header {path} = {value!r}", _setter(path, value)))
        cases.append((f"header {path} missing", _setter(path, None, delete=True)))
    for path, value in [(("model", "n_layers"), 0), (("model", "n_layers"), 4), (("model", "n_layers"), 10**12),
                        (("layers_done",), 4), (("steps_done",), 14), (("tokens", "ids", 0), -1),
                        (("coupling", "k"), 99), (("context", "k"), 0), (("stages", 0, "steps"), -1),
                        (("fits", "growth_start"), 99), (("tokens", "text"), []), (("collapse", "families"), [])]:
        cases.append((f"out of range {path} = {value!r}", _setter(path, value)))
    for name in sorted(arrays):
        cases.append((f"{name} empty", _array_edit(name, lambda a: a.reshape(-1)[:0])))
        cases.append((f"{name} one short", _array_edit(name, lambda a: a[:-1] if a.ndim else a)))
        if arrays[name].dtype.kind == "f":
            cases.append((f"{name} NaN", _array_edit(name, _poison(np.nan))))
            cases.append((f"{name} inf", _array_edit(name, _poison(-np.inf))))
        else:
            cases.append((f"{name} as float", _array_edit(name, lambda a: a.astype(np.float32))))
            cases.append((f"{name} huge", _array_edit(name, lambda a: a + 10**9)))

    def zero_k(header, arrays):
        for key in list(arrays):
            if key.endswith(("jacobian.singular_values", "jacobian.U", "jacobian.V")):
                arrays[key] = arrays[key][..., :0]
    cases.append(("K = 0 singular values", zero_k))

    def junk(header, arrays):
        header["junk"] = {"nested": [1, "x", None]}
        arrays["junk"] = np.arange(3)
    cases.append(("extra junk", junk))
    return cases


def set_corpus() -> list[tuple[str, object]]:
    rng = random.Random(SEED + 1)
    cases = []
    for path in _schema_paths(schema.SET_HEADER):
        for value in rng.sample(WRONG, 2):
            cases.append((f"set header {path} = {value!r}", _setter(path, value)))
        cases.append((f"set header {path} missing", _setter(path, None, delete=True)))
    cases.append(("set aggregate array NaN", _array_edit("aggregate.depth_mean_k.mean", _poison(np.nan))))
    cases.append(("set aggregate array short", _array_edit("aggregate.depth_mean_k.mean", lambda a: a[:, :-1])))
    return cases


def byte_corpus() -> list[tuple[str, bytes]]:
    rng = random.Random(SEED)
    data = RUN.read_bytes()
    n = 8 + int.from_bytes(data[:8], "little")
    cases = [(f"truncated at {cut}", data[:cut]) for cut in
             sorted({0, 1, 7, 8, 9, n - 1, n, n + 1, len(data) - 1, *rng.sample(range(len(data)), 12)})]
    for _ in range(30):
        pos = rng.randrange(n) if rng.random() < 0.7 else rng.randrange(n, len(data))
        flipped = bytearray(data)
        flipped[pos] ^= 1 << rng.randrange(8)
        cases.append((f"bit flip at {pos}", bytes(flipped)))
    for size in (0, 8, 64, 4096):
        cases.append((f"{size} random bytes", rng.randbytes(size)))
    cases.append(("random bytes after a valid length", (64).to_bytes(8, "little") + rng.randbytes(64)))
    return cases


def _export(path: Path, out: Path) -> str | None:
    """Headless ``coupling-tui export`` in process; None when it exits 0 with every pane's SVG, else why not."""
    from coupling_tui.tui.main import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(["export", str(path), "--svg", str(out)])
        except SystemExit as exc:
            code = exc.code
    written = {p.name for p in out.iterdir()} if out.is_dir() else set()
    panes = PANES if set_file.is_set(path) is False else SET_PANES
    missing = [p for p in panes if not any(name.endswith(f"-{p}.svg") for name in written)]
    if code == 0 and not missing:
        return None
    return f"export exit {code}, missing {missing}: {err.getvalue().strip()[-300:]}"


def _outcome(label: str, open_it, path: Path, out: Path, opened: list) -> str | None:
    try:
        open_it()
    except ResultsError as exc:
        message = str(exc)
        return None if message and "\n" not in message else f"{label}: multi-line ResultsError {message!r}"
    except Exception as exc:  # the defect: anything but the project's error
        return f"{label}: {type(exc).__name__}: {exc}"
    opened.append((label, path, out))
    return None


def _check(cases, tmp_path: Path, sample_seed: int) -> tuple[int, int]:
    failures, opened = [], []
    for i, (label, path) in enumerate(cases):
        failures.append(_outcome(label, lambda: set_file.open_results(path), path, tmp_path / f"svg{i}", opened))
    for label, path, out in random.Random(sample_seed).sample(opened, min(EXPORT_SAMPLE, len(opened))):
        why = _export(path, out)
        failures.append(None if why is None else f"{label}: {why}")
    failures = [f for f in failures if f]
    assert failures == [], "\n".join(failures)
    return len(cases), len(opened)


def test_defect3_fuzz_semantically_broken_run_files(tmp_path):
    cases = []
    for i, (label, edit) in enumerate(run_corpus()):
        path = tmp_path / f"case{i}.safetensors"
        path.write_bytes(edited_run(edit))
        cases.append((label, path))
    n, opened = _check(cases, tmp_path, SEED)
    assert n >= 80 and 0 < opened < n


def test_defect3_fuzz_semantically_broken_prompt_sets(tmp_path):
    cases = []
    for i, (label, edit) in enumerate(set_corpus()):
        (tmp_path / f"c{i}").mkdir()
        cases.append((label, edited_set(tmp_path / f"c{i}", edit)))
    (tmp_path / "member").mkdir()
    target = edited_set(tmp_path / "member", lambda h, a: None)
    member = next(p for p in sorted(target.iterdir()) if p.name != "aggregate.safetensors")
    member.write_bytes(edited_run(_setter(("tokens", "text"), [1, 2])))
    cases.append(("set member with a broken header", target))
    _check(cases, tmp_path, SEED + 1)


def test_defect3_fuzz_bytes(tmp_path):
    cases = []
    for i, (label, data) in enumerate(byte_corpus()):
        path = tmp_path / f"bytes{i}.safetensors"
        path.write_bytes(data)
        cases.append((label, path))
    _check(cases, tmp_path, SEED + 2)
