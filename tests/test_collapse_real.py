"""Real-model evidence for representational collapse (Barbero et al. 2024) on SmolLM2-135M: over the default sweep
the last-token states of "1 1 … 1" with n and n+1 ones draw together as n grows, in bfloat16 part of the pair's
coordinates become bit-identical, and commas every third digit keep a digit pair far apart where plain digits
collapse; and the last token's sensitivity to its inputs falls with position (over-squashing) apart from the last
few tokens. The measured numbers are printed (pytest -s)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from coupling_tui.core.engine.collapse import CollapsePass, CollapseSpec
from coupling_tui.core.options.collapse import DEFAULT_LENGTHS

pytestmark = pytest.mark.real_model


def measure(loaded, spec: CollapseSpec) -> tuple[CollapsePass, dict, float]:
    started = time.perf_counter()
    cp = CollapsePass(loaded, spec)
    arrays = cp.arrays()
    for event in cp.events():
        for name, (index, values) in event.rows.items():
            arrays[name][index] = values
    return cp, arrays, time.perf_counter() - started


def spearman(x, y) -> float:
    rx, ry = np.argsort(np.argsort(x)), np.argsort(np.argsort(y))
    return float(np.corrcoef(rx, ry)[0, 1])


def answers(cp, arrays, name: str, f: int) -> list[str]:
    text = cp.header()["next_text"]
    return ["/".join(repr(text[str(i)]) for i in pair) for pair in arrays[name][f]]


def test_ones_draw_together_with_length_and_bf16_makes_coordinates_identical(smollm2):
    cp, a, seconds = measure(smollm2, CollapseSpec(families=("ones",), sensitivity=False))
    assert cp.lengths == DEFAULT_LENGTHS and cp.header()["warnings"] == []
    n = np.array(cp.lengths)
    l1, linf, rel = a["collapse.diff"][0].T
    l1_low = a["collapse.diff_low"][0, :, 0]
    same = a["collapse.identical_low"][0]
    print(f"\nones on SmolLM2, {seconds:.1f} s; tokens {a['collapse.n_tokens'][0, :, 1].tolist()}")
    for j in range(len(n)):
        print(f"  n={n[j]:4d}  L1/d {l1[j]:.4f} (bf16 {l1_low[j]:.4f})  Linf {linf[j]:.3f}  relL2 {rel[j]:.4f}  "
              f"bf16 bit-identical {same[j]:.1%}  greedy {answers(cp, a, 'collapse.next_ids', 0)[j]}")
    # the pair draws together: the shortest pair is the farthest apart, the longer half at most a quarter of it,
    # and the difference falls with n overall (rank correlation)
    assert l1[0] == l1.max() and rel[0] == rel.max()
    assert (l1[len(n) // 2:] < l1[0] / 4).all() and (rel[len(n) // 2:] < rel[0] / 4).all()
    assert spearman(n, l1) < -0.5 and spearman(n, rel) < -0.5
    # in bfloat16 some coordinates of the two states are the very same number at the longest lengths
    assert (same[-2:] > 0.01).all() and same[-2:].min() > same[0]


def test_commas_keep_digit_pairs_apart(smollm2):
    spec = CollapseSpec(families=("digits", "commas"), lengths=(8, 128), sensitivity=False)
    cp, a, seconds = measure(smollm2, spec)
    digits, commas = a["collapse.diff"][0, :, 0], a["collapse.diff"][1, :, 0]
    digits_low, commas_low = a["collapse.diff_low"][0, :, 0], a["collapse.diff_low"][1, :, 0]
    print(f"\ndigits vs commas on SmolLM2, {seconds:.1f} s")
    for j, n in enumerate(cp.lengths):
        print(f"  n={n:3d}  L1/d digits {digits[j]:.4f} (bf16 {digits_low[j]:.4f}, identical "
              f"{a['collapse.identical_low'][0, j]:.1%}, greedy {answers(cp, a, 'collapse.next_ids', 0)[j]})  "
              f"commas {commas[j]:.4f} (bf16 {commas_low[j]:.4f}, identical {a['collapse.identical_low'][1, j]:.1%}"
              f", greedy {answers(cp, a, 'collapse.next_ids', 1)[j]})")
    assert (commas > 5 * digits).all() and (commas_low > 5 * digits_low).all()
    assert (a["collapse.identical_low"][1] < a["collapse.identical_low"][0]).all()


def test_sensitivity_falls_with_position(smollm2):
    spec = CollapseSpec(families=("ones",), lengths=(16,), sensitivity_tokens=64, probes=32)
    cp, a, seconds = measure(smollm2, spec)
    info, v = cp.header()["sensitivity"], a["collapse.sensitivity"]
    assert (info["n"], info["n_tokens"], info["method"], info["probes"]) == (16, 31, "hutchinson", 32)
    body = v[:-1]                                   # every input but the last token itself (its residual path)
    half = len(body) // 2
    print(f"\nsensitivity on SmolLM2, ones n=16 (31 tokens), Hutchinson 32 probes, {seconds:.1f} s (with the pair):"
          f"\n  {np.array2string(v, precision=3, max_line_width=110)}\n  first half {body[:half].sum():.3f}, "
          f"second half {body[half:].sum():.3f}, last token {v[-1]:.3f}")
    assert v.sum() == pytest.approx(1.0) and np.isfinite(a["collapse.sensitivity_raw"]).all()
    assert body[:half].sum() > 1.5 * body[half:].sum()
    assert set(np.argsort(body)[-2:]) == {0, 1}     # the first "1" and the space after it reach the end most
