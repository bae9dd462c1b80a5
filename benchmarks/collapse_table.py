"""Measure representational collapse on a real model and write docs/collapse.md's measured section from it, so the
numbers there come from one run of this script and cannot go stale: the collapse stage through the engine twice,
once per attention implementation of the low-precision stage (eager, the default, and SDPA), every other setting
the same, saved as two results files; then the markdown tables and the facts read off them, written between the
markers in docs/collapse.md.

    .venv/bin/python benchmarks/collapse_table.py --lengths 4:128:x2 --save runs/ --write docs/collapse.md
    .venv/bin/python benchmarks/collapse_table.py --write docs/collapse.md \
        --from runs/collapse-eager.safetensors runs/collapse-sdpa.safetensors   # again from the files, no torch
    .venv/bin/python benchmarks/collapse_table.py --families ones --lengths 4:1024:x2 --no-sensitivity \
        --section long --save runs-long/ --write docs/collapse.md

Every number is read from the stored arrays (``collapse.diff`` and ``collapse.identical_low`` as the engine wrote
them; tests/test_collapse_table.py recomputes them from the stored final states)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from coupling_tui.core.maths.collapse_view import MEASURES, UNIT_ROUNDOFF, sensitivity_shares, share_text
from coupling_tui.core.options.collapse import ATTENTIONS, FAMILIES, parse_lengths
from coupling_tui.core.results import names

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _doc_sections import markers as doc_markers, replace_between, write_text_atomically  # noqa: E402

SCRIPT = "collapse_table"


def markers(section: str = "main") -> tuple[str, str]:
    """The begin and end markers of one section ("main": BEGIN and END; another: its name in them)."""
    return doc_markers(SCRIPT, section)


BEGIN, END = markers()
L1, LINF, REL = (MEASURES.index(m) for m in ("L1/d", "L∞", "rel L2"))


def measure(model: str | None, families: tuple[str, ...], lengths: tuple[int, ...], save: Path | None,
            attentions: tuple[str, ...] = ATTENTIONS, sensitivity: bool = True) -> dict:
    """attention → the finished Run of the collapse stage with that low-precision attention (the sensitivity only
    in the first); each saved under ``save`` as collapse-<attention>.safetensors when given."""
    from coupling_tui.core.engine import stream as engine
    from coupling_tui.core.cli.collapse import COLLAPSE_PROMPT
    from coupling_tui.core.load.models import ModelRequest, load
    from coupling_tui.core.options.collapse import CollapseSpec
    from coupling_tui.core.options.run_options import RunOptions
    from coupling_tui.core.results import run_file
    from coupling_tui.core.results.run import Run

    loaded = load(ModelRequest() if model is None else ModelRequest(model=model))
    runs = {}
    for k, attention in enumerate(attentions):
        spec = CollapseSpec(families=families, lengths=lengths, attention=attention,
                            sensitivity=sensitivity and k == 0)
        run, started = Run(), time.perf_counter()
        for event in engine.stream(loaded, COLLAPSE_PROMPT, RunOptions(top_k=0, collapse=spec)):
            run.apply(event)
        print(f"{attention}: {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
        if save is not None:
            save.mkdir(parents=True, exist_ok=True)
            run_file.save(run, save / f"collapse-{attention}.safetensors")
        runs[attention] = run
    return runs


def number(value: float) -> str:
    return f"{value:.3g}" if np.isfinite(value) else "…"


def measure_table(run, measures: tuple[int, ...], low: bool, shares: bool) -> list[str]:
    """Rows n, one column per family; each cell the ``measures`` (indices into MEASURES) joined by " · ", in the
    low precision when ``low``, then the bit-identical share in parentheses when ``shares``."""
    info, a = run.header["collapse"], run.arrays
    diff, d = a[names.COLLAPSE_DIFF_LOW if low else names.COLLAPSE_DIFF], a[names.COLLAPSE_FINAL].shape[-1]
    lines = ["| n | " + " | ".join(info["families"]) + " |", "|---" * (len(info["families"]) + 1) + "|"]
    for j, n in enumerate(a[names.COLLAPSE_LENGTHS]):
        cells = [" · ".join(number(float(diff[f, j, m])) for m in measures)
                 + (f" ({share_text(float(a[names.COLLAPSE_IDENTICAL_LOW][f, j]), d)})" if shares else "")
                 for f in range(len(info["families"]))]
        lines.append(f"| {int(n)} | " + " | ".join(cells) + " |")
    return lines


def facts(runs: dict) -> list[str]:
    """What the runs show, each sentence computed from the arrays."""
    eager = runs["eager"]
    info, a = eager.header["collapse"], eager.arrays
    lengths = [int(n) for n in a[names.COLLAPSE_LENGTHS]]
    d, families, low = a[names.COLLAPSE_FINAL].shape[-1], info["families"], info["low_dtype"]
    out = []
    for f, family in enumerate(families):
        for label, diff in (("float32", a[names.COLLAPSE_DIFF]), (f"{low} (eager)", a[names.COLLAPSE_DIFF_LOW])):
            v = diff[f, :, LINF].astype(np.float64)
            k = int(np.argmin(v))
            out.append(f"- **{family}**, {label} L∞: {number(v[0])} at n = {lengths[0]}, smallest {number(v[k])} at "
                       f"n = {lengths[k]}, {number(v[-1])} at n = {lengths[-1]} (relative L2 there "
                       f"{number(float(diff[f, -1, REL]))}).")
    for name, run in runs.items():
        same = run.arrays[names.COLLAPSE_IDENTICAL_LOW]
        f, j = np.unravel_index(int(np.nanargmax(same)), same.shape)
        whole = int((same >= 1).sum())
        out.append(f"- {low} with {name} attention: the largest bit-identical share is "
                   f"{share_text(float(same[f, j]), d)} ({families[f]}, n = {lengths[j]}); "
                   + (f"{whole} pair(s) are bit-identical over all {d} coordinates." if whole else
                      f"no pair is bit-identical over all {d} coordinates."))
    if "commas" in families and "digits" in families:
        ratio = a[names.COLLAPSE_DIFF][families.index("commas"), :, LINF] / \
            a[names.COLLAPSE_DIFF][families.index("digits"), :, LINF]
        out.append(f"- commas against digits (the remedy), float32 L∞ ratio: {number(float(ratio.min()))} to "
                   f"{number(float(ratio.max()))} over the lengths.")
    rel = a[names.COLLAPSE_DIFF][:, :, REL].astype(np.float64)
    f, j = np.unravel_index(int(np.nanargmin(rel)), rel.shape)
    out.append(f"- the smallest float32 relative L2 of any pair is {number(float(rel[f, j]))} ({families[f]}, "
               f"n = {lengths[j]}); float32's unit roundoff is {UNIT_ROUNDOFF['float32']:.2g}.")
    s = info.get("sensitivity")
    shares = sensitivity_shares(a[names.COLLAPSE_SENSITIVITY]) if s else None
    if shares is not None:
        how = "exact" if s["method"] == "exact" else f"Hutchinson, {s['probes']} probes, seed {s['seed']}"
        out.append(f"- sensitivity ({s['family']}, n = {s['n']}, {s['n_tokens']} tokens, {how}): first token "
                   f"{100 * shares.first:.1f} %, first half {100 * shares.first_half:.1f} %, last token "
                   f"{100 * shares.last:.1f} %, largest at i = {shares.peak}.")
    return out


def markdown(runs: dict, section: str = "main") -> str:
    """The section's markdown, its markers included: the runs' header line, the tables, the facts."""
    begin, end = markers(section)
    eager = runs["eager"]
    info, a = eager.header["collapse"], eager.arrays
    low = info["low_dtype"]
    lengths = ", ".join(str(int(n)) for n in a[names.COLLAPSE_LENGTHS])
    model = eager.header.get("model", {})
    name = model.get("name") or model.get("id") or model.get("source") or "the model"
    lines = [begin, "",
             f"Model {name}; families {', '.join(info['families'])}; lengths n = {lengths}; reference "
             f"{info['reference_dtype']}, low {low}; attention: reference "
             f"{(info.get('attention') or {}).get('reference')}, low {' and '.join(runs)} "
             f"({len(runs)} run{'s' if len(runs) > 1 else ''}). Stage time on {eager.header.get('device', '?')} "
             f"({eager.header.get('created', '?')[:10]}): "
             + ", ".join(f"{k} {number(r.header['collapse']['seconds'] or float('nan'))} s" for k, r in runs.items())
             + (" (the first with the sensitivity)." if info.get("sensitivity") else "."), "",
             "Δ = y(n+1) − y(n), the last token's state in the last layer before the final norm. **float32**, each "
             "cell L∞ = max_k |Δ_k| (the paper's figure) · L1/d = ‖Δ‖₁/d · relative L2 = ‖Δ‖₂/‖y(n)‖₂:", ""]
    lines += measure_table(eager, (LINF, L1, REL), low=False, shares=False)
    for attention, run in runs.items():
        lines += ["", f"**{low}, {attention} attention**, each cell L∞ · L1/d (the share of the d coordinates whose "
                      f"{low} bits are identical in the pair):", ""]
        lines += measure_table(run, (LINF, L1), low=True, shares=True)
    lines += ["", "Read off these runs:", ""] + facts(runs) + ["", end]
    return "\n".join(lines)


def write_between_markers(path: Path, block: str, section: str = "main") -> None:
    """Replace the section's markers and what lies between them in ``path`` with ``block`` (atomically)."""
    write_text_atomically(path, replace_between(path.read_text(), *markers(section), block, str(path)))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=None, help="a model (default SmolLM2-135M-Instruct)")
    p.add_argument("--families", default=",".join(FAMILIES))
    p.add_argument("--lengths", default="4:128:x2")
    p.add_argument("--save", type=Path, default=None, help="write the two results files here")
    p.add_argument("--attentions", default=",".join(ATTENTIONS),
                   help="the low-precision attentions to run, eager first (default %(default)s)")
    p.add_argument("--no-sensitivity", action="store_true")
    p.add_argument("--section", default="main", help="which markers in --write to fill (default %(default)s)")
    p.add_argument("--from", dest="files", nargs="+", type=Path, metavar="FILE",
                   help="read saved results files (eager first, then sdpa) instead of computing")
    p.add_argument("--write", type=Path, default=None, help="replace the block between the markers in this file")
    args = p.parse_args(argv)
    if args.files:
        from coupling_tui.core.results import run_file

        loaded = [run_file.load(path) for path in args.files]
        runs = {run.header["collapse"]["attention"]["low"]: run for run in loaded}
    else:
        families = tuple(f.strip() for f in args.families.split(",") if f.strip())
        attentions = tuple(a.strip() for a in args.attentions.split(",") if a.strip())
        runs = measure(args.model, families, parse_lengths(args.lengths), args.save, attentions,
                       not args.no_sensitivity)
    block = markdown(runs, args.section)
    print(block)
    if args.write is not None:
        write_between_markers(args.write, block, args.section)


if __name__ == "__main__":
    main()
