"""benchmarks/collapse_table.py, which writes docs/collapse.md's measured section: on the tiny model, every number
in its tables is the stored pair's difference recomputed here with numpy from the stored final states, the shares
are the stored counts, the facts name the right pairs, and the block replaces exactly what lies between the
markers (which docs/collapse.md has)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from coupling_tui.core.results import run_file
from tests.benchmark_modules import benchmark_modules

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def table_module():
    return benchmark_modules("collapse_table")[0]


@pytest.fixture(scope="module")
def saved(tiny_dir, tmp_path_factory, table_module):
    out = tmp_path_factory.mktemp("collapse-table")
    table_module.measure(str(tiny_dir), ("ones", "digits", "commas"), (2, 4, 8), out)
    return out


def numpy_diff(final: np.ndarray) -> np.ndarray:
    """(L1/d, L∞, relative L2) of every stored pair [F, N, 2, d] → [F, N, 3], float64."""
    a, b = final[..., 0, :].astype(np.float64), final[..., 1, :].astype(np.float64)
    delta = b - a
    return np.stack([np.abs(delta).mean(-1), np.abs(delta).max(-1),
                     np.linalg.norm(delta, axis=-1) / np.linalg.norm(a, axis=-1)], -1)


def tables(block: str) -> list[list[list[str]]]:
    """Every markdown table in ``block``: its body rows split into cells."""
    out, current = [], None
    for line in block.splitlines():
        if line.startswith("| n |"):
            current = []
            out.append(current)
        elif line.startswith("|---"):
            continue
        elif line.startswith("|") and current is not None:
            current.append([c.strip() for c in line.strip("|").split("|")])
        else:
            current = None
    return out


def test_every_table_number_is_the_stored_pair_recomputed(saved, table_module):
    files = [saved / "collapse-eager.safetensors", saved / "collapse-sdpa.safetensors"]
    runs = dict(zip(("eager", "sdpa"), (run_file.load(p) for p in files)))
    block = table_module.markdown(runs)
    f32, low_eager, low_sdpa = tables(block)
    eager = runs["eager"].arrays
    ref = numpy_diff(eager["collapse.final"])
    d = eager["collapse.final"].shape[-1]
    for j, n in enumerate((2, 4, 8)):
        for f in range(3):
            assert f32[j][0] == str(n)
            linf, l1, rel = (float(v) for v in f32[j][1 + f].split(" · "))
            assert (linf, l1, rel) == pytest.approx((ref[f, j, 1], ref[f, j, 0], ref[f, j, 2]), rel=5e-3)  # 3 digits
            for table, run in ((low_eager, runs["eager"]), (low_sdpa, runs["sdpa"])):
                linf, l1, share = re.fullmatch(r"(\S+) · (\S+) \((.+)\)", table[j][1 + f]).groups()
                stored = run.arrays["collapse.diff_low"][f, j].astype(np.float64)
                assert (float(linf), float(l1)) == pytest.approx((stored[1], stored[0]), rel=5e-3)
                count = round(float(run.arrays["collapse.identical_low"][f, j]) * d)
                assert share == (f"0 of {d}" if count == 0 else f"{100 * count / d:.1f} %")
    assert runs["eager"].header["collapse"]["attention"]["low"] == "eager"
    assert runs["sdpa"].header["collapse"]["attention"]["low"] == "sdpa"
    assert "lengths n = 2, 4, 8" in block


def test_the_facts_name_the_extremes_of_the_stored_arrays(saved, table_module):
    runs = {k: run_file.load(saved / f"collapse-{k}.safetensors") for k in ("eager", "sdpa")}
    lines = table_module.facts(runs)
    ref = numpy_diff(runs["eager"].arrays["collapse.final"])
    k = int(np.argmin(ref[0, :, 1]))
    assert f"- **ones**, float32 L∞: {ref[0, 0, 1]:.3g} at n = 2, smallest {ref[0, k, 1]:.3g} at n = {(2, 4, 8)[k]}" \
        in lines[0]
    same = runs["sdpa"].arrays["collapse.identical_low"]
    f, j = np.unravel_index(int(np.argmax(same)), same.shape)
    sdpa = next(line for line in lines if "sdpa attention" in line)
    assert f"({('ones', 'digits', 'commas')[f]}, n = {(2, 4, 8)[j]})" in sdpa
    ratio = ref[2, :, 1] / ref[1, :, 1]
    remedy = next(line for line in lines if line.startswith("- commas against digits"))
    assert f"{ratio.min():.3g} to {ratio.max():.3g}" in remedy


def test_the_block_replaces_what_lies_between_the_markers(tmp_path, table_module):
    page = tmp_path / "page.md"
    page.write_text(f"before\n{table_module.BEGIN}\nold\n{table_module.END}\nafter\n")
    table_module.write_between_markers(page, f"{table_module.BEGIN}\nnew\n{table_module.END}")
    assert page.read_text() == f"before\n{table_module.BEGIN}\nnew\n{table_module.END}\nafter\n"
    text = (ROOT / "docs" / "collapse.md").read_text()
    assert text.count(table_module.BEGIN) == 1 and text.count(table_module.END) == 1
