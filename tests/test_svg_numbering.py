"""Issue 20 item 10: the explorer's e / E never replace an earlier export (the new files are numbered, a group with one
number), they write into --svg-dir or, without it, the user data dir's svg folder; the headless ``coupling-tui export
--svg DIR`` replaces (it names its directory)."""

from __future__ import annotations

from pathlib import Path

from coupling_tui.tui import export
from coupling_tui.tui.main import build_view_parser, main, svg_path, view_app

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "tests" / "data" / "v0.1.0" / "run.safetensors"


def test_one_svg_is_numbered_when_its_name_is_taken(tmp_path):
    first = export.write_svg(tmp_path, "run", "coupling", "<svg>1</svg>")
    second = export.write_svg(tmp_path, "run", "coupling", "<svg>2</svg>")
    third = export.write_svg(tmp_path, "run", "coupling", "<svg>3</svg>")
    assert [p.name for p in (first, second, third)] == ["run-coupling.svg", "run-coupling-2.svg", "run-coupling-3.svg"]
    assert first.read_text() == "<svg>1</svg>" and third.read_text() == "<svg>3</svg>"
    assert export.write_svg(tmp_path, "run", "coupling", "<svg>4</svg>", replace=True) == first
    assert first.read_text() == "<svg>4</svg>"


def test_a_group_keeps_one_number_and_never_replaces(tmp_path):
    svgs = {"coupling": "<svg>a</svg>", "screen": "<svg>b</svg>"}
    (tmp_path / "run-screen.svg").write_text("earlier")              # one name of the group is taken: all move on
    written = export.write_svgs(tmp_path, "run", svgs)
    assert [p.name for p in written] == ["run-coupling-2.svg", "run-screen-2.svg"]
    assert (tmp_path / "run-screen.svg").read_text() == "earlier" and not (tmp_path / "run-coupling.svg").exists()
    again = export.write_svgs(tmp_path, "run", svgs)
    assert [p.name for p in again] == ["run-coupling-3.svg", "run-screen-3.svg"]
    assert [p.name for p in export.write_svgs(tmp_path, "run", svgs, replace=True)] == ["run-coupling.svg",
                                                                                        "run-screen.svg"]
    assert (tmp_path / "run-screen.svg").read_text() == "<svg>b</svg>"


def test_without_svg_dir_exports_go_to_the_user_data_dir():
    args = build_view_parser().parse_args([str(RUN)])
    assert args.svg_dir is None and svg_path(args.svg_dir) == export.default_svg_dir()
    assert export.default_svg_dir().name == "svg" and "coupling-tui" in str(export.default_svg_dir())
    assert str(export.default_svg_dir()) in "".join(build_view_parser().format_help().split())   # wrapped anywhere
    assert view_app(str(RUN)).export_dir == export.default_svg_dir()
    assert view_app(str(RUN), "~/x").export_dir == Path("~/x").expanduser()


async def test_pressing_e_twice_keeps_both_exports(tmp_path):
    app = view_app(str(RUN), str(tmp_path))
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.pause()
        first = await app.export_all()
        second = await app.export_all()
        app.coupling.focus()
        await pilot.press("e")
        await pilot.pause()
    assert len(first) == len(second) >= 5
    assert all(p.exists() for p in first + second) and not set(first) & set(second)
    assert all(p.name.endswith("-2.svg") for p in second)
    assert (tmp_path / "run-coupling-3.svg").exists()                # e after two E: the next free number


def test_the_headless_export_replaces(tmp_path, capsys):
    (tmp_path / "run-screen.svg").write_text("earlier")
    assert main(["export", str(RUN), "--svg", str(tmp_path), "--size", "120x40"]) == 0
    assert (tmp_path / "run-screen.svg").read_text() != "earlier"
    assert not list(tmp_path.glob("*-2.svg"))
