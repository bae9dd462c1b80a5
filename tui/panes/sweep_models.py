"""The Sweep pane's table of models: one row per model of ``sweep.json`` (core.results.sweep_table), sortable by
``s`` (the sweep's order, the coupling scalar, the score, the size); the cursor row is the selected model. Every
number is the table's, formatted; failed models show their reason."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable

SORTS = (("sweep order", None), ("m last token", "coupling_scalar_last_token"), ("m all-token", "coupling_scalar"),
         ("score", "score"), ("parameters", "n_params"))
"""What ``s`` cycles through: (name, column; None = the order the models were given)."""


def _num(v, fmt: str = ".3f") -> str:
    return "–" if v is None else format(v, fmt)


def params_text(n) -> str:
    """134.5M, 1.2B, 48.4k."""
    if n is None:
        return "–"
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)


def order(rows: list[dict], sort: int) -> list[int]:
    """Row indices in the order of ``SORTS[sort]``: ascending, models without the value last."""
    column = SORTS[sort][1]
    if column is None:
        return list(range(len(rows)))
    have = [i for i, r in enumerate(rows) if r.get(column) is not None]
    return sorted(have, key=lambda i: rows[i][column]) + [i for i in range(len(rows)) if i not in have]


NAME_WIDTH = 36


def short_name(name: str, width: int = NAME_WIDTH) -> str:
    """A model's name cut in the middle to ``width`` (the end of a path or id tells models apart best)."""
    if len(name) <= width:
        return name
    keep = width - 1
    return name[: keep // 3] + "…" + name[-(keep - keep // 3):]


class SweepModels(DataTable):
    """The table of models (module docstring)."""

    BORDER_TITLE = "Models"
    HELP = """\
## Models

One row per model, as the sweep named it: its state (ok, or failed with the reason), parameters, blocks L and
width d, the coupling scalar m_K over the **last token** (the papers') and over **all tokens** (each the mean over
prompts; ± the std over prompts when there are several), and the score from `--scores`.

`s` sorts by the next column (sweep order, m last token, m all-token, score, parameters); Enter opens the selected
model's run (or prompt set) in the usual panes.
"""

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's keyword
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.rows_shown: list[int] = []
        """Table row → sweep.json row index, in the order shown."""
        self.sort_name = SORTS[0][0]

    def show(self, table: dict, sort: int, selected: int | None) -> None:
        rows = table["rows"]
        k = next((r.get("k") for r in rows if r.get("k") is not None), "K")
        self.clear(columns=True)
        self.add_columns("#", "model", f"m_{k} last", f"m_{k} all", "score", "params", "L", "d", "state")
        self.rows_shown = order(rows, sort)
        for i in self.rows_shown:
            r = rows[i]
            ok = r.get("status") == "ok"
            last = _num(r.get("coupling_scalar_last_token"))
            if r.get("coupling_scalar_last_token_std") is not None:
                last += f" ±{r['coupling_scalar_last_token_std']:.3f}"
            self.add_row(str(i + 1), Text(short_name(r["model"])), last, _num(r.get("coupling_scalar")),
                         _num(r.get("score"), ".4g"), params_text(r.get("n_params")), _num(r.get("n_layers"), "d"),
                         _num(r.get("d_model"), "d"), Text("ok", style="green") if ok else Text("failed", style="red"))
        self.sort_name = SORTS[sort][0]
        if selected in self.rows_shown:
            self.move_cursor(row=self.rows_shown.index(selected))
        self.describe(table, selected)

    def describe(self, table: dict, selected: int | None) -> None:
        """The border subtitle: the selected model's name in full (and why it failed), then the sort."""
        row = table["rows"][selected] if selected is not None and 0 <= selected < len(table["rows"]) else None
        about = "" if row is None else row["model"] + ("" if row.get("status") == "ok" else f" · {row['status']}")
        self.border_subtitle = Text(f"{about} · sorted by {self.sort_name} (s)" if about else
                                    f"sorted by {self.sort_name} (s)")

    @property
    def selected(self) -> int | None:
        """The sweep.json row under the cursor."""
        if not self.rows_shown or self.cursor_row < 0:
            return None
        return self.rows_shown[min(self.cursor_row, len(self.rows_shown) - 1)]
