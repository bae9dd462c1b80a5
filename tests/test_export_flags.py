"""Issue 17, export flags: messages that name export's real flags, refused out-of-range selections."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "v0.1.0"


def _export(*args, cwd=ROOT):
    cmd = [sys.executable, "-m", "coupling_tui.tui.main", "export", str(DATA / "run.safetensors"), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=cwd)


@pytest.mark.parametrize("where", ["a_file", "under_a_file"])
def test_defect9_export_unwritable_svg_names_the_svg_flag(tmp_path, where):
    """Every unwritable --svg target (a file, a path under a file) says --svg, never -o/--output (export has no -o)."""
    afile = tmp_path / "afile"
    afile.write_text("keep me")
    target = afile if where == "a_file" else afile / "figs"
    out = _export("--svg", str(target))
    assert out.returncode == 2, out.stderr[-2000:]
    lines = out.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("coupling-tui: error:"), out.stderr[-2000:]
    assert "Traceback" not in out.stderr
    assert "--svg" in out.stderr and "-o/--output" not in out.stderr, out.stderr
    assert afile.read_text() == "keep me"
    if where == "a_file":                         # the reason, not the strerror of a mkdir ("File exists")
        assert f"cannot write into {afile}: it is a file, not a directory" in out.stderr, out.stderr


@pytest.mark.parametrize("flag,value", [("--token", "999"), ("--token", "11"), ("--token", "-1"),
                                        ("--layer", "-5"), ("--layer", "3"), ("--layer", "-1")])
def test_defect10_export_refuses_out_of_range_token_and_layer(tmp_path, flag, value):
    """Out-of-range --token/--layer (past the end, negative) exit 2 naming the valid range; nothing is written."""
    out = _export("--svg", str(tmp_path / "svg"), flag, value)
    assert out.returncode == 2, (out.returncode, out.stderr[-2000:])
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("coupling-tui: error:") and flag in last and "0 to" in last, out.stderr
    assert "Traceback" not in out.stderr
    assert not list((tmp_path / "svg").glob("*.svg")) if (tmp_path / "svg").exists() else True


def test_defect10_export_in_range_edges_still_work(tmp_path):
    """The last token and the last layer of the 11-token, 3-layer fixture are accepted."""
    out = _export("--svg", str(tmp_path), "--token", "10", "--layer", "2")
    assert out.returncode == 0, out.stderr[-2000:]
    assert (tmp_path / "run-screen.svg").exists()


@pytest.mark.parametrize("build", ["build_explore_parser", "build_view_parser", "build_export_parser"])
@pytest.mark.parametrize("flag", ["--svg", "--svg-dir"])
def test_defect11_svg_flag_has_one_name_everywhere(build, flag):
    """--svg-dir and --svg are accepted by explore, view and export alike."""
    from coupling_tui.tui import main as tui_main

    argv = ([] if build == "build_explore_parser" else ["r.safetensors"]) + [flag, "D"]
    args = getattr(tui_main, build)().parse_args(argv)
    assert (args.svg if build == "build_export_parser" else args.svg_dir) == "D"


def test_defect11_export_help_mentions_set_directory():
    from coupling_tui.tui.main import build_export_parser

    assert "prompt-set directory" in build_export_parser().format_help()


def _xml_char(code: int) -> bool:
    """The XML 1.0 ``Char`` production."""
    return code in (0x9, 0xA, 0xD) or 0x20 <= code <= 0xD7FF or 0xE000 <= code <= 0xFFFD or 0x10000 <= code <= 0x10FFFF


def test_defect8_safe_text_leaves_only_xml_characters():
    """Every code point (all of C0 but tab/newline, DEL, C1, lone surrogates, U+FFFE/F) comes out XML-safe and
    UTF-8-encodable; tab, newline and everything printable is kept as it is."""
    from coupling_tui.tui.export import safe_text

    everything = "".join(map(chr, range(0x110000)))
    out = safe_text(everything)
    out.encode("utf-8")                                                 # no lone surrogate is left
    assert all(_xml_char(ord(c)) and not (0x7F <= ord(c) <= 0x9F) and ord(c) not in (0xD,) for c in out)
    assert safe_text("a\tb\nc é → 日本 😀 &<>") == "a\tb\nc é → 日本 😀 &<>"
    assert safe_text("\x00\x1b\x7f\x85\ud800") == "\u2400\u241b\u2421\ufffd\ufffd"


@pytest.mark.parametrize("bad,shown", [("\x00", "\u2400"), ("\x1b", "\u241b"), ("\x0c", None),
                                       ("\x7f", "\u2421"), ("\x85", "\ufffd"), ("\ud800", "\ufffd"),
                                       ("\ufffe", "\ufffd")])
async def test_defect8_control_characters_in_the_prompt_make_valid_svgs(tmp_path, bad, shown):
    """Tokens/prompt/run name holding a C0 control (NUL, ESC, FF), DEL, a C1 control, a lone surrogate or a
    non-character: every exported SVG (each pane and the screen) is written, parses as XML, never holds the raw
    character, and the tokens pane shows its stand-in."""
    import xml.etree.ElementTree as ET

    from coupling_tui.tui.app import CouplingApp
    from tests.test_coupling_pane import coupled_run, svg_text

    run = coupled_run()
    run.header["tokens"]["text"] = [f"{bad}w{i}" for i in range(len(run.header["tokens"]["text"]))]
    run.header["prompt"] = "".join(run.header["tokens"]["text"])
    app = CouplingApp(run=run, export_dir=tmp_path, run_name=f"r{bad}un")
    async with app.run_test(size=(100, 30)):
        written = await app.export_all()
    assert len(written) >= 5
    for path in written:
        assert bad not in path.read_text(errors="surrogateescape")
        ET.fromstring(path.read_bytes())
    tokens = svg_text(next(p for p in written if p.name.endswith("-tokens.svg")).read_text())
    assert shown is None or f"{shown}w" in tokens                     # (the pane turns a form feed into a space)


@pytest.mark.parametrize("command", [[], ["compute"], ["collapse"], ["view"], ["export"]])
def test_defect11_version_on_every_subcommand(command):
    """--version works at the top level and after every subcommand (it was top-level only: exit 2 elsewhere)."""
    from coupling_tui.core import __version__

    out = subprocess.run([sys.executable, "-m", "coupling_tui.tui.main", *command, "--version"],
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0 and out.stdout.strip() == f"coupling-tui {__version__}", (out.returncode, out.stderr)


@pytest.mark.parametrize("args", [["--help"], ["--top-k", "x"]])
def test_defect11_python_m_core_names_itself(args):
    """``python -m coupling_tui.core`` names itself in its usage line (help and errors), not ``coupling-tui compute``."""
    out = subprocess.run([sys.executable, "-m", "coupling_tui.core", *args], capture_output=True, text=True,
                         timeout=120, cwd=ROOT)
    text = out.stdout + out.stderr
    assert "usage: python -m coupling_tui.core" in text and "coupling-tui compute" not in text, text[:500]
    assert out.returncode == (0 if args == ["--help"] else 2)


@pytest.mark.parametrize("command", ["compute", "collapse"])
@pytest.mark.parametrize("flag,value", [("--vector-budget-mb", "-1"), ("--history-mb", "-0.5"), ("--top-k", "-1"),
                                        ("--max-tokens", "-3"), ("--probes", "-2"), ("--sensitivity-tokens", "-1"),
                                        ("--history-mb", "nan"), ("--vector-budget-mb", "inf")])
def test_smaller_negative_size_and_count_flags_are_refused(command, flag, value, capsys):
    """Every size/count flag refuses a negative (or NaN/inf) value before any model loads: exit 2, naming it."""
    from coupling_tui.core.cli import collapse as collapse_cli
    from coupling_tui.core.cli import compute as compute_cli

    parser = (compute_cli.build_compute_parser() if command == "compute" else collapse_cli.build_collapse_parser())
    if not any(flag in a.option_strings for a in parser._actions):
        pytest.skip(f"{command} has no {flag}")
    with pytest.raises(SystemExit) as done:
        parser.parse_args([f"{flag}={value}"])
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert flag in err and ("out of range" in err), err
