"""``coupling-tui sweep`` as a user runs it (issue 19): tiny random models of different sizes and families, a
scores file, the table checked against each model's own ``compute``, the fits against scipy, a re-run that skips,
a bad model that is one failed row, and the same sweep through a local Ray cluster."""

from __future__ import annotations

import csv
import json
import math

import pytest
from scipy import stats

from coupling_tui.core.results import run_file
from tests.test_cli import cli

PROMPT = "The capital of France is Paris."
COMMON = ["--top-k", "4", "-p", PROMPT]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Three tiny models of different families and sizes, saved like a user's."""
    from tests.tiny_models import save_tiny

    root = tmp_path_factory.mktemp("sweep-models")
    return {"llama3": save_tiny("llama", root / "llama3"),
            "qwen4": save_tiny("qwen2", root / "qwen4", num_hidden_layers=4, hidden_size=48, intermediate_size=96),
            "gpt2": save_tiny("gpt2", root / "gpt2", seed=1)}


@pytest.fixture(scope="module")
def names(models):
    return [str(models["llama3"]), str(models["qwen4"]), str(models["gpt2"]), f"random-init:{models['llama3']}"]


@pytest.fixture(scope="module")
def scores(names, tmp_path_factory):
    path = tmp_path_factory.mktemp("scores") / "scores.csv"
    path.write_text("model,score,note\n" + "".join(f"{n},{s},x\n" for n, s in zip(names, (0.31, 0.52, 0.44, 0.12))))
    return path


@pytest.fixture(scope="module")
def swept(names, scores, tmp_path_factory):
    """One sweep of the four models plus a model that does not exist."""
    out = tmp_path_factory.mktemp("sweep") / "out"
    args = ["sweep", *[a for n in names for a in ("-m", n)], "-m", "/no/such/model", *COMMON,
            "--scores", str(scores), "-o", str(out)]
    result = cli(*args)
    return out, args, result


def rows_of(directory) -> list[dict]:
    with open(directory / "sweep.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_every_row_equals_that_models_own_compute(swept, names, tmp_path):
    out, _, result = swept
    assert result.returncode == 0, result.stderr
    rows = {r["model"]: r for r in rows_of(out)}
    assert list(rows) == [*names, "/no/such/model"]
    for name in names:
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


def test_sizes_differ_and_the_twin_is_untrained(swept, names):
    rows = {r["model"]: r for r in rows_of(swept[0])}
    assert len({int(rows[n]["n_params"]) for n in names[:3]}) == 3
    assert rows[names[0]]["n_params"] == rows[names[3]]["n_params"]          # the twin: same architecture
    assert rows[names[0]]["coupling_scalar"] != rows[names[3]]["coupling_scalar"]


def test_a_bad_model_is_one_failed_row(swept):
    out, _, result = swept
    row = rows_of(out)[-1]
    assert row["status"].startswith("failed: model not found: /no/such/model")
    assert row["coupling_scalar"] == "" and row["results"] == ""
    assert "model 5/5 /no/such/model: failed: model not found" in result.stderr
    assert "Traceback" not in result.stderr


def test_fits_equal_scipy_on_the_table(swept, names):
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


def test_other_options_recompute(swept, names, tmp_path):
    """The same directory with another K: nothing is reused (the options key differs)."""
    import shutil

    out = shutil.copytree(swept[0], tmp_path / "copy")
    again = cli("sweep", "-m", names[0], "--top-k", "3", "-p", PROMPT, "-o", str(out))
    assert again.returncode == 0, again.stderr
    assert "skipped" not in again.stderr and "ok in" in again.stderr
    assert rows_of(out)[0]["k"] == "3"


def test_sweep_refuses_bad_input_before_any_model_loads(tmp_path, models):
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


def test_the_ray_executor_gives_the_same_table(swept, names, tmp_path):
    """One Ray task per model on a local Ray of two CPUs: the same rows as in process."""
    pytest.importorskip("ray")
    out = tmp_path / "ray"
    result = cli("sweep", *[a for n in names for a in ("-m", n)], "-m", "/no/such/model", *COMMON,
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


# -- the Sweep view: `coupling-tui view DIR` and `export DIR` (issue 19 item 4) --

async def test_the_sweep_view_draws_the_scatter_and_opens_a_model(swept):
    from coupling_tui.core.results import sweep_table
    from coupling_tui.tui.panes.sweep_scatter import SweepScatter, points
    from coupling_tui.tui.sweep_app import SweepApp

    out = swept[0]
    table = sweep_table.load(out)
    app = SweepApp(table, out, out)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        scatter = app.query_one(SweepScatter)
        assert scatter.axes.x == "coupling_scalar_last_token" and scatter.axes.y == "score"
        assert len(points(table, scatter.axes)) == 4                     # the failed model has no point
        assert str(scatter.border_title).startswith("Sweep · fit: R² ")
        assert f"R² {table['fits']['coupling_scalar_last_token']['r2']:.3f}" in str(scatter.border_title)
        await pilot.press("t")                                            # the all-token mean instead
        assert scatter.axes.x == "coupling_scalar" and "all-token mean" in str(app.query_one("#sweep-status").render())
        await pilot.press("s")                                            # sorted by m last token
        models = app.query_one("#models")
        last = [table["rows"][i]["coupling_scalar_last_token"] for i in models.rows_shown[:4]]
        assert last == sorted(last)
        await pilot.press("down", "down", "down", "down", "enter")        # the failed model: nothing to open
        await pilot.pause()
        assert app.return_value is None and app.is_running
        assert models.selected == 4
        await pilot.press("up", "up", "up", "enter")
        await pilot.pause()
    chosen = app.return_value
    assert chosen.sort == 1 and chosen.pooling == "coupling_scalar"
    assert chosen.selected == models.rows_shown[1]


def test_enter_opens_the_models_run_and_esc_comes_back(swept, monkeypatch):
    """The loop of `view DIR`: the Sweep view's choice opens that model's results in the explorer (Esc there is
    BACK), and the Sweep view comes back with the same selection, sort and pooling; q quits."""
    from coupling_tui.tui import main as tui_main
    from coupling_tui.tui.app import BACK, CouplingApp
    from coupling_tui.tui.sweep_app import SweepApp, SweepView

    out = swept[0]
    seen, script = [], [SweepView(2, 1, "coupling_scalar"), BACK, None]

    def fake_run_app(app, **kw):
        seen.append(app)
        return script[len(seen) - 1]

    monkeypatch.setattr(tui_main, "run_app", fake_run_app)
    assert tui_main.view_sweep(out, out) == 0
    assert [type(a) for a in seen] == [SweepApp, CouplingApp, SweepApp]
    opened = seen[1]
    assert opened.back and opened.results.header["params"]["sweep"]["model"] == json.loads(
        (out / "sweep.json").read_text())["rows"][2]["model"]
    assert seen[2].view == SweepView(2, 1, "coupling_scalar")


async def test_esc_in_the_opened_run_returns_back(swept):
    from coupling_tui.tui.app import BACK
    from coupling_tui.tui.main import view_app

    row = rows_of(swept[0])[0]
    app = view_app(str(swept[0] / row["results"]))
    app.back = True
    async with app.run_test() as pilot:
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
    assert app.return_value == BACK


@pytest.mark.parametrize("size", ["80x24", "120x40"])
def test_export_writes_the_scatter_and_the_table(swept, tmp_path, size):
    out = cli("export", str(swept[0]), "--svg", str(tmp_path), "--size", size)
    assert out.returncode == 0, out.stderr
    names = sorted(p.name for p in tmp_path.glob("*.svg"))
    assert names == ["out-models.svg", "out-scatter.svg", "out-screen.svg"]
    text = (tmp_path / "out-scatter.svg").read_text()
    assert "fit:" in text and "R²" in text
    assert "random-init…" in (tmp_path / "out-models.svg").read_text()           # the twin told apart


def test_ctrl_c_keeps_the_models_done(names, tmp_path, monkeypatch):
    """Ctrl-C during the second model: status 130, one line, the first model's results and a valid table of it;
    nothing half-written."""
    from coupling_tui.core.engine import sweep as engine_sweep
    from coupling_tui.tui.main import main

    real = engine_sweep.model_stream

    def interrupted(job, prompts):
        if job.name == names[1]:
            raise KeyboardInterrupt
        yield from real(job, prompts)

    monkeypatch.setattr(engine_sweep, "model_stream", interrupted)
    out = tmp_path / "o"
    assert main(["sweep", "-m", names[0], "-m", names[1], "-m", names[2], *COMMON, "-o", str(out)]) == 130
    rows = rows_of(out)
    assert [r["model"] for r in rows] == [names[0]] and rows[0]["status"] == "ok"
    assert json.loads((out / "sweep.json").read_text())["rows"][0]["model"] == names[0]
    assert sorted(p.name for p in out.iterdir()) == sorted(["sweep.csv", "sweep.json", rows[0]["results"]])


def test_viewing_a_sweep_imports_no_torch(swept, tmp_path):
    import subprocess
    import sys

    code = ("import sys; from coupling_tui.tui.main import main; "
            f"code = main(['export', {str(swept[0])!r}, '--svg', {str(tmp_path)!r}]); "
            "print(code, sorted(m for m in ('torch', 'transformers', 'scipy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "0 []", out.stdout + out.stderr


async def test_a_live_sweep_streams_rows_into_the_view(names, tmp_path):
    """``sweep --view``: the Sweep view computes the sweep in its worker; rows appear as models finish, and the
    table it shows at the end is the one written to DIR."""
    import asyncio

    from coupling_tui.core.cli.sweep import build_sweep_parser, prepare_sweep
    from coupling_tui.tui.panes.sweep_models import SweepModels
    from coupling_tui.tui.sweep_app import SweepApp

    args = build_sweep_parser().parse_args(["-m", names[0], "-m", "/no/such/model", "-m", names[2], *COMMON,
                                            "-o", str(tmp_path / "o"), "--view"])
    said: list[str] = []
    prepared = prepare_sweep(args, said.append)
    app = SweepApp({"rows": [], "prompts": [], "fits": {}}, prepared.directory, tmp_path, live=prepared.drive)
    seen_rows = []
    async with app.run_test(size=(100, 30)) as pilot:
        for _ in range(600):
            await asyncio.sleep(0.1)
            seen_rows.append(len(app.table["rows"]))
            if not app.computing:
                break
        assert not app.computing and app.failure is None
        await pilot.pause()
        assert app.query_one(SweepModels).row_count == 3
    assert seen_rows[0] < 3 and sorted(seen_rows) == seen_rows              # rows arrived one by one
    assert [r["model"] for r in rows_of(tmp_path / "o")] == [names[0], "/no/such/model", names[2]]
    assert any(line.startswith("model 3/3") for line in said)


async def test_quitting_a_live_sweep_stops_it_between_events(tmp_path):
    import threading

    from coupling_tui.tui.sweep_app import SweepApp

    events, stopped = [], threading.Event()

    def endless(on_event):
        from coupling_tui.core.results.sweep import Sweep

        try:
            while True:
                on_event(Sweep())
                events.append(1)
                threading.Event().wait(0.02)
        finally:
            stopped.set()

    app = SweepApp({"rows": [], "prompts": [], "fits": {}}, tmp_path, tmp_path, live=endless)
    async with app.run_test() as pilot:
        await pilot.pause(0.3)
        assert app.computing and events
        await pilot.press("q")
    assert stopped.wait(5) and app.return_value is None


def test_a_ray_worker_that_dies_is_one_failed_row(names):
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

    jobs = [ModelJob(n, ModelRequest(model=n), RunOptions(top_k=4)) for n in names[:2]]
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        events = list(stream_sweep_ray(jobs, [Prompt(PROMPT, "p")], body=body))
    finally:
        ray.shutdown()
    ends = {e.index: e for e in events if isinstance(e, (ModelComputed, ModelFailed))}
    assert isinstance(ends[0], ModelComputed) and ends[0].container.finished
    assert isinstance(ends[1], ModelFailed) and "the Ray worker died" in ends[1].reason


def test_without_ray_the_ray_executor_names_the_extra(names, tmp_path):
    import subprocess
    import sys

    code = ("import sys; sys.modules['ray'] = None; from coupling_tui.tui.main import main; "
            f"sys.exit(main(['sweep', '-m', {names[0]!r}, '--executor', 'ray', '-o', {str(tmp_path / 'o')!r}]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert out.stderr.startswith("coupling-tui: error: --executor ray needs Ray, which is not installed")
    assert "pip install 'coupling-tui[ray]'" in out.stderr and not (tmp_path / "o").exists()
