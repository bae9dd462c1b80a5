"""docs/sweep.md's measured sections are written by their scripts (benchmarks/sweep_example.py,
benchmarks/sweep_overhead.py), and the worked example's renderer turns a sweep table into the page's markdown.
Fast: no model runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.benchmark_modules import benchmark_modules

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def example():
    return benchmark_modules("_doc_sections", "sweep_example")


def test_the_measured_sections_are_marked_and_filled(example):
    sections, _ = example
    text = (ROOT / "docs" / "sweep.md").read_text()
    for script in ("sweep_example", "sweep_overhead"):
        begin, end = sections.markers(script)
        assert text.count(begin) == 1 and end in text, script
        assert (ROOT / "benchmarks" / f"{script}.py").is_file()
        body = text.split(begin, 1)[1].split(end, 1)[0]
        assert body.strip(), f"{script}'s section is empty: run it with --write docs/sweep.md"
    assert (ROOT / "docs" / "sweep-example-scatter.svg").is_file()


def test_the_worked_example_renders_from_a_table(example):
    _, sweep_example = example
    row = dict(model="default", n_params=1000, k=10, coupling_scalar_last_token=0.96, coupling_scalar_last_token_std=0.01,
               coupling_scalar=0.97, coupling_scalar_std=0.02, score=-3.0, seconds=12.0)
    twin = dict(row, model="random-init:default", coupling_scalar_last_token=0.989, score=-10.0)
    table = {"rows": [row, twin, dict(twin, model="random-init:seed=1:default", coupling_scalar_last_token=0.9891)],
             "prompts": [{"label": "a", "text": "x"}] * 6,
             "fits": {"coupling_scalar_last_token": {"n": 3, "r2": 0.99, "p": 0.01, "spearman_rho": -0.5}}}
    lines = sweep_example.markdown(table, {"wall_s": 120.0, "load_start": 1.0, "load_end": 2.0, "cores": 2})
    text = "\n".join(lines)
    assert "| `default` | 1,000 | 0.9600 ± 0.0100 | 0.9700 ± 0.0200 | -3.000 | 12 |" in text
    assert "6 prompts" in text and "2.0 min on 2 CPU cores" in text and "R² 0.990" in text
    assert "is below every random twin's (0.9890–0.9891)" in text and "differ from each other by 1.0e-04" in text
