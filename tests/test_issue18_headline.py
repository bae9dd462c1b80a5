"""Issue 18, item 2: the run scalar's headline shows the last token's scalar (the papers' and the official code's
quantity: the mean over layer pairs i ≠ j of m_K at token T − 1) first and the all-token mean beside it, each named,
in the explorer, ``compute``'s summary, the Compare table, a prompt set's printout and the engine's header; a file
written before (tests/data/v0.1.0) gets it from its stored matrices, a file that keeps only its header says "not in
this file". Every number is checked against plain loops over the stored m matrices."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pytest

from coupling_tui.core.maths.run_scalar import all_tokens_scalar, last_token_scalar
from coupling_tui.core.results import compare
from coupling_tui.core.results import run_file as results
from coupling_tui.core.results import set_file
from coupling_tui.core.results.headline import headline_text, run_headline
from coupling_tui.core.results.run import Run
from tests.fakes import fake_events

DATA = Path(__file__).resolve().parent / "data" / "v0.1.0"
PAPERS = "(the papers')"


def folded(**kwargs) -> Run:
    run = Run()
    for event in fake_events(**kwargs):
        run.apply(event)
    return run


def loop_mean(matrices, keep) -> float | None:
    """Mean of m[i, j] over every matrix of ``matrices`` ([..., L, L]) and the (i, j) ``keep`` accepts, NaN skipped,
    written out with loops; None when there is none."""
    m = np.asarray(matrices, dtype=np.float64)
    L = m.shape[-1]
    vals = [float(x[i, j]) for x in m.reshape(-1, L, L) for i in range(L) for j in range(L)
            if keep(i, j) and not math.isnan(float(x[i, j]))]
    return sum(vals) / len(vals) if vals else None


def offdiag(i: int, j: int) -> bool:
    return i != j


def adjacent(i: int, j: int) -> bool:
    return abs(i - j) == 1


def depth_at(run: Run, k: int, prefix: str = "") -> np.ndarray:
    """[T, L, L]: the stored depth coupling of every token at K = k."""
    return run.arrays[prefix + "coupling.depth_k"][run.coupling_ks.index(k)]


def expected_line(k: int, last: float, every: float, n_tokens: int, what: str = "off-diag") -> str:
    return f"m_{k} {what} · last token {last:.3f} {PAPERS} · all-token mean {every:.3f} ({n_tokens} tokens)"


# -- the definition --

def test_issue18_item2_last_token_scalar_is_the_mean_over_pairs_of_the_last_tokens_matrix():
    rng = np.random.default_rng(18)
    T, L = 6, 12
    depth = rng.uniform(0.3, 1.1, (T, L, L))
    depth[:, np.arange(L), np.arange(L)] = 0
    depth[0] = 0.05                                   # a sink token unlike the others: the two poolings differ
    depth[-1, 3, 7] = depth[2, 1, 2] = np.nan         # not computed: skipped
    last, every = last_token_scalar(depth, 8), all_tokens_scalar(depth, 8)
    assert (last["tokens"], last["token"], last["matrices"], every["tokens"], every["matrices"]) == \
        ("last", T - 1, 1, "all", T)
    far = lambda i, j: abs(i - j) >= 10              # noqa: E731
    for key, keep in (("offdiag", offdiag), ("adjacent", adjacent), ("far", far)):
        assert last[key] == pytest.approx(loop_mean(depth[T - 1], keep), rel=1e-12)
        assert every[key] == pytest.approx(loop_mean(depth, keep), rel=1e-12)
    assert last["offdiag_entries"] == L * (L - 1) - 1
    assert abs(last["offdiag"] - every["offdiag"]) > 0.05
    with pytest.raises(ValueError, match=r"\[T ≥ 1, L, L\]"):
        last_token_scalar(depth[0])


# -- an old file, a header-only file, another K, a run still computing --

def test_issue18_item2_an_old_file_shows_the_last_token_scalar_from_its_stored_matrices():
    run = results.load(DATA / "run.safetensors")           # written by 0.1.0: no last-token scalar in its header
    assert "coupling_scalar_last_token" not in run.header
    k, T = run.header["coupling"]["k"], run.n_tokens
    for baseline, prefix, stored in ((False, "", run.header), (True, "random_init.", run.header["random_init"])):
        h = run_headline(run, baseline=baseline)
        depth = depth_at(run, k, prefix)
        assert h.source == "arrays" and h.k == k and h.complete
        assert h.last["offdiag"] == pytest.approx(loop_mean(depth[T - 1], offdiag), rel=1e-9)
        assert h.all["offdiag"] == pytest.approx(stored["coupling_scalar"]["offdiag"], rel=1e-9)   # 0.1.0's own
        assert headline_text(h) == expected_line(k, loop_mean(depth[T - 1], offdiag),
                                                 stored["coupling_scalar"]["offdiag"], T)


def test_issue18_item2_a_file_with_only_its_header_scalar_says_not_in_this_file():
    run = results.load(DATA / "run.safetensors")
    kept = Run(header=copy.deepcopy(run.header), finished=True,
               arrays={n: a for n, a in run.arrays.items() if not n.startswith(("coupling.depth", "random_init."))})
    h = run_headline(kept)
    assert h.source == "header" and h.last is None
    every = run.header["coupling_scalar"]["offdiag"]
    assert headline_text(h) == (f"m_4 off-diag · last token not in this file · all-token mean {every:.3f} "
                                f"({run.n_tokens} tokens)")
    assert run_headline(kept, k=8) is None                  # no K = 8 anywhere in the file


def test_issue18_item2_every_k_and_a_run_still_computing():
    run = folded(n_layers=6, n_tokens=7, k=4, coupling=True)
    assert run.coupling_ks == [2, 4]
    for k in (2, 4):
        depth = depth_at(run, k)
        h = run_headline(run, k)
        assert (h.last["offdiag"], h.all["offdiag"]) == pytest.approx(
            (loop_mean(depth[-1], offdiag), loop_mean(depth, offdiag)), rel=1e-9)
    events = fake_events(n_layers=6, n_tokens=7, k=4, coupling=True)
    started = Run()
    started.apply(events[0])                                # announced, nothing computed
    h = run_headline(started)
    assert h.last is None and h.all is None
    assert headline_text(h) == "m_4 off-diag · last token pending · all-token mean pending (so far)"
    started.apply(events[1])                                # the fakes' coupling arrives with the first layer
    assert headline_text(run_headline(started)).endswith("(so far)")


# -- the engine's header --

def test_issue18_item2_the_engine_header_names_both_scalars(tiny_dir, tmp_path):
    from coupling_tui.core.engine import stream as engine
    from coupling_tui.core.load.models import ModelRequest, load
    from coupling_tui.core.options.run_options import RunOptions

    loaded = load(ModelRequest(model=str(tiny_dir)))
    baseline = load(ModelRequest(model=str(tiny_dir), random_init=True, seed=3))
    run = Run()
    for event in engine.stream(loaded, "Hello world, hello tokens!", RunOptions(top_k=4, token_coupling=False),
                               baseline=baseline):
        run.apply(event)
    k, T = run.header["coupling"]["k"], run.n_tokens
    back = results.load(results.save(run, tmp_path / "r.safetensors"))
    for stored, prefix in ((back.header, ""), (back.header["random_init"], "random_init.")):
        depth = run.arrays[prefix + "coupling.depth"]
        last, every = stored["coupling_scalar_last_token"], stored["coupling_scalar"]
        assert (last["tokens"], last["token"], last["k"], every["tokens"], every["k"]) == ("last", T - 1, k, "all", k)
        assert last["offdiag"] == pytest.approx(loop_mean(depth[T - 1], offdiag), rel=1e-9)
        assert last["adjacent"] == pytest.approx(loop_mean(depth[T - 1], adjacent), rel=1e-9)
        assert every["offdiag"] == pytest.approx(loop_mean(depth, offdiag), rel=1e-9)
    assert back.header["coupling_scalar_last_token"]["offdiag"] != pytest.approx(
        back.header["coupling_scalar"]["offdiag"], abs=1e-6)


# -- compute's summary --

def test_issue18_item2_compute_summary_puts_the_last_token_first_each_named():
    from coupling_tui.core.cli.common import scalar_lines

    run = folded(n_layers=6, n_tokens=7, k=4, coupling=True, baseline=True)
    lines = scalar_lines(run)
    assert len(lines) == 2
    for line, label, prefix in zip(lines, ("trained", "random-init"), ("", "random_init.")):
        depth = depth_at(run, 4, prefix)
        head = expected_line(4, loop_mean(depth[-1], offdiag), loop_mean(depth, offdiag), 7)
        assert line == (f"{label}: depth coupling {head}; adjacent |i−j|=1: last token "
                        f"{loop_mean(depth[-1], adjacent):.3f} · all-token mean {loop_mean(depth, adjacent):.3f} "
                        f"(6 layers; 0 = coupled, ≈1 = unrelated)")
    old = results.load(DATA / "run.safetensors")
    assert scalar_lines(old)[0].startswith(
        "trained: depth coupling " + expected_line(4, loop_mean(depth_at(old, 4)[-1], offdiag),
                                                   old.header["coupling_scalar"]["offdiag"], 11))


# -- the Compare table --

def test_issue18_item2_compare_table_has_the_last_token_row_first_for_each_run():
    a = folded(n_layers=6, n_tokens=7, k=4, coupling=True, seed=1)
    b = folded(n_layers=6, n_tokens=4, k=4, coupling=True, seed=5)
    b.arrays["tokens.ids"] = np.arange(50, 54)               # other tokens: B's stand-in counts from the end
    sa, sb = compare.sides(a, b, token=2)
    body = compare.rows(sa, sb)
    names = [name.strip() for name, _, _ in body]
    assert names.index("m_4 off-diag (last)") + 1 == names.index("m_4 off-diag (all)")
    table = {name.strip(): (va, vb) for name, va, vb in body}
    da, db = depth_at(a, 4), depth_at(b, 4)
    assert table["m_4 off-diag (last)"] == (f"{loop_mean(da[-1], offdiag):.3f}", f"{loop_mean(db[-1], offdiag):.3f}")
    assert table["m_4 off-diag (all)"] == (f"{loop_mean(da, offdiag):.3f}", f"{loop_mean(db, offdiag):.3f}")
    assert table["m_4 off-diag (token)"] == (f"{loop_mean(da[2], offdiag):.3f}",
                                             f"{loop_mean(db[compare.map_token(2, a, b)], offdiag):.3f}")
    assert "all-token mean m̄" in compare.verdict(sa, sb)


# -- a prompt set's printout --

def test_issue18_item2_prompt_set_printout_puts_the_last_token_first():
    from coupling_tui.core.cli.compute_set import scalar_summary, set_lines

    pset = set_file.load(DATA / "set")                       # written by 0.1.0
    lines = set_lines(pset)
    assert lines[1].index("last token") < lines[1].index("all-token mean")
    per_prompt = {"last": [], "all": []}
    for n, run in enumerate(pset.runs, 1):
        depth = depth_at(run, 4)
        row = next(line for line in lines if line.startswith(f"{n} "))
        cells = row.split()[-6:]
        expected = [loop_mean(depth[-1], offdiag), loop_mean(depth[-1], adjacent)]
        assert cells[:2] == [f"{x:.3f}" for x in expected] and cells[2] == "–"
        assert cells[3:5] == [f"{loop_mean(depth, offdiag):.3f}", f"{loop_mean(depth, adjacent):.3f}"]
        per_prompt["last"].append(expected[0])
        per_prompt["all"].append(loop_mean(depth, offdiag))
    stats = {w: (np.mean(v), np.std(v, ddof=1)) for w, v in per_prompt.items()}
    assert scalar_summary(pset)[0].startswith(
        f"trained, over 2 prompts (mean ± std): off-diagonal m_4: last token {stats['last'][0]:.3f} ± "
        f"{stats['last'][1]:.3f} {PAPERS}, all-token mean {stats['all'][0]:.3f} ± {stats['all'][1]:.3f}; adjacent: ")
