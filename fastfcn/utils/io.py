"""Atomic file writes: readers see the old file or the complete new one, never a truncated one.

The data goes to a uniquely named temporary file in the target's folder (so that two writers never
share one), is flushed and fsync'ed, then renamed over the target (``os.replace`` is atomic on one
file system). On any error the temporary file is removed and the target is left as it was; only a
killed process leaves its temporary file behind (:func:`temp_files` finds those).

:func:`pause_point` is a test-only hook: it does nothing unless the environment variable
``FASTFCN_TEST_PAUSE_AT`` names the point (the tests use it to SIGKILL a run at a chosen moment).
"""

from __future__ import annotations

import os
import stat
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

__all__ = ["atomic_write", "atomic_write_all", "atomic_write_text", "atomic_save", "temp_files", "pause_point"]

PAUSE_ENV, PAUSE_MARKER_ENV = "FASTFCN_TEST_PAUSE_AT", "FASTFCN_TEST_PAUSE_MARKER"
_pauses_seen: dict[str, int] = {}


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None]) -> Path:
    """Call ``write(file)`` on a temporary binary file beside ``path``, then rename it over ``path``."""
    return atomic_write_all([(path, write)])[0]


def atomic_write_all(writes: Sequence[tuple[str | Path, Callable[[BinaryIO], None]]]) -> list[Path]:
    """:func:`atomic_write` of several files that belong together (a mask and its overlay): every file is
    written completely to its temporary file first, and only then are they renamed over their targets.
    If any write fails, every target is left as it was (a previous run's files stay, complete)."""
    done: list[tuple[str, Path]] = []
    try:
        for path, write in writes:
            path = Path(path)
            done.append((_write_temp(path, write), path))
        for tmp, path in done:
            pause_point(f"before_rename:{path.name}")
            os.replace(tmp, path)
    except BaseException:
        for tmp, _ in done:
            if os.path.exists(tmp):
                os.unlink(tmp)
        raise
    return [path for _, path in done]


def _write_temp(path: Path, write: Callable[[BinaryIO], None]) -> str:
    """``write(file)`` into a new temporary file beside ``path``, flushed to disk; its name. Removed on error."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode):  # mkstemp makes 0600: give what a plain open() would
            os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
    except BaseException as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.filename is None and exc.errno:  # a failed write names no file
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise
    return tmp


def _umask() -> int:
    try:  # Linux says it without changing it (os.umask must set it to read it: racy with other threads)
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    data = text.encode("utf-8")
    return atomic_write(path, lambda f: f.write(data))


def atomic_save(obj: Any, path: str | Path) -> Path:
    """``torch.save(obj)`` to ``path`` atomically."""
    import torch

    return atomic_write(path, lambda f: torch.save(obj, f))


def temp_files(path: str | Path) -> list[Path]:
    """The temporary files of :func:`atomic_write` to ``path`` (``.NAME.XXXX.tmp`` beside it), oldest first.

    Only a writer that was killed mid-write (or one still writing) leaves them; they are never read.
    """
    path = Path(path)
    if not path.parent.is_dir():
        return []
    prefix = f".{path.name}."
    found = [p for p in path.parent.iterdir() if p.name.startswith(prefix) and p.name.endswith(".tmp")
             and len(p.name) > len(prefix) + len(".tmp") and p.is_file()]
    return sorted(found, key=lambda p: p.stat().st_mtime)


def pause_point(name: str) -> None:
    """TEST-ONLY hook: with ``FASTFCN_TEST_PAUSE_AT=NAME`` (or ``NAME@N``, the N-th time) pause here.

    At that point the process writes its pid to the file ``$FASTFCN_TEST_PAUSE_MARKER`` (if set) and
    sleeps, so that a test can wait for the marker and kill the process with SIGKILL at exactly this
    moment (e.g. ``before_rename:last.pth``, ``after_checkpoint_rename``). Without the variable: a no-op.
    """
    spec = os.environ.get(PAUSE_ENV)
    if not spec or spec.partition("@")[0] != name:
        return
    _pauses_seen[name] = _pauses_seen.get(name, 0) + 1
    if _pauses_seen[name] != int(spec.partition("@")[2] or 1):
        return
    marker = os.environ.get(PAUSE_MARKER_ENV)
    if marker:
        Path(marker).write_text(str(os.getpid()))
    time.sleep(600)
