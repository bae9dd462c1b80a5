"""``--device-map`` and ``--max-memory``: load a model larger than one device sharded across several through
accelerate (``from_pretrained(device_map=…, max_memory=…)``). Syntax is checked here, before any model loads;
torch-free. Where each block then lives, and how the engine follows it: core/load/placement.py and docs/big-models.md.

``--device-map`` is a placement strategy of accelerate (``auto``, ``balanced``, ``balanced_low_0``,
``sequential``) or a JSON file ``{"module.path": device}`` (devices: a GPU index, ``cuda:N``, ``cpu``, ``mps`` or
``disk``). ``--max-memory`` caps what each device may hold: ``0:20GiB,1:40GiB,cpu:64GiB`` (units B, KB/KiB,
MB/MiB, GB/GiB, TB/TiB; a bare number is bytes; ``disk`` and ``mps`` are keys too).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from coupling_tui.core.errors import UserError

STRATEGIES = ("auto", "balanced", "balanced_low_0", "sequential")
"""accelerate's placement strategies (``auto`` = ``balanced`` across the GPUs, then CPU, then disk)."""
DEVICE_MAP_HELP = ("place the model across devices with accelerate: " + ", ".join(STRATEGIES) +
                   ", or a JSON file {\"module\": device}; the Jacobians of each block are computed on its device")
MAX_MEMORY_HELP = ("memory each device may hold when sharding, e.g. 0:20GiB,1:40GiB,cpu:64GiB (implies "
                   "--device-map auto); what does not fit is offloaded to cpu, then disk")
_UNITS = {"": 1, "b": 1, "kb": 10 ** 3, "mb": 10 ** 6, "gb": 10 ** 9, "tb": 10 ** 12,
          "kib": 2 ** 10, "mib": 2 ** 20, "gib": 2 ** 30, "tib": 2 ** 40}
_SIZE = re.compile(r"^\s*(?P<n>\d+(?:\.\d*)?|\.\d+)\s*(?P<unit>[a-z]*)\s*$", re.IGNORECASE)
_CUDA = re.compile(r"^(?:cuda:)?(?P<i>\d+)$")


def parse_size(text: str, where: str) -> int:
    """Bytes of ``20GiB``, ``512MB``, ``1.5GB`` or a bare byte count."""
    m = _SIZE.match(text)
    unit = (m["unit"] or "").lower() if m else None
    if m is None or unit not in _UNITS:
        raise UserError(f"{where}: cannot read the size {text.strip()!r}",
                        "give a number with a unit, e.g. 20GiB, 512MiB or 40GB")
    size = int(float(m["n"]) * _UNITS[unit])
    if size <= 0:
        raise UserError(f"{where}: the size must be positive, got {text.strip()!r}")
    return size


def parse_device(text: str, where: str) -> int | str:
    """A device of a device map or a max-memory key: a GPU index (``0`` or ``cuda:0``), cpu, mps or disk."""
    name = str(text).strip().lower()
    m = _CUDA.match(name)
    if m:
        return int(m["i"])
    if name in ("cpu", "mps", "disk"):
        return name
    raise UserError(f"{where}: unknown device {str(text).strip()!r}",
                    "use a GPU index (0, 1, … or cuda:N), cpu, mps or disk")


def parse_max_memory(text: str | None) -> dict[int | str, int] | None:
    """``0:20GiB,1:40GiB,cpu:64GiB`` as {0: bytes, 1: bytes, "cpu": bytes} (what accelerate takes)."""
    if text is None:
        return None
    where = f"--max-memory {text}"
    out: dict[int | str, int] = {}
    for part in text.split(","):
        key, sep, size = part.rpartition(":")
        if not sep or not key.strip():
            raise UserError(f"{where}: cannot read {part.strip()!r}",
                            "give DEVICE:SIZE pairs, comma-separated, e.g. 0:20GiB,1:40GiB,cpu:64GiB")
        device = parse_device(key, where)
        if device in out:
            raise UserError(f"{where}: {key.strip()} is given twice")
        out[device] = parse_size(size, where)
    return out


def parse_device_map(text: str | None) -> str | dict[str, int | str] | None:
    """A strategy name, or the {module path: device} of a JSON file."""
    if text is None:
        return None
    name = text.strip()
    if name.lower() in STRATEGIES:
        return name.lower()
    path = Path(name).expanduser()
    if not name.lower().endswith(".json"):
        raise UserError(f"--device-map {text}: unknown strategy",
                        f"use one of {', '.join(STRATEGIES)}, or a JSON file mapping module paths to devices")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"--device-map {text}: cannot read it as JSON ({exc})") from None
    if not isinstance(raw, dict) or not raw:
        raise UserError(f"--device-map {text}: expected a JSON object {{\"module.path\": device, …}}")
    return {str(k): parse_device(v, f"--device-map {text}") for k, v in raw.items()}


def check_request(device: str, device_map, max_memory) -> str | dict | None:
    """The device map a request loads with (``--max-memory`` alone means ``auto``), refusing combinations that
    cannot mean anything; None when the model loads whole onto ``device``."""
    if device_map is None and max_memory is None:
        return None
    if (device or "auto").strip().lower() != "auto":
        raise UserError(f"--device {device} puts the whole model on one device, while --device-map/--max-memory "
                        "spread it over several", "drop --device (or drop --device-map and --max-memory)")
    if isinstance(device_map, dict) and max_memory is not None:
        raise UserError("--max-memory bounds accelerate's placement strategies, not an explicit device map",
                        "drop --max-memory, or use --device-map auto|balanced|sequential")
    return "auto" if device_map is None else device_map


def check_gpus(device_map, max_memory, n_gpus: int) -> None:
    """Every GPU index named must exist (checked before the weights load)."""
    named = {d for d in (max_memory or {}) if isinstance(d, int)}
    if isinstance(device_map, dict):
        named |= {d for d in device_map.values() if isinstance(d, int)}
    missing = sorted(i for i in named if i >= n_gpus)
    if missing:
        raise UserError(f"GPU {', '.join(map(str, missing))} named in --device-map/--max-memory, but torch sees "
                        f"{n_gpus} CUDA device{'s' if n_gpus != 1 else ''}",
                        "name only GPUs that exist (see nvidia-smi / CUDA_VISIBLE_DEVICES)")


def device_label(device) -> str:
    """A device of a device map as text: GPU index 1 → ``cuda:1``."""
    return f"cuda:{device}" if isinstance(device, int) else str(device)


def spans(labels: list[str]) -> list[tuple[int, int, str]]:
    """Runs of consecutive blocks on the same device: [(first, last, label)]."""
    out: list[tuple[int, int, str]] = []
    for i, label in enumerate(labels):
        if out and out[-1][2] == label and out[-1][1] == i - 1:
            out[-1] = (out[-1][0], i, label)
        else:
            out.append((i, i, label))
    return out


def placement_text(placement: dict | None) -> str | None:
    """``blocks 0–13 on cuda:0, 14–27 on cuda:1, 28–31 on disk (offloaded)`` for the load message."""
    if not placement:
        return None
    offloaded = set(placement.get("offloaded") or [])
    parts = []
    for first, last, label in spans(list(placement["blocks"])):
        where = f"{first}" if first == last else f"{first}–{last}"
        tail = " (offloaded)" if first in offloaded else ""
        parts.append(f"{where} on {label}{tail}")
    return "blocks " + ", ".join(parts)


def placement_summary(header: dict | None, *, max_parts: int = 6) -> str:
    """One short line for a status bar from a results header's ``placement`` (``LoadedModel.placement``:
    ``core.load.placement.describe``): ``sharded: cuda:0 blocks 0–11, cpu 12–29, disk 30–31``, one part per run of
    consecutive blocks on one device, at most ``max_parts`` of them then ``…``. "" when the run was not sharded: no
    header or no placement (a single-device load), or every block on one device with none offloaded."""
    placement = (header or {}).get("placement")
    blocks = placement.get("blocks") if isinstance(placement, dict) else None
    if not blocks:
        return ""
    runs = spans([str(label) for label in blocks])
    if len(runs) == 1 and not placement.get("offloaded"):
        return ""
    parts = []
    for first, last, label in runs[:max_parts]:
        where = f"{first}" if first == last else f"{first}–{last}"
        if not parts:                                       # the first part names what the numbers are
            where = ("block " if first == last else "blocks ") + where
        parts.append(f"{label} {where}")
    return "sharded: " + ", ".join(parts) + (", …" if len(runs) > max_parts else "")
