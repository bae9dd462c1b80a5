"""Prompt text from the command line or files (one prompt, or several: a prompt set), validated before any model is
loaded; token budget handling."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

from coupling_tui.core.errors import UserError

DEFAULT_PROMPT = (
    "The history of science is the study of how people came to understand the natural world. Early "
    "astronomers tracked the motion of the planets, physicians described the body, and mathematicians "
    "built the tools that let later scientists turn careful observation into laws that predict what "
    "will happen next."
)
DEFAULT_MAX_TOKENS = 128


@dataclass(frozen=True)
class Prompt:
    """One prompt of a run: its text, a short label (file names, the explorer's status line, the CLI's table) and
    where it came from."""

    text: str
    label: str
    source: str | None = None
    """"FILE", "FILE:LINE" or "--prompt N"; None for the built-in default."""
    file: str | None = None
    """The prompt file it was read from (recorded in the run's ``params.prompt_file``)."""


def read_prompt(text: str | None, file: str | None) -> str:
    """The prompt to analyse: ``text``, or the contents of ``file`` (UTF-8; leading ``#`` comment lines are
    dropped), or the built-in default. Empty or whitespace-only prompts are refused."""
    return read_prompts(None if text is None else [text], None if file is None else [file])[0].text


def read_prompts(texts: list[str] | None, files: list[str] | None, *, per_line: bool = False) -> list[Prompt]:
    """Every prompt of a run, in order, checked before any model loads (a UserError names the file and line):

    - ``texts`` (``--prompt``, repeatable): one prompt each;
    - ``files`` (``--prompt-file``, repeatable): a ``.jsonl`` file holds one prompt per line, a JSON object with a
      ``text`` string (and optionally a ``label`` string); blank lines are skipped. Any other file holds **one**
      prompt, its whole text after leading ``#`` comment lines, unless ``per_line``: then every line that is not
      blank and does not start with ``#`` is a prompt;
    - neither: the built-in default prompt.

    Labels are made unique (" (2)", …) so each prompt of a set gets its own results file."""
    if texts and files:
        raise UserError("give either --prompt or --prompt-file, not both")
    if texts:
        many = len(texts) > 1
        prompts = []
        for n, text in enumerate(texts, 1):
            where = f"--prompt {n}" if many else "--prompt"
            if not text.strip():
                raise UserError(f"{where} is empty", "give some text to analyse")
            prompts.append(Prompt(text, f"prompt {n}" if many else "prompt", where))
    elif files:
        prompts = [p for file in files for p in _read_file(file, per_line)]
    else:
        return [Prompt(DEFAULT_PROMPT, "default")]
    return _unique_labels(prompts)


def _read_file(file: str, per_line: bool) -> list[Prompt]:
    path = Path(file).expanduser()
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read prompt file {path}: {exc.strerror or exc}") from exc
    try:
        body = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"prompt file {path} is not UTF-8 text (byte {exc.start})") from exc
    stem = path.stem or path.name
    if path.suffix.lower() == ".jsonl":
        return _read_jsonl(path, body, stem, file)
    lines = body.splitlines()
    if per_line:
        prompts = [Prompt(line.strip(), f"{stem}:{n}", f"{path}:{n}", file) for n, line in enumerate(lines, 1)
                   if line.strip() and not line.lstrip().startswith("#")]
        if not prompts:
            raise UserError(f"prompt file {path} holds no prompts",
                            "with --prompts-per-line every line that is not blank or a # comment is one prompt")
        return prompts
    while lines and lines[0].lstrip().startswith("#"):
        lines.pop(0)
    text = "\n".join(lines).strip("\n")
    if not text.strip():
        raise UserError(f"prompt file {path} is empty", "give some text to analyse")
    return [Prompt(text, stem, str(path), file)]


def _read_jsonl(path: Path, body: str, stem: str, file: str) -> list[Prompt]:
    prompts = []
    shape = 'each line must be a JSON object with a "text" string, e.g. {"text": "The capital of France is"}'
    for n, line in enumerate(body.splitlines(), 1):
        if not line.strip():
            continue
        where = f"prompt file {path} line {n}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserError(f"{where} is not valid JSON ({exc.msg}, column {exc.colno})", shape) from None
        text = record.get("text") if isinstance(record, dict) else None
        if not isinstance(text, str):
            raise UserError(f'{where} has no "text" string', shape)
        if not text.strip():
            raise UserError(f'{where}: "text" is empty', "give some text to analyse")
        label = record.get("label")
        if label is not None and (not isinstance(label, str) or not label.strip()):
            raise UserError(f'{where}: "label" must be a non-empty string')
        prompts.append(Prompt(text, label.strip() if label else f"{stem}:{n}", f"{path}:{n}", file))
    if not prompts:
        raise UserError(f"prompt file {path} holds no prompts", shape)
    return prompts


def _unique_labels(prompts: list[Prompt]) -> list[Prompt]:
    seen: dict[str, int] = {}
    out = []
    for p in prompts:
        seen[p.label] = seen.get(p.label, 0) + 1
        out.append(p if seen[p.label] == 1 else replace(p, label=f"{p.label} ({seen[p.label]})"))
    return out


def check_max_tokens(max_tokens: int) -> int:
    if max_tokens < 1:
        raise UserError(f"--max-tokens must be at least 1 (got {max_tokens})")
    return max_tokens


def truncation_note(header: dict) -> str | None:
    """The one line announcing that a run analyses only the start of its prompt (None when nothing was cut):
    cut to ``--max-tokens``, or to the model's context when that is shorter."""
    tokens = header.get("tokens") or {}
    cut = tokens.get("truncated_from")
    if not cut:
        return None
    kept = len(tokens.get("ids", []))
    if kept < int((header.get("params") or {}).get("max_tokens") or kept):
        why = f"the model's context is {kept} tokens"
    else:
        why = "raise --max-tokens to analyse more"
    return f"the prompt has {cut} tokens; analysing the first {kept} ({why})"
