"""Shared by the scripts that write the measured sections of docs/ (collapse_table.py, docs_compare.py,
docs_worked_example.py, docs_metrics.py, docs_big_models.py): the begin/end markers naming the script, the atomic
replacement of the marked sections of a page, the machine and its load average, and the real ``coupling-tui``
command run as a user runs it, its printout captured.

A measured run is kept in a folder (``--save``): the results files and ``<name>.json`` for each command (the command
line, its printout, wall seconds, load average, machine), so that ``--from DIR`` renders the page again without
torch, and ``--from DIR --check PAGE`` says whether PAGE still holds what that run renders to."""

from __future__ import annotations

import json
import os
import platform
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def shown_path(path: Path) -> str:
    """``path`` as a command line shows it: relative to the repository root when inside it."""
    return str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)


def markers(script: str, section: str = "main") -> tuple[str, str]:
    """The begin and end markers of ``section`` written by benchmarks/<script>.py ("main": no section name)."""
    tag = script if section == "main" else f"{script} {section}"
    return (f"<!-- {tag}: begin (written by benchmarks/{script}.py; do not edit by hand) -->",
            f"<!-- {tag}: end -->")


def block(script: str, section: str, body: str) -> str:
    """``body`` between the section's markers, one blank line inside each."""
    begin, end = markers(script, section)
    return f"{begin}\n\n{body.strip()}\n\n{end}"


def replace_between(text: str, begin: str, end: str, new: str, where: str = "the page") -> str:
    """``text`` with ``begin`` … ``end`` (markers included) replaced by ``new``; SystemExit when either is missing."""
    if text.count(begin) != 1 or end not in text.split(begin, 1)[1]:
        raise SystemExit(f"{where} has no single {begin!r} … {end!r} pair of markers")
    head, rest = text.split(begin, 1)
    return head + new + rest.split(end, 1)[1]


def write_text_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in its folder and ``os.replace``."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_sections(path: Path, script: str, bodies: dict[str, str]) -> None:
    """Replace every section of ``bodies`` (section → markdown) in ``path`` at once: all or nothing."""
    text = path.read_text()
    for section, body in bodies.items():
        text = replace_between(text, *markers(script, section), block(script, section, body), str(path))
    write_text_atomically(path, text)


class LoadSampler:
    """The 1-minute load average every ``period`` seconds in a thread, while used as a context manager."""

    def __init__(self, period: float = 1.0) -> None:
        self.period, self.samples = period, [os.getloadavg()[0]]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            self.samples.append(os.getloadavg()[0])

    def __enter__(self) -> "LoadSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append(os.getloadavg()[0])

    def text(self) -> str:
        mean = sum(self.samples) / len(self.samples)
        return f"{mean:.1f} (max {max(self.samples):.1f})"


def machine() -> dict:
    """This machine in words: CPU model, cores, Python and torch versions (torch read from its metadata)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        from importlib.metadata import version

        torch = version("torch")
    except Exception:                                               # noqa: BLE001 - no torch: say so
        torch = "?"
    return {"cpu": cpu, "cores": os.cpu_count() or 0, "python": platform.python_version(), "torch": torch}


def machine_text(meta: dict) -> str:
    """"a 2-core Intel Xeon … (torch 2.13.0), load average 1.9 (max 2.4) while it ran" from a saved command."""
    m = meta["machine"]
    return (f"{m['cores']}-core {m['cpu']} (torch {m['torch']}), 1-minute load average {meta['load']} while it "
            f"ran, {meta['date']}")


def run_command(argv: list[str], shown: str = "coupling-tui compute", env: dict | None = None) -> dict:
    """Run ``python -m coupling_tui.core ARGV`` (= ``coupling-tui compute ARGV``) from the repository root, as a
    user would, and return what it did: the command as the user types it, stdout, stderr, exit status, wall
    seconds, the load average while it ran, the machine and the date. Exits when the command fails."""
    full = [sys.executable, "-m", "coupling_tui.core", *argv]
    with LoadSampler() as load:
        t0 = time.perf_counter()
        done = subprocess.run(full, cwd=ROOT, capture_output=True, text=True,
                              env={**os.environ, "COLUMNS": "200", **(env or {})})
        seconds = time.perf_counter() - t0
    meta = {"command": f"{shown} {shlex.join(argv)}", "stdout": done.stdout, "stderr": done.stderr,
            "returncode": done.returncode, "seconds": seconds, "load": load.text(), "machine": machine(),
            "date": time.strftime("%Y-%m-%d")}
    if done.returncode != 0:
        raise SystemExit(f"{meta['command']} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return meta


def save_meta(folder: Path, name: str, meta: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False))


def load_meta(folder: Path, name: str) -> dict:
    return json.loads((folder / f"{name}.json").read_text())


def printout(stderr: str, first: str) -> str:
    """The console printout from the first line starting with ``first`` on (the progress bar and the loading
    lines before it left out), trailing spaces stripped."""
    lines = [line.rstrip() for line in stderr.replace("\r", "\n").splitlines()]
    starts = [i for i, line in enumerate(lines) if line.startswith(first)]
    if not starts:
        raise SystemExit(f"no line starting with {first!r} in the printout:\n{stderr[-2000:]}")
    return "\n".join(line for line in lines[starts[0]:] if line)


def fenced(text: str) -> str:
    return f"```\n{text}\n```"


def stale_sections(path: Path, script: str, bodies: dict[str, str]) -> list[str]:
    """The sections of ``bodies`` whose marked block in ``path`` differs from what they render to."""
    text = path.read_text()
    out = []
    for section, body in bodies.items():
        begin, end = markers(script, section)
        current = text.split(begin, 1)[1].split(end, 1)[0] if begin in text and end in text else None
        if current is None or begin + current + end != block(script, section, body):
            out.append(section)
    return out


def main(script: str, description: str, default_save: Path, measure, render, argv: list[str] | None = None) -> None:
    """The command line every docs script shares: run ``measure(save)`` (unless ``--from`` a saved run), print the
    sections ``render(save)`` returns, replace them in ``--write``'s page, or with ``--check`` exit 1 when the page's
    sections differ from what the saved run renders to."""
    import argparse

    p = argparse.ArgumentParser(prog=f"benchmarks/{script}.py", description=description)
    p.add_argument("--save", type=Path, default=default_save, help="keep the run here (default %(default)s)")
    p.add_argument("--from", dest="source", type=Path, default=None, help="render a saved run instead of running")
    p.add_argument("--write", type=Path, default=None, help="replace the marked sections of this page")
    p.add_argument("--check", type=Path, default=None, metavar="PAGE",
                   help="with --from: exit 1 when PAGE's marked sections are not what the saved run renders to")
    args = p.parse_args(argv)
    if args.check is not None and args.source is None:
        p.error("--check needs --from (a saved run)")
    save = args.source or args.save.resolve()
    if args.source is None:
        measure(save)
    sections = render(save)
    if args.check is not None:
        stale = stale_sections(args.check, script, sections)
        print(f"{args.check}: " + (f"stale sections {', '.join(stale)}" if stale else "up to date"))
        raise SystemExit(1 if stale else 0)
    print("\n\n".join(block(script, name, body) for name, body in sections.items()))
    if args.write is not None:
        write_sections(args.write, script, sections)


def wrap(text: str, width: int = 118) -> str:
    """A paragraph (or a "- " bullet, its continuation lines indented) wrapped like the rest of docs/."""
    import textwrap

    indent = "  " if text.startswith("- ") else ""
    return textwrap.fill(text, width, subsequent_indent=indent, break_long_words=False, break_on_hyphens=False)
