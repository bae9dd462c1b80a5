"""Issue 18 item 5: every measured table, number block and printout of docs/worked-example.md, compare.md,
big-models.md and metrics.md's measured sections lies between markers naming the script that wrote it (which
exists), and those scripts' renderers turn small synthetic inputs into the expected markdown. Fast: no model runs,
no torch import by the renderers."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from tests.benchmark_modules import benchmark_modules

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
BEGIN = re.compile(r"<!-- (?P<tag>[\w-]+(?: [\w-]+)?): begin \(written by (?P<script>benchmarks/[\w-]+\.py); "
                   r"do not edit by hand\) -->")
WHOLE = ("worked-example.md", "compare.md", "big-models.md")
"""Pages whose every table, printout and measured-looking number must be generated (or be descriptive)."""
DESCRIPTIVE_TABLES = {"| what | how |", "| row | meaning |", "| step | where | what crosses devices |"}
"""Header rows of the tables on those pages that describe, and measure nothing."""
NUMBER = re.compile(r"(?<![\w.\-/])\d+\.\d+(?![\w.])")
"""A decimal number standing alone (0.955, 101.6), not part of a name (Qwen2-0.5B, Llama-3.1-70B, 1e-6)."""
GENERATED = {"worked-example.md": "docs_worked_example", "compare.md": "docs_compare", "metrics.md": "docs_metrics",
             "big-models.md": "docs_big_models"}


@pytest.fixture(scope="module")
def bench():
    """The benchmarks folder's modules (imported the way the scripts import each other)."""
    sections, compare, worked, metrics, big = benchmark_modules("_doc_sections", "docs_compare",
                                                                "docs_worked_example", "docs_metrics", "docs_big_models")
    return SimpleNamespace(sections=sections, compare=compare, worked=worked, metrics=metrics, big=big)


def split(text: str) -> tuple[str, list[tuple[str, str, str]]]:
    """(the text outside every marked region, [(tag, script, body)]); AssertionError on an unclosed region."""
    outside, regions, rest = [], [], text
    while (m := BEGIN.search(rest)) is not None:
        end = f"<!-- {m['tag']}: end -->"
        assert end in rest[m.end():], f"{m['tag']} is never closed"
        body, rest_after = rest[m.end():].split(end, 1)
        outside.append(rest[:m.start()])
        regions.append((m["tag"], m["script"], body))
        rest = rest_after
    outside.append(rest)
    return "\n".join(outside), regions


def tables(text: str) -> list[list[str]]:
    """Every markdown table: its lines (outside fences)."""
    out, current, fenced = [], None, False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        if not fenced and line.startswith("|"):
            if current is None:
                current = []
                out.append(current)
            current.append(line)
        else:
            current = None
    return out


def fences(text: str) -> list[tuple[str, str]]:
    """Every fenced block: (its language, its body)."""
    return re.findall(r"^```(\w*)\n(.*?)^```", text, flags=re.S | re.M)


def problems(text: str, whole: bool = True) -> list[str]:
    """What is measured-looking but not generated. ``whole``: every table (but the descriptive ones), every printout
    (a fence not marked ``bash``) and every decimal number outside markers; else (metrics.md) the paragraphs that
    start "**Measured" and the "## Measured by this code" section."""
    outside, regions = split(text)
    out = [f"{script} does not exist" for _, script, _ in regions if not (ROOT / script).is_file()]
    out += [f"{tag!r} names {script}" for tag, script, _ in regions if Path(script).stem != tag.split()[0]]
    if whole:
        out += [f"table outside markers: {t[0]}" for t in tables(outside) if t[0].strip() not in DESCRIPTIVE_TABLES]
        out += [f"printout outside markers: {body[:60]!r}" for lang, body in fences(outside) if lang != "bash"]
        out += [f"number outside markers: {n}" for n in NUMBER.findall(outside)]
        return out
    for paragraph in re.split(r"\n\s*\n", outside):
        if paragraph.lstrip().startswith("**Measured") and NUMBER.search(paragraph):
            out.append(f"measured paragraph outside markers: {paragraph[:60]!r}")
    section = outside.split("## Measured by this code", 1)[-1].split("\n## ", 1)[0] if (
        "## Measured by this code" in outside) else ""
    out += [f"table outside markers: {t[0]}" for t in tables(section)]
    out += [f"number outside markers: {n}" for n in NUMBER.findall(section)]
    return out


@pytest.mark.parametrize("page", [*WHOLE, "metrics.md"])
def test_every_measured_table_and_printout_is_generated(page):
    assert problems((DOCS / page).read_text(), whole=page in WHOLE) == []


@pytest.mark.parametrize("page", sorted(GENERATED))
def test_the_pages_hold_each_section_their_script_writes(page, bench):
    module = {"docs_compare": bench.compare, "docs_worked_example": bench.worked, "docs_metrics": bench.metrics,
              "docs_big_models": bench.big}[GENERATED[page]]
    text = (DOCS / page).read_text()
    _, regions = split(text)
    for section in module.SECTIONS:
        begin, end = bench.sections.markers(module.SCRIPT, section)
        assert text.count(begin) == 1 and text.count(end) == 1, section
    own = {module.SCRIPT if s == "main" else f"{module.SCRIPT} {s}" for s in module.SECTIONS}
    assert own <= {tag for tag, _, _ in regions}
    for tag, script, body in regions:
        assert tag in own or (ROOT / script).is_file(), f"{tag}: {script} does not exist"
        assert body.strip(), "a marked section is empty: run its script"


def test_the_checker_flags_hand_typed_tables_printouts_and_numbers(bench):
    """The old pages' kinds of hand-typed results (a measured table, a printout, a number in prose, a measured
    paragraph in metrics.md) are each caught; the same inside markers of an existing script is not."""
    table = "| model | m |\n|---|---|\n| trained | 0.955 |\n"
    printout = "```\ncomputed 6 prompts × 30 layers in 4540.8 s\n```\n"
    prose = "It took 101.6 s (the estimate said 76 s).\n"
    for text in (table, printout, prose):
        assert problems(text), text
    assert problems("**Measured cost** on this 2-core CPU, total 114.0 s.\n", whole=False)
    assert problems("## Measured by this code\n\n" + table, whole=False)
    good = bench.sections.block("docs_compare", "main", table + "\n" + printout + "\n" + prose)
    assert problems(good) == [] and problems(good, whole=False) == []
    assert problems(bench.sections.block("docs_nothing", "main", table)) == ["benchmarks/docs_nothing.py does not "
                                                                              "exist"]
    assert problems("| what | how |\n|---|---|\n| a | `b` |\n```bash\ncoupling-tui --model Qwen2-0.5B\n```\n") == []
    unclosed = bench.sections.markers("docs_compare")[0] + "\n" + table
    with pytest.raises(AssertionError, match="never closed"):
        problems(unclosed)


def test_write_sections_replaces_only_the_marked_parts_all_or_nothing(tmp_path, bench):
    s = bench.sections
    page = tmp_path / "page.md"
    a, b = s.markers("docs_x", "a"), s.markers("docs_x", "b")
    page.write_text(f"intro\n{a[0]}\nold a\n{a[1]}\nmiddle\n{b[0]}\nold b\n{b[1]}\nend\n")
    s.write_sections(page, "docs_x", {"a": "new a", "b": "| x |\n|---|\n| 1 |"})
    assert page.read_text() == (f"intro\n{a[0]}\n\nnew a\n\n{a[1]}\nmiddle\n{b[0]}\n\n| x |\n|---|\n| 1 |\n\n{b[1]}"
                                f"\nend\n")
    before = page.read_text()
    with pytest.raises(SystemExit, match="docs_x c"):
        s.write_sections(page, "docs_x", {"a": "newer", "c": "missing"})
    assert page.read_text() == before and not list(tmp_path.glob(".*.tmp"))


def test_printout_keeps_the_console_lines_from_the_summary_on(bench):
    stderr = ("loaded SmolLM2 (30 layers, d=576) on cpu as float32 in 3.1 s\nestimate: about 2 min\n"
              "layers ━━━━ 3/30\rlayers ━━━━ 30/30\ncomputed 30 layers × 32 tokens in 53.5 s   \n\ntrained: x\n")
    assert bench.sections.printout(stderr, "computed ") == "computed 30 layers × 32 tokens in 53.5 s\ntrained: x"
    with pytest.raises(SystemExit):
        bench.sections.printout("nothing\n", "computed ")
    assert bench.compare.estimate_line(stderr) == "about 2 min"


META = {"command": "coupling-tui compute --flags", "seconds": 61.54, "load": "1.1 (max 1.4)", "date": "2026-12-04",
        "machine": {"cores": 2, "cpu": "Test CPU", "torch": "2.13.0", "python": "3.12"},
        "stderr": "estimate: about 2 min\ncomputed 30 layers × 32 tokens in 53.5 s\nA is more coupled\n"}


def side(offdiag, adjacent, far, null, growth, r2):
    scalar = {"offdiag": offdiag, "adjacent": adjacent, "far": far}
    return SimpleNamespace(k=10, scalar_all=scalar, scalar_token=scalar, scalar_last=scalar, haar_null=null,
                           trajectory={"growth": growth, "growth_r2": r2})


def test_compare_renders_the_command_its_printout_and_the_pair(bench):
    header = {"model": {"n_layers": 30}, "tokens": {"ids": list(range(32))}, "seconds": 53.5}
    md = bench.compare.markdown(META, header, side(0.9541, 0.89, 0.977, 0.992, 1.1, 0.97),
                                side(0.989, 0.9887, 0.9891, 0.9889, 1.059, 0.77))["main"]
    assert md.startswith("```bash\ncoupling-tui compute --flags\n```\n")
    assert "```\ncomputed 30 layers × 32 tokens in 53.5 s\nA is more coupled\n```" in md
    flat = " ".join(md.split())
    assert "2-core Test CPU (torch 2.13.0), 1-minute load average 1.1 (max 1.4) while it ran, 2026-12-04" in flat
    assert "30 blocks × 32 tokens, both models in 61.5 s" in flat and "the estimate it printed: about 2 min" in flat
    assert "B's off-diagonal mean 0.989 against its null 0.989, A's 0.954 against its null 0.992" in flat
    assert "A 0.890, B 0.989" in flat and "A 0.977, B 0.989" in flat
    assert "A grows ×1.100 per block (R² 0.97), B ×1.059 (R² 0.77)" in flat


def test_worked_example_reads_the_aggregate(tmp_path, bench):
    L, labels = 5, ["a", "b", "c"]
    mean = np.full((2, L, L), 0.9, dtype=np.float32)
    std = np.zeros((2, L, L), dtype=np.float32)
    for l, (m, s) in enumerate([(0.97, 0.01), (0.80, 0.05), (0.85, 0.2), (0.95, 0.0)]):
        mean[1, l, l + 1], std[1, l, l + 1] = m, s
    stat = lambda values: {"mean": float(np.mean(values)), "std": float(np.std(values, ddof=1)),  # noqa: E731
                           "values": values}
    scalar = {key: stat(v) for key, v in (("offdiag", [0.95, 0.96, 0.97]), ("adjacent", [0.9, 0.8, 0.85]),
                                          ("far", [0.98, 0.98, 0.99]))}
    header = {"prompts": [{"label": x, "seconds": s, "truncated_from": t} for x, s, t in
                          zip(labels, (6.2, 51.8, 20.0), (None, 40, None))],
              "params": {"max_tokens": 32}, "seconds": 78.0,
              "aggregate": {"k": 10, "n_prompts": 3, "scalar": {"last_token": scalar, "all_tokens": scalar}}}
    arrays = {"aggregate.ks": np.array([8, 10]), "aggregate.depth_last_k.mean": mean,
              "aggregate.depth_last_k.std": std}
    text = " ".join(bench.worked.reading(header, arrays))
    assert "**0.960 ± 0.010** at the last token" in text and "prose" not in text
    assert "Per prompt, last token: a 0.950, b 0.960, c 0.970." in text
    assert "lowest for b (0.800) and highest for a (0.900)" in text
    assert "l = 0: 0.970 ± 0.010, l = 4" not in text and "l = 0: 0.970 ± 0.010." in text      # DEPTH_STEP = 4
    assert "lowest (most coupled) are l = 1 (0.800), l = 2 (0.850), l = 3 (0.950), l = 0 (0.970)" in text
    assert "the highest l = 0 (0.970), l = 3 (0.950), l = 2 (0.850)" in text
    assert "disagree most at l = 2 (std 0.200)" in text
    folder = tmp_path / "samples"
    folder.mkdir()
    (folder / "1-a.safetensors").write_bytes(b"x" * 2_000_000)
    (folder / "aggregate.safetensors").write_bytes(b"x" * 34_000)
    run = " ".join(bench.worked.run_text(META, folder, header).split())
    assert "62 s of wall time, model loading included (78 s in the engine; the prompts' own times 6 s to 52 s)" in run
    assert "Cut to their first 32 tokens: b." in run and '"about 2 min"' in run
    assert "holds 2.0 MB (1 results files and a 34 kB `aggregate.safetensors`)" in run


def test_metrics_stage_table_extras_and_trained(bench):
    m = bench.metrics
    record = {"stages": {"Jacobians": 20.04, "top-K": 30.0, "rest": 2.0}, "estimate": {"Jacobians": 21.7,
              "top-K": 33.9, "forward trace": 0.4}, "wall": 52.04, "tokens": 52, "layers": 30, **{
              k: META[k] for k in ("load", "date", "machine")}}
    assert m.stage_table(record) == ["| stage | estimate (s) | measured (s) |", "|---|---:|---:|",
                                     "| top-K | 33.9 | 30.0 |", "| Jacobians | 21.7 | 20.0 |",
                                     "| forward trace | 0.4 | — |", "| rest | — | 2.0 |", "| **total** | 56.0 | 52.0 |"]
    assert "the default prompt's 52 tokens, 30 layers" in " ".join(m.cost_section(record).split())
    assert m.offdiag_mean(np.array([[0.0, 1.0], [3.0, 0.0]])) == 2.0
    T, L = 4, 3
    token = np.zeros((2, L, T, T))
    token[0] = np.arange(L)[:, None, None] * 0.1 + 0.5                       # layer l: 0.5 + 0.1 l off the diagonal
    pairs = np.array([[0, 1], [1, 0], [1, 2], [2, 1]])
    pair_k = np.stack([np.full((T, T), v) for v in (0.9, 0.8, 0.7, 0.6)])[None].repeat(2, 0)
    depth = np.full((2, T, L, L), 0.95)
    vju = np.full((2, T, L, L), 0.97)
    ctx = np.full((2, 2, 2, T, T), 0.6)
    ctx[:, 0, 1] = ctx[:, 1, 0] = 1.0
    arrays = {"coupling.ks": np.array([8, 50]), "coupling.token_k": token, "coupling.token_pairs": pairs,
              "coupling.token_pair_k": pair_k, "coupling.depth_k": depth, "coupling.depth_vju_k": vju,
              "context.layers": np.array([0, 2]), "context.tokens": np.array([0, -1]), "context.out_k": ctx,
              "context.in_k": ctx * 0.5, "context.out_frobenius": np.array([[1, 1, 1, 1], [0.05, 0.5, 1.2, 16.0]])}
    text = " ".join(" ".join(m.extras_facts(SimpleNamespace(arrays=arrays, n_layers=L, n_tokens=T))).split())
    assert "0.600 averaged over the 3 layers; lowest at layer 0 (0.500), highest at layer 2 (0.700)." in text
    assert "0.800 (l → l+1) and 0.700 (l+1 → l); the lowest pair 2 → 1 (0.600)" in text
    assert "off-diagonal 0.970 against the usual (ujv) 0.950; its diagonal 0.970" in text
    assert "same output token (t_o = 3) at layers 0 / 2: 0.600 / 0.600; same input token (t_i = 0): 0.300 / 0.300" \
        in text and "across chosen layers (p ≠ q) 0.750" in text
    assert "at layer 2 (`context.out_frobenius`): 0.05 from the first token, 1.2 from the middle one (t1 = 2), 16 on" \
        in text
    trained = np.full((2, L, L), 0.9)
    trained[-1, 1, 2] = 0.7
    md = m.trained_table("coupling-tui compute --x", {"trained": trained, "random-init": np.full((2, L, L), 0.99)})
    assert "| last token of 2, strongest adjacent entry m[l, l+1] | 0.700 (blocks 1 → 2) | 0.990 (blocks 0 → 1) |" \
        in md
    assert "| last token of 2, adjacent mean | 0.850 | 0.990 |" in md
    assert json.dumps(md)                                                     # plain text, nothing unrenderable


def test_big_models_renders_the_offload_runs_and_their_differences(bench):
    b = bench.big
    assert b.device_map(3, 1)["model.layers.1"] == "disk" and b.device_map(3, 1)["model.layers.2"] == "cpu"
    whole = {"coupling.depth_k": np.array([[0.5, np.nan], [1.0, -2.0]]), "trajectory.hidden": np.ones(3)}
    off = {"coupling.depth_k": np.array([[0.5, 7.0], [1.0, -2.5]]), "other": np.zeros(1)}
    assert b.largest_differences(whole, off) == [("coupling.depth_k", 0.5, 2.0)]
    metas = {"whole": {**META, "command": "coupling-tui compute --model m", "seconds": 9.87},
             "offloaded": {**META, "command": "coupling-tui compute --model m --device-map map.json", "seconds": 12.0,
                           "stderr": "loaded m (4 layers, d=32) with blocks 0, 2–3 on cpu, 1 offloaded to disk\n"
                                     "computed 4 layers × 9 tokens in 1.2 s\n"}}
    md = b.markdown(metas, [("coupling.depth_k", 3e-8, 1.234)])
    assert "```bash\ncoupling-tui compute --model m\ncoupling-tui compute --model m --device-map map.json\n```" in md
    assert "```\nloaded m (4 layers, d=32) with blocks 0, 2–3 on cpu, 1 offloaded to disk\ncomputed 4 layers" in md
    assert "| `coupling.depth_k` | 3.0e-08 | 1.23 |" in md
    assert "not measured here" in " ".join(md.split())


def test_check_names_the_sections_that_differ_from_the_render(tmp_path, bench):
    s = bench.sections
    page = tmp_path / "page.md"
    a, b = s.markers("docs_x", "a"), s.markers("docs_x", "b")
    page.write_text(f"{a[0]}\n{a[1]}\n{b[0]}\n{b[1]}\n")
    s.write_sections(page, "docs_x", {"a": "one", "b": "two"})
    assert s.stale_sections(page, "docs_x", {"a": "one", "b": "two"}) == []
    assert s.stale_sections(page, "docs_x", {"a": "one", "b": "2", "c": "new"}) == ["b", "c"]
