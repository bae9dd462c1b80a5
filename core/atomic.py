"""Atomic file writes: a temp file in the target's directory, then ``os.replace``. Readers see the old file or the
new one, never half of one, and an interrupted write leaves nothing behind. Also the one rule that turns a model
name, a prompt label or a run name into a safe file name (``file_slug``)."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from coupling_tui.core.errors import UserError


def file_slug(text: str, fallback: str, max_len: int | None = None) -> str:
    """``text`` safe for a file name: every run of characters other than letters, digits, ``.``, ``_`` and ``-``
    becomes one ``-``, leading and trailing ``-``/``.`` are dropped (no hidden files), at most ``max_len``
    characters; ``fallback`` when nothing is left."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")
    if max_len is not None:
        slug = slug[:max_len]
    return slug or fallback


def atomic_write_bytes(path: str | os.PathLike, data: bytes,
                       hint: str = "choose a writable path with -o/--output") -> Path:
    target = Path(path).expanduser()
    parent = target.parent if str(target.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=parent)
    except OSError as exc:
        raise UserError(f"cannot write {target}: {exc.strerror or exc}", hint) from exc
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a results file is as readable as any other output
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise UserError(f"cannot write {target}: {exc.strerror or exc}", "check free space and permissions") from exc
        raise
    return target


def check_file_target(path: str | os.PathLike) -> Path:
    """Refuse, before any model loads, a results-file target that cannot be written: a directory, a parent that is
    a file, or a parent that is not writable (a missing parent is created on save, if its nearest ancestor is)."""
    target = Path(path).expanduser()
    hint = "choose a writable path with -o/--output"
    if target.is_dir():
        raise UserError(f"cannot write {target}: it is a directory", hint)
    anc = target.parent if str(target.parent) else Path(".")
    while not anc.exists() and anc != anc.parent:
        anc = anc.parent
    if not anc.is_dir():
        raise UserError(f"cannot write {target}: {anc} is not a directory", hint)
    if not os.access(anc, os.W_OK | os.X_OK):
        raise UserError(f"cannot write {target}: {anc} is not writable", hint)
    return target
