"""Defect 3 of #17 (partial): header values of the wrong type must be one ResultsError, not a traceback."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
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


# -- the other named inputs of defect 3 and their class: each opened file must be drawable or one ResultsError --

from tests.broken_files import edited_run, edited_set  # noqa: E402
from coupling_tui.core.results import set_file  # noqa: E402


def _set_key(*path_and_value):
    *path, value = path_and_value

    def edit(header, arrays):
        d = header
        for key in path[:-1]:
            d = d[key]
        d[path[-1]] = value
    return edit


def _assert_run_refused(edit, *words) -> str:
    with pytest.raises(ResultsError) as info:
        run_file.from_bytes(edited_run(edit), "bad.safetensors")
    message = str(info.value)
    assert "\n" not in message and message.startswith("cannot open bad.safetensors")
    assert all(w in message for w in words), message
    return message


@pytest.mark.parametrize("text", [list(range(11)), [None] * 11, [["a"]] * 11, "eleven chars", 11, None])
def test_defect3_tokens_text_not_strings(text):
    _assert_run_refused(_set_key("tokens", "text", text), "tokens")


@pytest.mark.parametrize("section", ["coupling", "jacobian", "context", "collapse", "fits", "random_init",
                                     "next_token", "model", "tokens"])
@pytest.mark.parametrize("value", [5, "x", [1], True])
def test_defect3_header_sections_not_objects(section, value):
    _assert_run_refused(_set_key(section, value), section)


def _cut(name, how):
    def edit(header, arrays):
        for key in list(arrays):
            if key.removeprefix("random_init.") == name:
                arrays[key] = how(arrays[key])
    return edit


@pytest.mark.parametrize("prefix", ["", "random_init."])
def test_defect3_zero_singular_values(prefix):
    def edit(header, arrays):
        for key in ("jacobian.singular_values", "jacobian.U", "jacobian.V"):
            if prefix + key in arrays:
                arrays[prefix + key] = arrays[prefix + key][..., :0]
    _assert_run_refused(edit, "singular_values", "K ≥ 1")


@pytest.mark.parametrize("name", ["trajectory.lss", "trajectory.growth_factor", "trajectory.expodistance_r2",
                                  "jacobian.sigma1_fit_slope"])
@pytest.mark.parametrize("length", [0, 5, 12])
def test_defect3_per_token_array_of_wrong_length(name, length):
    _assert_run_refused(_cut(name, lambda a: np.resize(a, (length,))), name.split(".")[1])


@pytest.mark.parametrize("shape", [(4, 5), (3, 11), (4, 12), (44,)])
def test_defect3_fidelity_of_wrong_shape(shape):
    _assert_run_refused(_cut("trajectory.fidelity", lambda a: np.resize(a, shape)), "fidelity")


@pytest.mark.parametrize("value", [["x", "?"], "x", 5, {"88": 5}, {"88": None}])
def test_defect3_collapse_next_text_not_an_object_of_strings(value):
    _assert_run_refused(_set_key("collapse", "next_text", value), "next_text")


@pytest.mark.parametrize("name", ["trajectory.fidelity", "coupling.depth_k", "jacobian.singular_values",
                                  "jacobian.frobenius", "context.out_k", "collapse.diff"])
def test_defect3_infinite_values_refused(name):
    def edit(header, arrays):
        a = arrays[name].copy()
        a.flat[0] = np.inf
        arrays[name] = a
    _assert_run_refused(edit, name, "infinite")


@pytest.mark.parametrize("name", ["tokens.ids", "coupling.ks", "coupling.depth_k", "trajectory.norms"])
def test_defect3_arrays_of_the_wrong_dtype(name):
    def edit(header, arrays):
        a = arrays[name]
        arrays[name] = a.astype(np.float32) if a.dtype.kind in "iu" else a.astype(np.int64)
    _assert_run_refused(edit, name)


def _assert_set_refused(tmp_path, edit, *words):
    target = edited_set(tmp_path, edit)
    with pytest.raises(ResultsError) as info:
        set_file.open_results(target)
    message = str(info.value)
    assert "\n" not in message and message.startswith("cannot open") and "aggregate.safetensors" in message
    assert all(w in message for w in words), message


@pytest.mark.parametrize("value", ["abc", [1], {"a": 1}, -1.0, True])
def test_defect3_set_seconds_not_a_number(tmp_path, value):
    _assert_set_refused(tmp_path, _set_key("seconds", value), "seconds")


@pytest.mark.parametrize("value", ["x", 5, [1], True])
def test_defect3_set_aggregate_not_an_object(tmp_path, value):
    _assert_set_refused(tmp_path, _set_key("aggregate", value), "aggregate")


@pytest.mark.parametrize("key, value", [("ks", "4"), ("ks", [0]), ("k", "4"), ("n_prompts", "2"), ("n_prompts", -1)])
def test_defect3_set_aggregate_values(tmp_path, key, value):
    _assert_set_refused(tmp_path, _set_key("aggregate", key, value), "aggregate." + key)


@pytest.mark.parametrize("key, value", [("label", 5), ("text", [1]), ("seconds", "abc"), ("n_tokens", "9"),
                                        ("complete", "yes"), ("next_token", "x"), ("file", 5)])
def test_defect3_set_prompt_entries(tmp_path, key, value):
    def edit(header, arrays):
        header["prompts"][0][key] = value
    _assert_set_refused(tmp_path, edit, key)


@pytest.mark.parametrize("key, value", [("stages", [{"name": "layers", "steps": "3"}]), ("stages", "x"),
                                        ("stages", [5]), ("model", {"n_layers": "3"}), ("seconds", "abc"),
                                        ("fits", {"growth_start": "1"}), ("coupling", {"ks": ["4"]}),
                                        ("context", {"ks": "4"}), ("collapse", {"families": "ones"})])
def test_defect3_other_header_values(key, value):
    _assert_run_refused(_set_key(key, value), key)


def test_the_fixture_set_still_opens():
    set_file.open_results(Path(__file__).parent / "data" / "v0.1.0" / "set")
