"""A sweep's table: one row per model, written as ``DIR/sweep.csv`` and ``DIR/sweep.json`` (the same rows plus
the fits of the score against each predictor, core.maths.sweep_fits), both atomically after every model so an
interrupted sweep leaves a valid table of the models done; and read back without torch for ``view DIR``.

Every number of a row is read off the model's own results (a results file for one prompt, a prompt-set directory
for several; core.results.compare.side gives one prompt's numbers) and averaged over the prompts:

- ``coupling_scalar``: the mean over i ≠ j of the depth coupling m_K, every token pooled (the results header's
  ``coupling_scalar.offdiag``), at the sweep's K; ``coupling_scalar_last_token``: the same over the last token's
  matrix only (the papers' quantity, the header's ``coupling_scalar_last_token``); each with its std over prompts
  (sample, ddof = 1; empty for one prompt), the adjacent (|i − j| = 1) and far (|i − j| ≥ 10) means and 1 − m²;
- ``growth_factor_last_token`` (×/block, e^slope of log‖x^l‖ on l) and ``lss_last_token``: the trajectory fits of
  the last token; ``haar_null_last_token``: the mean over blocks of the last token's Haar-null m_K (what
  "unrelated" reads as at this d and K).
"""

from __future__ import annotations

import csv
import io
import json
import math
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from coupling_tui.core.errors import UserError
from coupling_tui.core.maths.run_scalar import ALL_TOKENS, LAST_TOKEN
from coupling_tui.core.results.aggregate import mean_std
from coupling_tui.core.results.names import SWEEP_CSV, SWEEP_JSON, SWEEP_KIND
from coupling_tui.core.results.prompt_set import PromptSet
from coupling_tui.core.results.run import Run

SCHEMA_VERSION = 1
IDENTITY = ("model", "status", "revision", "family", "n_params", "n_layers", "d_model", "dtype", "device",
            "k", "n_prompts", "n_tokens")
SCALARS = {"coupling_scalar": (ALL_TOKENS, "offdiag"), "coupling_scalar_last_token": (LAST_TOKEN, "offdiag"),
           "adjacent": (ALL_TOKENS, "adjacent"), "adjacent_last_token": (LAST_TOKEN, "adjacent"),
           "far": (ALL_TOKENS, "far"), "far_last_token": (LAST_TOKEN, "far"),
           "one_minus_m2": (ALL_TOKENS, "offdiag_1_minus_m2"),
           "one_minus_m2_last_token": (LAST_TOKEN, "offdiag_1_minus_m2")}
"""Column → (pooling, key of core.maths.run_scalar's dict)."""
WITH_STD = ("coupling_scalar", "coupling_scalar_last_token")
COLUMNS = (IDENTITY + tuple(c for name in SCALARS for c in ((name, name + "_std") if name in WITH_STD else (name,)))
           + ("growth_factor_last_token", "lss_last_token", "haar_null_last_token", "seconds", "score", "results"))
"""The columns of ``sweep.csv``, in order; ``sweep.json``'s rows have them and ``key`` (core.options.sweep.sweep_key)."""
PREDICTORS = {"coupling_scalar_last_token": "coupling_scalar_last_token", "coupling_scalar": "coupling_scalar",
              "log10_n_params": "n_params", "n_layers": "n_layers", "d_model": "d_model"}
"""The fits' predictors (sweep.json ``fits``) → the column each reads (n_params through log10)."""


def runs_of(container: Run | PromptSet) -> list[Run]:
    """The complete runs of a model's results: the run itself, or every finished prompt's."""
    if isinstance(container, PromptSet):
        return container.complete_runs()
    return [container] if container.finished else []


def failed_row(model: str, reason: str, seconds: float = 0.0, score: float | None = None) -> dict:
    row = dict.fromkeys(COLUMNS)
    row.update(model=model, status=f"failed: {reason}", seconds=round(seconds, 3), score=score)
    return row


def ok_row(model: str, container: Run | PromptSet, *, seconds: float, results: str,
           score: float | None = None) -> dict:
    """The row of a model whose results are ``container`` (saved at ``results``, relative to the sweep dir)."""
    from coupling_tui.core.results.compare import side

    runs = runs_of(container)
    if not runs:
        return failed_row(model, "no complete run", seconds, score)
    header = runs[0].header
    info = header.get("model") or {}
    row = dict.fromkeys(COLUMNS)
    row.update(model=model, status="ok", revision=info.get("resolved_revision") or info.get("revision"),
               family=info.get("family"), n_params=info.get("n_params"), n_layers=info.get("n_layers"),
               d_model=info.get("d_model"), dtype=header.get("dtype"), device=header.get("device"),
               n_prompts=len(runs), n_tokens=_mean([r.n_tokens for r in runs]), seconds=round(seconds, 3),
               score=score, results=results)
    k = (header.get("coupling") or {}).get("k")
    sides = [side(run, k, run.n_tokens - 1) for run in runs]
    if k is not None:
        row["k"] = int(k)
        for column, (where, key) in SCALARS.items():
            values = [((s.scalar_last if where == LAST_TOKEN else s.scalar_all) or {}).get(key) for s in sides]
            mean, std = _mean_std(values)
            row[column] = mean
            if column in WITH_STD:
                row[column + "_std"] = std
        row["haar_null_last_token"] = _mean([s.haar_null for s in sides])
    row["growth_factor_last_token"] = _mean([s.trajectory.get("growth") for s in sides])
    row["lss_last_token"] = _mean([s.trajectory.get("lss") for s in sides])
    return row


def _finite(values) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(float(v))]


def _mean(values) -> float | None:
    values = _finite(values)
    return float(np.mean(values)) if values else None


def _mean_std(values) -> tuple[float | None, float | None]:
    values = _finite(values)
    if not values:
        return None, None
    mean, std = mean_std(np.asarray(values)[:, None])
    return float(mean[0]), (float(std[0]) if np.isfinite(std[0]) else None)


def table_json(rows: list[dict], fits: dict, meta: dict) -> dict:
    """``sweep.json``: what was swept (``meta``: options, prompts, K, scores file), the rows, the fits."""
    return {"format": SWEEP_KIND, "schema_version": SCHEMA_VERSION,
            "written": datetime.now(timezone.utc).isoformat(timespec="seconds"), **meta,
            "columns": list(COLUMNS), "rows": rows, "fits": fits}


def csv_text(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(COLUMNS), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: _cell(row.get(c)) for c in COLUMNS})
    return out.getvalue()


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)                              # every digit: the CSV holds the numbers the JSON holds
    return str(value)


def write(directory: str | Path, rows: list[dict], fits: dict, meta: dict) -> None:
    """Write ``sweep.csv`` and ``sweep.json`` into ``directory`` together (each replaced whole, never half
    written: core.atomic)."""
    from coupling_tui.core.atomic import atomic_write_files

    files = {SWEEP_CSV: csv_text(rows).encode(),
             SWEEP_JSON: (json.dumps(table_json(rows, fits, meta), indent=1, allow_nan=False) + "\n").encode()}
    atomic_write_files(directory, files)


def is_sweep(path: str | Path) -> bool:
    return Path(path).expanduser().is_dir() and (Path(path).expanduser() / SWEEP_JSON).is_file()


def load(directory: str | Path) -> dict:
    """``sweep.json`` of a sweep directory, checked enough to draw it: a UserError names what is wrong."""
    path = Path(directory).expanduser() / SWEEP_JSON
    try:
        table = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{Path(directory)} is not a sweep directory (no {SWEEP_JSON})") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"cannot open {path}: {exc}") from exc
    if not isinstance(table, dict) or table.get("format") != SWEEP_KIND or not isinstance(table.get("rows"), list):
        raise UserError(f"cannot open {path}: not a coupling-tui sweep table")
    if not all(isinstance(r, dict) and isinstance(r.get("model"), str) for r in table["rows"]):
        raise UserError(f"cannot open {path}: a row without a model name")
    return table
