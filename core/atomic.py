"""Atomic file writes: a temp file in the target's directory, then ``os.replace``. Readers see the old file or the
new one, never half of one, and an interrupted write leaves nothing behind."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from coupling_tui.core.errors import UserError


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    target = Path(path).expanduser()
    parent = target.parent if str(target.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=parent)
    except OSError as exc:
        raise UserError(f"cannot write {target}: {exc.strerror or exc}", "choose a writable path with -o/--output") from exc
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
