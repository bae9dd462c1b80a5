"""Issue 17, smaller: numpy RuntimeWarnings leaked to stderr on zero norms ("invalid value encountered in subtract"
from the growth fit of log 0). A zero norm, a zero hidden state or a zero Jacobian is a NaN (or inf) in the numbers,
which the panes show as such, never a warning on the terminal."""
from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest

from coupling_tui.core.maths import trajectory
from coupling_tui.core.results import names
from tests.broken_files import RUN, dump_parts, load_parts


def test_defect17_trajectory_maths_on_zeros_warns_nothing():
    norms = np.ones((5, 3))
    norms[2:, 1] = 0.0                     # token 1 collapses to the zero vector
    hidden = np.zeros((5, 3, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit = trajectory.growth_fit(norms)
        fid = trajectory.linearisation_fidelity(np.zeros((4, 3, 4, 4)), hidden[0], hidden[-1])
        trajectory.lss(hidden)
        trajectory.expodistance(hidden)
        trajectory.sigma1_depth_fit(np.zeros((12, 3)))
    assert np.isnan(fit["slope"][1]) and np.isfinite(fit["slope"][0]) and np.isnan(fid).all()


@pytest.mark.parametrize("zeroed", ["all", names.TRAJECTORY_NORMS, names.TRAJECTORY_HIDDEN,
                                    names.JACOBIAN_SINGULAR_VALUES])
def test_defect17_exporting_a_run_of_zeros_prints_no_warning(tmp_path, zeroed):
    meta, header, arrays = load_parts(RUN)
    for name, a in arrays.items():
        if a.dtype.kind == "f" and zeroed in ("all", name):
            arrays[name] = np.zeros_like(a)
    path = tmp_path / "zeros.safetensors"
    path.write_bytes(dump_parts(meta, header, arrays))
    out = subprocess.run([sys.executable, "-W", "default", "-m", "coupling_tui.tui.main", "export", str(path),
                          "--svg", str(tmp_path / "svg")], capture_output=True, text=True, timeout=120)
    assert "Warning" not in out.stderr, out.stderr[-2000:]
    assert out.returncode == 0, out.stderr[-2000:]
