"""The sweep's pure parts (issue 19): model names, the scores file, the options key, the fits' edge cases, the
sweep container's progress. No model runs here."""

from __future__ import annotations

import math
import pickle

import pytest

from coupling_tui.core.errors import UserError
from coupling_tui.core.maths.sweep_fits import fit, fits
from coupling_tui.core.options.sweep import ModelEntry, entries, parse_entry, read_scores, sweep_key


@pytest.mark.parametrize("text, model, revision, random_init, seed", [
    ("HuggingFaceTB/SmolLM2-135M", "HuggingFaceTB/SmolLM2-135M", None, False, None),
    ("EleutherAI/pythia-160m@step3000", "EleutherAI/pythia-160m", "step3000", False, None),
    ("default", None, None, False, None),
    ("random-init:default", None, None, True, None),
    ("random-init:seed=3:org/m@main", "org/m", "main", True, 3),
    ("  ./my model  ", "./my model", None, False, None),
])
def test_model_names(text, model, revision, random_init, seed):
    e = parse_entry(text, exists=lambda p: False)
    assert (e.model, e.revision, e.random_init, e.seed, e.given) == (model, revision, random_init, seed, text.strip())


def test_an_existing_path_with_an_at_sign_is_a_path():
    assert parse_entry("runs/a@b", exists=lambda p: p == "runs/a@b").model == "runs/a@b"


@pytest.mark.parametrize("text, message", [("", "empty model name"), ("random-init:", "names no model"),
                                           ("random-init:seed=x:m", "whole number"), ("@rev", "MODEL@REVISION")])
def test_bad_model_names(text, message):
    with pytest.raises(UserError, match=message):
        parse_entry(text, exists=lambda p: False)


def test_models_file_and_flags_together(tmp_path):
    f = tmp_path / "models.txt"
    f.write_text("# my models\n\norg/a\n  org/b  \n")
    assert [e.given for e in entries(["org/c"], str(f))] == ["org/c", "org/a", "org/b"]
    with pytest.raises(UserError, match="named twice"):
        entries(["org/a"], str(f))
    with pytest.raises(UserError, match="cannot read the models file"):
        entries(None, str(tmp_path / "none.txt"))


def test_slugs_are_stable_and_distinct():
    a, b = ModelEntry("org/m", "org/m"), ModelEntry("org-m", "org-m")
    assert a.slug == ModelEntry("org/m", "org/m").slug and a.slug != b.slug


def test_scores_file(tmp_path):
    f = tmp_path / "s.csv"
    f.write_text("\ufeffmodel,extra,score\norg/a,x,0.5\norg/b,y,-1e-3\n,,\n")
    assert read_scores(str(f)) == {"org/a": 0.5, "org/b": -0.001}
    for text, message in (("name,score\na,1\n", "columns model and score"), ("model,score\na,nan\n", "line 2"),
                          ("model,score\na,1\na,2\n", "second score"), ("model,score\na,\n", "not a number")):
        f.write_text(text)
        with pytest.raises(UserError, match=message):
            read_scores(str(f))


def test_the_key_changes_with_any_option():
    e = ModelEntry("m", "m")
    base = sweep_key(e, {"top_k": 10}, ["p"])
    assert base == sweep_key(e, {"top_k": 10}, ["p"])
    assert len({base, sweep_key(e, {"top_k": 11}, ["p"]), sweep_key(e, {"top_k": 10}, ["q"]),
                sweep_key(ModelEntry("n", "n"), {"top_k": 10}, ["p"])}) == 4


def test_fits_need_three_models_and_a_varying_predictor():
    assert fit([1, 2], [3, 4]) == {"n": 2, "note": "needs 3 models with a score and this value, has 2"}
    assert fit([1, 1, 1], [3, 4, 5])["note"] == "the predictor is the same for every model"
    assert fit([1, None, 2, math.nan, 3], [1, 5, 2, 6, 3])["n"] == 3
    rows = [{"status": "ok", "x": 10.0, "score": 1.0}, {"status": "ok", "x": 100.0, "score": 2.0},
            {"status": "failed: x", "x": 5.0, "score": 9.0}, {"status": "ok", "x": 1000.0, "score": 3.0}]
    out = fits(rows, {"log10_x": "x", "x": "x"})
    assert out["log10_x"]["r2"] == pytest.approx(1.0) and out["log10_x"]["slope"] == pytest.approx(1.0)
    assert out["x"]["n"] == 3 and out["x"]["r2"] < 1


def test_run_options_and_user_errors_survive_pickling():
    """A Ray task gets its options and sends its UserError back pickled."""
    from coupling_tui.core.options.run_options import RunOptions

    options = RunOptions(layers="0:3", top_k=7).with_params(sweep={"key": "k"})
    assert pickle.loads(pickle.dumps(options)) == options
    error = pickle.loads(pickle.dumps(UserError("bad", "do this")))
    assert (error.message, error.hint) == ("bad", "do this")


def test_sweep_progress_counts_every_model():
    from coupling_tui.core.results.events import ModelFailed, ModelProgress, ModelSkipped, SweepStarted
    from coupling_tui.core.results.sweep import Sweep

    s = Sweep()
    s.apply(SweepStarted(models=("a", "b", "c", "d")))
    s.apply(ModelSkipped(index=0, reason="done"))
    s.apply(ModelProgress(index=1, steps_done=3, n_steps=10))
    assert (s.steps_done, s.n_steps) == (3, 30)                      # c and d guessed like b; a drops out
    s.apply(ModelFailed(index=2, reason="x"))
    assert s.n_steps == 20 and s.just_ended == [2]
    assert s.progress_text() == "model 2/4 b"
