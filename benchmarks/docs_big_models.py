"""Write docs/big-models.md's measured section: what this CPU-only machine can run of the sharded path. A tiny
random Llama (tests/tiny_models.py) through the real ``coupling-tui compute`` twice, once whole and once with
``--device-map`` placing one block on disk (accelerate's offload hooks, meta weights read in per pass), the load
line and summary as they printed, and how far the two results files are apart. Nothing here measures a big model
or a GPU: this machine has neither.

    .venv/bin/python benchmarks/docs_big_models.py --write docs/big-models.md          # about half a minute
    .venv/bin/python benchmarks/docs_big_models.py --from benchmarks/out/docs/big-models --write docs/big-models.md
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _doc_sections import (ROOT, fenced, load_meta, machine_text, printout, run_command, save_meta,  # noqa: E402
                           shown_path, wrap)
from _doc_sections import main as run_main  # noqa: E402

SCRIPT = "docs_big_models"
SECTIONS = ("main",)
"""The marked sections of its page, as ``render`` returns them."""
DEFAULT_SAVE = ROOT / "benchmarks" / "out" / "docs" / "big-models"
PROMPT = "The capital of France is Paris."
LAYERS, OFFLOADED = 4, 1
COMPARED = ("coupling.depth_k", "jacobian.singular_values", "jacobian.frobenius", "trajectory.hidden")
"""The arrays compared between the two runs."""


def device_map(layers: int, offloaded: int) -> dict[str, str]:
    """Every module on the CPU but block ``offloaded``, on disk."""
    out = {"model.embed_tokens": "cpu", "model.rotary_emb": "cpu", "model.norm": "cpu", "lm_head": "cpu"}
    out.update({f"model.layers.{i}": "disk" if i == offloaded else "cpu" for i in range(layers)})
    return out


def measure(save: Path) -> None:
    sys.path.insert(0, str(ROOT))
    from tests.tiny_models import save_tiny

    model = save_tiny("llama", save / "tiny-llama", num_hidden_layers=LAYERS)
    placement = save / "offload-block.json"
    placement.write_text(json.dumps(device_map(LAYERS, OFFLOADED), indent=1))
    rel = shown_path
    base = ["--model", rel(model), "-p", PROMPT, "--top-k", "8", "-y"]
    for name, extra in (("whole", []), ("offloaded", ["--device-map", rel(placement)])):
        meta = run_command([*base, *extra, "-o", rel(save / f"{name}.safetensors")])
        meta["results"] = f"{name}.safetensors"
        save_meta(save, name, meta)


def largest_differences(a: dict, b: dict) -> list[tuple[str, float, float]]:
    """(array, max |a − b|, max |a|) for every array of COMPARED both hold (NaN entries skipped)."""
    out = []
    for name in COMPARED:
        if name in a and name in b:
            x, y = np.asarray(a[name], dtype=np.float64), np.asarray(b[name], dtype=np.float64)
            both = np.isfinite(x) & np.isfinite(y)
            out.append((name, float(np.abs(x - y)[both].max()), float(np.abs(x)[both].max())))
    return out


def markdown(metas: dict[str, dict], diffs: list[tuple[str, float, float]]) -> str:
    whole, off = metas["whole"], metas["offloaded"]
    head = (f"Measured here by `benchmarks/{SCRIPT}.py` on a {machine_text(off)}: a tiny random Llama "
            f"({LAYERS} blocks, from `tests/tiny_models.py`), not a big model, computed by the real command once "
            f"whole and once with block {OFFLOADED} offloaded to disk by a device-map file. It is the only sharded "
            f"path this machine can run; multi-GPU placement, cross-device copies and a big model's memory and time "
            f"are not measured here (at this size its times say nothing about them, and are left out).")
    lines = [wrap(head), "", f"```bash\n{whole['command']}\n{off['command']}\n```", "",
             "The offloaded run printed:", "", fenced(printout(off["stderr"], "loaded ")), "",
             "Its results against the whole model's:", ""]
    lines += ["| array | largest \\|offloaded − whole\\| | largest \\|whole\\| |", "|---|---:|---:|"]
    lines += [f"| `{name}` | {d:.1e} | {m:.3g} |" for name, d, m in diffs]
    return "\n".join(lines)


def render(save: Path) -> dict[str, str]:
    from coupling_tui.core.results import run_file

    metas = {name: load_meta(save, name) for name in ("whole", "offloaded")}
    runs = {name: run_file.load(save / meta["results"]) for name, meta in metas.items()}
    diffs = largest_differences(runs["whole"].arrays, runs["offloaded"].arrays)
    return {"main": markdown(metas, diffs)}


def main(argv: list[str] | None = None) -> None:
    run_main(SCRIPT, __doc__.split("\n\n")[0], DEFAULT_SAVE, measure, render, argv)


if __name__ == "__main__":
    main()
