"""This machine's measured rates for the cost estimate: ``core.linalg.probe`` run once per machine (well under a
second on an idle one) and cached as JSON in the user cache dir (``core.load.default_model.cache_root``, or
``COUPLING_TUI_CACHE_DIR``), keyed by the CPU model, the core count, torch's version and threads and the device.

A cache file that cannot be read (corrupt, another format) is ignored and written again; one that cannot be written
only costs a probe on the next run. A probe taken on a busy machine (core.cost.busy_note) is taken again once the
machine is not busy, keeping the faster of each rate. Torch is imported only when a probe runs or a key is made."""

from __future__ import annotations

import json
import os
import platform
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from coupling_tui.core.atomic import atomic_write_bytes
from coupling_tui.core.cost import Rates, busy_note
from coupling_tui.core.errors import UserError

CACHE_FILE = "machine-rates.json"
CACHE_VERSION = 1


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux, else platform's processor or machine)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def machine_key(device: str = "cpu") -> str:
    """What the rates depend on: CPU model, cores, torch version and threads, and the device (a GPU by name)."""
    import torch

    where = device
    if device.startswith("cuda"):
        where = f"{device} {torch.cuda.get_device_name(torch.device(device))}"
    return (f"{cpu_model()} | {os.cpu_count()} cores | torch {torch.__version__} | "
            f"{torch.get_num_threads()} threads | {where}")


def load_average() -> float | None:
    """The 1-minute load average, or None where the platform has none."""
    try:
        return os.getloadavg()[0]
    except (OSError, AttributeError):
        return None


def default_cache_path() -> Path:
    from coupling_tui.core.load.default_model import cache_root

    return cache_root() / CACHE_FILE


def _probe(device: str) -> dict[str, float]:
    from coupling_tui.core.linalg import probe

    return probe.measure(device)


class RatesCache:
    """The cached rates of this machine, probed when missing. ``measure``, ``key``, ``load`` and ``cores`` are the
    probe, the machine key, the load average and the core count (replaceable for tests)."""

    def __init__(self, path: Path | None = None, *, measure: Callable[[str], dict] = _probe,
                 key: Callable[[str], str] = machine_key, load: Callable[[], float | None] = load_average,
                 cores: int | None = None):
        self.path = default_cache_path() if path is None else Path(path)
        self.measure, self.key, self.load = measure, key, load
        self.cores = os.cpu_count() if cores is None else cores
        self.probed = False
        """True when the last ``rates`` call ran the probe."""

    def read(self) -> dict[str, dict]:
        """Every cached entry by machine key; {} for a missing, unreadable or foreign file."""
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict) or data.get("version") != CACHE_VERSION or not isinstance(
                data.get("machines"), dict):
            return {}
        return data["machines"]

    def write(self, machines: dict[str, dict]) -> bool:
        """Replace the file with ``machines`` (atomically); False when it cannot be written."""
        data = json.dumps({"version": CACHE_VERSION, "machines": machines}, indent=1, sort_keys=True)
        try:
            atomic_write_bytes(self.path, data.encode())
        except UserError:
            return False
        return True

    def rates(self, device: str = "cpu") -> Rates:
        """This machine's rates on ``device``: the cached entry, or a probe (cached) when there is none, it cannot
        be read, or it was taken on a busy machine and this one is not busy now."""
        key = self.key(device)
        machines = self.read()
        entry = machines.get(key)
        cached = _entry_rates(entry)
        load = self.load()
        self.probed = False
        then = entry.get("load") if isinstance(entry, dict) else None
        then = then if isinstance(then, (int, float)) and not isinstance(then, bool) else None
        if cached is not None and not (busy_note(then, self.cores) and not busy_note(load, self.cores)):
            return cached
        measured = Rates.from_dict(self.measure(device))
        if cached is not None:               # a probe on a busy machine: keep the faster of each rate
            measured = Rates(**{n: max(getattr(cached, n), getattr(measured, n)) for n in vars(measured)})
        self.probed = True
        machines[key] = {"rates": vars(measured), "load": load,
                         "measured": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        self.write(machines)
        return measured


def _entry_rates(entry) -> Rates | None:
    if not isinstance(entry, dict):
        return None
    try:
        return Rates.from_dict(entry.get("rates"))
    except (ValueError, TypeError):
        return None
