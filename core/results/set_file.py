"""A prompt set on disk: a directory holding one ordinary results file per prompt (core.results.run_file, unchanged) and
``aggregate.safetensors``, the set's index and aggregate (format ``coupling-tui-set``, docs/results-format.md).
The directory is written whole (a temp directory beside it, then renamed): a reader sees the previous set or the new
one, never a mix. Torch-free; never unpickles."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from coupling_tui.core.results import run_file as results
from coupling_tui.core.results.aggregate import MATRICES, PREFIXES, aggregate, as_run
from coupling_tui.core.atomic import atomic_write_bytes, file_slug
from coupling_tui.core.errors import ResultsError, UserError
from coupling_tui.core.results.prompt_set import PromptSet
from coupling_tui.core.results.run import Run
from coupling_tui.core.results import names, schema

SET_FORMAT = "coupling-tui-set"
SET_SCHEMA_VERSION = 1
INDEX_NAME = "aggregate.safetensors"


def member_name(index: int, label: str) -> str:
    """``01-prose.safetensors``: the prompt's position, then its label made safe for a file name."""
    return f"{index + 1:02d}-{file_slug(label, 'prompt', max_len=40)}.safetensors"


def check_target(path: str | os.PathLike, n_prompts: int) -> Path:
    """Refuse, before any model loads, an output that cannot hold a set: a ``.safetensors`` name, a file, or a
    directory with other contents (a previous set there is replaced whole)."""
    target = Path(path).expanduser()
    how = f"a run of {n_prompts} prompts is saved as a directory: one results file per prompt and {INDEX_NAME}"
    if target.suffix == ".safetensors":
        raise UserError(f"{how}, not {target}", "give -o a directory, e.g. -o runs/my-prompts")
    if target.exists() and not target.is_dir():
        raise UserError(f"{how}; {target} is a file", "give -o a new directory")
    if target.is_dir() and any(target.iterdir()) and not (target / INDEX_NAME).is_file():
        raise UserError(f"{target} exists and is not a coupling-tui prompt set", "give -o a new directory")
    return target


def set_header(pset: PromptSet, names: list[str]) -> dict:
    """The index's header: model, parameters, every prompt (label, text, its file, tokens, greedy next token) and
    the aggregate's (core.results.aggregate)."""
    runs = pset.runs
    first = runs[0].header if runs else {}
    params = {k: v for k, v in (first.get("params") or {}).items() if k not in ("prompt_file", "prompt_set")}
    agg_header, _ = aggregate(pset.complete_runs())
    return {
        "schema_version": SET_SCHEMA_VERSION,
        "kind": "prompt-set",
        "tool": first.get("tool"),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": first.get("model"),
        "dtype": first.get("dtype"),
        "device": first.get("device"),
        "params": params,
        "prompts": [{"label": label, "text": text, "file": name,
                     "source": ((run.header.get("params") or {}).get("prompt_set") or {}).get("source"),
                     "n_tokens": run.n_tokens,
                     "truncated_from": (run.header.get("tokens") or {}).get("truncated_from"),
                     "next_token": run.header.get("next_token"), "seconds": run.header.get("seconds"),
                     "complete": bool(run.finished)}
                    for label, text, name, run in zip(pset.labels, pset.texts, names, runs)],
        "aggregate": agg_header,
        "seconds": pset.seconds,
    }


def save(pset: PromptSet, path: str | os.PathLike) -> Path:
    """Write the set to the directory ``path`` whole (every prompt's file and the index into a temp directory,
    then renamed into place; a previous set there is replaced, nothing else is). Returns the directory."""
    target = check_target(path, pset.n_prompts)
    parent = target.parent if str(target.parent) else Path(".")
    names = [member_name(i, label) for i, label in enumerate(pset.labels)]
    _, arrays = aggregate(pset.complete_runs())
    index = _index_bytes(set_header(pset, names), arrays)
    old: Path | None = None
    moved: list[str] = []
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=parent))
    except OSError as exc:
        raise UserError(f"cannot write {target}: {exc.strerror or exc}", "choose a writable path with -o/--output") from exc
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)                  # mkdtemp makes 0700; a set is as readable as any output
        for name, run in zip(names, pset.runs):
            atomic_write_bytes(tmp / name, results.to_bytes(run))
        atomic_write_bytes(tmp / INDEX_NAME, index)
        if target.is_dir() and any(target.iterdir()):   # a previous set (check_target): swap it out
            own = {INDEX_NAME, *names, *_old_members(target)}
            for entry in list(target.iterdir()):         # foreign files and dirs travel into the new set
                if entry.name not in own:
                    os.replace(entry, tmp / entry.name)
                    moved.append(entry.name)
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=parent))
            os.replace(target, old / "set")
        os.replace(tmp, target)
    except BaseException as exc:
        if old is not None and not target.exists():
            os.replace(old / "set", target)              # put the previous set back
        for name in moved:                                # and the foreign entries back into it
            if (tmp / name).exists() or (tmp / name).is_symlink():
                os.replace(tmp / name, target / name)
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        if isinstance(exc, UserError) and isinstance(exc.__cause__, OSError):
            exc = exc.__cause__                           # name the user's target, not the internal temp path
        if isinstance(exc, OSError):
            raise UserError(f"cannot write {target}: {exc.strerror or exc}", "check free space and permissions") from exc
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return target


def _old_members(target: Path) -> list[str]:
    """The member files the previous set's index lists (only these, the index and the new members are the set's)."""
    try:
        from safetensors import safe_open
        with safe_open(str(target / INDEX_NAME), framework="numpy") as f:
            header = json.loads((f.metadata() or {}).get("header") or "{}")
        return [str(p.get("file")) for p in header.get("prompts") or [] if isinstance(p, dict) and p.get("file")]
    except Exception:
        return []


def _index_bytes(header: dict, arrays: dict[str, np.ndarray]) -> bytes:
    from safetensors.numpy import save as st_save

    arrays = {name: np.ascontiguousarray(a) for name, a in arrays.items()}
    return st_save(arrays, metadata={"format": SET_FORMAT, "header": json.dumps(header)})


def is_set(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a prompt set: a directory with an index, or the index file itself."""
    p = Path(path).expanduser()
    if p.is_dir():
        return (p / INDEX_NAME).is_file()
    if not p.is_file():
        return False
    try:
        with p.open("rb") as fh:
            n = int.from_bytes(fh.read(8), "little")
            head = fh.read(min(n, 1 << 24)) if 1 < n else b""
        meta = json.loads(head).get("__metadata__") or {}
    except (OSError, ValueError, UnicodeDecodeError, AttributeError):
        return False
    return isinstance(meta, dict) and meta.get("format") == SET_FORMAT


def load(path: str | os.PathLike) -> PromptSet:
    """Open a saved set (its directory or its index file) with every prompt's run. Problems raise ResultsError
    ("cannot open …: reason")."""
    from safetensors import SafetensorError
    from safetensors.numpy import load as st_load

    p = Path(path).expanduser()
    index = p / INDEX_NAME if p.is_dir() else p
    if not index.is_file():
        raise ResultsError(f"cannot open {p}: no such file" if not p.exists() else
                           f"cannot open {p}: not a coupling-tui prompt set (no {INDEX_NAME})")

    def fail(reason: str) -> ResultsError:
        return ResultsError(f"cannot open {index}: {reason}")

    try:
        data = index.read_bytes()
    except OSError as exc:
        raise fail(exc.strerror or str(exc)) from exc
    header = results.read_header(data, fail, SET_FORMAT, "not a coupling-tui prompt set index")
    if header.get("schema_version") != SET_SCHEMA_VERSION:
        version = header.get("schema_version")
        raise fail(f"schema version {version!r}, this coupling-tui reads prompt sets of version {SET_SCHEMA_VERSION}")
    schema.check_set_header(header, fail)
    prompts = header.get("prompts")
    if not isinstance(prompts, list) or not prompts or not all(
            isinstance(e, dict) and isinstance(e.get("file"), str) for e in prompts):
        raise fail("its header lists no prompts")
    try:
        arrays = st_load(data)
    except (SafetensorError, ValueError, TypeError) as exc:
        raise fail(f"corrupt tensor data ({exc})") from exc
    runs = []
    for entry in prompts:
        member = index.parent / entry["file"]
        if Path(entry["file"]).name != entry["file"]:
            raise fail(f"prompt file name {entry['file']!r} is not a plain file name")
        runs.append(results.load(member))
    _check(header, arrays, runs, fail)
    pset = PromptSet(labels=[str(e.get("label", "")) for e in prompts], texts=[str(e.get("text", "")) for e in prompts],
                     runs=runs, current=len(runs) - 1, finished=True, seconds=float(header.get("seconds") or 0),
                     header=header)
    pset._aggregate = as_run(header, header.get("aggregate") or {}, arrays, pset.n_prompts)   # as stored
    return pset


def _check(header: dict, arrays: dict, runs: list[Run], fail) -> None:
    try:
        n_layers = int(header["model"]["n_layers"])
    except (KeyError, TypeError, ValueError):
        raise fail("its header lacks model.n_layers") from None
    for entry, run in zip(header["prompts"], runs):
        if run.n_layers != n_layers:
            raise fail(f"{entry['file']} has {run.n_layers} layers, the set {n_layers}")
    ks = (header.get("aggregate") or {}).get("ks") or []
    for prefix in PREFIXES:
        for name in MATRICES:
            for stat in ("mean", "std"):
                key = names.aggregate_name(name, stat, prefix)
                if key in arrays and arrays[key].shape != (len(ks), n_layers, n_layers):
                    raise fail(f"{key} has shape {arrays[key].shape}, expected ({len(ks)}, {n_layers}, {n_layers})")
    if ks and names.AGGREGATE_DEPTH_MEAN_K_MEAN not in arrays:
        raise fail("missing array aggregate.depth_mean_k.mean")


def open_results(path: str | os.PathLike) -> Run | PromptSet:
    """``coupling-tui view``'s reader: a prompt set (directory or index) or one run's results file."""
    return load(path) if Path(path).expanduser().is_dir() or is_set(path) else results.load(path)
