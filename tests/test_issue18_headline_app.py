"""Issue 18, item 2 in the explorer: the Coupling pane's headline shows the last token's run scalar (the papers')
first and the all-token mean beside it, each named, at the K shown, for the trained model or its random-init
baseline (``r``), for an old file (from its stored matrices), a header-only file ("not in this file"), a prompt set's
aggregate (mean ± std over prompts), and a --compare layout (each run its own). Numbers from loops over the stored
m matrices (tests/test_issue18_headline.py)."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np

from coupling_tui.core.results import run_file as results
from coupling_tui.core.results import set_file
from coupling_tui.core.results.comparison import Comparison
from coupling_tui.core.results.run import Run
from coupling_tui.tui.app import CouplingApp
from coupling_tui.tui.panes.compare import ComparePane
from coupling_tui.tui.panes.coupling import CouplingPane
from tests.test_issue18_headline import DATA, depth_at, expected_line, folded, loop_mean, offdiag


def pane(app) -> CouplingPane:
    return app.query_one("#coupling", CouplingPane)


async def test_issue18_item2_the_coupling_headline_follows_k_and_the_baseline():
    run = folded(n_layers=6, n_tokens=7, k=4, coupling=True, baseline=True)
    app = CouplingApp(run=run)
    async with app.run_test(size=(200, 50)) as pilot:
        await pilot.pause()
        p = pane(app)
        for k, baseline in ((4, False), (2, False), (2, True)):
            depth = depth_at(run, k, "random_init." if baseline else "")
            line = expected_line(k, loop_mean(depth[-1], offdiag), loop_mean(depth, offdiag), 7)
            assert p.headline_text == ("random-init · " if baseline else "") + line
            assert str(p.headline.render()) == p.headline_text and p.headline.region.height >= 1
            if not baseline:
                await pilot.press("K" if k == 4 else "r")
        assert p.headline.region.y < p.info.region.y < p.heatmap.region.y     # the top line of the pane


async def test_issue18_item2_old_and_header_only_files_open_with_their_headline(tmp_path: Path):
    old = results.load(DATA / "run.safetensors")
    depth = depth_at(old, 4)
    app = CouplingApp(run=old)
    async with app.run_test(size=(200, 50)) as pilot:
        await pilot.pause()
        assert pane(app).headline_text == expected_line(4, loop_mean(depth[-1], offdiag),
                                                        old.header["coupling_scalar"]["offdiag"], 11)
    header_only = Run(header=copy.deepcopy(old.header), finished=True,
                      arrays={n: a for n, a in old.arrays.items() if not n.startswith("coupling.depth")})
    app = CouplingApp(run=header_only)
    async with app.run_test(size=(200, 50)) as pilot:
        await pilot.pause()
        assert pane(app).headline_text == (f"m_4 off-diag · last token not in this file · all-token mean "
                                           f"{old.header['coupling_scalar']['offdiag']:.3f} (11 tokens)")


async def test_issue18_item2_a_prompt_sets_aggregate_headline_is_mean_and_std_over_prompts():
    pset = set_file.load(DATA / "set")
    last = [loop_mean(depth_at(r, 4)[-1], offdiag) for r in pset.runs]
    every = [loop_mean(depth_at(r, 4), offdiag) for r in pset.runs]
    app = CouplingApp(run=pset)
    async with app.run_test(size=(200, 50)) as pilot:
        await pilot.pause()
        assert pane(app).headline_text == (
            f"m_4 off-diag, mean ± std over 2 prompts · last token {np.mean(last):.3f} ± {np.std(last, ddof=1):.3f} "
            f"(the papers') · all-token mean {np.mean(every):.3f} ± {np.std(every, ddof=1):.3f}")
        await pilot.press("p")                                      # prompt 1: its own run's headline
        await pilot.pause()
        r = pset.runs[0]
        assert pane(app).headline_text == expected_line(4, last[0], every[0], r.n_tokens)


async def test_issue18_item2_compare_layout_shows_each_runs_headline_and_the_last_token_row():
    a = folded(n_layers=6, n_tokens=7, k=4, coupling=True, seed=1)
    b = folded(n_layers=6, n_tokens=4, k=4, coupling=True, seed=5)
    pair = Comparison()
    pair.labels, pair.runs, pair.finished = ["a", "b"], [a, b], True
    app = CouplingApp(run=pair)
    async with app.run_test(size=(200, 50)) as pilot:
        await pilot.pause()
        panes = [pane(app), app.query_one("#coupling-b", CouplingPane)]
        for p, run in zip(panes, (a, b)):
            depth = depth_at(run, 4)
            assert p.headline_text == expected_line(4, loop_mean(depth[-1], offdiag), loop_mean(depth, offdiag),
                                                    run.n_tokens)
        table = {name.strip(): (va, vb) for name, va, vb in app.query_one(ComparePane).lines}
        assert table["m_4 off-diag (last)"] == tuple(f"{loop_mean(depth_at(r, 4)[-1], offdiag):.3f}" for r in (a, b))
        rows = [name.strip() for name, _, _ in app.query_one(ComparePane).lines]
        assert rows.index("m_4 off-diag (last)") < rows.index("m_4 off-diag (all)")
