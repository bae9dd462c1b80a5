"""Write docs/compare.md's measured section: the real ``coupling-tui compute --compare random-init`` on SmolLM2
(the prose sample prompt, 32 tokens, top-K 10), its printout as it printed it, and what the saved pair shows,
every number read from the saved results file (core.results.compare, the same functions as the table).

    .venv/bin/python benchmarks/docs_compare.py --write docs/compare.md          # runs the command (~2 min idle)
    .venv/bin/python benchmarks/docs_compare.py --from benchmarks/out/docs/compare --write docs/compare.md

The run is kept in ``--save`` (default benchmarks/out/docs/compare): the results file and ``compare.json`` (the
command, its printout, its wall time and the load average while it ran), which ``--from`` renders again."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _doc_sections import main as run_main  # noqa: E402
from _doc_sections import (ROOT, fenced, load_meta, machine_text, printout, run_command, save_meta,  # noqa: E402
                           shown_path, wrap)

SCRIPT = "docs_compare"
SECTIONS = ("main",)
"""The marked sections of its page, as ``render`` returns them."""
DEFAULT_SAVE = ROOT / "benchmarks" / "out" / "docs" / "compare"
PROMPT_FILE = "sample_prompts/prose.txt"
MAX_TOKENS, TOP_K = 32, 10


def measure(save: Path) -> None:
    """Run the command as a user would; keep its results file and its printout in ``save``."""
    out = save / "prose.safetensors"
    meta = run_command(["--compare", "random-init", "--prompt-file", PROMPT_FILE, "--max-tokens", str(MAX_TOKENS),
                        "--top-k", str(TOP_K), "-y", "-o", shown_path(out)])
    meta["results"] = out.name
    save_meta(save, "compare", meta)


def estimate_line(stderr: str) -> str:
    """The estimate ``compute`` printed before it ran ("estimate: …"), or "" if none."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip().startswith("estimate:")]
    return lines[0].removeprefix("estimate:").strip() if lines else ""


def facts(a, b) -> list[str]:
    """What the pair shows, from ``core.results.compare.sides`` (A trained, B its random-init twin)."""
    k = a.k
    ta, tb = a.trajectory, b.trajectory
    out = [f"- **Against the Haar null** (m_{k} of unrelated bases of the same d and K, from each run's stored "
           f"spectrum; the last token): B's off-diagonal mean {b.scalar_token['offdiag']:.3f} against its null "
           f"{b.haar_null:.3f}, A's {a.scalar_token['offdiag']:.3f} against its null {a.haar_null:.3f}.",
           f"- **Neighbouring blocks** (all-token mean, \\|i−j\\| = 1): A {a.scalar_all['adjacent']:.3f}, "
           f"B {b.scalar_all['adjacent']:.3f}; blocks ten or more apart: A {a.scalar_all['far']:.3f}, "
           f"B {b.scalar_all['far']:.3f}.",
           f"- **Hidden-state norm** against depth (last token): A grows ×{ta['growth']:.3f} per block "
           f"(R² {ta['growth_r2']:.2f}), B ×{tb['growth']:.3f} (R² {tb['growth_r2']:.2f})."]
    return out


def markdown(meta: dict, run_header: dict, a, b) -> dict[str, str]:
    """section → markdown from the saved command (``meta``), the run's header and its two sides."""
    est = estimate_line(meta["stderr"])
    layers, tokens = run_header["model"]["n_layers"], len(run_header["tokens"]["ids"])
    head = (f"Run by `benchmarks/{SCRIPT}.py` on a {machine_text(meta)}: {layers} blocks × {tokens} tokens, both "
            f"models in {meta['seconds']:.1f} s of wall time (model loading included; the engine's own "
            f"{run_header['seconds']:.1f} s" + (f"; the estimate it printed: {est}" if est else "") + "). It printed:")
    body = [f"```bash\n{meta['command']}\n```", "", wrap(head), "", fenced(printout(meta["stderr"], "computed ")),
            "", "Read off the saved pair:", ""]
    return {"main": "\n".join(body + [wrap(line) for line in facts(a, b)])}


def render(save: Path) -> dict[str, str]:
    """section → markdown, from the saved run."""
    from coupling_tui.core.results import run_file
    from coupling_tui.core.results.compare import random_init_run, sides

    meta = load_meta(save, "compare")
    run = run_file.load(save / meta["results"])
    return markdown(meta, run.header, *sides(run, random_init_run(run)))


def main(argv: list[str] | None = None) -> None:
    run_main(SCRIPT, __doc__.split("\n\n")[0], DEFAULT_SAVE, measure, render, argv)


if __name__ == "__main__":
    main()
