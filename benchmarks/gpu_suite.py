"""The prepared GPU suite (issue 21): one command that proves the CUDA path on one H100/H200 in about 8 minutes.

Parts, each isolated (a part that fails is a FAIL row with its one-line reason; the rest still run) and each under a
time budget (subprocesses are killed at it; in-process parts are interrupted by an alarm):

1. ``cuda tests``: ``python -m pytest -q -m cuda`` on the test files that carry the ``cuda`` marker: pass/fail/skip.
2. ``e2e float32`` / ``e2e bfloat16``: the engine's default compute (every stage) of a random Qwen2-0.5B-shaped
   model (24 blocks, d 896, GQA 14/2, MLP 4864, tied 151936 vocabulary) saved to a temporary directory and loaded
   with those weights, at T = 256, top-32: wall time per stage, peak GPU memory, and the stored top-K triplets of a
   sample of (layer, token) against float64 on the host (benchmarks/_suite_e2e.py says what each time covers).
3. ``topk_gpu.py`` and ``jacobians.py --gpu on`` (benchmarks/) as subprocesses at the anchor shape: their ratio
   lines against the same-run baselines (batched eigh; official per-token method, naive jacrev).
4. ``collapse bf16``: the collapse stage in bfloat16 of a tiny model on the device and on the CPU: the bit-identical
   shares (``collapse.identical_low``) must be equal.

Run: ``python benchmarks/gpu_suite.py --out benchmarks/out/`` on the GPU machine. ``--smoke`` runs the same code
paths at tiny sizes (CPU-friendly; tests/test_gpu_suite.py runs it); ``--only 'e2e bfloat16,collapse bf16'`` reruns
some parts after a fix. Writes ``summary.md``, ``summary.json`` and ``gpu_suite.log`` under ``--out``; the exit
status is 1 when any part failed. benchmarks/RESULTS.md ("GPU suite") says what the GPU machine needs."""

from __future__ import annotations

import argparse
import atexit
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(ROOT)]                 # _bench_utils and _suite_e2e; tests.tiny_models


def importable_checkout() -> str | None:
    """Make ``coupling_tui`` importable from this checkout where it is not installed (the GPU machine, which gets
    the working tree but no ``pip install -e``): a temporary folder with ``coupling_tui/core`` and ``/tui`` linked
    to the checkout goes first on sys.path and on PYTHONPATH (the subprocesses). Returns that folder, or None."""
    try:
        import coupling_tui.core  # noqa: F401
        return None
    except ImportError:
        pass
    link = Path(tempfile.mkdtemp(prefix="gpu-suite-src-"))
    (link / "coupling_tui").mkdir()
    for half in ("core", "tui"):
        (link / "coupling_tui" / half).symlink_to(ROOT / half, target_is_directory=True)
    atexit.register(shutil.rmtree, link, ignore_errors=True)
    sys.path.insert(0, str(link))
    for name in [m for m in sys.modules if m == "coupling_tui" or m.startswith("coupling_tui.")]:
        del sys.modules[name]                          # a failed namespace import is not cached as the answer
    return str(link)


LINKED = importable_checkout()
os.environ["PYTHONPATH"] = os.pathsep.join(
    [p for p in (LINKED, str(ROOT), os.environ.get("PYTHONPATH")) if p])

import torch  # noqa: E402

import _suite_e2e as e2e  # noqa: E402

BUDGET_S = {"cuda tests": 45, "e2e float32": 110, "e2e bfloat16": 80, "topk_gpu.py": 60, "jacobians.py": 150,
            "collapse bf16": 30}
"""Seconds each part may take on the GPU machine (about 8 minutes in all, model saving included)."""
SMOKE_BUDGET_S = {"cuda tests": 60, "e2e float32": 40, "e2e bfloat16": 40, "topk_gpu.py": 40, "jacobians.py": 60,
                  "collapse bf16": 30}
TRIPLET_TOL = {"float32": 1e-4, "bfloat16": 1e-4}
"""Largest σ error and residual the triplet check accepts (the Jacobian maths is float32 whatever the weights)."""


@dataclass
class Row:
    """One part's line of the summary: ok / FAIL / skipped, its time, budget, one-line result and details."""

    part: str
    status: str = "FAIL"
    seconds: float = 0.0
    budget_s: float = 0.0
    result: str = ""
    details: dict = field(default_factory=dict)


class Log:
    """Everything the suite does, appended to ``gpu_suite.log`` (progress lines also go to stdout)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.write_text("")

    def __call__(self, text: str, echo: bool = False) -> None:
        with self.path.open("a") as f:
            f.write(text.rstrip("\n") + "\n")
        if echo:
            print(text, flush=True)


class Budget(Exception):
    """An in-process part ran past its time budget."""


def _alarm(signum: int, frame: Any) -> None:
    raise Budget("ran past its time budget")


def run_part(row: Row, fn: Callable[[Row], None], log: Log) -> Row:
    """Run one part under its budget; any exception makes it a FAIL row with a one-line reason."""
    log(f"\n=== {row.part} (budget {row.budget_s:.0f} s) ===", echo=True)
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(int(row.budget_s))
    t0 = time.perf_counter()
    try:
        fn(row)
    except BaseException as exc:  # noqa: BLE001 - a part's failure, whatever it is, is a FAIL row
        if isinstance(exc, KeyboardInterrupt):
            raise
        row.status = "FAIL"
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        row.result = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
        log(traceback.format_exc())
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
        row.seconds = time.perf_counter() - t0
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    log(f"--> {row.status} in {row.seconds:.1f} s: {row.result}", echo=True)
    return row


def subprocess_part(row: Row, cmd: list[str], log: Log) -> str:
    """Run ``cmd`` from the repository root within the row's budget; its output goes to the log and is returned.
    A non-zero exit or the budget running out raises (the row becomes FAIL)."""
    log("$ " + " ".join(cmd))
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    try:
        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=row.budget_s)
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        log(out)
        raise Budget(f"killed at its {row.budget_s:.0f} s budget") from None
    log(done.stdout + done.stderr)
    row.details["returncode"] = done.returncode
    return done.stdout + "\n" + done.stderr


# -- the parts --

def cuda_test_files() -> list[str]:
    """The test files that carry ``@pytest.mark.cuda`` (collecting only them keeps the part short)."""
    return sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").glob("test_*.py")
                  if "pytest.mark.cuda" in p.read_text())


def part_cuda_tests(row: Row, log: Log) -> None:
    files = cuda_test_files()
    if not files:
        raise RuntimeError("no test file carries the cuda marker")
    out = subprocess_part(row, [sys.executable, "-m", "pytest", "-q", "-m", "cuda", "-p", "no:cacheprovider", *files],
                          log)
    tail = [ln for ln in out.splitlines() if re.search(r"\d+ (passed|failed|skipped|deselected|errors?)\b", ln)]
    counts = {k: 0 for k in ("passed", "failed", "skipped", "error")}
    for n, what in re.findall(r"(\d+) (passed|failed|skipped|errors?)\b", tail[-1] if tail else ""):
        counts["error" if what.startswith("error") else what] += int(n)
    row.details.update(counts, files=files, summary_line=tail[-1] if tail else "")
    text = ", ".join(f"{v} {k}" for k, v in counts.items() if v) or "no tests ran"
    if counts["failed"] or counts["error"] or row.details["returncode"] not in (0, 5):
        row.status, row.result = "FAIL", text
    elif counts["passed"]:
        row.status, row.result = "ok", text
    else:
        reason = "no CUDA device" if not torch.cuda.is_available() else "skipped on this machine"
        row.status, row.result = "skipped", f"{text} ({reason})"


def part_e2e(row: Row, log: Log, model_dir: Callable[[], Path], dtype: str, shape: e2e.Shape, device: str) -> None:
    r = e2e.e2e(model_dir(), dtype, shape, device)
    row.details.update(r, stage_notes=e2e.STAGE_NOTES)
    log(json.dumps(r, indent=1, default=str))
    st = r["stages_s"]
    times = " ".join(f"{k} {v:.2f}" for k, v in st.items())
    tol = TRIPLET_TOL[dtype]
    good = r["sigma_rel_err"] < tol and r["residual"] < tol
    row.status = "ok" if good else "FAIL"
    row.result = (f"{r['wall_s']:.2f} s ({times}); peak GPU mem {r['peak_gpu_memory']}; top-{r['K']} vs fp64 at "
                  f"{len(r['checked'])} (layer, token): σ err {r['sigma_rel_err']:.1e}, residual {r['residual']:.1e}"
                  + ("" if good else f" (over {tol:.0e})"))


def ratio_lines(out: str) -> list[str]:
    """The lines of a benchmark's output that state a ratio or a target."""
    keep = re.compile(r"\dx\b|x vs |x the closed form|target|MET|skipped", re.I)
    return [ln.strip() for ln in out.splitlines() if keep.search(ln)]


def part_script(row: Row, log: Log, args: list[str]) -> None:
    out = subprocess_part(row, [sys.executable, *args], log)
    if row.details["returncode"] != 0:
        last = [ln for ln in out.strip().splitlines() if ln.strip()]
        raise RuntimeError(f"exit {row.details['returncode']}: {last[-1][:160] if last else 'no output'}")
    lines = ratio_lines(out)
    row.details["ratio_lines"] = lines
    skipped = [ln for ln in lines if "skipped" in ln.lower()]
    row.status = "skipped" if skipped else "ok"
    row.result = skipped[0][:160] if skipped else f"{len(lines)} ratio lines; " + (
        lines[-1][:160] if lines else "none printed")


def part_collapse(row: Row, log: Log, tiny_dir: Callable[[], Path], device: str) -> None:
    r = e2e.collapse_compare(tiny_dir(), device)
    row.details.update(r)
    log(json.dumps(r, indent=1))
    worst = max(r["max_abs_diff"].values(), default=0.0)
    row.status = "ok" if r["equal"] else "FAIL"
    where = "both on the CPU" if device == "cpu" else f"{device} vs CPU"
    row.result = (f"identical_low {r['shape']} {'equal' if r['equal'] else 'DIFFER'} ({where}); largest difference "
                  f"of the other collapse arrays {worst:.1e}")


# -- the suite --

def lazy(make: Callable[[], Path]) -> Callable[[], Path]:
    """``make`` called once, on first use (a part that needs the saved model builds it inside its own budget)."""
    cache: list[Path] = []
    return lambda: cache[0] if cache else (cache.append(make()) or cache[0])


def parts(args: argparse.Namespace, tmp: Path, log: Log) -> list[tuple[str, Callable[[Row], None]]]:
    shape = e2e.SMOKE if args.smoke else e2e.ANCHOR
    model_dir = lazy(lambda: e2e.save_qwen2(shape, tmp / "qwen2-shaped"))

    def tiny() -> Path:
        from tests.tiny_models import save_tiny
        return save_tiny("qwen2", tmp / "tiny-qwen2")
    tiny_dir = lazy(tiny)
    topk = ["benchmarks/topk_gpu.py"] + (["--hidden", "64", "--T", "8", "--K", "4", "--reps", "1", "--no-scipy"]
                                         if args.smoke else [])
    jac = ["benchmarks/jacobians.py", "--gpu-only", "--gpu", "on" if args.device.startswith("cuda") else "cpu"]
    jac += ["--quick"] if args.smoke else []
    return [("cuda tests", lambda r: part_cuda_tests(r, log)),
            ("e2e float32", lambda r: part_e2e(r, log, model_dir, "float32", shape, args.device)),
            ("e2e bfloat16", lambda r: part_e2e(r, log, model_dir, "bfloat16", shape, args.device)),
            ("topk_gpu.py", lambda r: part_script(r, log, topk)),
            ("jacobians.py", lambda r: part_script(r, log, jac)),
            ("collapse bf16", lambda r: part_collapse(r, log, tiny_dir, args.device))]


def table(rows: list[Row]) -> str:
    """The summary as a markdown table."""
    lines = ["| part | status | seconds | budget | result |", "|---|---|---:|---:|---|"]
    lines += [f"| {r.part} | {r.status} | {r.seconds:.1f} | {r.budget_s:.0f} | {r.result.replace('|', '/')} |"
              for r in rows]
    return "\n".join(lines)


def machine(device: str) -> str:
    if device.startswith("cuda") and torch.cuda.is_available():
        return f"{torch.cuda.get_device_name()} (torch {torch.__version__}, CUDA {torch.version.cuda})"
    return f"CPU, {torch.get_num_threads()} threads (torch {torch.__version__})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "out", help="where summary.md/.json and the log go")
    parser.add_argument("--smoke", action="store_true", help="the same code paths at tiny sizes (a CPU check)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--only", default=None, help="comma-separated parts to run (a rerun after a fix), e.g. "
                        "'e2e bfloat16,collapse bf16'; default all: " + ", ".join(BUDGET_S))
    args = parser.parse_args(argv)
    only = None if args.only is None else [p.strip() for p in args.only.split(",") if p.strip()]
    if only is not None and (not only or set(only) - set(BUDGET_S)):
        parser.error(f"--only takes some of: {', '.join(BUDGET_S)}")
    args.out.mkdir(parents=True, exist_ok=True)
    log = Log(args.out / "gpu_suite.log")
    started = time.perf_counter()
    budgets = SMOKE_BUDGET_S if args.smoke else BUDGET_S
    head = (f"GPU suite{' --smoke' if args.smoke else ''} on {args.device}: {machine(args.device)}; "
            f"{time.strftime('%Y-%m-%d %H:%M:%S %Z')}")
    log(head, echo=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="gpu-suite-") as tmp:
        for name, fn in parts(args, Path(tmp), log):
            if only is None or name in only:
                rows.append(run_part(Row(part=name, budget_s=budgets[name]), fn, log))
    total = time.perf_counter() - started
    failed = [r.part for r in rows if r.status == "FAIL"]
    text = f"# {head}\n\n{table(rows)}\n\nTotal {total:.1f} s; {len(failed)} part(s) failed" + (
        f": {', '.join(failed)}" if failed else "") + "\n"
    for r in rows:
        if r.details.get("stages_s"):
            text += f"\n## {r.part}: what each time covers\n\n" + "\n".join(
                f"- {k}: {r.details['stages_s'][k]:.3f} s — {e2e.STAGE_NOTES[k]}" for k in e2e.STAGES) + "\n"
        if r.details.get("ratio_lines"):
            text += f"\n## {r.part}: ratio lines\n\n" + "\n".join(f"    {ln}" for ln in r.details["ratio_lines"]) + "\n"
    (args.out / "summary.md").write_text(text)
    (args.out / "summary.json").write_text(json.dumps(
        {"header": head, "smoke": args.smoke, "device": args.device, "total_s": total, "failed": failed,
         "rows": [asdict(r) for r in rows]}, indent=1, default=str))
    log(text)
    print("\n" + text, flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
