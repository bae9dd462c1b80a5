"""``coupling-tui sweep`` as a user runs it (issue 19): tiny random models of different sizes and families, a
scores file, the table checked against each model's own ``compute``, the fits against scipy, a re-run that skips,
a bad model that is one failed row, Ctrl-C, and the same sweep through a local Ray cluster. The models and the
sweep of them are tests/conftest.py's ``sweep_names`` and ``swept``."""

from __future__ import annotations

import json
import math

import pytest
from scipy import stats

from coupling_tui.core.results import run_file
from tests.sweep_helpers import COMMON, PROMPT, rows_of
from tests.test_cli import cli


def test_every_row_equals_that_models_own_compute(swept, sweep_names, tmp_path):
    out, _, result = swept
    assert result.returncode == 0, result.stderr
    rows = {r["model"]: r for r in rows_of(out)}
    assert list(rows) == [*sweep_names, "/no/such/model"]
    for name in sweep_names:
        own = tmp_path / "own.safetensors"
        model = name.removeprefix("random-init:")
        flags = ["--random-init"] if name.startswith("random-init:") else []
        done = cli("compute", "--model", model, *flags, *COMMON, "-o", str(own))
        assert done.returncode == 0, done.stderr
        header = run_file.load(own).header
        row = rows[name]
        assert row["status"] == "ok"
        assert float(row["coupling_scalar"]) == pytest.approx(header["coupling_scalar"]["offdiag"], abs=1e-6)
        assert float(row["coupling_scalar_last_token"]) == pytest.approx(
            header["coupling_scalar_last_token"]["offdiag"], abs=1e-6)
        assert float(row["adjacent"]) == pytest.approx(header["coupling_scalar"]["adjacent"], abs=1e-6)
        assert int(row["n_layers"]) == header["model"]["n_layers"] and int(row["d_model"]) == header["model"]["d_model"]
        assert int(row["n_params"]) == header["model"]["n_params"] > 0
        assert int(row["k"]) == 4 and row["n_prompts"] == "1"
        saved = run_file.load(out / row["results"])           # each model's results open as an ordinary run
        assert saved.header["params"]["sweep"]["model"] == name


def test_sizes_differ_and_the_twin_is_untrained(swept, sweep_names):
    rows = {r["model"]: r for r in rows_of(swept[0])}
    assert len({int(rows[n]["n_params"]) for n in sweep_names[:3]}) == 3
    assert rows[sweep_names[0]]["n_params"] == rows[sweep_names[3]]["n_params"]          # the twin: same architecture
    assert rows[sweep_names[0]]["coupling_scalar"] != rows[sweep_names[3]]["coupling_scalar"]


def test_a_bad_model_is_one_failed_row(swept):
    out, _, result = swept
    row = rows_of(out)[-1]
    assert row["status"].startswith("failed: model not found: /no/such/model")
    assert row["coupling_scalar"] == "" and row["results"] == ""
    assert "model 5/5 /no/such/model: failed: model not found" in result.stderr
    assert "Traceback" not in result.stderr


def test_fits_equal_scipy_on_the_table(swept, sweep_names):
    table = json.loads((swept[0] / "sweep.json").read_text())
    ok = [r for r in table["rows"] if r["status"] == "ok"]
    assert [r["score"] for r in ok] == [0.31, 0.52, 0.44, 0.12]
    for name, column in (("coupling_scalar_last_token", "coupling_scalar_last_token"),
                         ("coupling_scalar", "coupling_scalar"), ("n_layers", "n_layers"), ("d_model", "d_model"),
                         ("log10_n_params", "n_params")):
        x = [math.log10(r[column]) if name.startswith("log10") else r[column] for r in ok]
        y = [r["score"] for r in ok]
        line, rho = stats.linregress(x, y), stats.spearmanr(x, y)
        fit = table["fits"][name]
        assert fit["n"] == 4
        assert fit["r2"] == pytest.approx(line.rvalue ** 2, rel=1e-12)
        assert fit["slope"] == pytest.approx(line.slope, rel=1e-12)
        assert fit["p"] == pytest.approx(line.pvalue, rel=1e-12)
        assert fit["spearman_rho"] == pytest.approx(rho.statistic, rel=1e-12)
    assert "score ~ coupling_scalar_last_token: R²" in swept[2].stderr


def test_csv_and_json_hold_the_same_rows(swept):
    table = json.loads((swept[0] / "sweep.json").read_text())
    for csv_row, json_row in zip(rows_of(swept[0]), table["rows"]):
        for column in table["columns"]:
            value = json_row[column]
            assert csv_row[column] == ("" if value is None else repr(value) if isinstance(value, float) else str(value))


def test_a_rerun_skips_every_model_done(swept):
    out, args, _ = swept
    before = (out / "sweep.json").read_text()
    again = cli(*args)
    assert again.returncode == 0, again.stderr
    assert again.stderr.count("skipped: results exist with the same options") == 4
    assert "4 already done with the same options" in again.stderr
    after = json.loads((out / "sweep.json").read_text())
    assert [r["coupling_scalar"] for r in after["rows"]] == [r["coupling_scalar"] for r in json.loads(before)["rows"]]


def test_other_options_recompute(swept, sweep_names, tmp_path):
    """The same directory with another K: nothing is reused (the options key differs)."""
    import shutil

    out = shutil.copytree(swept[0], tmp_path / "copy")
    again = cli("sweep", "-m", sweep_names[0], "--top-k", "3", "-p", PROMPT, "-o", str(out))
    assert again.returncode == 0, again.stderr
    assert "skipped" not in again.stderr and "ok in" in again.stderr
    assert rows_of(out)[0]["k"] == "3"


def test_sweep_refuses_bad_input_before_any_model_loads(tmp_path):
    afile = tmp_path / "f.txt"
    afile.write_text("x")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    bad_scores = tmp_path / "s.csv"
    bad_scores.write_text("model,score\nm,abc\n")
    for args, message in ((["-o", str(tmp_path / "o")], "a sweep needs models"),
                          (["-m", "a", "-m", "a", "-o", str(tmp_path / "o")], "'a' is named twice"),
                          (["-m", "a", "-o", str(afile)], "is a file"),
                          (["-m", "a", "-o", str(tmp_path / "other")], "is not a coupling-tui sweep"),
                          (["-m", "a", "--scores", str(bad_scores), "-o", str(tmp_path / "o")], "not a number"),
                          (["-m", "random-init:seed=x:a", "-o", str(tmp_path / "o")], "must be a whole number")):
        out = cli("sweep", *args)
        assert out.returncode == 2 and out.stderr.startswith("coupling-tui: error: "), (args, out.stderr)
        assert message in out.stderr, (args, out.stderr)
    assert (tmp_path / "other" / "notes.txt").read_text() == "mine"


def test_no_model_succeeding_exits_2_with_the_table(tmp_path):
    out = cli("sweep", "-m", "/no/such/a", "-m", "/no/such/b", *COMMON, "-o", str(tmp_path / "o"))
    assert out.returncode == 2
    assert "no model of the sweep succeeded" in out.stderr
    assert [r["status"][:7] for r in rows_of(tmp_path / "o")] == ["failed:", "failed:"]


def test_the_ray_executor_gives_the_same_table(swept, sweep_names, tmp_path):
    """One Ray task per model on a local Ray of two CPUs: the same rows as in process."""
    pytest.importorskip("ray")
    out = tmp_path / "ray"
    result = cli("sweep", *[a for n in sweep_names for a in ("-m", n)], "-m", "/no/such/model", *COMMON,
                 "--executor", "ray", "--cpus-per-model", "1", "-o", str(out))
    assert result.returncode == 0, result.stderr
    local = {r["model"]: r for r in rows_of(swept[0])}
    for row in rows_of(out):
        ref = local[row["model"]]
        for column in ("status", "n_params", "coupling_scalar", "coupling_scalar_last_token", "adjacent",
                       "growth_factor_last_token", "haar_null_last_token"):
            if column == "status" or not ref[column]:
                assert row[column] == ref[column], column
            else:
                assert float(row[column]) == pytest.approx(float(ref[column]), abs=1e-6), column


@pytest.mark.real_model
def test_the_default_smollm2_and_its_twin(smollm2, tmp_path):
    """The offline default SmolLM2 (named ``default``) and its random-init twin, a few blocks and tokens: each row
    equals ``compute`` of the same model; the trained model is the more coupled, as the paper reports."""
    flags = ["--layers", "0:4", "--max-tokens", "5", "--top-k", "10", "-p", PROMPT, "--no-token-coupling"]
    scores = tmp_path / "scores.csv"
    scores.write_text("model,score\ndefault,0.6\nrandom-init:default,0.1\n")
    out = cli("sweep", "-m", "default", "-m", "random-init:default", *flags, "--scores", str(scores),
              "-o", str(tmp_path / "o"))
    assert out.returncode == 0, out.stderr
    rows = {r["model"]: r for r in rows_of(tmp_path / "o")}
    assert rows["default"]["family"] == "llama" and rows["default"]["n_layers"] == "30"
    assert int(rows["default"]["n_params"]) == 134_515_008
    for name, extra in (("default", []), ("random-init:default", ["--random-init"])):
        done = cli("compute", *extra, *flags, "-o", str(tmp_path / "own.safetensors"))
        assert done.returncode == 0, done.stderr
        header = run_file.load(tmp_path / "own.safetensors").header
        assert float(rows[name]["coupling_scalar_last_token"]) == pytest.approx(
            header["coupling_scalar_last_token"]["offdiag"], abs=1e-6)
    assert float(rows["default"]["coupling_scalar_last_token"]) < float(rows["random-init:default"][
        "coupling_scalar_last_token"])
    table = json.loads((tmp_path / "o" / "sweep.json").read_text())
    assert table["fits"]["coupling_scalar"] == {"n": 2, "note": "needs 3 models with a score and this value, has 2"}



def test_ctrl_c_keeps_the_models_done(sweep_names, tmp_path, monkeypatch):
    """Ctrl-C during the second model: status 130, one line, the first model's results and a valid table of it;
    nothing half-written."""
    from coupling_tui.core.engine import sweep as engine_sweep
    from coupling_tui.tui.main import main

    real = engine_sweep.model_stream

    def interrupted(job, prompts):
        if job.name == sweep_names[1]:
            raise KeyboardInterrupt
        yield from real(job, prompts)

    monkeypatch.setattr(engine_sweep, "model_stream", interrupted)
    out = tmp_path / "o"
    assert main(["sweep", *[a for n in sweep_names[:3] for a in ("-m", n)], *COMMON, "-o", str(out)]) == 130
    rows = rows_of(out)
    assert [r["model"] for r in rows] == [sweep_names[0]] and rows[0]["status"] == "ok"
    assert json.loads((out / "sweep.json").read_text())["rows"][0]["model"] == sweep_names[0]
    assert sorted(p.name for p in out.iterdir()) == sorted(["sweep.csv", "sweep.json", rows[0]["results"]])


def test_a_ray_worker_that_dies_is_one_failed_row(sweep_names):
    """A task whose worker process dies (os._exit, as a segfault or the OOM killer would) is that model's failed
    row; the other model completes."""
    ray = pytest.importorskip("ray")
    from coupling_tui.core.engine.sweep import ModelJob
    from coupling_tui.core.engine.sweep_ray import compute_model, stream_sweep_ray
    from coupling_tui.core.load.models import ModelRequest
    from coupling_tui.core.options.prompts import Prompt
    from coupling_tui.core.options.run_options import RunOptions
    from coupling_tui.core.results.events import ModelComputed, ModelFailed

    def body(index, job, prompts, progress):
        if index == 1:
            import os

            os._exit(1)
        return compute_model(index, job, prompts, progress)

    jobs = [ModelJob(n, ModelRequest(model=n), RunOptions(top_k=4)) for n in sweep_names[:2]]
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        events = list(stream_sweep_ray(jobs, [Prompt(PROMPT, "p")], body=body))
    finally:
        ray.shutdown()
    ends = {e.index: e for e in events if isinstance(e, (ModelComputed, ModelFailed))}
    assert isinstance(ends[0], ModelComputed) and ends[0].container.finished
    assert isinstance(ends[1], ModelFailed) and "the Ray worker died" in ends[1].reason


def test_without_ray_the_ray_executor_names_the_extra(sweep_names, tmp_path):
    import subprocess
    import sys

    code = ("import sys; sys.modules['ray'] = None; from coupling_tui.tui.main import main; "
            f"sys.exit(main(['sweep', '-m', {sweep_names[0]!r}, '--executor', 'ray', '-o', {str(tmp_path / 'o')!r}]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert out.stderr.startswith("coupling-tui: error: --executor ray needs Ray, which is not installed")
    assert "pip install 'coupling-tui[ray]'" in out.stderr and not (tmp_path / "o").exists()
