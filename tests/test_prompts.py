"""Prompt files and repeated --prompt: one prompt or a prompt set, every mistake a clear UserError before any model
loads."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from coupling_tui.core.errors import UserError
from coupling_tui.core.options.prompts import DEFAULT_PROMPT, read_prompt, read_prompts

SAMPLES = Path(__file__).resolve().parents[1] / "sample_prompts"


def write(tmp_path: Path, name: str, text: str | bytes) -> str:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return str(path)


def test_jsonl_holds_one_prompt_per_record_with_labels(tmp_path):
    f = write(tmp_path, "set.jsonl", '{"text": "The capital of France is", "label": "capital"}\n\n'
                                     '{"text": "line one\\nline two"}\n{"text": "1 1 1", "label": "capital"}\n')
    prompts = read_prompts(None, [f])
    assert [p.text for p in prompts] == ["The capital of France is", "line one\nline two", "1 1 1"]
    assert [p.label for p in prompts] == ["capital", "set:3", "capital (2)"]   # blank line 2 skipped; labels unique
    assert [p.source for p in prompts] == [f"{f}:1", f"{f}:3", f"{f}:4"]
    assert all(p.file == f for p in prompts)


def test_a_txt_file_stays_one_prompt_unless_asked_per_line(tmp_path):
    f = write(tmp_path, "code.txt", "# a comment\ndef f(x):\n    return x\n\n# not a comment any more\n")
    (one,) = read_prompts(None, [f])
    assert one.text == "def f(x):\n    return x\n\n# not a comment any more" and one.label == "code"
    assert read_prompt(None, f) == one.text
    per_line = read_prompts(None, [f], per_line=True)
    assert [p.text for p in per_line] == ["def f(x):", "return x"]
    assert [p.label for p in per_line] == ["code:2", "code:3"]


def test_repeated_prompts_and_several_files(tmp_path):
    prompts = read_prompts(["a b", "c d"], None)
    assert [(p.text, p.label, p.source) for p in prompts] == [("a b", "prompt 1", "--prompt 1"),
                                                               ("c d", "prompt 2", "--prompt 2")]
    files = [write(tmp_path, "x.txt", "one\n"), write(tmp_path, "y.jsonl", '{"text": "two"}\n')]
    assert [p.text for p in read_prompts(None, files)] == ["one", "two"]
    assert read_prompts(None, None)[0].text == DEFAULT_PROMPT


@pytest.mark.parametrize("body, message", [
    ('{"text": "ok"}\n{"text": "unterminated\n', "line 2 is not valid JSON"),
    ('{"text": "ok"}\n["a list"]\n', 'line 2 has no "text" string'),
    ('{"prompt": "wrong field"}\n', 'line 1 has no "text" string'),
    ('{"text": 42}\n', 'line 1 has no "text" string'),
    ('{"text": "   "}\n', 'line 1: "text" is empty'),
    ('{"text": "ok", "label": ""}\n', 'line 1: "label" must be a non-empty string'),
    ("\n\n", "holds no prompts"),
    ("", "holds no prompts"),
])
def test_bad_jsonl_is_one_clear_error(tmp_path, body, message):
    f = write(tmp_path, "bad.jsonl", body)
    with pytest.raises(UserError, match=re.escape(message)) as err:
        read_prompts(None, [f])
    assert str(tmp_path / "bad.jsonl") in str(err.value)


@pytest.mark.parametrize("name, body, per_line, message", [
    ("p.txt", "# only a comment\n\n", False, "is empty"),
    ("p.txt", "# only a comment\n\n", True, "holds no prompts"),
    ("p.jsonl", "caf\xe9".encode("latin-1"), False, "is not UTF-8 text"),
    ("p.txt", b"\xff\xfe", True, "is not UTF-8 text"),
])
def test_empty_or_undecodable_files(tmp_path, name, body, per_line, message):
    with pytest.raises(UserError, match=message):
        read_prompts(None, [write(tmp_path, name, body)], per_line=per_line)


def test_empty_repeated_prompt_and_mixing_are_refused():
    with pytest.raises(UserError, match="--prompt 2 is empty"):
        read_prompts(["fine", "  "], None)
    with pytest.raises(UserError, match="--prompt is empty"):
        read_prompts(["  "], None)
    with pytest.raises(UserError, match="not both"):
        read_prompts(["a"], ["b.txt"])


def test_sample_set_matches_the_sample_files():
    prompts = read_prompts(None, [str(SAMPLES / "all.jsonl")])
    assert [p.label for p in prompts] == ["prose", "code", "capital", "ones", "counting", "copying"]
    for p in prompts:
        assert p.text == read_prompt(None, str(SAMPLES / f"{p.label}.txt")), p.label
    for line in (SAMPLES / "all.jsonl").read_text().splitlines():
        assert set(json.loads(line)) == {"label", "text"}
    assert (SAMPLES / "README.md").is_file()
