"""Defect 3 of #17 (partial): header values of the wrong type must be one ResultsError, not a traceback."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from coupling_tui.core.errors import ResultsError
from coupling_tui.core.results import run_file

FIXTURE = Path(__file__).parent / "data" / "v0.1.0" / "run.safetensors"


def _with_metadata(data: bytes, edit) -> bytes:
    """The fixture's bytes with its safetensors ``__metadata__`` changed by ``edit(meta)`` (offsets stay valid)."""
    n = int.from_bytes(data[:8], "little")
    st = json.loads(data[8 : 8 + n])
    edit(st["__metadata__"])
    raw = json.dumps(st).encode()
    raw += b" " * (-len(raw) % 8)
    return len(raw).to_bytes(8, "little") + raw + data[8 + n :]


def _with_header(data: bytes, **changes) -> bytes:
    def edit(meta):
        header = json.loads(meta["header"])
        header.update(changes)
        meta["header"] = json.dumps(header)
    return _with_metadata(data, edit)


def _assert_results_error(data: bytes) -> None:
    with pytest.raises(ResultsError) as info:
        run_file.from_bytes(data, "bad.safetensors")
    message = str(info.value)
    assert "\n" not in message and message.startswith("cannot open bad.safetensors")


def test_fixture_still_opens():
    run_file.from_bytes(FIXTURE.read_bytes(), "run.safetensors")


@pytest.mark.parametrize("value", [5, 5.5, True, None, [1], {"a": 1}])
def test_defect3_header_not_a_string(value):
    def edit(meta):
        meta["header"] = value
    _assert_results_error(_with_metadata(FIXTURE.read_bytes(), edit))


@pytest.mark.parametrize("key", ["layers_done", "steps_done"])
@pytest.mark.parametrize("value", ["abc", None, [1], {"a": 1}, 1.5, True, -1, 10**9])
def test_defect3_progress_counters_of_wrong_type_or_range(key, value):
    _assert_results_error(_with_header(FIXTURE.read_bytes(), **{key: value}))
