"""benchmarks/gpu_suite.py --smoke on this machine (the CPU in CI): every part runs its real code path at tiny sizes,
so the prepared GPU suite cannot rot while no GPU is lent (issue 21)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PARTS = ("cuda tests", "e2e float32", "e2e bfloat16", "topk_gpu.py", "jacobians.py", "collapse bf16")


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu-suite")
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_suite.py"), "--smoke", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=170)
    return done, out


def test_the_smoke_suite_passes_and_writes_its_summary(smoke):
    done, out = smoke
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for name in ("summary.md", "summary.json", "gpu_suite.log"):
        assert (out / name).stat().st_size > 0, name
    summary = json.loads((out / "summary.json").read_text())
    rows = {r["part"]: r for r in summary["rows"]}
    assert tuple(rows) == PARTS and summary["failed"] == [] and summary["smoke"]
    text = (out / "summary.md").read_text()
    for part in PARTS:
        assert f"| {part} |" in text and f"| {part} |" in done.stdout
    for r in rows.values():                             # ok, or skipped with its reason (no CUDA here)
        assert r["status"] == "ok" or (r["status"] == "skipped" and r["result"]), r


def test_each_part_measured_what_it_should(smoke):
    rows = {r["part"]: r for r in json.loads((smoke[1] / "summary.json").read_text())["rows"]}
    tests = rows["cuda tests"]["details"]
    assert tests["failed"] == tests["error"] == 0 and tests["passed"] + tests["skipped"] >= 3
    assert "tests/test_spectra.py" in tests["files"] and "tests/test_sharding.py" in tests["files"]
    for dtype in ("float32", "bfloat16"):
        e2e = rows[f"e2e {dtype}"]["details"]
        assert e2e["dtype"] == dtype and e2e["T"] == 16 and e2e["K"] == 8 and e2e["compute_dtype"] == "float32"
        assert set(e2e["stages_s"]) == {"trace", "jacobians", "top-K", "depth coupling", "token coupling", "other"}
        assert all(v >= 0 for v in e2e["stages_s"].values()) and e2e["stages_s"]["jacobians"] > 0
        assert e2e["history"] is False and e2e["stages"] == ["layers", "layers · coupling pass"]   # as at the anchor
        assert e2e["sigma_rel_err"] < 1e-4 and e2e["residual"] < 1e-4 and len(e2e["checked"]) >= 4
        if e2e["device"] == "cpu":
            assert e2e["peak_gpu_memory"] == "n/a"
    assert any("x vs eigh" in ln for ln in rows["topk_gpu.py"]["details"]["ratio_lines"])
    assert any("full-svd" in ln for ln in rows["topk_gpu.py"]["details"]["ratio_lines"])
    assert any("x vs official" in ln for ln in rows["jacobians.py"]["details"]["ratio_lines"])
    collapse = rows["collapse bf16"]["details"]
    assert collapse["equal"] and collapse["identical_low_device"] == collapse["identical_low_cpu"]


def test_a_failing_part_is_a_fail_row_and_the_suite_goes_on(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "path", [str(ROOT / "benchmarks"), *sys.path])   # put back after the test, as is
    monkeypatch.setenv("PYTHONPATH", os.environ.get("PYTHONPATH", ""))        # the import sets it
    import gpu_suite

    log = gpu_suite.Log(tmp_path / "log")
    bad = gpu_suite.run_part(gpu_suite.Row(part="bad", budget_s=5), lambda r: 1 / 0, log)
    assert bad.status == "FAIL" and bad.result.startswith("ZeroDivisionError")
    slow = gpu_suite.run_part(gpu_suite.Row(part="slow", budget_s=1),
                              lambda r: __import__("time").sleep(3), log)
    assert slow.status == "FAIL" and "budget" in slow.result and slow.seconds < 2.5
    assert "ZeroDivisionError" in (tmp_path / "log").read_text()

    assert gpu_suite.main(["--smoke", "--device", "cpu", "--only", "collapse bf16", "--out", str(tmp_path)]) == 0
    assert [r["part"] for r in json.loads((tmp_path / "summary.json").read_text())["rows"]] == ["collapse bf16"]
    with pytest.raises(SystemExit):
        gpu_suite.main(["--only", "nope", "--out", str(tmp_path)])
