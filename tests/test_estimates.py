"""Issue 18 item 4: estimates from this machine's measured rates. The probe's cache (written once, reused, keyed by
machine, a corrupt file ignored and rewritten, a busy machine's probe taken again), the estimate's scaling with the
rates, the collapse stage's estimate, and the busy-machine note beside the estimate. Nothing here is timed."""

from __future__ import annotations

import json

import pytest

from coupling_tui.core import cost
from coupling_tui.core.cli import calibration, cost_check
from coupling_tui.core.cli.calibration import RatesCache
from coupling_tui.core.cost import REFERENCE_RATES, CollapseWork, Rates, estimate

DEFAULT_RUN = dict(n_layers=30, d=576, tokens=52, top_k=50, history_mb=4096.0, weights_bytes=134.5e6 * 4)
FAST = {"gemm": 2e11, "topk": 6e9, "forward": 3e11, "low": 1e11}


class Probe:
    """A stand-in for core.linalg.probe.measure: counts its calls, returns ``rates`` (the same every time)."""

    def __init__(self, rates: dict | None = None):
        self.rates, self.calls = dict(rates or FAST), []

    def __call__(self, device: str) -> dict:
        self.calls.append(device)
        return {**self.rates, "probe_seconds": 0.5}


def cache(path, probe, load=0.5, cores=2, key=lambda device: f"cpu-model | {device}"):
    return RatesCache(path, measure=probe, key=key, load=lambda: load, cores=cores)


def test_the_probe_runs_once_and_its_cache_is_reused(tmp_path):
    path, probe = tmp_path / "rates.json", Probe()
    first = cache(path, probe).rates("cpu")
    assert first == Rates.from_dict(FAST) and probe.calls == ["cpu"]
    on_disk = json.loads(path.read_text())
    assert on_disk["version"] == calibration.CACHE_VERSION
    assert on_disk["machines"]["cpu-model | cpu"]["rates"] == FAST
    again = cache(path, probe)                       # a later launch: read from the file, no probe
    assert again.rates("cpu") == first and probe.calls == ["cpu"] and not again.probed


def test_each_machine_key_has_its_own_entry(tmp_path):
    path, probe = tmp_path / "rates.json", Probe()
    cache(path, probe).rates("cpu")
    other = Probe({**FAST, "gemm": 9e13})
    assert cache(path, other).rates("cuda:0").gemm == 9e13 and other.calls == ["cuda:0"]   # another device
    moved = Probe({**FAST, "gemm": 1e10})
    assert cache(path, moved, key=lambda d: f"another CPU | {d}").rates("cpu").gemm == 1e10
    assert set(json.loads(path.read_text())["machines"]) == {"cpu-model | cpu", "cpu-model | cuda:0",
                                                             "another CPU | cpu"}
    assert cache(path, probe).rates("cpu").gemm == FAST["gemm"] and probe.calls == ["cpu"]   # the first kept


def test_the_machine_key_names_cpu_cores_torch_threads_and_device(monkeypatch):
    import torch

    key = calibration.machine_key("cpu")
    assert calibration.cpu_model() in key and f"torch {torch.__version__}" in key and key.endswith("| cpu")
    monkeypatch.setattr(calibration.os, "cpu_count", lambda: 96)
    assert "96 cores" in calibration.machine_key("cpu")
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(threads + 1)
        assert f"{threads + 1} threads" in calibration.machine_key("cpu")
    finally:
        torch.set_num_threads(threads)
    assert calibration.machine_key("cpu") != key


@pytest.mark.parametrize("content", [b"{not json", b"", b"\x00\xff\xfe", b"[1, 2]", b'{"version": 99}',
                                     b'{"version": 1, "machines": {"cpu-model | cpu": {"rates": {"gemm": -1}}}}',
                                     b'{"version": 1, "machines": {"cpu-model | cpu": {"rates": {"gemm": "fast", '
                                     b'"topk": 1, "forward": 1, "low": 1}}}}'])
def test_a_corrupt_cache_file_is_ignored_and_rewritten(tmp_path, content):
    path, probe = tmp_path / "rates.json", Probe()
    path.write_bytes(content)
    assert cache(path, probe).rates("cpu") == Rates.from_dict(FAST) and probe.calls == ["cpu"]
    assert json.loads(path.read_text())["machines"]["cpu-model | cpu"]["rates"] == FAST
    cache(path, probe).rates("cpu")
    assert probe.calls == ["cpu"]


def test_an_entry_with_a_strange_load_keeps_its_rates(tmp_path):
    path, probe = tmp_path / "rates.json", Probe()
    path.write_text(json.dumps({"version": 1, "machines": {"cpu-model | cpu": {"rates": FAST, "load": "busy"}}}))
    assert cache(path, probe, load=0.1).rates("cpu") == Rates.from_dict(FAST) and probe.calls == []


def test_an_unwritable_cache_costs_only_a_probe(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    probe = Probe()
    assert cache(blocker / "rates.json", probe).rates("cpu") == Rates.from_dict(FAST)   # a file as parent dir
    assert cache(blocker / "rates.json", probe).rates("cpu") == Rates.from_dict(FAST)
    assert probe.calls == ["cpu", "cpu"]


def test_a_probe_taken_on_a_busy_machine_is_taken_again_when_it_is_not(tmp_path):
    path = tmp_path / "rates.json"
    slow = Probe({**FAST, "topk": 1e8})
    cache(path, slow, load=6.0).rates("cpu")
    cache(path, slow, load=6.0).rates("cpu")                 # still busy: the busy probe is used
    assert slow.calls == ["cpu"]
    quiet = Probe({**FAST, "gemm": 1e11})
    got = cache(path, quiet, load=0.3).rates("cpu")
    assert quiet.calls == ["cpu"] and got.topk == FAST["topk"] and got.gemm == FAST["gemm"]   # the faster of each
    cache(path, quiet, load=0.3).rates("cpu")
    assert quiet.calls == ["cpu"]                            # an idle machine's probe stands


def test_a_machine_twice_as_fast_gets_half_the_time():
    base = estimate(**DEFAULT_RUN, rates=REFERENCE_RATES)
    twice = estimate(**DEFAULT_RUN, rates=Rates(*(2 * getattr(REFERENCE_RATES, n) for n in vars(REFERENCE_RATES))))
    assert base.measured and twice.measured
    assert set(base.seconds) == set(twice.seconds) == {"forward trace", "Jacobians", "top-K", "depth coupling",
                                                       "token coupling"}
    for stage, seconds in base.seconds.items():
        assert twice.seconds[stage] == pytest.approx(seconds / 2), stage
    assert twice.memory == base.memory


@pytest.mark.parametrize("rate, stages", [("topk", {"top-K"}), ("forward", {"forward trace"}),
                                          ("gemm", {"Jacobians", "depth coupling", "token coupling"})])
def test_each_stage_scales_with_its_own_rate(rate, stages):
    base = estimate(**DEFAULT_RUN, rates=REFERENCE_RATES)
    faster = estimate(**DEFAULT_RUN, rates=Rates(**{**vars(REFERENCE_RATES), rate: 4 * getattr(REFERENCE_RATES, rate)}))
    for stage, seconds in base.seconds.items():
        assert faster.seconds[stage] == pytest.approx(seconds / 4 if stage in stages else seconds), stage


def test_measured_rates_replace_the_thread_count():
    one = estimate(**DEFAULT_RUN, rates=REFERENCE_RATES, threads=1)
    assert estimate(**DEFAULT_RUN, rates=REFERENCE_RATES, threads=16).seconds == one.seconds
    assert estimate(**DEFAULT_RUN, rates=REFERENCE_RATES, device="cuda").seconds == one.seconds


COLLAPSE = CollapseWork(sequences=(7, 9, 127, 129), sensitivity_tokens=127, sensitivity_probes=32)


def test_the_collapse_stage_is_estimated_and_scales_with_the_forward_rates():
    run = {**DEFAULT_RUN, "top_k": 0, "tokens": 9}
    base = estimate(**run, collapse=COLLAPSE, rates=REFERENCE_RATES)
    assert {"collapse pairs", "collapse low precision", "collapse sensitivity"} <= set(base.seconds)
    assert base.seconds["collapse low precision"] > base.seconds["collapse pairs"]      # bfloat16 is slower here
    longer = estimate(**run, collapse=CollapseWork(sequences=(7, 9, 255, 257), sensitivity_tokens=127,
                                                   sensitivity_probes=32), rates=REFERENCE_RATES)
    assert longer.seconds["collapse pairs"] > 1.9 * base.seconds["collapse pairs"]
    assert "collapse sensitivity" not in estimate(**run, collapse=CollapseWork(sequences=(7, 9)),
                                                  rates=REFERENCE_RATES).seconds
    float32 = estimate(**run, collapse=CollapseWork(sequences=(7, 9, 127, 129), low_dtype="float32"),
                       rates=REFERENCE_RATES)
    assert float32.seconds["collapse low precision"] == pytest.approx(float32.seconds["collapse pairs"])
    low_fast = estimate(**run, collapse=COLLAPSE, rates=Rates(**{**vars(REFERENCE_RATES),
                                                                 "low": 2 * REFERENCE_RATES.low}))
    assert low_fast.seconds["collapse low precision"] == pytest.approx(base.seconds["collapse low precision"] / 2)
    assert low_fast.seconds["collapse pairs"] == pytest.approx(base.seconds["collapse pairs"])


def test_collapse_work_follows_the_stage(tiny_dir):
    from coupling_tui.core.load.models import ModelRequest, load
    from coupling_tui.core.options.collapse import CollapseSpec

    loaded = load(ModelRequest(model=str(tiny_dir)))
    work = cost_check.collapse_work(loaded, CollapseSpec(families=("ones", "digits"), lengths=(2, 4, 8), probes=4))
    assert len(work.sequences) == 2 * 3 * 2 and work.low_dtype == "bfloat16"
    assert work.sensitivity_tokens in work.sequences and work.sensitivity_probes == 4
    assert cost_check.collapse_work(loaded, None) is None
    assert cost_check.collapse_work(loaded, CollapseSpec(sensitivity=False, lengths=(2,))).sensitivity_tokens == 0


@pytest.mark.parametrize("load, cores, busy", [(0.3, 2, False), (2.5, 2, False), (2.6, 2, True), (3.1, 2, True),
                                               (15.0, 16, False), (17.0, 16, True), (None, 2, False)])
def test_the_busy_note_appears_iff_the_load_exceeds_the_cores(monkeypatch, load, cores, busy):
    def getloadavg():
        if load is None:
            raise OSError("no load average here")
        return (load, 0.0, 0.0)

    monkeypatch.setattr(calibration.os, "getloadavg", getloadavg)
    monkeypatch.setattr(cost_check.os, "cpu_count", lambda: cores)
    note = cost_check.machine_note()
    assert bool(note) == busy
    if busy:
        assert note == f"machine busy: load {load:.1f} on {cores} cores; expect longer"
    said = []
    cost_check.confirm(cost.RunCost(seconds={"Jacobians": 60.0}), None, yes=False, interactive=False,
                       say=said.append, note=note)
    assert said == ["estimate: about 0 B () and about 60 s on the CPU"] + ([f"  {note}"] if busy else [])


def test_the_load_seconds_are_told_beside_the_estimate_and_do_not_decide():
    c = cost.RunCost(memory={"weights": 1e9}, seconds={"Jacobians": 60.0}, done_seconds=26.4)
    assert c.text() == "about 1.0 GB (1.0 GB weights) and about 60 s on the CPU (after 26 s loading)"
    assert c.total_seconds == 60.0
    assert cost_check.verdict(cost.RunCost(seconds={"J": 500.0}, done_seconds=3600.0), None)[0] == "ok"


def test_a_failing_probe_falls_back_to_the_reference(tmp_path):
    def broken(device):
        raise RuntimeError("no BLAS today")

    assert cost_check.machine_rates("cpu", cache(tmp_path / "rates.json", broken)) is None
    assert cost_check.machine_rates("cpu", cache(tmp_path / "rates.json", Probe())) == Rates.from_dict(FAST)


def test_the_real_probe_measures_positive_rates_on_this_machine():
    from coupling_tui.core.linalg import probe

    measured = probe.measure("cpu")
    rates = Rates.from_dict(measured)
    assert all(getattr(rates, n) > 1e6 for n in vars(rates)) and measured["probe_seconds"] > 0


def test_a_contended_multi_threaded_probe_is_never_rated_below_one_thread(monkeypatch):
    """Seen on a 2-core machine at load 1.9: the two-thread top-K probe ran 200× slower than one thread, and the
    default run (100 s) was estimated at 2.1 h and asked before starting. One thread's CPU-second rate is the floor."""
    import torch

    from coupling_tui.core.linalg import probe

    if torch.get_num_threads() < 2:
        torch.set_num_threads(2)
    threads = torch.get_num_threads()
    real = probe.topk_cubes
    monkeypatch.setattr(probe, "topk_cubes", lambda dev, clock=None: real(dev, clock) / (
        1000 if torch.get_num_threads() > 1 else 1))
    measured = probe.measure("cpu")
    single = real(torch.device("cpu"), __import__("time").process_time)
    assert torch.get_num_threads() == threads                       # restored
    assert measured["topk"] > single / 20                           # one thread's rate, not the contended one's


def test_compute_says_the_load_seconds_and_the_busy_note(tiny_dir, tmp_path, monkeypatch, capsys):
    import time

    from coupling_tui.core.cli import compute
    from coupling_tui.core.engine import stream as engine
    from coupling_tui.core.load import models

    original = models.load

    def slow_load(*args, **kwargs):                         # a load that takes at least 1 s, whatever the machine
        time.sleep(1.0)
        return original(*args, **kwargs)

    monkeypatch.setattr(models, "load", slow_load)
    monkeypatch.setattr(engine, "stream", lambda *a, **k: iter(()))
    monkeypatch.setattr(cost_check, "machine_note", lambda: "machine busy: load 9.0 on 2 cores; expect longer")
    monkeypatch.setattr(cost_check, "available_memory", lambda device="cpu": 1e5)     # refused: nothing runs
    status = compute.main(["--model", str(tiny_dir), "-p", "The capital", "-o", str(tmp_path / "r.safetensors")])
    err = capsys.readouterr().err
    lines = err.splitlines()
    at = next(i for i, x in enumerate(lines) if x.startswith("estimate: "))
    assert status == 2 and lines[at].endswith(" s loading)") and "(after 0 s" not in lines[at]
    assert lines[at + 1] == "  machine busy: load 9.0 on 2 cores; expect longer"


def test_the_collapse_command_prints_its_estimate(tiny_dir, tmp_path, capsys):
    from coupling_tui.core.cli import collapse

    status = collapse.main(["--model", str(tiny_dir), "--lengths", "2,4", "--families", "ones", "--probes", "2",
                            "-o", str(tmp_path / "c.safetensors")])
    err = capsys.readouterr().err
    assert status == 0 and any(x.startswith("estimate: about ") for x in err.splitlines()), err
