"""Write docs/worked-example.md's measured sections: the real ``coupling-tui compute`` over every sample prompt
(sample_prompts/all.jsonl) on SmolLM2, its printout as it printed it, and what the saved set shows, every number
read from the saved prompt set (its aggregate's header and matrices, core.results.set_file).

    .venv/bin/python benchmarks/docs_worked_example.py --write docs/worked-example.md    # runs it (~4 min idle)
    .venv/bin/python benchmarks/docs_worked_example.py --from benchmarks/out/docs/worked-example \
        --write docs/worked-example.md                                                  # again from the files

The run is kept in ``--save`` (default benchmarks/out/docs/worked-example): the set directory and
``worked-example.json`` (the command, its printout, wall time, load average), which ``--from`` renders again."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _doc_sections import main as run_main  # noqa: E402
from _doc_sections import (ROOT, fenced, load_meta, machine_text, printout, run_command, save_meta,  # noqa: E402
                           shown_path, wrap)

SCRIPT = "docs_worked_example"
SECTIONS = ("run", "printout", "reading")
"""The marked sections of its page, as ``render`` returns them."""
DEFAULT_SAVE = ROOT / "benchmarks" / "out" / "docs" / "worked-example"
FLAGS = ["--prompt-file", "sample_prompts/all.jsonl", "--top-k", "10", "--no-token-coupling", "--max-tokens", "32"]
DEPTH_STEP = 4
"""The neighbour pairs quoted along depth: l = 0, 4, 8, …"""


def measure(save: Path) -> None:
    out = save / "samples"
    meta = run_command([*FLAGS, "-y", "-o", shown_path(out)])
    meta["results"] = out.name
    save_meta(save, "worked-example", meta)


def size_text(n: float) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.0f} {unit}" if n >= 10 * scale else f"{n / scale:.1f} {unit}"
    return f"{n:.0f} B"


def pm(stat: dict) -> str:
    """"0.962 ± 0.005" from an aggregate scalar entry {mean, std, values}."""
    return f"{stat['mean']:.3f} ± {stat['std']:.3f}"


def run_text(meta: dict, folder: Path, header: dict) -> str:
    """The paragraph about the run: what was cut, the estimate, the time, the machine and the set's size."""
    files = [p for p in folder.iterdir() if p.is_file()]
    index = folder / "aggregate.safetensors"
    cut = [p["label"] for p in header["prompts"] if p.get("truncated_from")]
    estimate = [line.strip() for line in meta["stderr"].splitlines() if line.strip().startswith("estimate:")]
    return (f"Measured by `benchmarks/{SCRIPT}.py`, which ran the command above on a {machine_text(meta)}: "
            f"{meta['seconds']:.0f} s of wall time, model loading included ({header['seconds']:.0f} s in the engine; "
            f"the prompts' own times {min(p['seconds'] for p in header['prompts']):.0f} s to "
            f"{max(p['seconds'] for p in header['prompts']):.0f} s). "
            + (f"Cut to their first {header['params'].get('max_tokens')} tokens: {', '.join(cut)}. " if cut else "")
            + (f"The estimate printed before it ran: \"{estimate[0].removeprefix('estimate:').strip()}\". "
               if estimate else "")
            + f"The set directory holds {size_text(sum(p.stat().st_size for p in files))} ({len(files) - 1} results "
              f"files and a {size_text(index.stat().st_size)} `aggregate.safetensors`).")


def reading(header: dict, arrays: dict) -> list[str]:
    """The facts read off the aggregate: the run scalar, neighbours against far blocks, the values along depth."""
    agg = header["aggregate"]
    k, labels = agg["k"], [p["label"] for p in header["prompts"]]
    last, every = agg["scalar"]["last_token"], agg["scalar"]["all_tokens"]
    n = agg["n_prompts"]
    adj_last = np.asarray(last["adjacent"]["values"], dtype=float)
    out = [f"- **The run scalar** (m_{k} off the diagonal, mean ± sample std over the {n} prompts): "
           f"**{pm(last['offdiag'])}** at the last token (the papers'), **{pm(every['offdiag'])}** over all tokens. "
           f"Per prompt, last token: " + ", ".join(f"{lab} {v:.3f}" for lab, v in zip(labels, last["offdiag"]["values"]))
           + ".",
           f"- **Neighbours against far blocks**: adjacent blocks (\\|i − j\\| = 1) {pm(last['adjacent'])} at the last "
           f"token, {pm(every['adjacent'])} over all tokens; blocks ten or more apart {pm(last['far'])} and "
           f"{pm(every['far'])}. At the last token the adjacent value is lowest for {labels[int(np.argmin(adj_last))]} "
           f"({adj_last.min():.3f}) and highest for {labels[int(np.argmax(adj_last))]} ({adj_last.max():.3f})."]
    ks = [int(x) for x in arrays["aggregate.ks"]]
    mean = arrays["aggregate.depth_last_k.mean"][ks.index(k)].astype(float)
    std = arrays["aggregate.depth_last_k.std"][ks.index(k)].astype(float)
    L = mean.shape[0]
    pair = np.array([mean[l, l + 1] for l in range(L - 1)])
    spread = np.array([std[l, l + 1] for l in range(L - 1)])
    low, high = np.argsort(pair)[:4], np.argsort(pair)[::-1][:3]
    out.append(f"- **Along depth** (the aggregate's last-token matrix: m_{k} of block l in the bases of block l + 1, "
               f"mean ± std over prompts): "
               + ", ".join(f"l = {l}: {pair[l]:.3f} ± {spread[l]:.3f}" for l in range(0, L - 1, DEPTH_STEP))
               + f". Over all {L - 1} neighbour pairs the lowest (most coupled) are "
               + ", ".join(f"l = {l} ({pair[l]:.3f})" for l in low) + "; the highest "
               + ", ".join(f"l = {l} ({pair[l]:.3f})" for l in high)
               + f"; the prompts disagree most at l = {int(np.argmax(spread))} (std {spread.max():.3f}).")
    return out


def render(save: Path) -> dict[str, str]:
    from coupling_tui.core.results import set_file

    meta = load_meta(save, "worked-example")
    folder = save / meta["results"]
    pset = set_file.load(folder)
    header = {**pset.header, "seconds": pset.header.get("seconds", pset.seconds)}
    return {"run": f"```bash\n{meta['command']}\n```\n\n" + wrap(run_text(meta, folder, header)),
            "printout": fenced(printout(meta["stderr"], "computed ")),
            "reading": "\n".join(wrap(line) for line in reading(header, pset.aggregate.arrays))}


def main(argv: list[str] | None = None) -> None:
    run_main(SCRIPT, __doc__.split("\n\n")[0], DEFAULT_SAVE, measure, render, argv)


if __name__ == "__main__":
    main()
