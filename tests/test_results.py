"""Results files: round trip, atomic writes, and clear refusals of anything that is not a valid results file."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from coupling_tui.core.results import run_file as results
from coupling_tui.core.errors import ResultsError, UserError
from coupling_tui.core.results.run import Run
from tests.fakes import fake_events


def full_run(**kw) -> Run:
    run = Run()
    for event in fake_events(**kw):
        run.apply(event)
    return run


def test_round_trip_keeps_every_array_and_the_header(tmp_path):
    run = full_run()
    path = results.save(run, tmp_path / "run.safetensors")
    back = results.load(path)
    assert back.header["schema_version"] == results.SCHEMA_VERSION and back.header["complete"] is True
    assert back.header["prompt"] == run.header["prompt"] and back.token_texts == run.token_texts
    assert set(back.arrays) == set(run.arrays)
    for name in run.arrays:
        np.testing.assert_array_equal(back.arrays[name], run.arrays[name])
        assert back.arrays[name].dtype == run.arrays[name].dtype
    assert back.arrays["trajectory.hidden"].dtype == np.float32
    assert back.finished and back.layers_done == run.n_layers


def test_partial_run_is_marked_incomplete(tmp_path):
    run = Run()
    for event in fake_events()[:3]:
        run.apply(event)
    back = results.load(results.save(run, tmp_path / "p.safetensors"))
    assert back.header["complete"] is False and back.layers_done == 2 and not back.finished


def test_failed_write_leaves_the_previous_file_and_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "run.safetensors"
    results.save(full_run(seed=1), path)
    before = path.read_bytes()

    def boom(*a, **k):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(UserError, match="cannot write .*No space left"):
        results.save(full_run(seed=2), path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.safetensors"]


def test_unwritable_directory_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(UserError, match="cannot write"):
        results.save(full_run(), blocker / "sub" / "run.safetensors")


def _bad_files(tmp_path):
    good = results.to_bytes(full_run())
    from safetensors.numpy import save

    other = save({"x": np.zeros(3, np.float32)}, metadata={"format": "np"})
    header = json.loads(good[8:8 + int.from_bytes(good[:8], "little")])
    meta = json.loads(header["__metadata__"]["header"])
    meta["schema_version"] = 99
    header["__metadata__"]["header"] = json.dumps(meta)
    hb = json.dumps(header).encode()
    newer = len(hb).to_bytes(8, "little") + hb + good[8 + int.from_bytes(good[:8], "little"):]
    return {
        "empty": (b"", "too short"),
        "text": (b"hello, this is not a results file at all", "not a safetensors file"),
        "truncated": (good[:-16], "corrupt tensor data"),
        "header-only": (good[:40], "truncated"),
        "other-safetensors": (other, "not a coupling-tui results file"),
        "newer-schema": (newer, "schema version 99"),
        "pickle": (b"\x80\x04\x95" + b"\x00" * 64, "not a safetensors file"),
    }


@pytest.mark.parametrize("case", ["empty", "text", "truncated", "header-only", "other-safetensors", "newer-schema",
                                  "pickle"])
def test_bad_files_are_refused_with_a_reason(tmp_path, case):
    data, reason = _bad_files(tmp_path)[case]
    path = tmp_path / f"{case}.safetensors"
    path.write_bytes(data)
    with pytest.raises(ResultsError) as info:
        results.load(path)
    assert str(info.value).startswith(f"cannot open {path}: ") and reason in str(info.value)


def test_missing_file():
    with pytest.raises(ResultsError, match="no such file"):
        results.load("/no/such/run.safetensors")


def test_random_bytes_never_crash_the_reader(tmp_path):
    rng = np.random.default_rng(0)
    good = results.to_bytes(full_run())
    for i in range(200):
        if i % 2:
            data = rng.bytes(int(rng.integers(0, 400)))
        else:  # flip bytes inside a real file
            arr = bytearray(good)
            for pos in rng.integers(0, len(arr), size=8):
                arr[pos] = int(rng.integers(0, 256))
            data = bytes(arr[: int(rng.integers(1, len(arr) + 1))])
        try:
            results.from_bytes(data)
        except ResultsError:
            pass


def test_loading_a_results_file_does_not_import_torch(tmp_path):
    path = results.save(full_run(), tmp_path / "run.safetensors")
    code = ("import sys; from coupling_tui.core.results import run_file as results; r = results.load(sys.argv[1]); "
            "assert r.n_layers == 4; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_saved_file_has_ordinary_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        path = results.save(full_run(), tmp_path / "run.safetensors")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


def test_applying_a_stream_does_not_mutate_its_events():
    events = fake_events()
    a, b = Run(), Run()
    for event in events:
        a.apply(event)
    for event in events:
        b.apply(event)
    np.testing.assert_array_equal(a.arrays["trajectory.norms"], b.arrays["trajectory.norms"])
    assert np.isnan(events[0].arrays["trajectory.norms"][1:]).all()


def test_jacobian_arrays_round_trip(tmp_path):
    run = full_run(k=8)
    back = results.load(results.save(run, tmp_path / "j.safetensors"))
    for name in ("jacobian.singular_values", "jacobian.frobenius", "jacobian.vector_tokens", "jacobian.U",
                 "jacobian.V"):
        np.testing.assert_array_equal(back.arrays[name], run.arrays[name])
    assert back.header["jacobian"]["top_k"] == 8


@pytest.mark.parametrize("change, reason", [
    (lambda a: a.pop("jacobian.V"), "missing arrays jacobian.V"),
    (lambda a: a.update({"jacobian.U": a["jacobian.U"][:, :, :-1]}), "jacobian.U has shape"),
    (lambda a: a.update({"jacobian.singular_values": a["jacobian.singular_values"][..., 0]}),
     "jacobian.singular_values has shape"),
    (lambda a: a.update({"jacobian.frobenius": a["jacobian.frobenius"][:-1]}), "jacobian.frobenius has shape"),
    (lambda a: a.update({"jacobian.vector_tokens": a["jacobian.vector_tokens"] + 100}), "outside the prompt"),
])
def test_malformed_jacobian_arrays_are_refused(tmp_path, change, reason):
    run = full_run(k=8)
    change(run.arrays)
    path = results.save(run, tmp_path / "bad.safetensors")
    with pytest.raises(ResultsError, match=reason):
        results.load(path)
