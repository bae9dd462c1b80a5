"""Issue 20 item 10: ``coupling-tui figures`` draws every figure of a saved run, prompt set or pair without torch,
and its --data files hold exactly the stored arrays (or the pure functions of them the figure names); the two new
measures (m against |i − j|, m(l, l+1)) against loops written out entry by entry; bad input is one line and status 2
with nothing written."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from coupling_tui.core.maths.collapse_view import MEASURES, resolutions
from coupling_tui.core.maths.run_scalar import adjacent_coupling, distance_profile
from coupling_tui.core.results import names, run_file, set_file

pytest.importorskip("matplotlib")

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "v0.1.0"
RUN, SET = DATA / "run.safetensors", DATA / "set"
LINF = MEASURES.index("L∞")
RUN_FIGURES = ("coupling-depth", "coupling-adjacent", "coupling-distance", "norms-depth", "sigma1-depth",
               "collapse-diff", "sensitivity-position")


def test_distance_profile_is_the_mean_over_pairs_at_each_distance():
    rng = np.random.default_rng(0)
    m = rng.random((6, 6))
    m[1, 4] = np.nan                                     # not computed: skipped
    gaps, means, counts = distance_profile(m)
    for g, mean, count in zip(gaps, means, counts):
        vals = [m[i, j] for i in range(6) for j in range(6) if abs(i - j) == g and np.isfinite(m[i, j])]
        assert count == len(vals) and mean == pytest.approx(sum(vals) / len(vals), rel=1e-15)
    assert list(gaps) == [1, 2, 3, 4, 5] and list(counts) == [10, 8, 5, 4, 2]
    assert np.isnan(distance_profile(np.full((3, 3), np.nan))[1]).all()
    layers, forward, backward = adjacent_coupling(m)
    assert list(layers) == [0, 1, 2, 3, 4]
    assert list(forward) == [m[l, l + 1] for l in range(5)] and list(backward) == [m[l + 1, l] for l in range(5)]
    with pytest.raises(ValueError):
        distance_profile(np.zeros((2, 3)))


def figures(args: list[str]) -> subprocess.CompletedProcess:
    """``coupling-tui figures ARGS`` in a fresh interpreter that then says whether torch was imported."""
    code = ("import sys; from coupling_tui.tui.main import main; status = main(sys.argv[1:]); "
            "print('torch imported:', 'torch' in sys.modules); sys.exit(status)")
    return subprocess.run([sys.executable, "-c", code, "figures", *args], capture_output=True, text=True, cwd=ROOT)


@pytest.fixture(scope="module")
def drawn(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("figures")
    done = figures([str(RUN), "-o", str(out), "--format", "svg,pdf,png", "--data"])
    assert done.returncode == 0, done.stderr
    assert "torch imported: False" in done.stdout
    return out


def test_every_figure_of_a_saved_run_is_drawn_without_torch(drawn):
    for name in RUN_FIGURES:
        assert (drawn / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        assert (drawn / f"{name}.pdf").read_bytes()[:5] == b"%PDF-", name
        assert "<svg" in (drawn / f"{name}.svg").read_text(), name
    assert not [p.name for p in drawn.iterdir() if p.name.startswith(".")]     # no staging left behind


def read_matrix(path: Path) -> np.ndarray:
    return np.loadtxt(path, delimiter=",", comments="#", ndmin=2)


def read_series(path: Path) -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]:
    rows = [r for r in csv.reader(line for line in path.read_text().splitlines() if not line.startswith("#"))]
    assert rows[0] == ["series", "facet", "x", "y"]
    out: dict[tuple[str, str], list] = {}
    for label, facet, x, y in rows[1:]:
        out.setdefault((label, facet), []).append((float(x), float(y)))
    return {key: (np.array([p[0] for p in v]), np.array([p[1] for p in v])) for key, v in out.items()}


def same(written: np.ndarray, stored: np.ndarray) -> bool:
    """Exactly equal as float64 (a float32 array converts without loss), NaN where NaN."""
    return np.array_equal(np.asarray(written, np.float64), np.asarray(stored, np.float64), equal_nan=True)


def test_the_data_files_are_the_stored_arrays(drawn):
    run = run_file.load(RUN)
    a, t = run.arrays, run.n_tokens - 1
    trained = a[names.COUPLING_DEPTH_K][0, t]
    baseline = a[names.random_init(names.COUPLING_DEPTH_K)][0, t]
    assert same(read_matrix(drawn / "coupling-depth-trained.csv"), trained)
    assert same(read_matrix(drawn / "coupling-depth-random-init.csv"), baseline)
    adjacent = read_series(drawn / "coupling-adjacent.csv")
    assert same(adjacent[("trained: m(l, l+1)", "")][1], np.diagonal(trained, 1))
    assert same(adjacent[("random-init: m(l+1, l)", "")][1], np.diagonal(baseline, -1))
    distance = read_series(drawn / "coupling-distance.csv")
    assert same(distance[("trained", "")][1], distance_profile(trained)[1])
    assert same(distance[("random-init", "")][0], [1, 2])
    norms = read_series(drawn / "norms-depth.csv")
    assert same(norms[(f"trained: token {t}", "")][1], a[names.TRAJECTORY_NORMS][:, t])
    assert same(norms[(f"random-init: token {t}", "")][1], a[names.random_init(names.TRAJECTORY_NORMS)][:, t])
    depths, fit = run.growth_line(t)
    assert same(next(v for k, v in norms.items() if k[0].startswith("trained: fit"))[1], fit)
    sigma = read_series(drawn / "sigma1-depth.csv")
    assert same(sigma[(f"trained: token {t}", "")][1], a[names.JACOBIAN_SINGULAR_VALUES][:, t, 0])
    collapse = read_series(drawn / "collapse-diff.csv")
    for f, family in enumerate(run.header["collapse"]["families"]):
        assert same(collapse[("float32", family)][0], a[names.COLLAPSE_LENGTHS])
        assert same(collapse[("float32", family)][1], a[names.COLLAPSE_DIFF][f, :, LINF])
        assert same(collapse[("bfloat16", family)][1], a[names.COLLAPSE_DIFF_LOW][f, :, LINF])
        assert same(collapse[("bfloat16 resolution", family)][1],
                    resolutions(a[names.COLLAPSE_FINAL][f], "bfloat16", LINF))
    sensitivity = read_series(drawn / "sensitivity-position.csv")
    assert same(next(iter(sensitivity.values()))[1], a[names.COLLAPSE_SENSITIVITY])
    npz = np.load(drawn / "figures.npz")
    assert np.array_equal(npz["coupling-depth/trained"], trained) and npz["coupling-depth/trained"].dtype == np.float32
    assert np.array_equal(npz["collapse-diff/digits/bfloat16/y"], a[names.COLLAPSE_DIFF_LOW][1, :, LINF])
    assert np.array_equal(npz["sensitivity-position/ones-n-4/y"], a[names.COLLAPSE_SENSITIVITY])


def test_a_prompt_set_draws_its_aggregate_and_a_pair_draws_a_and_b(tmp_path):
    done = figures([str(SET), "-o", str(tmp_path / "set"), "--format", "png", "--data"])
    assert done.returncode == 0, done.stderr
    agg = set_file.open_results(SET).aggregate
    assert same(read_matrix(tmp_path / "set" / "coupling-depth-trained.csv"),
                agg.arrays["aggregate.depth_last_k.mean"][0])                    # noqa: the aggregate's own name
    assert same(read_matrix(tmp_path / "set" / "coupling-depth-random-init.csv"),
                agg.arrays[names.random_init("aggregate.depth_last_k.mean")][0])
    b = SET / "01-prompt-1.safetensors"
    done = figures([str(RUN), str(b), "-o", str(tmp_path / "pair"), "--format", "svg", "--data", "--metric", "m"])
    assert done.returncode == 0, done.stderr
    run_b = run_file.load(b)
    csvs = sorted(p.name for p in (tmp_path / "pair").glob("coupling-depth-*.csv"))
    assert len(csvs) == 2 and csvs[0].startswith("coupling-depth-A") and csvs[1].startswith("coupling-depth-B")
    assert same(read_matrix(tmp_path / "pair" / csvs[1]), run_b.arrays[names.COUPLING_DEPTH_K][0, -1])


@pytest.mark.parametrize("args, says", [
    (["--format", "gif"], "--format 'gif': gif is not one of svg, pdf, png"),
    (["--token", "99"], "--token 99 is out of range"),
    (["--k", "3"], "--k 3: no depth coupling at K = 3 here\n  K stored: 4"),
])
def test_bad_input_is_one_line_and_status_2_with_nothing_written(tmp_path, args, says):
    out = tmp_path / "out"
    done = figures([str(RUN), "-o", str(out), *args])
    assert done.returncode == 2 and says in done.stderr and "Traceback" not in done.stderr
    assert done.stderr.startswith("coupling-tui: error:")
    assert not out.exists()


def test_a_missing_file_and_an_unwritable_output_are_refused(tmp_path):
    done = figures([str(tmp_path / "nope.safetensors"), "-o", str(tmp_path / "out")])
    assert done.returncode == 2 and done.stderr.startswith("coupling-tui: error:")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    done = figures([str(RUN), "-o", str(blocker), "--format", "png"])
    assert done.returncode == 2 and "it is a file, not a directory" in done.stderr
    assert blocker.read_text() == "x"


def test_without_matplotlib_the_command_names_the_extra(tmp_path):
    code = ("import sys; sys.modules['matplotlib'] = None; from coupling_tui.tui.main import main; "
            "sys.exit(main(sys.argv[1:]))")
    done = subprocess.run([sys.executable, "-c", code, "figures", str(RUN), "-o", str(tmp_path / "out")],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 2 and "pip install 'coupling-tui[figures]'" in done.stderr
    assert done.stderr.startswith("coupling-tui: error:") and "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()
