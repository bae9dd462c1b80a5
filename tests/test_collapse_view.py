"""The numbers the Collapse pane derives from the stored arrays (core.maths.collapse_view), checked against direct
computations, and the pane's drawing helpers (diverging colours, log ticks, the strips)."""

from __future__ import annotations

import numpy as np
import pytest

from coupling_tui.core.maths.collapse_view import (MEASURE_ORDER, MEASURES, attention_text, UNIT_ROUNDOFF, next_measure, pair_delta, share_text, resolution, resolutions, sensitivity_shares, strip_bins, strip_limit, top_differences)
from coupling_tui.tui.panes.heatmap import MISSING
from coupling_tui.tui.panes.logplot import value_ticks
from coupling_tui.tui.panes.vector_strips import PU_OR, RD_BU, VectorStrips, diverging


def test_pair_delta_is_the_longer_minus_the_shorter_in_float64():
    pair = np.array([[1.0, 2.0, 3.0], [1.5, 2.0, 2.0]], np.float32)
    delta = pair_delta(pair)
    assert delta.dtype == np.float64 and delta.tolist() == [0.5, 0.0, -1.0]


def test_top_differences_sorts_by_magnitude_with_the_lower_index_first_on_ties():
    a = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    b = a + np.array([0.1, -0.3, 0.3, 0.0, -0.2])
    rows = top_differences(np.stack([a, b]), 3)
    assert [r.dim for r in rows] == [1, 2, 4]
    assert rows[0].short == 1.0 and rows[0].long == b[1] and rows[0].delta == pytest.approx(-0.3)
    assert len(top_differences(np.stack([a, b]), 10)) == 5 and top_differences(np.stack([a, b]), 0) == []
    assert top_differences(np.stack([a, np.full(5, np.nan)]), 3) == []          # pending


def test_top_differences_of_a_random_pair_match_a_direct_sort():
    rng = np.random.default_rng(3)
    pair = rng.standard_normal((2, 64)).astype(np.float32)
    delta = pair[1].astype(np.float64) - pair[0].astype(np.float64)
    expected = sorted(range(64), key=lambda k: -abs(delta[k]))[:12]
    rows = top_differences(pair, 12)
    assert [r.dim for r in rows] == expected
    assert [r.delta for r in rows] == [delta[k] for k in expected]


@pytest.mark.parametrize("dtype", sorted(UNIT_ROUNDOFF))
def test_resolution_is_the_unit_roundoff_times_the_typical_magnitude(dtype):
    y = np.array([-4.0, 1.0, 2.0, -300.0, 0.5])
    u = UNIT_ROUNDOFF[dtype]
    assert resolution(y, dtype, 0) == u * 2.0                    # median |y| = 2
    assert resolution(y, dtype, 1) == u * 300.0                  # max |y|
    assert resolution(y, dtype, 2) == u                          # relative
    assert np.isnan(resolution(np.full(5, np.nan), dtype, 0))


def test_bfloat16_resolution_is_its_rounding_at_that_magnitude():
    import torch

    for x in (0.7, 1.0, 3.3, 100.0, 517.0):                     # |bf16(x) − x| ≤ 2^-8 |x|, and the gap reaches it
        rounded = float(torch.tensor(x, dtype=torch.float32).to(torch.bfloat16).float())
        assert abs(rounded - x) <= resolution(np.array([x]), "bfloat16", 0)
    assert UNIT_ROUNDOFF["bfloat16"] == float(torch.finfo(torch.bfloat16).eps) / 2
    assert UNIT_ROUNDOFF["float16"] == float(torch.finfo(torch.float16).eps) / 2


def test_resolutions_take_the_shorter_sequences_state_per_length():
    final = np.zeros((3, 2, 4))
    final[0, 0], final[1, 0] = [1, 2, 3, 4], [2, 4, 6, 8]
    final[:, 1] = 1000                                             # the n+1 state is not the reference
    final[2] = np.nan
    res = resolutions(final, "bfloat16", 0)
    assert res[:2].tolist() == [2.5 / 256, 5 / 256] and np.isnan(res[2])


def test_resolution_refuses_unknown_dtypes_and_measures():
    with pytest.raises(ValueError, match="unknown low dtype 'int8'"):
        resolution(np.ones(3), "int8", 0)
    with pytest.raises(ValueError, match="measure must be 0..2"):
        resolution(np.ones(3), "bfloat16", len(MEASURES))


def test_strip_bins_keep_the_largest_magnitude_of_each_bin():
    values = np.array([0.1, -5.0, 0.2, 0.3, 7.0, -0.1, 0.0, 0.05])
    picked, dims = strip_bins(values, 3)                  # bins [0..2], [3..5], [6..7]
    assert dims.tolist() == [1, 4, 7] and picked.tolist() == [-5.0, 7.0, 0.05]
    picked, dims = strip_bins(values, 100)                # wider than d: one cell per coordinate
    assert dims.tolist() == list(range(8)) and picked.tolist() == values.tolist()
    picked, dims = strip_bins(np.full(4, np.nan), 2)
    assert dims.tolist() == [0, 2] and np.isnan(picked).all()


def test_strip_limit_is_a_robust_quantile():
    values = np.concatenate([np.linspace(-1, 1, 99), [500.0]])
    limit = strip_limit(values)
    assert limit == pytest.approx(np.quantile(np.abs(values), 0.98)) and limit < 2
    assert strip_limit(np.zeros(3)) == 0 and np.isnan(strip_limit(np.full(3, np.nan)))


def test_sensitivity_shares():
    shares = sensitivity_shares(np.array([0.4, 0.1, 0.2, 0.3]))
    assert (shares.first, shares.first_half, shares.last, shares.peak) == (0.4, pytest.approx(0.5), 0.3, 0)
    assert sensitivity_shares(np.zeros(0)) is None and sensitivity_shares(np.array([0.5, np.nan])) is None


def test_diverging_colours_end_at_the_palette_ends_and_are_neutral_at_zero():
    assert diverging(-2.0, 1.0, RD_BU) == RD_BU[0] and diverging(5.0, 1.0, RD_BU) == RD_BU[-1]
    assert diverging(0.0, 1.0, PU_OR) == PU_OR[len(PU_OR) // 2] == diverging(3.0, 0.0, PU_OR)
    assert diverging(float("nan"), 1.0, RD_BU) == MISSING == diverging(1.0, float("nan"), RD_BU)


def test_value_ticks_keep_the_ends_and_thin_out():
    assert value_ticks([4, 8, 16], 5) == [4, 8, 16]
    ticks = value_ticks(list(range(1, 21)), 5)
    assert ticks[0] == 1 and ticks[-1] == 20 and len(ticks) <= 6


def test_vector_strips_colour_each_cell_by_its_coordinate():
    from rich.console import Console

    rng = np.random.default_rng(0)
    pair = rng.standard_normal((2, 50)).astype(np.float32)
    strips = VectorStrips()
    strips.set_pair(pair, ("y(n)", "y(n+1)", "Δ"))
    text = strips.render_at(7 + 25 + 9)                  # 25 cells: bins of two coordinates
    lines = text.split("\n")
    assert [line.plain.split()[0] for line in lines] == ["y(n)", "y(n+1)", "Δ"]
    delta = pair[1].astype(np.float64) - pair[0]
    limit = strip_limit(pair[0], pair[1])
    for row, (values, palette, lim) in enumerate([(pair[0], PU_OR, limit), (pair[1], PU_OR, limit),
                                                  (delta, RD_BU, strip_limit(delta))]):
        dims = strips.cells[row]
        assert len(dims) == 25 and all(np.abs(values[d]) >= np.abs(values[d ^ 1]) for d in dims)
        for cell, dim in enumerate(dims):
            style = lines[row].get_style_at_offset(Console(), 7 + cell)
            assert "#" + "".join(f"{v:02x}" for v in style.color.get_truecolor()) == \
                diverging(float(values[dim]), lim, palette)
        assert lines[row].plain.endswith(f"±{lim:.3g}")
    strips.set_pair(None, ("y(n)", "y(n+1)", "Δ"), "pending")
    assert strips.render_at(40).plain == "pending" and strips.cells == []


def test_measures_are_shown_linf_first_then_l1_then_relative_l2():
    assert [MEASURES[m] for m in MEASURE_ORDER] == ["L∞", "L1/d", "rel L2"]
    seen, m = [], MEASURE_ORDER[0]
    for _ in range(4):
        seen.append(MEASURES[m])
        m = next_measure(m)
    assert seen == ["L∞", "L1/d", "rel L2", "L∞"]


@pytest.mark.parametrize("count, d, text", [(0, 576, "0 of 576"), (4, 576, "0.7 %"), (1, 576, "0.2 %"),
                                            (2, 576, "0.3 %"), (35, 576, "6.1 %"), (576, 576, "100.0 %"),
                                            (1, 4096, "1 of 4096"), (3, 4096, "0.1 %"), (0, 16, "0 of 16")])
def test_a_bit_identical_share_shows_one_decimal_or_a_count(count, d, text):
    assert share_text(np.float32(count / d), d) == text          # as stored: float32 count / d


def test_a_pending_share_is_an_ellipsis():
    assert share_text(float("nan"), 576) == "…"


def test_the_attention_line_says_both_implementations_or_not_recorded():
    info = {"reference_dtype": "float32", "low_dtype": "bfloat16",
            "attention": {"reference": "sdpa", "low": "eager"}}
    assert attention_text(info) == "attention: float32 sdpa, bfloat16 eager"
    assert attention_text({"reference_dtype": "float32", "low_dtype": "bfloat16"}) == "attention: not recorded"
    assert attention_text({**info, "attention": {"reference": None, "low": "eager"}}) == \
        "attention: float32 not recorded, bfloat16 eager"
