"""Measure what ``--convention official`` changes against ``--convention paper`` on one model and prompt, and print
the markdown table of docs/metrics.md ("Two conventions"): the same prompt through the engine twice, once per
convention, every other option the same; each row says what it measures and where (the last token unless said).

    .venv/bin/python benchmarks/conventions.py                   # SmolLM2-135M-Instruct, the default prompt, 16 tokens
    .venv/bin/python benchmarks/conventions.py --model DIR --max-tokens 32 -p "your text"
    .venv/bin/python benchmarks/conventions.py --write docs/metrics.md     # the table of docs/metrics.md

About 60-100 s per convention for SmolLM2 (30 blocks, d = 576) on a 2-core CPU at 16 tokens (token coupling off)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from coupling_tui.core.engine import stream as engine
from coupling_tui.core.load.models import ModelRequest, load
from coupling_tui.core.options.prompts import DEFAULT_PROMPT
from coupling_tui.core.options.run_options import CONVENTIONS, RunOptions
from coupling_tui.core.results import names
from coupling_tui.core.results.run import Run


def computed(loaded, prompt: str, max_tokens: int, top_k: int) -> dict[str, Run]:
    """One finished run per convention, and the seconds each took."""
    runs = {}
    for convention in CONVENTIONS:
        t0 = time.perf_counter()
        run = Run()
        options = RunOptions(max_tokens=max_tokens, top_k=top_k, token_coupling=False, convention=convention)
        for event in engine.stream(loaded, prompt, options):
            run.apply(event)
        run.header["bench_seconds"] = time.perf_counter() - t0
        runs[convention] = run
    return runs


def depth(run: Run, k: int) -> np.ndarray:
    """m_k [T, L, L] (row = the Jacobian, column = the basis)."""
    ks = [int(x) for x in run.arrays[names.COUPLING_KS]]
    return run.arrays[names.COUPLING_DEPTH_K][ks.index(k)].astype(np.float64)


def rows(paper: Run, official: Run, k: int) -> list[tuple[str, str, str]]:
    """(what, paper, official) for every quantity the conventions compute differently."""
    L = paper.n_layers
    last = L - 1
    fmt = lambda v: "—" if v is None else f"{v:.3f}"                                   # noqa: E731
    sv = {c: r.arrays[names.JACOBIAN_SINGULAR_VALUES][last, -1, 0] for c, r in (("p", paper), ("o", official))}
    fro = {c: r.arrays[names.JACOBIAN_FROBENIUS][last, -1] for c, r in (("p", paper), ("o", official))}
    mp, mo = depth(paper, k)[-1], depth(official, k)[-1]
    diff = np.abs(mo - mp)
    edge = np.zeros_like(diff, bool)
    edge[last, :] = edge[:, last] = True
    out = [
        (f"σ₁ of block {last}'s J (the last block)", f"{sv['p']:.3f}", f"{sv['o']:.3f}"),
        (f"‖J‖_F of block {last}", f"{fro['p']:.3f}", f"{fro['o']:.3f}"),
        ("K values stored (`coupling.ks`)", str(paper.header["coupling"]["ks"]), str(official.header["coupling"]["ks"])),
        (f"m_{k}: largest \\|official − paper\\| in row/column {last}", "0 (reference)", f"{diff[edge].max():.3f}"),
        (f"m_{k}: largest \\|official − paper\\| elsewhere", "0 (reference)", f"{diff[~edge].max():.1e}"),
        (f"m_{k}[{last}, {last - 1}] (last block's J in block {last - 1}'s bases)", fmt(mp[last, last - 1]),
         fmt(mo[last, last - 1])),
        (f"m_{k}[{last - 1}, {last}] (block {last - 1}'s J in the last block's bases)", fmt(mp[last - 1, last]),
         fmt(mo[last - 1, last])),
    ]
    for key, label in ((names.H_COUPLING_SCALAR_LAST, "last-token"), (names.H_COUPLING_SCALAR, "all-token")):
        out.append((f"run scalar, {label} mean off-diagonal m_{k}", fmt(paper.header[key]["offdiag"]),
                    fmt(official.header[key]["offdiag"])))
    fid = {c: r.arrays[names.TRAJECTORY_FIDELITY][L, -1] for c, r in (("p", paper), ("o", official))}
    out.append((f"linearisation fidelity, final row: cos(Π(I+J)x⁰, target); paper: {L} blocks, target x^{L}; "
                f"official: {L - 1} blocks, target norm(x^{L})", f"{fid['p']:.3f}", f"{fid['o']:.3f}"))
    start = paper.header["fits"]["sigma1_start"]
    for key, name in (("slope", names.JACOBIAN_SIGMA1_FIT_SLOPE), ("intercept", names.JACOBIAN_SIGMA1_FIT_INTERCEPT),
                      ("r2", names.JACOBIAN_SIGMA1_FIT_R2)):
        a = {c: r.arrays[name][-1] for c, r in (("p", paper), ("o", official))}
        out.append((f"1/σ₁ depth fit from row {start}: {key} (paper: depth = block index; official: 1-based)",
                    f"{a['p']:.4f}", f"{a['o']:.4f}"))
    return out


def table(runs: dict[str, Run], k: int) -> str:
    paper, official = runs["paper"], runs["official"]
    head = paper.header
    lines = [f"Measured by `benchmarks/conventions.py`: {head['model']['source']} ({paper.n_layers} blocks, "
             f"d = {head['model']['d_model']}, {head['dtype']}, {head['device']}), "
             f"{'the default' if head['prompt'] == DEFAULT_PROMPT else 'the given'} prompt's first "
             f"{paper.n_tokens} tokens, top-K {head['jacobian']['top_k']}, values at the last token unless said; "
             f"{paper.header['bench_seconds']:.0f} s (paper) and {official.header['bench_seconds']:.0f} s (official).",
             "", "| quantity | paper | official |", "|---|---|---|"]
    lines += [f"| {what} | {p} | {o} |" for what, p, o in rows(paper, official, k)]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="a model as --model takes it (default: the offline SmolLM2)")
    ap.add_argument("-p", "--prompt", default=DEFAULT_PROMPT)
    ap.add_argument("--max-tokens", type=int, default=16)
    ap.add_argument("--top-k", type=int, default=50)
    ap.add_argument("-k", type=int, default=50, help="the K of the m rows (one both conventions store)")
    ap.add_argument("--write", default=None, metavar="PAGE",
                    help="also write the table into PAGE's marked section (docs/metrics.md)")
    args = ap.parse_args()
    from _doc_sections import LoadSampler, machine, machine_text, write_sections

    loaded = load(ModelRequest(model=args.model))
    with LoadSampler() as sampled:
        runs = computed(loaded, args.prompt, args.max_tokens, args.top_k)
    where = {"machine": machine(), "load": sampled.text(), "date": time.strftime("%Y-%m-%d")}
    text = table(runs, args.k).replace(" (official).", f" (official) of wall time on a {machine_text(where)}.", 1)
    print(text)
    if args.write:
        write_sections(Path(args.write), "conventions", {"main": text})


if __name__ == "__main__":
    main()
