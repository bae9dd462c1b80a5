"""The files ``coupling-tui figures`` writes: each figure in each format (``<name>.<format>``) and, with ``--data``,
the numbers behind it: ``<name>.csv`` (a line figure: one row per point, ``series,facet,x,y``) or
``<name>-<panel>.csv`` (a heatmap: the stored matrix, row = the Jacobian's block), each headed by ``#`` lines
saying what the numbers are, and one ``figures.npz`` with every array (``<figure>/<facet>/<series>/x``, ``…/y``,
``<figure>/<panel>``). Numbers are written with Python's shortest round-trip repr, so they read back exactly; NaN
(not computed) as ``nan``. All files are written together or none (``core.atomic.atomic_write_files``)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from coupling_tui.core.atomic import atomic_write_files, file_slug

from .data import Figure

NPZ = "figures.npz"
HINT = "choose a writable directory with -o"


def number(value) -> str:
    """A stored number exactly: the shortest repr that reads back to the same float64 (a float32 converts to
    float64 without loss); ``nan`` when not computed."""
    return repr(float(value))


def _header(figure: Figure, *lines: str) -> str:
    return "".join(f"# {line}\n" for line in (f"{figure.title}: {figure.note}", *lines))


def panel_csv_name(figure: Figure, label: str) -> str:
    return f"{figure.name}-{file_slug(label, 'panel')}.csv"


def csv_files(figure: Figure) -> dict[str, bytes]:
    """The CSV files of ``figure``: one per heatmap panel, or one for all its lines."""
    if figure.panels:
        out = {}
        for label, m in figure.panels:
            text = _header(figure, f"{label}: rows = the Jacobian's block i = 0..{m.shape[0] - 1}, columns = the "
                                   f"basis's block j = 0..{m.shape[1] - 1}")
            text += "".join(",".join(number(v) for v in row) + "\n" for row in np.asarray(m))
            out[panel_csv_name(figure, label)] = text.encode("utf-8")
        return out
    text = _header(figure, f"x: {figure.xlabel}; y: {figure.ylabel}") + "series,facet,x,y\n"
    for s in figure.series:
        facet = figure.facets[s.group] if figure.facets else ""
        for x, y in zip(np.asarray(s.x), np.asarray(s.y)):
            text += f"{_field(s.label)},{_field(facet)},{number(x)},{number(y)}\n"
    return {f"{figure.name}.csv": text.encode("utf-8")}


def _field(text: str) -> str:
    """A CSV field, quoted when it holds a comma or a quote."""
    return '"' + text.replace('"', '""') + '"' if any(c in text for c in ',"\n') else text


def npz_arrays(figures: list[Figure]) -> dict[str, np.ndarray]:
    """Every figure's arrays by name, as stored (not converted)."""
    out: dict[str, np.ndarray] = {}
    for figure in figures:
        for label, m in figure.panels:
            out[f"{figure.name}/{file_slug(label, 'panel')}"] = np.asarray(m)
        for s in figure.series:
            facet = file_slug(figure.facets[s.group], "facet") + "/" if figure.facets else ""
            key = f"{figure.name}/{facet}{file_slug(s.label, 'series')}"
            out[f"{key}/x"], out[f"{key}/y"] = np.asarray(s.x), np.asarray(s.y)
        for name, values in figure.extra.items():
            out[f"{figure.name}/{file_slug(name, 'extra')}"] = np.asarray(values)
    return out


def npz_bytes(figures: list[Figure]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **npz_arrays(figures))
    return buf.getvalue()


def figure_files(figures: list[Figure], formats: tuple[str, ...], data: bool) -> dict[str, bytes]:
    """Every file's name and bytes: the drawings (matplotlib imported here), then with ``data`` the CSVs and the
    NPZ."""
    from .draw import render

    files: dict[str, bytes] = {}
    for figure in figures:
        for fmt, content in render(figure, formats).items():
            files[f"{figure.name}.{fmt}"] = content
    if data:
        for figure in figures:
            files.update(csv_files(figure))
        files[NPZ] = npz_bytes(figures)
    return files


def write_figures(directory: str | Path, figures: list[Figure], formats: tuple[str, ...],
                  data: bool = False) -> list[Path]:
    """Draw and write every file into ``directory`` (created), all or none; the paths in order."""
    return atomic_write_files(Path(directory).expanduser(), figure_files(figures, formats, data), hint=HINT)
