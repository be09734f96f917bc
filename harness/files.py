"""Writing a file whole or not at all: the one atomic write of cc-ci, and the one
write-once of a value several processes may make at the same moment (an id).

A reader (the dashboard, a restarted service, a concurrent run) sees the old file or the
new one, never half of one: the text is written aside in the same directory, then renamed
into place (``write_atomic``), or linked into place where the first one must win
(``read_or_make``).
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

__all__ = ["read_or_make", "write_atomic"]


def write_atomic(path: Path, data: str | bytes, *, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` atomically, its directory made first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data.encode() if isinstance(data, str) else data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_or_make(path: Path, make: Callable[[], str]) -> str:
    """The value at ``path``, made there first (``make()``) when there is none. Processes
    starting together agree on it: each writes a whole value aside, and only the first
    link to ``path`` wins, so nobody reads a half-written or overwritten one."""
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        made = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
        made.write_text(make() + "\n")
        try:
            os.link(made, path)
        except FileExistsError:
            pass  # another process's value came first: it is the one
        finally:
            made.unlink()
    return path.read_text().strip()
