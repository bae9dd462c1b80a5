"""Broken copies of the v0.1.0 fixtures for the defect-3 tests (#17): edit a results file's header or arrays and
write it back as valid safetensors, so only the semantics are wrong. Torch-free."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

DATA = Path(__file__).parent / "data" / "v0.1.0"
RUN = DATA / "run.safetensors"
SET = DATA / "set"


def load_parts(path: Path) -> tuple[dict, dict, dict]:
    """(safetensors metadata without header, header, arrays) of a coupling-tui safetensors file."""
    from safetensors.numpy import load_file

    data = path.read_bytes()
    n = int.from_bytes(data[:8], "little")
    meta = dict(json.loads(data[8:8 + n])["__metadata__"])
    header = json.loads(meta.pop("header"))
    return meta, header, dict(load_file(str(path)))


def dump_parts(meta: dict, header, arrays: dict, *, raw_header=False) -> bytes:
    from safetensors.numpy import save

    meta = dict(meta, header=header if raw_header else json.dumps(header))
    return save({k: np.ascontiguousarray(v) for k, v in arrays.items()}, metadata=meta)


def edited_run(edit) -> bytes:
    """The fixture run with ``edit(header, arrays)`` applied (in place)."""
    meta, header, arrays = load_parts(RUN)
    edit(header, arrays)
    return dump_parts(meta, header, arrays)


def edited_set(tmp: Path, edit) -> Path:
    """A copy of the fixture set in ``tmp`` whose index header is changed by ``edit(header, arrays)``."""
    target = tmp / "set"
    shutil.copytree(SET, target)
    index = target / "aggregate.safetensors"
    meta, header, arrays = load_parts(index)
    edit(header, arrays)
    index.write_bytes(dump_parts(meta, header, arrays))
    return target
