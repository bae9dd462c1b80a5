"""Atomic file writes: a temp file in the target's directory, then ``os.replace``. Readers see the old file or the
new one, never half of one, and an interrupted write leaves nothing behind. A group of files is written whole or not
at all (``atomic_write_files``). Also the one rule that turns a model name, a prompt label or a run name into a safe
file name (``file_slug``)."""

from __future__ import annotations

import os
import re
import shutil
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


def atomic_write_files(directory: str | os.PathLike, files: dict[str, bytes],
                       hint: str = "choose a writable directory") -> list[Path]:
    """Write every ``name → bytes`` of ``files`` into ``directory``, or none of them. Each is written first into a
    hidden staging directory inside ``directory``; only when all are there are they renamed into place, so a file of
    the same name is replaced only by a group that was written whole (and put back if a rename fails). Nothing else
    in ``directory`` is touched; a directory made for the group is removed again when it fails. Raises
    UserError("cannot write …") on an OSError; returns the paths in the order of ``files``."""
    target = Path(directory).expanduser()
    if target.exists() and not target.is_dir():
        raise UserError(f"cannot write into {target}: it is a file, not a directory", hint)
    made = _missing_dirs(target)
    try:
        target.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=".coupling-tui-", suffix=".tmp", dir=target))
    except OSError as exc:
        _remove_empty(made)
        raise UserError(f"cannot write {target}: {exc.strerror or exc}", hint) from exc
    try:
        for name, data in files.items():
            atomic_write_bytes(stage / name, data, hint)
        _move_in(stage, target, list(files), hint)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        _remove_empty(made)
        raise
    shutil.rmtree(stage, ignore_errors=True)
    return [target / name for name in files]


def _missing_dirs(target: Path) -> list[Path]:
    """``target`` and those of its ancestors that do not exist yet, deepest first."""
    missing = []
    while not (target.exists() or target.is_symlink()) and target != target.parent:
        missing.append(target)
        target = target.parent
    return missing


def _remove_empty(dirs: list[Path]) -> None:
    for path in dirs:                                  # deepest first; one that is not empty stays
        try:
            path.rmdir()
        except OSError:
            return


def _move_in(stage: Path, target: Path, names: list[str], hint: str) -> None:
    """Rename every staged file into ``target``; a failed rename puts back what the earlier ones replaced."""
    kept = stage / ".replaced"
    kept.mkdir()
    moved: list[str] = []
    name = ""
    try:
        for name in names:
            old = target / name
            if old.exists() or old.is_symlink():
                _keep(old, kept / name)                # the file it replaces, to put back on failure
            os.replace(stage / name, old)
            moved.append(name)
    except BaseException as exc:
        for done in reversed(moved):
            try:
                if (kept / done).exists() or (kept / done).is_symlink():
                    os.replace(kept / done, target / done)
                else:
                    os.unlink(target / done)
            except OSError:
                pass
        if isinstance(exc, OSError):
            raise UserError(f"cannot write {target / name}: {exc.strerror or exc}", hint) from exc
        raise


def _keep(path: Path, copy: Path) -> None:
    """A hard link to ``path`` at ``copy`` (a copy where links are not supported); a directory raises."""
    if path.is_dir() and not path.is_symlink():
        raise IsADirectoryError(21, "Is a directory", str(path))
    try:
        os.link(path, copy, follow_symlinks=False)
    except OSError:
        shutil.copy2(path, copy, follow_symlinks=False)


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
