"""The project's exclusive file locks (fcntl.flock: released by the kernel when the process dies).

``file_lock`` holds one for a block (the HPO claim lock, a training state's lock, the tracking replay
locks); ``hold`` takes one for the rest of the process's life (the workflow's run lock in pipeline/jobs.py,
a GPU claim in devices.py). Every lock of the project is taken here.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path
from typing import IO


def _take(path, blocking: bool) -> IO | None:
    """``path`` (created, with its folder) opened and exclusively locked; None if it is held elsewhere and
    ``blocking`` is False."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fh = open(path, "a+")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except BlockingIOError:
        fh.close()
        return None
    except BaseException:
        fh.close()
        raise
    return fh


@contextlib.contextmanager
def file_lock(path, *, blocking: bool = True) -> Iterator[bool]:
    """Hold an exclusive lock on ``path`` (created, with its folder) for the block. Yields True when
    held; with ``blocking=False`` yields False at once if another process holds it."""
    fh = _take(path, blocking)
    if fh is None:
        yield False
        return
    try:
        yield True
    finally:
        fcntl.flock(fh, fcntl.LOCK_UN)
        fh.close()


def hold(path) -> IO | None:
    """Take the exclusive lock on ``path`` without waiting and keep it for the life of the process (or
    until the returned file is closed); None if another process holds it. The file is open for
    reading and writing (the run lock writes its holder's pid there)."""
    return _take(path, blocking=False)
