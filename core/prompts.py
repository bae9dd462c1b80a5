"""Prompt text from the command line or a file, validated before any model is loaded; token budget handling."""

from __future__ import annotations

from pathlib import Path

from .errors import UserError

DEFAULT_PROMPT = (
    "The history of science is the study of how people came to understand the natural world. Early "
    "astronomers tracked the motion of the planets, physicians described the body, and mathematicians "
    "built the tools that let later scientists turn careful observation into laws that predict what "
    "will happen next."
)
DEFAULT_MAX_TOKENS = 128


def read_prompt(text: str | None, file: str | None) -> str:
    """The prompt to analyse: ``text``, or the contents of ``file`` (UTF-8; leading ``#`` comment lines are
    dropped), or the built-in default. Empty or whitespace-only prompts are refused."""
    if text is not None and file is not None:
        raise UserError("give either --prompt or --prompt-file, not both")
    if file is not None:
        path = Path(file).expanduser()
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise UserError(f"cannot read prompt file {path}: {exc.strerror or exc}") from exc
        try:
            body = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UserError(f"prompt file {path} is not UTF-8 text (byte {exc.start})") from exc
        lines = body.splitlines()
        while lines and lines[0].lstrip().startswith("#"):
            lines.pop(0)
        text = "\n".join(lines).strip("\n")
        where = f"prompt file {path}"
    elif text is None:
        return DEFAULT_PROMPT
    else:
        where = "--prompt"
    if not text.strip():
        raise UserError(f"{where} is empty", "give some text to analyse")
    return text


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
