"""A prompt set on disk: a directory of ordinary results files plus aggregate.safetensors; written whole, read back
without torch, refused clearly when it is not one."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from coupling_tui.core.results import run_file as results
from coupling_tui.core.results import set_file as set_results
from coupling_tui.core.errors import ResultsError, UserError
from coupling_tui.core.results.events import BatchFinished, BatchStarted, PromptStarted
from coupling_tui.core.results.prompt_set import PromptSet
from tests.fakes import fake_events


def batch_events(tokens=(5, 7), labels=("prose", "code / 2"), k=4) -> list:
    events: list = [BatchStarted(labels=tuple(labels), texts=tuple(f"text {n}" for n in range(len(labels))))]
    for i, t in enumerate(tokens):
        events.append(PromptStarted(index=i, n_prompts=len(tokens)))
        events += fake_events(n_layers=4, n_tokens=t, k=k, coupling=True, seed=7 * i)
    return events + [BatchFinished(seconds=2.5)]


def filled(events=None) -> PromptSet:
    pset = PromptSet()
    for event in events or batch_events():
        pset.apply(event)
    return pset


def test_round_trip_keeps_every_prompt_and_the_aggregate(tmp_path):
    pset = filled()
    path = set_results.save(pset, tmp_path / "set")
    assert sorted(p.name for p in path.iterdir()) == ["01-prose.safetensors", "02-code-2.safetensors",
                                                      "aggregate.safetensors"]
    single = results.load(path / "02-code-2.safetensors")         # an ordinary results file
    np.testing.assert_array_equal(single.arrays["coupling.depth_k"], pset.runs[1].arrays["coupling.depth_k"])
    for where in (path, path / "aggregate.safetensors"):
        back = set_results.load(where)
        assert back.labels == ["prose", "code / 2"] and back.texts == ["text 0", "text 1"] and back.finished
        assert [r.n_tokens for r in back.runs] == [5, 7] and back.seconds == 2.5
        for name, a in pset.aggregate.arrays.items():
            np.testing.assert_array_equal(back.aggregate.arrays[name], a)
        assert back.aggregate.header["aggregate"]["scalar"] == pset.aggregate.header["aggregate"]["scalar"]
        assert back.header["prompts"][1] | {"seconds": None} == {
            "label": "code / 2", "text": "text 1", "file": "02-code-2.safetensors", "source": None, "n_tokens": 7,
            "truncated_from": None, "next_token": {"id": 42, "text": " Paris"}, "seconds": None, "complete": True}
    assert isinstance(set_results.open_results(path), PromptSet)
    assert not isinstance(set_results.open_results(path / "01-prose.safetensors"), PromptSet)


def test_loading_a_set_does_not_import_torch(tmp_path):
    path = set_results.save(filled(), tmp_path / "set")
    code = (f"import sys; from coupling_tui.core.results import set_file as set_results; "
            f"s = set_results.load({str(path)!r}); "
            "print(s.n_prompts, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["2", "False"]


def test_a_previous_set_is_replaced_whole_and_other_paths_are_refused(tmp_path):
    target = set_results.save(filled(), tmp_path / "set")
    set_results.save(filled(batch_events(tokens=(3, 4, 6), labels=("a", "b", "c"))), target)
    assert sorted(p.name for p in target.iterdir()) == ["01-a.safetensors", "02-b.safetensors",
                                                        "03-c.safetensors", "aggregate.safetensors"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set"]              # no temp or old directories left
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    for path, message in ((tmp_path / "mine", "is not a coupling-tui prompt set"),
                          (tmp_path / "x.safetensors", "saved as a directory"),
                          (tmp_path / "mine" / "notes.txt", "is a file")):
        with pytest.raises(UserError, match=message):
            set_results.save(filled(), path)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_a_failed_save_leaves_the_previous_set_and_nothing_else(tmp_path, monkeypatch):
    target = set_results.save(filled(), tmp_path / "set")
    before = {p.name: p.read_bytes() for p in target.iterdir()}
    calls = []

    def failing(run):
        calls.append(run)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(run)

    real = results.to_bytes
    monkeypatch.setattr(results, "to_bytes", failing)
    with pytest.raises(UserError, match="No space left on device"):
        set_results.save(filled(), target)
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set"]


def test_broken_sets_are_refused_with_a_reason(tmp_path):
    path = set_results.save(filled(), tmp_path / "set")
    os.remove(path / "02-code-2.safetensors")
    with pytest.raises(ResultsError, match="02-code-2.safetensors: no such file"):
        set_results.load(path)
    with pytest.raises(ResultsError, match="not a coupling-tui prompt set"):
        set_results.load(tmp_path)
    other = tmp_path / "run.safetensors"
    results.save(filled().runs[0], other)
    with pytest.raises(ResultsError, match="not a coupling-tui prompt set index"):
        set_results.load(other)


def test_a_wrongly_shaped_aggregate_is_refused(tmp_path):
    from safetensors.numpy import load as st_load, save as st_save

    path = set_results.save(filled(), tmp_path / "set")
    index = path / "aggregate.safetensors"
    data = index.read_bytes()
    header = json.loads(data[8:8 + int.from_bytes(data[:8], "little")])["__metadata__"]
    arrays = st_load(data)
    arrays["aggregate.depth_last_k.std"] = arrays["aggregate.depth_last_k.std"][:, :3]
    index.write_bytes(st_save(arrays, metadata=header))
    with pytest.raises(ResultsError, match=r"aggregate.depth_last_k.std has shape \(2, 3, 4\), expected \(2, 4, 4\)"):
        set_results.load(path)


@pytest.mark.parametrize("fail_at", [None, "swap"])
def test_defect1_set_resave_keeps_foreign_files(tmp_path, monkeypatch, fail_at):
    target = set_results.save(filled(batch_events(tokens=(3, 4, 6), labels=("a", "b", "c"))), tmp_path / "set")
    (target / "notes.txt").write_text("keep me")
    (target / ".hidden").write_text("hidden")
    (target / "figs").mkdir()
    (target / "figs" / "f.svg").write_text("<svg/>")
    before = {p.name: p.read_bytes() for p in target.iterdir() if p.is_file()}
    if fail_at == "swap":
        real_replace = os.replace

        def failing(src, dst):
            if str(dst) == str(target) and str(src).endswith(".tmp"):   # the new set swapped in
                raise OSError(28, "No space left on device")
            return real_replace(src, dst)

        monkeypatch.setattr(set_results.os, "replace", failing)
        with pytest.raises(UserError, match="No space left on device"):
            set_results.save(filled(), target)
        assert {p.name: p.read_bytes() for p in target.iterdir() if p.is_file()} == before
        set_results.load(target)                                                  # the old set still reads
    else:
        set_results.save(filled(), target)                                        # 2 prompts replace 3
        assert not (target / "03-c.safetensors").exists()                         # the set's own stale member
        assert len(set_results.load(target).runs) == 2
    assert (target / "notes.txt").read_text() == "keep me"
    assert (target / ".hidden").read_text() == "hidden"
    assert (target / "figs" / "f.svg").read_text() == "<svg/>"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set"]


def test_defect9_full_disk_during_set_save_names_the_target_not_the_temp_dir(tmp_path, monkeypatch):
    from coupling_tui.core import atomic

    target = tmp_path / "set"
    def full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", full)                 # the disk fills while a member file is flushed
    with pytest.raises(UserError) as info:
        set_results.save(filled(), target)
    monkeypatch.undo()
    assert "No space left on device" in str(info.value) and str(target) in str(info.value)
    assert ".tmp" not in str(info.value)
    assert list(tmp_path.iterdir()) == []
